"""ONNX export of a window model (DSCNN, TCResNet, BCResNet, CRNN): one call reads one whole window.

``<stem>.onnx``: input ``input`` in the model's layout — ``[1, 1, T, F]`` for the 2-D models, ``[1, F, T]`` for
TC-ResNet — with a fixed T (the training window) or, with ``symbolic_time``, a time axis named ``T`` (kwsc imports
it with ``--dim T=40``); output ``output`` [1, K] log-probabilities. The normalization is folded into the first
convolution where that is exact (TC-ResNet's stem pads nothing), else two elementwise ops with constants (subtract
the mean, divide by std; exact also where a convolution pads along frequency);
BatchNormalization is folded into the convolutions by the exporter. After writing, onnxruntime must equal PyTorch on
random windows within ``tolerance``. Metadata props: producer, architecture, hidden_units, window, layout,
receptive_field, stateful=false, plus what the caller adds (categories, featurizer parameters).
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kwsc.errors import BackendError
from kwsc.fileio import atomic_write

__all__ = ["export_window_onnx", "window_onnx_bytes", "verify_window_onnx"]


class _WindowForm(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.window_forward(x)


def window_onnx_bytes(model, opset: int = 17, symbolic_time: bool = False, metadata: dict | None = None,
                      dynamo: bool = False) -> bytes:
    """The ONNX bytes of ``model``'s window form (eval mode, CPU), with metadata props."""
    import onnx

    clone = copy.deepcopy(model).cpu().float().eval()
    folded = clone.fold_normalization()
    example = torch.randn(*clone.input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and RNN-batch warnings
        if dynamo:
            program = torch.onnx.export(_WindowForm(clone), (example,), dynamo=True, input_names=["input"],
                                        output_names=["output"], opset_version=max(opset, 18),
                                        dynamic_shapes=({2: torch.export.Dim("T", min=clone.receptive_field)},)
                                        if symbolic_time else None)
            program.save(buffer) if hasattr(program, "save") else buffer.write(program.model_proto.SerializeToString())
        else:
            torch.onnx.export(_WindowForm(clone), (example,), buffer, dynamo=False, input_names=["input"],
                              output_names=["output"], opset_version=opset, do_constant_folding=True,
                              dynamic_axes={"input": {2: "T"}} if symbolic_time else None)
    proto = onnx.load_from_string(buffer.getvalue())
    meta = {"producer": "kwsc train", "architecture": clone.architecture, "hidden_units": str(clone.hidden_units),
            "window": str(clone.window), "layout": clone.layout, "receptive_field": str(clone.receptive_field),
            "stateful": "false", "normalization": "folded into the first Conv" if folded else "Sub, Div",
            **(metadata or {})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def verify_window_onnx(model, onnx_bytes: bytes, windows: int = 3, tolerance: float = 1e-4, seed: int = 0,
                       frames: int | None = None) -> float:
    """Max |onnxruntime − PyTorch| over ``windows`` random windows (``frames`` long; default the model's window).

    Raises:
        BackendError: when a difference exceeds ``tolerance``.
    """
    import onnxruntime as ort

    reference = copy.deepcopy(model).cpu().float().eval()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    shape = list(reference.input_shape)
    shape[2] = int(frames or reference.window)
    mean, std = reference.mean.numpy(), reference.std.numpy()
    if reference.layout == "NFT":
        mean, std = mean[:, None], std[:, None]
    worst = 0.0
    with torch.no_grad():
        for i in range(windows):
            x = (rng.standard_normal(shape) * std + mean).astype(np.float32)
            got = session.run(None, {"input": x})[0]
            want = reference.window_forward(torch.from_numpy(x)).numpy()
            diff = float(np.max(np.abs(got - want)))
            worst = max(worst, diff)
            if not diff <= tolerance:
                raise BackendError(f"ONNX export check failed: onnxruntime differs from PyTorch by {diff:.3g} on "
                                   f"window {i} (tolerance {tolerance:g})")
    return worst


def export_window_onnx(model, outdir: str | Path, stem: str, opset: int = 17, metadata: dict | None = None,
                       symbolic_time: bool = False, verify_windows: int = 3, tolerance: float = 1e-4) -> dict:
    """Write ``<stem>.onnx`` into ``outdir`` and verify it; {"onnx": path, "max_difference": worst}."""
    try:
        data = window_onnx_bytes(model, opset, symbolic_time, metadata)
    except Exception as exc:
        raise BackendError(f"ONNX export of {stem} failed: {type(exc).__name__}: {exc}") from None
    worst = verify_window_onnx(model, data, verify_windows, tolerance) if verify_windows else 0.0
    path = Path(outdir) / f"{stem}.onnx"
    atomic_write(path, data)
    return {"onnx": path, "max_difference": worst}
