"""ONNX → IR: keyword-spotter models as PyTorch (both exporters), tf2onnx and Keras write them.

``import_onnx(path_or_model)`` returns a verified IR graph. Supported ops: GRU, LSTM, RNN (forward, batch 1,
one frame per tick), Gemm, MatMul, Conv (1-D, 2-D …, groups, auto_pad), MaxPool, AveragePool, the global
pools, Pad, BatchNormalization, Clip, elementwise math, activations, (Log)Softmax, ReduceMean/Max and the shape ops
exporters add (Shape → Gather → Unsqueeze → Concat → ConstantOfShape/Expand for zero initial states, Reshape,
Squeeze, Slice …). The frontend only translates; the fold/dce/shapes passes clean up. Explicit state
inputs/outputs (h_in → initial_h, Y_h → h_out) become the recurrent node's own state; the pairing is kept in
``node.meta["state_io"]``.

Errors: a missing file is an InputError, undecodable bytes a FormatError, an op kwsc cannot translate one
UnsupportedOpError listing them all, anything else wrong with the model a FrontendError naming the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kwsc.errors import FrontendError, KwscError
from kwsc.frontends.onnx import _conv, _ops, _rnn  # noqa: F401  (translator registration)
from kwsc.frontends.onnx._door import check_declared_outputs, check_model
from kwsc.frontends.onnx._isolate import isolated
from kwsc.frontends.onnx._importer import PRODUCES, TRANSLATORS, Importer, default_opset, upgrade_opset
from kwsc.frontends.onnx._load import load_model_proto
from kwsc.ir.graph import Graph
from kwsc.ir.op_quant import FLOAT_TWIN
from kwsc.ir.validate import quiet_numpy, validate
from kwsc.ir.verify import verify

__all__ = ["import_onnx", "supported_ops", "imported_ops", "NOT_IMPORTED"]

_ops.register_one_to_one()  # after the explicit translators, which win

_FEATURIZER = "featurizers come from `kwsc make-featurizer` or an .ell file; kwsc reads classifiers from ONNX"
# IR ops no ONNX model becomes, and why.
NOT_IMPORTED = {
    **{op: _FEATURIZER for op in ("Buffer", "Window", "FFT", "MelFilterBank", "LinearFilterBank", "DCT", "IIR")},
    "VAD": "ONNX has no voice-activity detector; the add_vad pass adds one",
    "Detector": "ONNX has no keyword detector; the add_detector pass adds one",
    "Square": "ONNX has no Square op (x·x imports as Mul)",
    "History": "the stream pass makes it (a window model's ring buffers); no ONNX op is one",
    **{op: "kwsc's int8 ops come from the quantize pass, not from ONNX" for op in FLOAT_TWIN},
}


def supported_ops() -> list[str]:
    """The ONNX op types the importer translates, sorted."""
    return sorted(TRANSLATORS)


def imported_ops() -> frozenset[str]:
    """The IR ops an imported model may contain: graph inputs, outputs, constants and what translators create."""
    return frozenset({"Input", "Output", "Constant"}).union(*PRODUCES.values())


def import_onnx(source: Any, dims: dict[str, int] | None = None) -> Graph:
    """Import an ONNX model into the IR.

    Args:
        source: a path to a ``.onnx`` file, the serialized bytes, or an ``onnx.ModelProto``.
        dims: lengths for named symbolic input dims (``{"T": 98}``: a window model's time axis); the others
            are read as 1 (one frame per tick).

    Returns:
        The verified graph: one tick consumes one frame of each graph input ([1, 1, F] for a PyTorch
        streaming export) or one whole window (a convolutional model's fixed [1, 1, T, F]). Dead plumbing is
        left in place for the passes. Opsets 7–12 are upgraded to 13 with ``onnx.version_converter`` first
        (one warning line on the log); newer than 21 is refused.

    Raises:
        InputError: missing file. FormatError: not an ONNX protobuf. UnsupportedOpError: ops kwsc cannot
        translate. FrontendError: anything else (dynamic shapes, bidirectional RNNs, malformed nodes …).
    """
    import onnx

    where = "ONNX model" if isinstance(source, (onnx.ModelProto, bytes, bytearray)) else str(Path(source))
    model = load_model_proto(source)
    try:
        with quiet_numpy():
            # ONNX's C++ checks can abort the process on a hostile model: they run in a forked child
            isolated(where, "ONNX's checker", check_model, model, where, default_opset(model, where),
                     frozenset(TRANSLATORS))
            model, original_opset = upgrade_opset(model, where)
            importer = Importer(model, where, dims)
            graph = importer.run()
            _rnn.resolve_states(importer)
            verify(graph)
            check_declared_outputs(model, graph, where)
            validate(graph, where)
    except KwscError:
        raise
    except Exception as exc:  # a bug or an unforeseen malformation: say where, keep the cause chained
        raise FrontendError(f"{where}: internal error while importing: {type(exc).__name__}: {exc}") from exc
    graph.metadata.update({key.key: key.value for key in model.metadata_props})
    graph.metadata["source_format"] = "onnx"
    if importer.symbolic:
        graph.metadata["symbolic_dims"] = importer.symbolic
    graph.metadata["onnx_opset"] = importer.opset
    if original_opset != importer.opset:
        graph.metadata["onnx_opset_converted_from"] = original_opset
    if model.producer_name:
        graph.metadata["onnx_producer"] = f"{model.producer_name} {model.producer_version}".strip()
    return graph
