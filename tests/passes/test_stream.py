"""The stream pass: a window model becomes a per-tick model whose output at every tick is the window model's on
the last T frames (frames before the first tick counting as zeros).

    window model:  x[1,1,T,F] ─Conv(k=3, stride 2)─Relu─Conv(k=2, dil 2)─GlobalAveragePool─Dense─▶
    per-tick:      x[1,1,1,F] ─History(3)─Conv─Relu─History(2, step 2·2)─Conv─History(T', step 2, delay)─
                   GlobalAveragePool─Dense─▶

Checked on hand-made graphs and on small torch exports of cnn-trad-fpool3, DS-CNN, TC-ResNet, BC-ResNet and a
CRNN (both exporters: TorchScript for all, dynamo for two), then compiled to C (host for several, armv7, aarch64
and Cortex-M4 under qemu for one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import PassError
from kwsc.ir import Graph, verify
from kwsc.passes import run_passes
from kwsc.passes.stream import guess_time_axis
from tests.passes import stream_models

CLEANUP = ["shapes", "fold", "dce", "fold_batchnorm", "fold", "dce"]


def windows_of(frames: np.ndarray, axis: int, length: int) -> np.ndarray:
    """The window model's input at each tick: the last ``length`` frames along ``axis``, zeros before tick 0.
    ``frames``: (ticks, *per-tick shape)."""
    zeros_shape = list(frames.shape[1:])
    zeros_shape[axis] = length - 1
    stream = np.concatenate([np.zeros(zeros_shape, frames.dtype)] + list(frames), axis=axis)
    return np.stack([np.take(stream, range(t, t + length), axis=axis) for t in range(len(frames))])


def per_tick_frames(shape, axis: int, ticks: int, seed: int = 1) -> np.ndarray:
    one = [1 if i == axis else d for i, d in enumerate(shape)]
    return np.random.default_rng(seed).standard_normal([ticks] + one).astype(np.float32)


def assert_streams_like_window(window: Graph, streamed: Graph, axis: int, ticks: int, atol: float = 1e-5):
    length = window.inputs[0].shape[axis]
    frames = per_tick_frames(window.inputs[0].shape, axis, ticks)
    want = Interpreter(window).run(windows_of(frames, axis, length))  # pure: one window per tick
    got = Interpreter(streamed).run(frames)
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-4, err_msg="streamed ≠ window model")
    return frames, got


# ---------------------------------------------------------------------------------------- History
def test_history_outputs_old_frames_with_step_delay_and_fill():
    g = Graph()
    x = g.add_input([1, 2, 1, 1])
    fill = g.add_constant(np.array([-1.0, -2.0], np.float32).reshape(1, 2, 1, 1))
    g.add_output(g.op1("History", x, fill, axis=2, frames=3, step=2, delay=1))
    interp = Interpreter(verify(g))
    outs = [interp.step(np.array([t, 10 * t], np.float32).reshape(1, 2, 1, 1) + 1) for t in range(7)]
    # tick t outputs frames of ages 5, 3, 1: the inputs of ticks t-5, t-3, t-1, or the fill before tick 0
    assert outs[0][0, :, :, 0].tolist() == [[-1, -1, -1], [-2, -2, -2]]
    assert outs[4][0, 0, :, 0].tolist() == [-1, 2, 4]
    assert outs[6][0, :, :, 0].tolist() == [[2, 4, 6], [11, 31, 51]]
    interp.reset()
    assert interp.step(np.ones((1, 2, 1, 1), np.float32))[0, 0, :, 0].tolist() == [-1, -1, -1]


def _strided_model(pads=(0, 0)) -> Graph:
    """[1, 2, 12, 5] → Conv(3×3, stride 2 on time) → Relu → Conv(2×1, dilation 2) → GlobalAveragePool → Dense."""
    rng = np.random.default_rng(0)
    g = Graph("strided")
    x = g.add_input([1, 2, 12, 5])

    def const(*shape):
        return g.add_constant(rng.standard_normal(shape).astype(np.float32) * 0.5)

    y = g.op1("Relu", g.op1("Conv", x, const(3, 2, 3, 3), const(3), strides=[2, 1],
                             pads=[pads[0], 1, pads[1], 1]))
    y = g.op1("Conv", y, const(4, 3, 2, 1), const(4), dilations=[2, 1])
    y = g.op1("Reshape", g.op1("GlobalAveragePool", y), shape=[1, 4])
    g.add_output(g.op1("Dense", y, const(3, 4), const(3)))
    return verify(g)


def test_strides_dilations_and_fills_stream_exactly():
    window = _strided_model()
    streamed, report = run_passes(window, ["stream"])
    result = report[0][1]
    assert result.changed["history_buffers"] == 3 and result.changed["ops_on_window"] == 1
    histories = {n.inputs[0].producer.op: n.attrs for n in streamed.find("History")}
    assert histories["Input"]["frames"] == 3
    assert histories["Relu"]["step"] == 4  # dilation 2 × the stride 2 before it
    assert any("GlobalAveragePool" in note and "whole time axis" in note for note in result.notes)
    assert any(n.inputs[1] is not None for n in streamed.find("History") if len(n.inputs) > 1)  # relu(bias) fills
    assert_streams_like_window(window, streamed, axis=2, ticks=30)


def test_time_padding_runs_on_the_whole_window_or_is_refused():
    window = _strided_model(pads=(1, 1))
    streamed, report = run_passes(window, ["stream"])
    assert any("pads the time axis (1 before, 1 after)" in note for note in report[0][1].notes)
    assert_streams_like_window(window, streamed, axis=2, ticks=16)
    with pytest.raises(PassError, match=r"node conv \(Conv\) pads the time axis \(1 before, 1 after\).*recompute"):
        run_passes(window, ["stream"], {"stream": {"recompute": False}})


def test_refuses_a_per_tick_model_and_a_model_without_time_axis():
    from tests.backends.c.conftest import recurrent_classifier

    with pytest.raises(PassError, match=r"node gru0 \(GRU\) keeps state between calls"):
        run_passes(recurrent_classifier("GRU", layers=1, hidden=4), ["stream"])
    g = Graph()
    g.add_output(g.op1("Relu", g.add_input([1, 1, 1, 8])))
    with pytest.raises(PassError, match="already a per-tick model"):
        run_passes(g, ["stream"])


def test_time_axis_guesses():
    assert guess_time_axis((1, 1, 98, 40)) == 2
    assert guess_time_axis((1, 40, 98)) == 2
    assert guess_time_axis((98, 1, 40)) == 0


# ---------------------------------------------------------------------------------------- torch exports
@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every model exported by TorchScript here; the dynamo exports run in a background process meanwhile."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("stream_models")
    job = stream_models.export_dynamo_background(root, list(DYNAMO))
    done = {}

    def get(name: str, exporter: str = "legacy") -> Path:
        path = root / f"{name}_{exporter}.onnx"
        if exporter == "dynamo":
            if job.poll() is None:
                job.wait(timeout=600)
            if job.returncode != 0:
                pytest.fail(f"dynamo export failed: {job.stdout.read()[-2000:]}")
        elif name not in done:
            done[name] = stream_models.export(name, path)
        return path
    yield get
    if job.poll() is None:
        job.kill()


DYNAMO = ("ds_cnn_valid_time", "crnn")


def _imported(path: Path) -> Graph:
    from kwsc.frontends.onnx import import_onnx

    return run_passes(import_onnx(path), CLEANUP)[0]


def _check_export(path: Path, name: str) -> Graph:
    """Reference = onnxruntime within 1e-4 on a random window; the streamed model = the window model."""
    import onnxruntime as ort

    window = _imported(path)
    shape, _ = stream_models.MODELS[name]
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(Interpreter(window).step(x), want, atol=1e-4, rtol=1e-4)
    return window


@pytest.mark.parametrize("name", list(stream_models.MODELS))
def test_torch_models_stream_exactly(exports, name):
    window = _check_export(exports(name), name)
    axis = guess_time_axis(window.inputs[0].shape)
    streamed, report = run_passes(window, ["stream"], {"stream": {"rnn": "window"}})
    notes = "\n".join(report[0][1].notes)
    if name in ("cnn_trad_fpool3", "ds_cnn_valid_time"):  # no time padding: every Conv streams frame by frame
        assert "pads the time axis" not in notes and report[0][1].changed["ops_per_frame"] >= 4
    ticks = window.inputs[0].shape[axis] + 6
    assert_streams_like_window(window, streamed, axis, ticks, atol=1e-4)


@pytest.mark.parametrize("name", DYNAMO)
def test_dynamo_exports_stream_exactly(exports, name):
    window = _check_export(exports(name, "dynamo"), name)
    streamed, _ = run_passes(window, ["stream"], {"stream": {"rnn": "window"}})
    assert_streams_like_window(window, streamed, 2, window.inputs[0].shape[2] + 4, atol=1e-4)


def test_rnn_step_mode_is_the_rnn_over_every_frame(tmp_path):
    """rnn=step: the GRU runs once per tick from its carried state; at tick T-1 after a reset it has seen exactly
    the first window, later it has seen more than the window model does."""
    torch = pytest.importorskip("torch")

    class Gru(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.fc = torch.nn.GRU(6, 5), torch.nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(self.gru(x)[0][-1])

    torch.manual_seed(0)
    path = tmp_path / "gru.onnx"
    torch.onnx.export(Gru().eval(), (torch.zeros(8, 1, 6),), str(path), dynamo=False)
    window = _imported(path)
    assert [n.op for n in window.nodes if "Sequence" in n.op] == ["GRUSequence"]
    streamed, report = run_passes(window, ["stream"])
    assert report[0][1].changed["rnn_steps"] == 1 and streamed.find("GRU")
    frames = per_tick_frames((8, 1, 6), 0, 12)
    got = Interpreter(streamed).run(frames)
    want = Interpreter(window).run(windows_of(frames, 0, 8))
    np.testing.assert_allclose(got[7], want[7], atol=1e-5)
    assert np.abs(got[11] - want[11]).max() > 1e-3


# ---------------------------------------------------------------------------------------- C
@pytest.mark.toolchain
@pytest.mark.parametrize("name,arch,rnn", [("cnn_trad_fpool3", "host", "step"), ("tc_resnet", "host", "step"),
                                           ("crnn", "host", "step"), ("crnn", "host", "window"),
                                           ("ds_cnn_valid_time", "host", "step"), ("ds_cnn_valid_time", "armv7", "step"),
                                           ("ds_cnn_valid_time", "aarch64", "step"),
                                           ("ds_cnn_valid_time", "cortex-m4", "step")])
def test_streamed_models_compile_to_c(exports, tmp_path, name, arch, rnn):
    """Compiled C = the reference interpreter on the streamed model, within 1e-4, over T + 6 ticks (rnn=window:
    the GRU reruns over its window in C too, and the last step is a one-index Gather)."""
    from kwsc.backends.c import emit_c, run_harness
    from tests.backends.c.conftest import skip_without_toolchain

    skip_without_toolchain(arch)
    window = _imported(exports(name))
    streamed, _ = run_passes(window, ["stream"], {"stream": {"rnn": rnn}})
    axis = guess_time_axis(window.inputs[0].shape)
    frames = per_tick_frames(window.inputs[0].shape, axis, window.inputs[0].shape[axis] + 6)
    emit_c(streamed, tmp_path / "c", arch=arch, build=True)
    got = run_harness(tmp_path / "c", arch, frames.reshape(len(frames), -1))
    want = Interpreter(streamed).run(frames)
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4, rtol=1e-4)


def test_all_zero_history_fills_take_no_flash():
    """A History whose fill is all zeros (a stem after a normalization folded into it) stores no fill table: the
    kernel's default is zeros; a non-zero fill is stored as it is."""
    from kwsc.backends.c.lowering import lower_graph
    from kwsc.ir import Graph, verify

    g = Graph("fills")
    x = g.add_input([1, 1, 1, 8])
    zero = g.op1("History", x, g.add_constant(np.zeros(8, np.float32)), axis=2, frames=3)
    ones = g.op1("History", x, g.add_constant(np.full(8, -0.5, np.float32)), axis=2, frames=2)
    g.add_output(zero, "a")
    g.add_output(ones, "b")
    model = lower_graph(verify(g), "fills", align=4)
    fills = [c.values for c in model.consts if "fill" in c.name]
    assert len(fills) == 1 and np.all(fills[0] == -0.5), fills


# ---------------------------------------------------------------------------------------- CLI
def test_cli_prints_what_it_did_and_refuses_in_one_line(tmp_path):
    from kwsc.ir import save

    model = tmp_path / "window.kwsc"
    save(_strided_model(pads=(1, 1)), model)

    def kwsc(*args):
        return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                              timeout=120)

    done = kwsc("transform", model, "--passes", "stream", "-o", tmp_path / "tick.kwsc")
    assert done.returncode == 0, done.stderr
    assert "stream: history_buffers=" in done.stdout and "state_bytes=" in done.stdout
    assert "History " in done.stdout and "multiply-adds per tick" in done.stdout
    refused = kwsc("transform", model, "--passes", "stream", "--recompute", "0", "-o", tmp_path / "no.kwsc")
    assert refused.returncode == 2 and not (tmp_path / "no.kwsc").exists()
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "node conv (Conv) pads the time axis" in lines[0], refused.stderr
