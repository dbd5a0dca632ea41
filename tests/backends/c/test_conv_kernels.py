"""The convolutional-network ops compiled to C, against the reference interpreter, on every target.

One multi-output graph exercises each kernel's cases: Conv 1-D, 2-D and 3-D (groups, depthwise, pointwise, strides,
dilations, asymmetric pads, with and without bias), max and average pools (ceil_mode, count_include_pad,
dilations), the global pools, ReduceMean/ReduceMax over several axis sets, Pad in every mode (and a crop),
BatchNormalization, Softmax/LogSoftmax on inner axes, Transpose/Slice/Expand of computed tensors, and binary ops broadcasting two computed tensors. It is
built once per target (host with the optimised kernels, host-ref, and armv7, aarch64 and Cortex-M4 under
qemu) and also with int8 weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import run_harness
from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify
from tests.backends.c.conftest import CONV_SHAPE, skip_without_toolchain, start_conv_zoo

SHAPE = CONV_SHAPE


def conv_zoo(seed: int = 0) -> Graph:
    g, x, rng, const, outs = start_conv_zoo("conv_zoo", seed)
    point = outs["ds_block"]
    flat = g.op1("Reshape", x, shape=[1, 4, 80])
    outs["conv1d_dilated_causal"] = g.op1("Conv", flat, const(4, 1, 3), group=4, dilations=[4], pads=[8, 0])
    outs["conv1d_stride"] = g.op1("Conv", flat, const(3, 4, 5), const(3), strides=[3])
    cube = g.op1("Reshape", x, shape=[1, 2, 2, 10, 8])
    outs["conv3d"] = g.op1("Conv", cube, const(3, 2, 2, 3, 2), const(3), strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 1])
    outs["avgpool3d"] = g.op1("AveragePool", cube, kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[1, 1, 0, 0, 1, 1],
                              count_include_pad=True, ceil_mode=True)
    outs["maxpool"] = g.op1("MaxPool", x, kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 1])
    outs["maxpool_ceil_dil"] = g.op1("MaxPool", x, kernel_shape=[3, 2], strides=[2, 3], dilations=[2, 1],
                                     ceil_mode=True)
    outs["avgpool"] = g.op1("AveragePool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    outs["avgpool_with_pad_ceil"] = g.op1("AveragePool", x, kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 0, 1],
                                          count_include_pad=True, ceil_mode=True)
    outs["avgpool1d"] = g.op1("AveragePool", flat, kernel_shape=[4], strides=[4])
    outs["global_avg"] = g.op1("GlobalAveragePool", x)
    outs["global_max"] = g.op1("GlobalMaxPool", point)
    outs["reduce_mean_time"] = g.op1("ReduceMean", x, axes=[2], keepdims=False)
    outs["reduce_max_0_2"] = g.op1("ReduceMax", x, axes=[1, 3], keepdims=True)
    outs["reduce_mean_all"] = g.op1("ReduceMean", x, axes=[], keepdims=False)
    for mode in ("constant", "reflect", "edge", "wrap"):
        outs[f"pad_{mode}"] = g.op1("Pad", x, pads=[0, 1, 2, 1, 0, 0, 1, 3], mode=mode, value=0.25)
    outs["pad_crop"] = g.op1("Pad", x, pads=[0, 0, -2, 1, 0, -1, 0, -3])
    variance = g.add_constant(rng.uniform(0.5, 2.0, 6).astype(np.float32))
    outs["batch_norm"] = g.op1("BatchNormalization", outs["conv_3x3_pad"], const(6), const(6), const(6), variance,
                               epsilon=1e-3)
    outs["softmax_channels"] = g.op1("Softmax", x, axis=1)
    outs["log_softmax_time"] = g.op1("LogSoftmax", x, axis=-2)
    outs["clip_relu6"] = g.op1("Clip", g.op1("Mul", x, g.add_constant(np.array([8.0], np.float32))), min=0.0, max=6.0)
    outs["transpose"] = g.op1("Transpose", x, perm=[2, 0, 3, 1])  # [T, 1, F, C]
    outs["slice_reversed"] = g.op1("Slice", x, starts=[-1, 7, 1], ends=[-100, 0, 100], axes=[1, 2, 3],
                                   steps=[-2, -3, 2])
    outs["expand"] = g.op1("Expand", g.op1("ReduceMean", x, axes=[1], keepdims=True), shape=[2, 1, 4, 10, 8])
    time_mean = g.op1("ReduceMean", x, axes=[3], keepdims=True)  # [1, 4, 10, 1]
    feature_max = g.op1("ReduceMax", x, axes=[2], keepdims=True)  # [1, 4, 1, 8]
    for op in ("Add", "Sub", "Mul", "Max", "Min"):
        outs[f"{op}_computed_broadcast"] = g.op1(op, time_mean, feature_max)
    outs["Div_computed_broadcast"] = g.op1("Div", x, g.op1("Add", g.op1("Abs", time_mean),
                                                            g.add_constant(np.array([1.0], np.float32))))
    # constants smaller than the output stay at their own shape (the strided kernel broadcasts them)
    outs["sub_feature_const"] = g.op1("Sub", x, const(8))  # a [F] normalization over the window
    outs["channel_const_div"] = g.op1("Div", g.add_constant(rng.uniform(0.5, 2.0, (4, 1, 1)).astype(np.float32)), x)
    for name, value in outs.items():
        g.add_output(value, name)
    return verify(g)


@pytest.fixture(scope="module")
def zoo_builds(tmp_path_factory):
    from kwsc.backends.c import emit_c

    root = tmp_path_factory.mktemp("conv_zoo")
    cache = {}

    def get(arch: str, weights_dtype: str = "float32"):
        skip_without_toolchain(arch)
        if (arch, weights_dtype) not in cache:
            graph = conv_zoo()
            outdir = root / f"{arch}-{weights_dtype}"
            emit_c(graph, outdir, arch=arch, build=True, weights_dtype=weights_dtype)
            cache[arch, weights_dtype] = (graph, outdir)
        return cache[arch, weights_dtype]
    return get


def compare_outputs(graph: Graph, got: np.ndarray, want: np.ndarray, label: str, rtol=1e-4, atol=1e-5) -> None:
    start = 0
    for node in graph.output_nodes:
        n = node.inputs[0].type.size
        np.testing.assert_allclose(got[:, start:start + n], want[:, start:start + n], rtol=rtol, atol=atol,
                                   err_msg=f"{label}: output {node.attrs['name']}")
        start += n
    assert start == got.shape[1]


def frames(count: int = 3) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((count, int(np.prod(SHAPE)))).astype(np.float32)


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ["host", "host-ref", "armv7", "aarch64", "cortex-m4"])
def test_conv_zoo_equals_reference(zoo_builds, arch):
    graph, outdir = zoo_builds(arch)
    x = frames()
    want = Interpreter(graph).run(x.reshape((-1,) + SHAPE))
    want = np.concatenate([np.asarray(want[n.attrs["name"]]).reshape(len(x), -1) for n in graph.output_nodes], axis=1)
    compare_outputs(graph, run_harness(outdir, arch, x), want, arch)


@pytest.mark.toolchain
def test_conv_int8_weights_per_output_channel(zoo_builds):
    """int8 weights: the C build equals the reference run on the int8-rounded weights (one scale per output
    channel), and stays near the float model."""
    from kwsc.backends.c.quantize import simulate_int8_weights

    graph, outdir = zoo_builds("host", "int8")
    x = frames()
    rounded = simulate_int8_weights(graph)
    names = [n.attrs["name"] for n in graph.output_nodes]
    want = Interpreter(rounded).run(x.reshape((-1,) + SHAPE))
    want = np.concatenate([np.asarray(want[k]).reshape(len(x), -1) for k in names], axis=1)
    got = run_harness(outdir, "host", x)
    compare_outputs(graph, got, want, "int8")
    assert (outdir / "model.c").read_text().count("static const int8_t w_conv") == 8  # every Conv's weights
    floats = Interpreter(graph).run(x.reshape((-1,) + SHAPE))
    conv = np.asarray(floats["conv_3x3_pad"]).reshape(len(x), -1)
    start = 0
    size = graph.output_nodes[0].inputs[0].type.size
    assert np.abs(got[:, start:start + size] - conv).max() < 0.02 * np.abs(conv).max()


def test_small_constants_are_not_expanded_to_the_window():
    """A [F] constant over a [1, 1, T, F] window is F floats of flash (expanding it at emit time stored T × F)."""
    from kwsc.backends.c.lowering import lower_graph

    g = Graph("normalize")
    x = g.add_input([1, 1, 40, 80])
    mean = g.add_constant(np.linspace(-1, 1, 80, dtype=np.float32))
    scale = g.add_constant(np.full((1, 1, 1, 1), 2.0, np.float32))
    g.add_output(g.op1("Mul", g.op1("Sub", x, mean), scale), "y")
    model = lower_graph(verify(g), "normalize", align=4)
    sizes = sorted(c.values.size for c in model.consts if c.ctype == "float")
    assert sizes == [1, 80], sizes
