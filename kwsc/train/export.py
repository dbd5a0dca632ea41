"""ONNX export for streaming (one frame [1,1,F] per call) in two forms, verified with onnxruntime.

* ``<stem>.onnx`` — the seed's form: input ``input`` [1,1,F] → output ``output`` [1,K] (log-probabilities); no
  state inputs, the runtime keeps the recurrent state (as ELL does).
* ``<stem>_stateful.onnx`` — the same network with explicit state: inputs ``input``, ``h_in_0`` [1,1,H0]
  (``c_in_0`` for LSTM), ``h_in_1``…; outputs ``output``, ``h_out_0`` (``c_out_0``)…, so onnxruntime can run it tick
  by tick by feeding each call's state outputs into the next call.

Both are seq-first (no Transpose) with normalization folded into the first layer's input weights, so the graph is
the seed's shape and needs nothing downstream. The legacy TorchScript exporter is used (``dynamo=False``): the
dynamo exporter fixes dynamic axes after the first export in a process. After writing, onnxruntime runs the stateful
form on random frames with the state carried and must match PyTorch within ``tolerance``.
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
from kwsc.train.models import KeywordSpotter, streaming_copy

__all__ = ["export_onnx", "state_names", "verify_stateful_onnx", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


def state_names(model: KeywordSpotter, direction: str) -> list[str]:
    """``h_in_0`` (``c_in_0``), ``h_in_1``… for direction "in"; ``h_out_…`` for "out"."""
    kinds = ("h", "c") if model.architecture == "LSTM" else ("h",)
    return [f"{kind}_{direction}_{i}" for i in range(model.num_layers) for kind in kinds]


class _SeedForm(nn.Module):
    def __init__(self, model: KeywordSpotter):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]


class _StatefulForm(nn.Module):
    def __init__(self, model: KeywordSpotter):
        super().__init__()
        self.model = model

    def forward(self, x, *flat):
        lstm = self.model.architecture == "LSTM"
        states = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)] if lstm else list(flat)
        out, new = self.model(x, states)
        outputs = [out]
        for s in new:
            outputs.extend(s if lstm else (s,))
        return tuple(outputs)


def _zero_states(model: KeywordSpotter) -> list[torch.Tensor]:
    per_layer = 2 if model.architecture == "LSTM" else 1
    return [torch.zeros(1, 1, size) for size in model.sizes for _ in range(per_layer)]


def _export(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str], opset: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and RNN-batch warnings
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=input_names, output_names=output_names,
                          opset_version=opset, do_constant_folding=True)
    return buffer.getvalue()


def _with_metadata(data: bytes, metadata: dict) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def verify_stateful_onnx(model: KeywordSpotter, onnx_bytes: bytes, frames: int = 50, tolerance: float = 1e-5,
                         seed: int = 0) -> float:
    """Run ``frames`` random frames through onnxruntime (state fed back) and the PyTorch model; max |difference|.

    Raises:
        BackendError: when any output or state differs by more than ``tolerance``.
    """
    import onnxruntime as ort

    reference = copy.deepcopy(model).cpu().float().eval()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    mean, std = reference.mean.numpy(), reference.std.numpy()
    names_in, names_out = state_names(reference, "in"), state_names(reference, "out")
    onnx_states = [s.numpy() for s in _zero_states(reference)]
    torch_states = None
    worst = 0.0
    with torch.no_grad():
        for t in range(frames):
            frame = (rng.standard_normal(reference.num_features) * std + mean).astype(np.float32)[None, None, :]
            results = session.run(None, {"input": frame, **dict(zip(names_in, onnx_states))})
            expected, torch_states = reference(torch.from_numpy(frame), torch_states)
            flat = [s for st in torch_states for s in (st if isinstance(st, tuple) else (st,))]
            for name, got, want in zip(["output"] + names_out, results, [expected] + flat):
                diff = float(np.max(np.abs(got - want.numpy())))
                worst = max(worst, diff)
                if not diff <= tolerance:
                    raise BackendError(f"ONNX export check failed: onnxruntime {name!r} differs from PyTorch by "
                                       f"{diff:.3g} at frame {t} (tolerance {tolerance:g})")
            onnx_states = results[1:]
    return worst


def export_onnx(model: KeywordSpotter, outdir: str | Path, stem: str, opset: int = DEFAULT_OPSET,
                metadata: dict | None = None, verify_frames: int = 50, tolerance: float = 1e-5) -> dict:
    """Write ``<stem>.onnx`` and ``<stem>_stateful.onnx`` into ``outdir`` and verify them.

    Returns:
        {"onnx": path, "stateful_onnx": path, "max_difference": worst |onnxruntime − PyTorch|}.
    """
    import onnxruntime as ort

    outdir = Path(outdir)
    stream = streaming_copy(model)
    frame = torch.randn(1, 1, stream.num_features)
    meta = {"producer": "kwsc train", "architecture": stream.architecture, "num_layers": str(stream.num_layers),
            "hidden_units": str(stream.hidden_units), "state_sizes": stream.sizes, **(metadata or {})}
    try:
        seed_bytes = _with_metadata(_export(_SeedForm(stream), (frame,), ["input"], ["output"], opset),
                                    {**meta, "stateful": "false"})
        names_in, names_out = state_names(stream, "in"), state_names(stream, "out")
        stateful_bytes = _with_metadata(
            _export(_StatefulForm(stream), (frame, *_zero_states(stream)), ["input", *names_in],
                    ["output", *names_out], opset), {**meta, "stateful": "true"})
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"ONNX export of {stem} failed: {type(exc).__name__}: {exc}") from None
    worst = verify_stateful_onnx(model, stateful_bytes, verify_frames, tolerance) if verify_frames else 0.0
    # the seed's form starts from zero state on every call: one frame must match a fresh PyTorch step
    with torch.no_grad():
        reference = copy.deepcopy(model).cpu().float().eval()(frame)[0].numpy()
    got = ort.InferenceSession(seed_bytes, providers=["CPUExecutionProvider"]).run(None, {"input": frame.numpy()})[0]
    if not float(np.max(np.abs(got - reference))) <= tolerance:
        raise BackendError(f"ONNX export check failed: {stem}.onnx differs from PyTorch by "
                           f"{float(np.max(np.abs(got - reference))):.3g}")
    paths = {"onnx": outdir / f"{stem}.onnx", "stateful_onnx": outdir / f"{stem}_stateful.onnx"}
    atomic_write(paths["onnx"], seed_bytes)
    atomic_write(paths["stateful_onnx"], stateful_bytes)
    return {**paths, "max_difference": worst}
