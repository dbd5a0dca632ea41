"""A zoo of small keyword-spotter ONNX models the frontend tests build themselves.

PyTorch models (GRU/LSTM, 1–3 layers, with or without explicit state inputs/outputs) exported by the legacy
(TorchScript) and the dynamo exporter at several opsets, plus a tf2onnx-style GRU written with onnx.helper.
Dynamo exports run in a subprocess (``python -m tests.frontends.zoo OUTDIR SPEC...``), which also writes
torch's whole-sequence outputs, so the test process never runs the dynamo exporter itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Spec", "build_module", "export", "torch_reference", "SubprocessExport", "tf2onnx_gru",
           "torch_style_gru", "lstm_with_state", "every_op", "sequence", "TICKS"]

TICKS = 12  # frames per comparison run


@dataclass(frozen=True)
class Spec:
    """One torch model and how it is exported."""

    cell: str = "GRU"
    layers: int = 1
    exporter: str = "legacy"  # or "dynamo"
    opset: int = 17
    state: bool = False  # explicit state inputs/outputs (h_in/h_out) for streaming
    features: int = 10
    hidden: int = 8
    classes: int = 4
    seed: int = 0
    optimize: bool = True  # dynamo only: False keeps the raw translation (more plumbing)
    batch_first: bool = False  # input [batch, seq, F]: the exporters add Transposes around the RNN

    @property
    def name(self) -> str:
        return (f"{self.cell.lower()}{self.layers}_{self.exporter}_op{self.opset}_{'state' if self.state else 'nostate'}"
                f"_f{self.features}h{self.hidden}{'' if self.optimize else '_noopt'}{'_batchfirst' if self.batch_first else ''}")


def build_module(spec: Spec):
    """The torch model for a spec, with seeded weights (eval mode)."""
    import torch

    class KeywordSpotter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, spec.cell)(spec.features, spec.hidden, num_layers=spec.layers,
                                                    batch_first=spec.batch_first)
            self.fc = torch.nn.Linear(spec.hidden, spec.classes)

        def forward(self, x, *state):
            if not state:
                y, _ = self.rnn(x)
                return torch.log_softmax(self.fc(y), -1)
            y, new_state = self.rnn(x, state[0] if len(state) == 1 else state)
            scores = torch.log_softmax(self.fc(y), -1)
            return (scores, new_state) if len(state) == 1 else (scores, *new_state)

    torch.manual_seed(spec.seed)
    module = KeywordSpotter().eval()
    with torch.no_grad():  # larger weights than the default init, so the recurrence matters
        for p in module.rnn.parameters():
            p.mul_(2.0)
    return module


def _example_args(spec: Spec):
    import torch

    x = torch.zeros(1, 1, spec.features)
    if not spec.state:
        return (x,)
    h = torch.zeros(spec.layers, 1, spec.hidden)
    return (x, h) if spec.cell != "LSTM" else (x, h, h.clone())


def export(spec: Spec, path: Path) -> Path:
    """Export a spec with its exporter in this process (the dynamo exporter should run in a subprocess)."""
    import torch

    module = build_module(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.exporter == "dynamo":
            torch.onnx.export(module, _example_args(spec), str(path), dynamo=True, opset_version=spec.opset,
                              optimize=spec.optimize, verbose=False)
        else:
            torch.onnx.export(module, _example_args(spec), str(path), dynamo=False, opset_version=spec.opset)
    return path


def sequence(spec: Spec, ticks: int = TICKS, seed: int = 1) -> np.ndarray:
    """Input frames (ticks, 1, 1, F)."""
    return np.random.default_rng(seed).standard_normal((ticks, 1, 1, spec.features)).astype(np.float32)


def torch_reference(spec: Spec, frames: np.ndarray) -> np.ndarray:
    """The torch model's scores over the whole sequence (ticks·C values): what streaming must reproduce."""
    import torch

    module = build_module(spec)
    with torch.no_grad():
        ticks = frames.shape[0]
        x = torch.from_numpy(frames.reshape((1, ticks, spec.features) if spec.batch_first else (ticks, 1, spec.features)))
        out = module(x, *_example_args(spec)[1:])
        scores = out[0] if isinstance(out, tuple) else out
    return scores.numpy()


class SubprocessExport:
    """Exports specs (and their torch references) in a fresh interpreter, in the background.

    ``start()`` launches it; ``failures()`` waits and returns name → error for the specs that did not export.
    """

    def __init__(self, specs: list[Spec], outdir: Path, timeout: float = 400) -> None:
        self.specs, self.outdir, self.timeout = specs, outdir, timeout
        self._proc: subprocess.Popen | None = None
        self._failures: dict[str, str] | None = None

    def start(self) -> "SubprocessExport":
        args = [sys.executable, "-m", "tests.frontends.zoo", str(self.outdir)] + [json.dumps(asdict(s)) for s in self.specs]
        root = Path(__file__).resolve().parents[2]
        self._log = open(self.outdir / "export.log", "w+")
        self._proc = subprocess.Popen(args, cwd=root, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def failures(self) -> dict[str, str]:
        if self._failures is None:
            if self._proc is None:
                self.start()
            rc = self._proc.wait(timeout=self.timeout)
            if rc != 0:
                self._log.seek(0)
                raise RuntimeError(f"zoo export subprocess failed ({rc}): {self._log.read()[-2000:]}")
            self._failures = json.loads((self.outdir / "failures.json").read_text())
        return self._failures

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None:
            self._log.close()


def tf2onnx_gru(features: int = 10, hidden: int = 8, classes: int = 4, seed: int = 3):
    """A GRU classifier as tf2onnx writes Keras GRUs: linear_before_reset=0, batch-major input transposed
    to time-major, initial_h a graph input, Y_h a graph output, Squeeze + MatMul + Add + Softmax head."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((1, 3 * hidden, features)) * 0.5).astype(np.float32)
    r = (rng.standard_normal((1, 3 * hidden, hidden)) * 0.5).astype(np.float32)
    b = (rng.standard_normal((1, 6 * hidden)) * 0.2).astype(np.float32)
    dense_w = rng.standard_normal((hidden, classes)).astype(np.float32)
    dense_b = rng.standard_normal((classes,)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w, "gru/W"), (r, "gru/R"), (b, "gru/B"), (dense_w, "dense/kernel"), (dense_b, "dense/bias"),
              (np.array([0], np.int64), "const_axes_0"))]
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["gru/transpose"], perm=[1, 0, 2], name="gru/transpose"),
        helper.make_node("GRU", ["gru/transpose", "gru/W", "gru/R", "gru/B", "", "initial_h"],
                         ["gru/Y", "gru/Y_h"], hidden_size=hidden, linear_before_reset=0, direction="forward",
                         activations=["Sigmoid", "Tanh"], name="gru/GRU"),
        helper.make_node("Squeeze", ["gru/Y_h", "const_axes_0"], ["gru/last2"], name="gru/Squeeze"),
        helper.make_node("Identity", ["gru/Y_h"], ["state_out"], name="gru/state_out"),
        helper.make_node("Flatten", ["gru/last2"], ["dense/in"], axis=1, name="dense/Flatten"),
        helper.make_node("MatMul", ["dense/in", "dense/kernel"], ["dense/MatMul"], name="dense/MatMul"),
        helper.make_node("Add", ["dense/MatMul", "dense/bias"], ["dense/BiasAdd"], name="dense/BiasAdd"),
        helper.make_node("Softmax", ["dense/BiasAdd"], ["dense"], axis=-1, name="dense/Softmax"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__1", 1, features]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, "unk__2", hidden])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__3", classes]),
         helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, "unk__4", hidden])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------- small models written with onnx.helper
def _init(name: str, array):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array), name)


def _model(nodes, inputs, outputs, inits, opset=13):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "seed", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _rand(rng, *shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def torch_style_gru():
    """PyTorch's legacy zero-initial-state plumbing (Shape → Gather → Unsqueeze → Concat → ConstantOfShape) around
    a GRU, a symbolic sequence dimension, Squeeze/Reshape and a Gemm (transB, alpha) + LogSoftmax head."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["b"], axis=0, name="gather"),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"], name="unsqueeze"),
        helper.make_node("Concat", ["dirs", "b1", "hidden"], ["shp"], axis=0, name="concat"),
        helper.make_node("ConstantOfShape", ["shp"], ["h0"], value=helper.make_tensor("v", f32, [1], [0.0]),
                         name="zeros"),
        helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["Y", "Y_h"], hidden_size=3, linear_before_reset=1,
                         name="gru"),
        helper.make_node("Squeeze", ["Y", "axes1"], ["y"], name="squeeze"),
        helper.make_node("Reshape", ["y", "flat"], ["y2"], name="reshape"),
        helper.make_node("Gemm", ["y2", "Wfc", "bfc"], ["logits"], transB=1, alpha=0.5, name="gemm"),
        helper.make_node("LogSoftmax", ["logits"], ["scores"], axis=1, name="log_softmax"),
    ]
    inits = [_init("one", np.array(1, np.int64)), _init("axes0", np.array([0], np.int64)),
             _init("axes1", np.array([1], np.int64)), _init("dirs", np.array([1], np.int64)),
             _init("hidden", np.array([3], np.int64)), _init("flat", np.array([-1, 3], np.int64)),
             _init("W", _rand(rng, 1, 9, 4)), _init("R", _rand(rng, 1, 9, 3)), _init("B", _rand(rng, 1, 18)),
             _init("Wfc", _rand(rng, 2, 3)), _init("bfc", _rand(rng, 2))]
    return _model(nodes, [helper.make_tensor_value_info("x", f32, ["T", 1, 4])],
                  [helper.make_tensor_value_info("scores", f32, ["T", 2])], inits, opset=17)


def lstm_with_state():
    """An LSTM with explicit state: h_in sliced, c_in through Identity; h_out a Concat, c_out an Identity."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Slice", ["h_in", "start0", "end1", "axes0"], ["h0"], name="slice_h"),
        helper.make_node("Identity", ["c_in"], ["c0"], name="ident_c"),
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=3,
                         name="lstm"),
        helper.make_node("Squeeze", ["Y", "axes1"], ["y"], name="squeeze"),
        helper.make_node("MatMul", ["y", "Wm"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "bm"], ["a"], name="add"),
        helper.make_node("Softmax", ["a"], ["scores"], axis=-1, name="softmax"),
        helper.make_node("Concat", ["Y_h"], ["h_out"], axis=0, name="concat_h"),
        helper.make_node("Identity", ["Y_c"], ["c_out"], name="ident_c_out"),
    ]
    inits = [_init("start0", np.array([0], np.int64)), _init("end1", np.array([1], np.int64)),
             _init("axes0", np.array([0], np.int64)), _init("axes1", np.array([1], np.int64)),
             _init("W", _rand(rng, 1, 12, 4)), _init("R", _rand(rng, 1, 12, 3)), _init("B", _rand(rng, 1, 24)),
             _init("Wm", _rand(rng, 3, 2)), _init("bm", _rand(rng, 2))]
    vi = helper.make_tensor_value_info
    return _model(nodes, [vi("x", f32, [1, 1, 4]), vi("h_in", f32, [1, 1, 3]), vi("c_in", f32, [1, 1, 3])],
                  [vi("scores", f32, [1, 1, 2]), vi("h_out", f32, [1, 1, 3]), vi("c_out", f32, [1, 1, 3])], inits)


def every_op():
    """One small model using every other supported op (Constant, Reshape, Transpose, Flatten, Slice, Gather,
    Concat, ReduceMean, Expand, arithmetic, activations, Cast, Unsqueeze/Squeeze, RNN, Shape, ConstantOfShape)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Constant", [], ["shape23"], value=numpy_helper.from_array(np.array([2, 3], np.int64)),
                         name="const"),
        helper.make_node("Reshape", ["x", "shape23"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0], name="transpose"),
        helper.make_node("Flatten", ["t"], ["f"], axis=0, name="flatten"),
        helper.make_node("Slice", ["f", "s0", "s4", "ax1"], ["s"], name="slice"),
        helper.make_node("Gather", ["s", "idx"], ["g"], axis=1, name="gather"),
        helper.make_node("Concat", ["g", "s"], ["c"], axis=1, name="concat"),
        helper.make_node("ReduceMean", ["c"], ["m"], axes=[1], keepdims=1, name="reduce_mean"),
        helper.make_node("Expand", ["m", "shape16"], ["e"], name="expand"),
        helper.make_node("Sub", ["x", "e"], ["d"], name="sub"),
        helper.make_node("Mul", ["d", "d"], ["sq"], name="mul"),
        helper.make_node("Div", ["sq", "two"], ["dv"], name="div"),
        helper.make_node("Relu", ["dv"], ["rl"], name="relu"),
        helper.make_node("Sigmoid", ["rl"], ["sg"], name="sigmoid"),
        helper.make_node("Tanh", ["sg"], ["th"], name="tanh"),
        helper.make_node("Cast", ["th"], ["ct"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Unsqueeze", ["ct", "ax0"], ["u"], name="unsqueeze"),
        helper.make_node("RNN", ["u", "W", "R", "B"], ["", "Y_h"], hidden_size=3, name="rnn"),
        helper.make_node("Squeeze", ["Y_h"], ["yh"], name="squeeze"),
        helper.make_node("Softmax", ["yh"], ["out"], axis=-1, name="softmax"),
        helper.make_node("Shape", ["x"], ["xs"], start=1, name="shape"),
        helper.make_node("ConstantOfShape", ["xs"], ["z"], name="cos"),
        helper.make_node("Add", ["z", "ct"], ["out2"], name="add"),
    ]
    inits = [_init("s0", np.array([0], np.int64)), _init("s4", np.array([4], np.int64)),
             _init("ax1", np.array([1], np.int64)), _init("ax0", np.array([0], np.int64)),
             _init("idx", np.array([0, 2], np.int64)), _init("shape16", np.array([1, 6], np.int64)),
             _init("two", np.array(2.0, np.float32)), _init("W", _rand(rng, 1, 3, 6)), _init("R", _rand(rng, 1, 3, 3)),
             _init("B", _rand(rng, 1, 6))]
    vi = helper.make_tensor_value_info
    return _model(nodes, [vi("x", f32, [1, 6])], [vi("out", f32, [3]), vi("out2", f32, [1, 6])], inits, opset=15)


def _main(argv: list[str]) -> int:
    outdir = Path(argv[0])
    failures: dict[str, str] = {}
    for text in argv[1:]:
        spec = Spec(**json.loads(text))
        try:
            export(spec, outdir / f"{spec.name}.onnx")
        except Exception as exc:  # the exporter's limits are reported per model (the test skips with the reason)
            failures[spec.name] = f"{type(exc).__name__}: {str(exc)[:500]}"
            continue
        np.save(outdir / f"{spec.name}.npy", torch_reference(spec, sequence(spec)))  # a bug here fails the run
    (outdir / "failures.json").write_text(json.dumps(failures))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
