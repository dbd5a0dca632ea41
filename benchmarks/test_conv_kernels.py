"""The optimised convolution kernel (runtime/src/opt/conv.c) against the reference one (runtime/src/ref/conv.c) on
the window models of two keyword spotters, timed in C by the generated `bench` program (STYLE principle 12).

Host only: `--arch host` (opt) vs `--arch host-ref` (ref); the Cortex-M4 target runs the reference kernels.
Each model is checked against the reference interpreter before it is timed.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.ir import Graph, verify


def _weights(rng, *shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def ds_cnn(frames: int = 49, features: int = 10, channels: int = 64, blocks: int = 4) -> Graph:
    """DS-CNN-S (Hello Edge): conv 10×4 stride 2 → 4 × (depthwise 3×3 + pointwise 64) → average pool → dense 12."""
    rng = np.random.default_rng(0)
    g = Graph("ds_cnn")
    x = g.add_input([1, 1, frames, features])
    const = g.add_constant
    h = g.op1("Relu", g.op1("Conv", x, const(_weights(rng, channels, 1, 10, 4)), const(np.zeros(channels, np.float32)),
                            strides=[2, 2], pads=[4, 1, 5, 2]))
    for _ in range(blocks):
        h = g.op1("Relu", g.op1("Conv", h, const(_weights(rng, channels, 1, 3, 3)), const(np.zeros(channels, np.float32)),
                                group=channels, pads=[1, 1, 1, 1]))
        h = g.op1("Relu", g.op1("Conv", h, const(_weights(rng, channels, channels, 1, 1)),
                                const(np.zeros(channels, np.float32))))
    pooled = g.op1("Reshape", g.op1("GlobalAveragePool", h), shape=[1, channels])
    g.add_output(g.op1("Dense", pooled, const(_weights(rng, 12, channels)), activation="log_softmax"))
    return verify(g)


def tc_resnet(frames: int = 101, features: int = 40, width: int = 24) -> Graph:
    """TC-ResNet8-like: features as channels, 1-D convolutions over time (3 strided blocks of two 9-tap convs)."""
    rng = np.random.default_rng(1)
    g = Graph("tc_resnet")
    x = g.add_input([1, features, frames])
    h = g.op1("Conv", x, g.add_constant(_weights(rng, 16, features, 3)), pads=[1, 1])
    channels = 16
    for block in range(3):
        out = [width, 32, 48][block]
        r = g.op1("Relu", g.op1("Conv", h, g.add_constant(_weights(rng, out, channels, 9)), strides=[2], pads=[4, 4]))
        r = g.op1("Conv", r, g.add_constant(_weights(rng, out, out, 9)), pads=[4, 4])
        skip = g.op1("Conv", h, g.add_constant(_weights(rng, out, channels, 1)), strides=[2])
        h, channels = g.op1("Relu", g.op1("Add", r, skip)), out
    pooled = g.op1("Reshape", g.op1("GlobalAveragePool", h), shape=[1, channels])
    g.add_output(g.op1("Dense", pooled, g.add_constant(_weights(rng, 12, channels)), activation="log_softmax"))
    return verify(g)


MODELS = {"DS-CNN-S window (49×10)": ds_cnn, "TC-ResNet8-like window (40×101)": tc_resnet}


@pytest.mark.parametrize("name", list(MODELS))
def test_opt_conv_gain(name, tmp_path_factory):
    c = pytest.importorskip("kwsc.backends.c")
    from kwsc.backends.reference import Interpreter

    missing = c.toolchain_missing("host")
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    graph = MODELS[name]()
    root = tmp_path_factory.mktemp("conv_kernels")
    x = np.random.default_rng(2).standard_normal((2,) + graph.inputs[0].shape).astype(np.float32)
    want = Interpreter(graph).run(x).reshape(2, -1)
    timings = {}
    for arch in ("host-ref", "host"):
        c.emit_c(graph, root / arch, arch=arch, build=True)
        np.testing.assert_allclose(c.run_harness(root / arch, arch, x.reshape(2, -1)), want, rtol=1e-4, atol=1e-4)
        timings[arch] = c.run_bench(root / arch, arch, calls=200, repeats=7)["cpu_us"]
    print(f"\n{name}: reference conv {timings['host-ref']:.1f} µs/window, optimised {timings['host']:.1f} µs/window, "
          f"gain ×{timings['host-ref'] / timings['host']:.1f} (CPU time per Predict)")
    assert timings["host"] < timings["host-ref"], "the optimised conv kernel must be faster than the reference one"
