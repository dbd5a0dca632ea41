"""Model runners: one interface over the reference interpreter (IR, ONNX, ELL models) and compiled C models.

Evaluation, streaming detection and live listening only need: ``input_size``, ``output_size``, ``step(frame)``,
``run(frames)`` (many ticks, state carried), ``reset()``, and the model's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kwsc.errors import InputError
from kwsc.ir import Graph
from kwsc.ir.metadata import FeaturizerRecord

__all__ = ["ModelRunner", "GraphRunner", "CompiledRunner", "PassThroughRunner", "open_runner", "load_graph",
           "drop_chunks", "sample_rate_of"]


class ModelRunner:
    """Common interface; subclasses implement ``step`` and ``reset`` (``run`` defaults to a loop)."""

    input_size: int
    output_size: int
    metadata: dict[str, Any]
    graph: Graph | None = None
    description: str = ""

    def step(self, frame: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Many ticks (T, input_size) → (T, output_size), state carried in and left updated."""
        return np.stack([self.step(f) for f in frames]) if len(frames) else np.zeros((0, self.output_size), np.float32)


class GraphRunner(ModelRunner):
    """Runs an IR graph with the numpy reference interpreter."""

    def __init__(self, graph: Graph, description: str = "") -> None:
        from kwsc.backends.reference import Interpreter

        if len(graph.input_nodes) != 1 or len(graph.output_nodes) < 1:
            raise InputError(f"model {graph.name!r}: expected one input and at least one output, got "
                             f"{len(graph.input_nodes)} inputs")
        self.graph = graph
        self._interp = Interpreter(graph)
        self.input_size = graph.inputs[0].type.size
        self.output_size = graph.outputs[0].type.size
        self.metadata = dict(graph.metadata)
        self.description = description or f"reference interpreter ({graph.name})"
        self._multi = len(graph.output_nodes) > 1
        self._first = graph.output_nodes[0].attrs["name"]

    def _first_output(self, out):
        return out[self._first] if self._multi else out

    def step(self, frame: np.ndarray) -> np.ndarray:
        x = np.asarray(frame, np.float32).reshape(self.graph.inputs[0].shape)
        return np.asarray(self._first_output(self._interp.step(x))).reshape(-1)

    def run(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, np.float32)
        if len(frames) == 0:
            return np.zeros((0, self.output_size), np.float32)
        out = self._first_output(self._interp.run(frames.reshape((len(frames),) + self.graph.inputs[0].shape)))
        return np.asarray(out).reshape(len(frames), -1)

    def run_batch(self, frames: np.ndarray) -> np.ndarray:
        """Independent streams from the initial state: (T, B, input) → (T, B, output). Does not touch ``self``'s state."""
        from kwsc.backends.reference import Interpreter

        t, b = frames.shape[:2]
        interp = Interpreter(self.graph, batch_shape=(b,))
        out = interp.run(np.asarray(frames, np.float32).reshape((t, b) + self.graph.inputs[0].shape))
        return np.asarray(self._first_output(out)).reshape(t, b, -1)

    def reset(self) -> None:
        self._interp.reset()


class CompiledRunner(ModelRunner):
    """Runs a generated-C model built for the host (a directory made by ``kwsc emit --target c --build`` or
    ``kwsc wrap``); ``library`` picks one module's ``lib<name>.so`` in it."""

    def __init__(self, directory: Path, library: Path | None = None) -> None:
        from kwsc.backends.c import CompiledModel, load

        self._model = load(directory) if library is None else CompiledModel(library.resolve(), library.name[3:-3])
        self.input_size = int(self._model.input_size)
        self.output_size = int(self._model.output_size)
        self.metadata = {}
        for key in ("sample_rate", "input_size", "output_size", "window_size", "drop_frames", "auto_scale", "labels",
                    "categories", "model_kind", "vad_training", "stream_training"):
            value = self._model.metadata(key)
            if value:
                self.metadata[key] = value
        self.description = f"compiled C ({directory if library is None else library})"

    def step(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict(np.asarray(frame, np.float32).reshape(-1))).reshape(-1)

    def run(self, frames: np.ndarray) -> np.ndarray:
        return self._model.run(np.asarray(frames, np.float32).reshape(len(frames), -1))

    def reset(self) -> None:
        self._model.reset()


class PassThroughRunner(ModelRunner):
    """Frames in = frames out. Stands in for the featurizer when the classifier takes audio itself (a fused model)
    or when the data are features already (datasets)."""

    def __init__(self, size: int, metadata: dict | None = None, drop_chunks: bool = True) -> None:
        self.input_size = self.output_size = int(size)
        self.metadata = dict(metadata or {})
        if not drop_chunks:
            self.metadata["drop_frames"] = 0  # nothing dropped at the start of a stream
        self.description = "pass-through"

    def step(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(frame, np.float32).reshape(-1)

    def run(self, frames: np.ndarray) -> np.ndarray:
        return np.asarray(frames, np.float32).reshape(len(frames), -1)

    def reset(self) -> None:
        pass


def load_graph(path: str | Path) -> Graph:
    """Load a model file (.kwsc/.onnx/.ell) into the IR, cleaned for running (an ONNX file's shape plumbing folded)."""
    from kwsc.models import clean_graph, load_model

    graph = load_model(path)
    if Path(path).suffix.lower() == ".onnx":
        graph, _ = clean_graph(graph)
    return graph


def open_runner(path: str | Path, what: str = "model") -> ModelRunner:
    """A runner for a model file, a compiled C model folder, or ELL's ``folder/module`` path of a compiled module
    (its host library when built, else the model it was built from; ``runner.description`` says which)."""
    from kwsc.models import resolve_model_path

    ref = resolve_model_path(path, what)
    if ref.library is not None:
        return CompiledRunner(ref.library.parent, ref.library)
    if ref.file is None:
        raise InputError(f"{path}: compiled module {ref.module} has no host library (lib{ref.module}.so) and no model "
                         "beside it; build it for the host (`kwsc wrap`, or `kwsc emit --arch host --build`)")
    runner = GraphRunner(load_graph(ref.file), description=f"reference interpreter ({ref.file.name})")
    if ref.module is not None:
        runner.description = f"reference interpreter ({ref.file}: the C module {ref.module} is not built here)"
    return runner


def drop_chunks(featurizer: ModelRunner) -> int:
    """Chunks ELL's AudioTransform throws away at the start of every stream: int(window_size / input_size)."""
    record = FeaturizerRecord.from_metadata(featurizer.metadata)
    if record.drop_frames is not None:
        return record.drop_frames
    if record.window_size is not None:
        return record.window_size // featurizer.input_size
    if featurizer.graph is not None and featurizer.graph.find("Buffer"):
        return featurizer.graph.find("Buffer")[0].attrs["window_size"] // featurizer.input_size
    return 1


def sample_rate_of(featurizer: ModelRunner) -> int:
    """The audio sample rate a featurizer (or fused model) expects, from its featurizer record (default 16 kHz)."""
    return FeaturizerRecord.from_metadata(featurizer.metadata).sample_rate or 16000
