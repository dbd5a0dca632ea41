"""int8 convolutions in C (issue 15 item 1 on issue 18's route): QConv's kernel (runtime/src/ref/qconv.c) equals
the reference interpreter bit for bit on every target — the input rounded per call, exact int32 window sums through
each target's kwsc_qdot_rows (AVX2 on the host, plain C host-ref, NEON vmlal.s8 armv7, smlal aarch64, sdot
aarch64-dotprod, SMLAD Cortex-M4), the depthwise loop, and the float32 dequantization. One graph holds every form:
2-D with pads, strides and dilations, grouped, depthwise (with and without a multiplier), pointwise, 1-D windows read
in place and with pads, 3-D, calibrated scales that clip, no bias, float16 and float32 biases, with and without
equalization."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import emit_c, run_harness
from kwsc.ir import Graph, verify
from kwsc.ir.op_quant import to_int8
from tests.backends.c.conftest import CONV_SHAPE, reference_outputs, skip_without_toolchain, start_conv_zoo

ARCHES = ("host", "host-ref", "armv7", "aarch64", "aarch64-dotprod", "cortex-m4")
SHAPE = CONV_SHAPE


def qconv_zoo(seed: int = 0) -> Graph:
    g, x, _, const, outs = start_conv_zoo("qconv_zoo", seed)
    outs["depth_multiplier_strided"] = g.op1("Conv", x, const(8, 1, 2, 3), group=4, strides=[2, 2], pads=[0, 1, 1, 0])
    flat = g.op1("Reshape", x, shape=[1, 4, 80])
    outs["conv1d_dilated_causal"] = g.op1("Conv", flat, const(4, 1, 3), group=4, dilations=[4], pads=[8, 0])
    outs["conv1d_stride"] = g.op1("Conv", flat, const(3, 4, 5), const(3), strides=[3])  # windows read in place
    outs["conv1d_same"] = g.op1("Conv", flat, const(7, 4, 9), const(7), pads=[4, 4])  # in place and patched
    cube = g.op1("Reshape", x, shape=[1, 2, 2, 10, 8])
    outs["conv3d"] = g.op1("Conv", cube, const(3, 2, 2, 3, 2), const(3), strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 1])
    wide = g.op1("Reshape", x, shape=[1, 40, 8])  # 40 channels × 3 taps = 120 columns: the vector loops run
    outs["conv1d_wide"] = g.op1("Conv", wide, const(13, 40, 3, scale=0.2), const(13), pads=[1, 1])
    for name, value in outs.items():
        g.add_output(value, name=name)
    to_int8(g)
    nodes = g.find("QConv")
    assert not any(n.attrs["equalize"] for n in nodes)  # random weights: no channel stands out, nothing to equalize
    for n in nodes[::2]:
        n.attrs["equalize"] = True  # the kernel's ch path, on half of them
    nodes[1].attrs["input_scale"] = 0.01  # calibrated, and too small: the largest inputs clip to ±127
    assert nodes[0].attrs["bias_float16"]  # the pass stores biases as float16 where they fit
    bias = nodes[0].inputs[2].producer.attrs["value"].copy()
    bias[:4] = [-1e-7, 3e-5, -0.0, 1000.1]  # half subnormals, a signed zero, a rounded large value
    nodes[0].inputs[2].producer.attrs["value"] = bias
    nodes[3].attrs["bias_float16"] = False  # and float32 elsewhere
    return verify(g)


def frames(n: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, int(np.prod(SHAPE)))).astype(np.float32)
    x[2] = 0.0  # all zero: scale 0
    if n > 3:
        x[3] *= np.float32(1e-20)  # a peak below 2^-60: zeros with scale 0 (127/peak would overflow to inf)
    return x


@pytest.fixture(scope="module")
def zoo():
    return qconv_zoo()


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ARCHES)
def test_qconv_equals_reference_bit_for_bit(zoo, tmp_path, arch):
    skip_without_toolchain(arch.removesuffix("-dotprod").removesuffix("-ref"))
    emit_c(zoo, tmp_path / arch, arch=arch, build=True)
    source = (tmp_path / arch / "model.c").read_text()
    assert source.count("kwsc_qconv(") == len(zoo.find("QConv")) and "kwsc_conv(" not in source
    x = frames(4)
    got = run_harness(tmp_path / arch, arch, x)
    want = reference_outputs(zoo, x, resets=[])
    np.testing.assert_array_equal(got, want, err_msg=f"{arch}: int8 Conv differs from the reference")


def test_weights_dtype_int8_emits_int8_conv_and_plans_its_scratch(tmp_path):
    rng = np.random.default_rng(2)
    g = Graph("one")
    x = g.add_input([1, 4, 10, 8])
    w = g.add_constant(rng.standard_normal((6, 4, 3, 3)).astype(np.float32))
    g.add_output(g.op1("Conv", x, w, pads=[1, 1, 1, 1]), name="y")
    verify(g)
    int8 = emit_c(g, tmp_path / "q", weights_dtype="int8")
    plain = emit_c(g, tmp_path / "f")
    source = (tmp_path / "q" / "model.c").read_text()
    assert "kwsc_qconv(" in source and "kwsc_conv(" not in source
    assert "int8_t w_conv_weights_q[216]" in source and "float w_conv_weights[" not in source  # no float copy
    # the arena holds the output (480 floats) and, beside it, the int8 input (320 B), a patch (36 B) and 6 sums
    assert plain.arena_bytes == 4 * 480
    assert 4 * (480 + 80 + 9 + 6) <= int8.arena_bytes < 4 * (480 + 80 + 9 + 6) + 16  # + alignment
