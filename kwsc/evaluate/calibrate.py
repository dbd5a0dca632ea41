"""Calibrated activation scales for int8 layers (``kwsc quantize --calibrate data.npz``).

The float model runs over a dataset's feature rows (every row one stream, all streams at once in the reference
interpreter); for each Dense/GRU/LSTM/RNN the largest |x| of its input vector and (cells) of its hidden state over
all steps gives ``scale = peak / 127`` (NOTE [int8 arithmetic] in ``kwsc/ir/quantized.py``), measured on the vector the int8
layer rounds: with column equalization, ``x ⊙ col`` of the weight matrix it multiplies. A Conv's is the largest |x|
of its whole input tensor per call (with equalization, each input channel times its ``ch``). A percentile below
100 ignores that share of the steps' peaks (values beyond clip to ±127).
"""

from __future__ import annotations

import numpy as np

from kwsc.errors import InputError
from kwsc.ir.graph import Graph
from kwsc.ir.op_quant import FLOAT_TWIN, INT8_OF

__all__ = ["activation_scales", "apply_scales", "dataset_streams"]


def dataset_streams(path, graph: Graph, max_rows: int = 0) -> np.ndarray:
    """A ``kwsc make-dataset`` .npz's feature rows as streams ``(T, N, input size)`` for ``graph``."""
    try:
        with np.load(path) as data:
            features = np.asarray(data["features"], np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a kwsc dataset .npz with a 'features' array ({exc})") from None
    size = graph.inputs[0].type.size
    if features.ndim != 2 or features.shape[1] % size:
        raise InputError(f"{path}: rows of {features.shape[1:]} values are not frames of the model's input "
                         f"({size} values)")
    if max_rows:
        features = features[:max_rows]
    return features.reshape(len(features), -1, size).transpose(1, 0, 2).copy()


def activation_scales(graph: Graph, streams: np.ndarray, percentile: float = 100.0,
                      equalize: bool = True) -> dict[str, dict[str, float]]:
    """``{node name: {"input_scale": s, "hidden_scale": s}}`` for every Dense/GRU/LSTM/RNN/Conv (or int8 twin) of
    ``graph``, from the float computation over ``streams`` ``(T, N, input size)``; ``equalize``: the scales of the
    column-equalized vectors (the int8 ops' default)."""
    from kwsc.backends.reference import Interpreter
    from kwsc.ir.op_quant import to_float
    from kwsc.ir.quantized import column_scales, conv_channel_scales
    from kwsc.ir.semantics import evaluate_static

    if not 0 < percentile <= 100:
        raise InputError(f"--percentile {percentile}: must be in (0, 100]")
    probe = graph.copy()
    to_float(probe)
    taps: dict[str, tuple[str, str]] = {}
    static = evaluate_static(probe)
    cols: dict[str, np.ndarray] = {}
    for node in probe.nodes:
        if node.op not in INT8_OF:
            continue
        single = node.op in ("Dense", "Conv")  # no hidden state
        if node.op == "Conv":
            weights = node.inputs[1]
            if equalize and weights in static:  # per input channel, over [C, *spatial]
                ch = conv_channel_scales(static[weights], node.attrs["group"])
                cols[f"calibrate_in_{node.name}"] = ch.reshape((-1,) + (1,) * (len(weights.shape) - 2))
        else:
            for tap, index in (("in", 1 if node.op == "Dense" else 2), ("h", 3)):
                value = node.inputs[index] if index < len(node.inputs) else None
                if equalize and value is not None and value in static and (tap == "in" or not single):
                    cols[f"calibrate_{tap}_{node.name}"] = column_scales(static[value])
        names = (f"calibrate_in_{node.name}", f"calibrate_h_{node.name}" if not single else "")
        probe.add_output(node.inputs[0], name=names[0])
        if names[1]:
            probe.add_output(node.outputs[0], name=names[1])
        taps[node.name] = names
    if not taps:
        return {}
    out = Interpreter(probe, batch_shape=(streams.shape[1],)).run(streams)

    def scale(name: str) -> float:
        values = np.asarray(out[name], np.float32)
        if name in cols:
            values = (values * cols[name]).astype(np.float32)
        peaks = np.abs(values.reshape(values.shape[0] * values.shape[1], -1)).max(axis=1)
        return float(np.float32(np.percentile(peaks, percentile) / 127.0))

    return {node: {"input_scale": scale(x), **({"hidden_scale": scale(h)} if h else {})}
            for node, (x, h) in taps.items()}


def apply_scales(graph: Graph, scales: dict[str, dict[str, float]], which: str = "input,hidden") -> int:
    """Set the int8 nodes' ``input_scale``/``hidden_scale`` (``which``: comma-separated ``input``, ``hidden``) from
    ``activation_scales``; returns how many attributes were set."""
    keys = {f"{k.strip()}_scale" for k in which.split(",") if k.strip()}
    unknown = keys - {"input_scale", "hidden_scale"}
    if unknown:
        raise InputError(f"--scales: {', '.join(sorted(k.removesuffix('_scale') for k in unknown))}: choose input, hidden")
    count = 0
    for node in graph.nodes:
        if node.op in FLOAT_TWIN and node.name in scales:
            for key, value in scales[node.name].items():
                if key in keys and value > 0:
                    node.attrs[key] = value
                    count += 1
    return count
