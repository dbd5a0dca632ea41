"""int8 convolutions (issue 15 item 1 on issue 18's route): QConv means its definition (NOTE [int8 arithmetic] in
kwsc/ir/quantized.py: per-output-channel int8 rows, input channels equalized, the input tensor rounded with one scale
per call, exact int32 window sums, float32 dequantization), the quantize pass converts window and streamed conv
models alike, the stream pass streams a quantized window model, and calibration measures the tensor QConv rounds."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.evaluate.calibrate import activation_scales, apply_scales
from kwsc.ir import Graph, verify
from kwsc.passes import run_passes
from tests.passes.test_stream import _strided_model, assert_streams_like_window, per_tick_frames, windows_of


def _round(v: np.ndarray) -> np.ndarray:
    """Half away from zero, clamped to ±127 (the note's rounding), as int64."""
    return np.clip(np.trunc(v + np.where(v >= 0, np.float32(0.5), np.float32(-0.5))), -127, 127).astype(np.int64)


def qconv_by_hand(x, w, b, group, strides, dilations, pads, equalize, fixed_scale=0.0):
    """QConv of one [1, C, H, W] tensor, written out with loops (independent of the interpreter's einsum)."""
    filters, per_group, kh, kw = w.shape
    channels = x.shape[1]
    per_out = filters // group
    ch = np.ones(channels, np.float32)
    if equalize:
        for c in range(channels):
            g, j = divmod(c, per_group)
            peak = np.abs(w[g * per_out:(g + 1) * per_out, j]).max()
            ch[c] = peak if peak > 0 else 1
    xe = (x * ch.reshape(1, -1, 1, 1)).astype(np.float32)
    w_eq = np.empty_like(w)
    for m in range(filters):
        g = m // per_out
        w_eq[m] = (w[m] / ch[g * per_group:(g + 1) * per_group].reshape(-1, 1, 1)).astype(np.float32)
    rows = w_eq.reshape(filters, -1)
    peak = np.abs(rows).max(axis=1)
    w_scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    q_w = np.clip(np.rint(rows / w_scale[:, None]), -127, 127).astype(np.int64).reshape(w.shape)
    if fixed_scale:
        s = np.float32(fixed_scale)
        q_x = _round(xe * (np.float32(1) / s))
    else:
        top = np.abs(xe).max()
        s = np.float32(top / np.float32(127))
        q_x = _round(xe * (np.float32(127) / top)) if top > 0 else np.zeros(xe.shape, np.int64)
    height, width = x.shape[2:]
    out_h = (height + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    out_w = (width + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((1, filters, out_h, out_w), np.float32)
    for m in range(filters):
        g = m // per_out
        for oh in range(out_h):
            for ow in range(out_w):
                acc = 0
                for j in range(per_group):
                    for a in range(kh):
                        for c in range(kw):
                            ih = oh * strides[0] - pads[0] + a * dilations[0]
                            iw = ow * strides[1] - pads[1] + c * dilations[1]
                            if 0 <= ih < height and 0 <= iw < width:
                                acc += int(q_w[m, j, a, c]) * int(q_x[0, g * per_group + j, ih, iw])
                assert abs(acc) < 2 ** 31
                v = np.float32(acc) * np.float32(w_scale[m] * s)
                y[0, m, oh, ow] = v + b[m] if b is not None else v
    return y


def _conv_graph(w, b, attrs, in_shape, op="QConv") -> Graph:
    g = Graph("qconv")
    x = g.add_input(list(in_shape))
    inputs = [x, g.add_constant(w, name="w")] + ([g.add_constant(b, name="b")] if b is not None else [])
    g.add_output(g.add(op, inputs, attrs, name="conv").output, name="y")
    return verify(g)


@pytest.mark.parametrize("equalize", [True, False])
@pytest.mark.parametrize("fixed_scale", [0.0, 0.02])
def test_qconv_means_its_definition_bit_for_bit(equalize, fixed_scale):
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.3, (6, 2, 3, 2)).astype(np.float32)
    w[:, 1] *= 8  # one input channel with large weights: equalization matters
    w[4] = 0  # an all-zero filter: scale 1
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    attrs = {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1], "equalize": equalize,
             "input_scale": fixed_scale}
    graph = _conv_graph(w, b, attrs, (1, 4, 9, 7))
    interp = Interpreter(graph)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 1, (1, 4, 9, 7)).astype(np.float32)
        if seed == 2:
            x[:] = 0  # scale 0: every product 0, the bias alone
        want = qconv_by_hand(x, w, b, 2, [2, 1], [1, 2], [1, 0, 2, 1], equalize, fixed_scale)
        np.testing.assert_array_equal(interp.step(x), want)
    # the batch form (many calls at once) rounds each call with its own scale
    xs = np.random.default_rng(9).normal(0, 1, (3, 1, 4, 9, 7)) * np.array([1, 5, 0.1]).reshape(3, 1, 1, 1, 1)
    xs = xs.astype(np.float32)
    got = Interpreter(graph).run(xs)
    for t in range(3):
        np.testing.assert_array_equal(got[t], qconv_by_hand(xs[t], w, b, 2, [2, 1], [1, 2], [1, 0, 2, 1], equalize,
                                                            fixed_scale))


def test_qconv_depthwise_and_1d_are_near_float():
    rng = np.random.default_rng(3)
    for w, attrs, shape in ((rng.normal(0, 0.4, (8, 1, 3, 3)).astype(np.float32), {"group": 8, "pads": [1, 1, 1, 1]},
                             (1, 8, 6, 5)),
                            (rng.normal(0, 0.2, (12, 10, 5)).astype(np.float32), {"strides": [2], "dilations": [2]},
                             (1, 10, 30))):
        b = rng.normal(0, 0.1, w.shape[0]).astype(np.float32)
        x = rng.normal(0, 1, (4,) + shape).astype(np.float32)
        want = Interpreter(_conv_graph(w, b, attrs, shape, op="Conv")).run(x)
        got = Interpreter(_conv_graph(w, b, attrs, shape)).run(x)
        assert got.shape == want.shape
        err = np.abs(got - want).max() / np.abs(want).max()
        assert 1e-5 < err < 0.02, err  # int8: not the float result, but within a couple of steps of 1/127


def test_a_float16_bias_is_the_half_values_and_only_where_they_fit():
    rng = np.random.default_rng(4)
    w = rng.normal(0, 0.3, (4, 3, 2)).astype(np.float32)
    b = np.array([0.1, -1e-7, 3.3333333, 1000.1], np.float32)  # none of them a half exactly; one subnormal
    x = rng.normal(0, 1, (1, 3, 6)).astype(np.float32)
    plain = Interpreter(_conv_graph(w, None, {}, (1, 3, 6))).step(x)
    full = Interpreter(_conv_graph(w, b, {}, (1, 3, 6))).step(x)
    half = Interpreter(_conv_graph(w, b, {"bias_float16": True}, (1, 3, 6))).step(x)
    np.testing.assert_array_equal(full, plain + b.reshape(4, 1))
    np.testing.assert_array_equal(half, plain + b.astype(np.float16).astype(np.float32).reshape(4, 1))
    assert (half != full).any()
    q, _ = run_passes(_conv_graph(w, b, {}, (1, 3, 6), op="Conv"), ["quantize"])
    assert q.find("QConv")[0].attrs["bias_float16"]
    b[3] = 70000.0  # beyond float16's range: the bias stays float32
    q, _ = run_passes(_conv_graph(w, b, {}, (1, 3, 6), op="Conv"), ["quantize"])
    assert not q.find("QConv")[0].attrs["bias_float16"]


def test_the_pass_equalizes_only_channels_that_stand_out():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (6, 5, 3)).astype(np.float32)
    plain = _conv_graph(w.copy(), None, {}, (1, 5, 9), op="Conv")
    w[:, 2] *= 20  # a folded normalization: one feature's weights 20× the others'
    folded = _conv_graph(w, None, {}, (1, 5, 9), op="Conv")
    assert [run_passes(g, ["quantize"])[0].find("QConv")[0].attrs["equalize"] for g in (plain, folded)] == [False, True]


def _set_scales(graph: Graph, scale: float) -> None:
    for node in graph.nodes:
        if node.op in ("QConv", "QDense"):
            node.attrs["input_scale"] = scale


def test_quantize_pass_converts_window_and_streamed_models_alike():
    window = _strided_model()
    q_window, report = run_passes(window, ["quantize"])
    assert report[0][1].changed == {"nodes_quantized": 3}
    assert [n.op for n in q_window.nodes if n.op.startswith("Q")] == ["QConv", "QConv", "QDense"]
    streamed, _ = run_passes(window, ["stream"])
    q_streamed, report = run_passes(streamed, ["quantize"])
    assert report[0][1].changed == {"nodes_quantized": 3}
    # the stream pass streams a quantized window model the same way (History rings before the QConvs); with
    # calibrated (fixed) scales rounding is per element, and the streamed int8 model is the int8 window model
    _set_scales(q_window, 0.03)
    _set_scales(q_streamed, 0.03)
    streamed_q, report = run_passes(q_window, ["stream"])
    assert report[0][1].changed["history_buffers"] == 3
    assert [n.op for n in streamed_q.nodes] == [n.op for n in q_streamed.nodes]
    frames, got = assert_streams_like_window(q_window, streamed_q, axis=2, ticks=20, atol=0)
    # quantizing the streamed model: the same from the first tick whose window holds no frame from before the
    # reset — the History fills (a value on an all-zero window) were computed by the float model there
    late = Interpreter(q_streamed).run(frames)
    np.testing.assert_array_equal(late[12:], got[12:])
    assert np.abs(late[:12] - got[:12]).max() < 0.1
    # with run-time scales each call rounds what it sees (the streamed Conv sees its kernel's frames, the window
    # model the whole window): close, not equal
    q_window_rt, _ = run_passes(window, ["quantize"])
    q_streamed_rt, _ = run_passes(streamed, ["quantize"])
    want = Interpreter(q_window_rt).run(windows_of(frames, 2, window.inputs[0].shape[2]))
    got_rt = Interpreter(q_streamed_rt).run(frames)
    float_out = Interpreter(window).run(windows_of(frames, 2, window.inputs[0].shape[2]))
    scale = np.abs(float_out).max()
    assert np.abs(got_rt - want).max() < 0.05 * scale and np.abs(want - float_out).max() < 0.05 * scale


def test_calibration_measures_the_equalized_input_tensor():
    window = _strided_model()
    streamed, _ = run_passes(window, ["stream"])
    q, _ = run_passes(streamed, ["quantize"])
    frames = per_tick_frames(window.inputs[0].shape, 2, 12)  # (T, 1, 2, 1, 5)
    streams = frames.reshape(12, 1, -1)
    scales = activation_scales(q, streams)
    first = q.find("QConv")[0]
    from kwsc.ir.quantized import conv_channel_scales

    # the first QConv reads a History of 3 frames: its peak over the calls is the peak of x·ch over all frames
    ch = conv_channel_scales(first.inputs[1].producer.attrs["value"], 1)
    peak = np.abs(frames * ch.reshape(1, 1, 2, 1, 1)).max()
    assert scales[first.name]["input_scale"] == pytest.approx(peak / 127, rel=1e-6)
    assert set(scales[first.name]) == {"input_scale"}
    assert apply_scales(q, scales) == 3 and first.attrs["input_scale"] > 0
    out = Interpreter(q).run(frames)
    assert np.isfinite(out).all()
