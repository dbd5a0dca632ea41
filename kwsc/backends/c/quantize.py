"""int8 weights: per-row symmetric quantization of Dense and recurrent weight matrices (activations stay float).

``quantize_rows`` is what the C backend stores (int8 values plus one float scale per row); ``simulate_int8_weights``
applies the same rounding to a graph's constants so the reference interpreter (and the evaluation step) can
measure the accuracy cost without compiling anything.
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.graph import Graph
from kwsc.ir.ops import get_op
from kwsc.ir.semantics import evaluate_static

__all__ = ["quantize_rows", "dequantize_rows", "simulate_int8_weights"]


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``w ≈ q · scale[row]`` with ``scale = max|row| / 127`` (1 for an all-zero row).

    Returns:
        ``(q, scale)``: int8 ``[rows, cols]`` and float32 ``[rows]``.
    """
    w = np.asarray(matrix, dtype=np.float32)
    w2 = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
    peak = np.abs(w2).max(axis=1)
    scale = np.where(peak > 0, peak / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w2 / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 weights int8 values stand for."""
    q2 = q.reshape(q.shape[0], -1).astype(np.float32)
    return (q2 * scale[:, None]).astype(np.float32).reshape(q.shape)


def simulate_int8_weights(graph: Graph) -> Graph:
    """A copy of ``graph`` whose Dense/GRU/LSTM/RNN/Conv weight constants are replaced by their int8-rounded values.

    Runs in the reference interpreter exactly like the int8 C build computes (up to float summation order).
    Weights computed from constants (e.g. a Reshape of one) are replaced too; values shared with other consumers
    are left unchanged for them.
    """
    out = graph.copy()
    static = evaluate_static(out)
    for node in out.nodes:
        for index in sorted(get_op(node.op).inputs_with_role("weight")):  # the weight matrices int8 mode stores
            if index >= len(node.inputs) or node.inputs[index] is None:
                continue
            value = node.inputs[index]
            if value not in static:
                continue
            w = np.asarray(static[value], dtype=np.float32)
            # one row per output (a Conv's [M, C/group, *K] weights: one row per output channel)
            matrix = w.reshape(w.shape[0], -1) if w.ndim >= 2 else w.reshape(1, -1)
            rounded = dequantize_rows(*quantize_rows(matrix)).reshape(w.shape)
            const = out.add_constant(rounded, name=f"{value.producer.name}_int8", before=node)
            node.set_input(index, const)
    for node in reversed(out.nodes):  # drop what only fed the float weights (consumers come later in order)
        if node.op not in ("Input", "Output") and node.outputs and not any(v.uses for v in node.outputs) \
                and node.op == "Constant":
            out.remove_node(node)
    return out
