"""fold_batchnorm: BatchNormalization folded into the Conv or Dense before it, where that is exact up to rounding."""

from __future__ import annotations

import numpy as np

from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify
from kwsc.passes import run_pass


def _bn_params(g: Graph, rng, channels: int, name: str):
    return [g.add_constant(rng.normal(size=channels).astype(np.float32), name=f"{name}_scale"),
            g.add_constant(rng.normal(size=channels).astype(np.float32), name=f"{name}_bias"),
            g.add_constant(rng.normal(size=channels).astype(np.float32), name=f"{name}_mean"),
            g.add_constant(rng.uniform(0.2, 2.0, channels).astype(np.float32), name=f"{name}_var")]


def _model() -> Graph:
    """::

        before:
          x[1,3,8,6] ─ Conv1(+b) ─ BN1 ─ Relu ─ Conv2 (depthwise, no bias) ─ BN2 ─ GAP ─ Reshape ─ Dense ─ BN3 ─ out
                                   └─ Conv3 ─┬─ BN4 ─ out_bn4          (Conv3 has two users: BN4 stays)
                                             └────── out_conv3
                       BN5 ─ out_first                               (after the input itself: stays)
        after:
          x ─ Conv1' ─ Relu ─ Conv2' ─ GAP ─ Reshape ─ Dense' ─ out;  Conv3, BN4, BN5 unchanged
    """
    rng = np.random.default_rng(3)
    g = Graph("bn")
    x = g.add_input([1, 3, 8, 6])
    c1 = g.op1("Conv", x, g.add_constant(rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
               g.add_constant(rng.normal(size=4).astype(np.float32)), pads=[1, 1, 1, 1], name="conv1")
    h = g.op1("Relu", g.op1("BatchNormalization", c1, *_bn_params(g, rng, 4, "bn1"), epsilon=1e-3, name="bn1"))
    c2 = g.op1("Conv", h, g.add_constant(rng.normal(size=(4, 1, 3, 1)).astype(np.float32)), group=4, name="conv2")
    pooled = g.op1("GlobalAveragePool", g.op1("BatchNormalization", c2, *_bn_params(g, rng, 4, "bn2"), name="bn2"))
    dense = g.op1("Dense", g.op1("Reshape", pooled, shape=[1, 4]),
                  g.add_constant(rng.normal(size=(5, 4)).astype(np.float32)), name="dense")
    g.add_output(g.op1("BatchNormalization", dense, *_bn_params(g, rng, 5, "bn3"), name="bn3"), "out")
    c3 = g.op1("Conv", h, g.add_constant(rng.normal(size=(2, 4, 1, 1)).astype(np.float32)), name="conv3")
    g.add_output(g.op1("BatchNormalization", c3, *_bn_params(g, rng, 2, "bn4"), name="bn4"), "out_bn4")
    g.add_output(c3, "out_conv3")
    g.add_output(g.op1("BatchNormalization", x, *_bn_params(g, rng, 3, "bn5"), name="bn5"), "out_first")
    return verify(g)


def test_fold_batchnorm_rules_and_outputs():
    before = _model()
    after = before.copy()
    result = run_pass(after, "fold_batchnorm")
    assert result.changed == {"batchnorm_folded": 3}
    assert sorted(n.name for n in after.find("BatchNormalization")) == ["bn4", "bn5"]
    conv1 = after.node("conv1_bn")
    assert conv1.meta["folded_batchnorm"] == "bn1" and conv1.inputs[0] is after.inputs[0]
    assert after.node("conv2_bn").attrs["group"] == 4 and len(after.node("conv2_bn").inputs) == 3
    assert after.node("out").inputs[0] is after.node("dense_bn").output
    assert not any(n.name in ("conv1", "conv2", "dense", "bn1", "bn2", "bn3") for n in after.nodes)
    x = np.random.default_rng(4).normal(size=(3, 1, 3, 8, 6)).astype(np.float32)
    want, got = Interpreter(before).run(x), Interpreter(after).run(x)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, atol=2e-5, err_msg=name)
    assert run_pass(after, "fold_batchnorm").changed == {"batchnorm_folded": 0}  # idempotent


def test_dense_over_a_sequence_is_not_folded():
    """Dense on [N, T, F] normalizes axis 1 = T, not the Dense's outputs: folding would be wrong."""
    rng = np.random.default_rng(5)
    g = Graph("seq")
    x = g.add_input([1, 3, 4])
    dense = g.op1("Dense", x, g.add_constant(rng.normal(size=(2, 4)).astype(np.float32)))
    g.add_output(g.op1("BatchNormalization", dense, *_bn_params(g, rng, 3, "bn")))
    verify(g)
    assert run_pass(g, "fold_batchnorm").changed == {"batchnorm_folded": 0}
