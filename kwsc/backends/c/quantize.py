"""What ``--weights-dtype int8`` builds, for the reference interpreter: ``simulate_int8_weights(graph)``.

Dense/GRU/LSTM/RNN/Conv become their int8-arithmetic twins (QDense … QConv in ``kwsc/ir/op_quant.py``; the
arithmetic is ``kwsc/ir/quantized.py``'s, which the C kernels reproduce bit for bit in the integer parts), and the
weights of any other weighted op are rounded to int8 per row with float activations, as its C kernel computes.
``quantize_rows`` is what the C backend stores (int8 values plus one float scale per row).
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.graph import Graph
from kwsc.ir.op_quant import FLOAT_TWIN, to_int8
from kwsc.ir.ops import get_op
from kwsc.ir.quantized import dequantize_rows, quantize_rows
from kwsc.ir.semantics import evaluate_static

__all__ = ["quantize_rows", "dequantize_rows", "simulate_int8_weights", "pack_row_pairs", "pack_row_octets"]


def pack_row_pairs(q: np.ndarray) -> np.ndarray:
    """int8 rows ``[rows, cols]`` in ``kwsc_qmat`` layout 1 (the Cortex-M4's SMLAD kernel; NOTE [Row pairs in one
    SMLAD] in runtime/src/opt/qdot.c), as little-endian int32 words.

    Rows are padded with zero rows to a multiple of 4 and columns with zeros to a multiple of 4. For each group of
    four rows and each group of four columns ``c`` there are four words: rows (0, 1) columns (c, c+1), rows (0, 1)
    columns (c+2, c+3), rows (2, 3) columns (c, c+1), rows (2, 3) columns (c+2, c+3); a word holds two int16
    lanes (column c in the low lane), each ``w[r0, j] + 256 · w[r1, j]`` (|·| ≤ 32,639). Groups follow each other,
    columns within a group.
    """
    q = np.asarray(q, np.int8)
    rows, cols = q.shape
    rp, cp = -(-rows // 4) * 4, -(-cols // 4) * 4
    w = np.zeros((rp, cp), np.int32)
    w[:rows, :cols] = q
    lanes = w[0::2] + 256 * w[1::2]                       # [rp/2, cp]: row pairs, int16 values
    lanes = lanes.reshape(rp // 4, 2, cp // 4, 2, 2)      # group, pair, column group, column pair, lane
    lanes = lanes.transpose(0, 2, 1, 3, 4)                # group, column group, pair, column pair, lane
    return np.ascontiguousarray(lanes).astype("<i2").view("<i4").reshape(-1).astype(np.int32)


def pack_row_octets(q: np.ndarray) -> np.ndarray:
    """int8 rows ``[rows, cols]`` in ``kwsc_qmat`` layout 2 (x86 AVX2/VNNI; NOTE [Row octets] in
    runtime/src/opt/qdot.c): the same int8 values, reordered so that one 32-byte vector holds eight rows × four
    columns and one broadcast of four x bytes meets all eight rows.

    Rows are padded with zero rows to a multiple of 8 and columns with zeros to a multiple of 4. Row group ``g``
    (rows 8g … 8g+7) is ``ceil(cols / 4)`` blocks of 32 bytes, one per column group ``k``; byte ``4 r + c`` of
    block ``k`` is ``w[8g + r, 4k + c]``. Groups follow each other.
    """
    q = np.asarray(q, np.int8)
    rows, cols = q.shape
    rp, cp = -(-rows // 8) * 8, -(-cols // 4) * 4
    w = np.zeros((rp, cp), np.int8)
    w[:rows, :cols] = q
    blocks = w.reshape(rp // 8, 8, cp // 4, 4).transpose(0, 2, 1, 3)  # group, column group, row, column
    return np.ascontiguousarray(blocks).reshape(-1)


def simulate_int8_weights(graph: Graph) -> Graph:
    """A copy of ``graph`` that the interpreter runs exactly as the int8 C build computes.

    Dense/GRU/LSTM/RNN/Conv with constant weights become QDense/QGRU/QLSTM/QRNN/QConv (integer arithmetic,
    run-time activation scales); other ops' weight constants (one row per leading index) are replaced by their
    int8-rounded values (up to float summation order). Values shared with other consumers
    are left unchanged for them; the input graph is untouched.
    """
    out = graph.copy()
    to_int8(out)
    static = evaluate_static(out)
    for node in out.nodes:
        if node.op in FLOAT_TWIN:
            continue  # int8 arithmetic of its own
        for index in sorted(get_op(node.op).inputs_with_role("weight")):
            if index >= len(node.inputs) or node.inputs[index] is None:
                continue
            value = node.inputs[index]
            if value not in static:
                continue
            w = np.asarray(static[value], dtype=np.float32)
            matrix = w.reshape(w.shape[0], -1) if w.ndim >= 2 else w.reshape(1, -1)
            rounded = dequantize_rows(*quantize_rows(matrix)).reshape(w.shape)
            const = out.add_constant(rounded, name=f"{value.producer.name}_int8", before=node)
            node.set_input(index, const)
    for node in reversed(out.nodes):  # drop what only fed the float weights (consumers come later in order)
        if node.op == "Constant" and node.outputs and not any(v.uses for v in node.outputs):
            out.remove_node(node)
    return out
