"""What kwsc's ONNX reader (``frontends/onnx``) and writer (``backends/onnx.py``) must agree on about ONNX itself.

The recurrent cells: ONNX stacks the gate blocks of its weights in its own order, named here with the IR's gate
names (``OpDef.gates``), and names its activations in CamelCase.
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.ops import get_op

__all__ = ["ONNX_GATE_ORDER", "ONNX_ACTIVATIONS", "gate_rows"]

# ONNX's order of the gate blocks, in the IR's gate names: LSTM is (i, o, f, c) in ONNX, (i, f, g, o) in the IR.
ONNX_GATE_ORDER = {"GRU": ("z", "r", "n"), "LSTM": ("i", "o", "f", "g"), "RNN": ("h",)}
# IR activation → ONNX activation name (ONNX compares them without case).
ONNX_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "hard_sigmoid": "HardSigmoid"}


def gate_rows(op: str, hidden: int, to_onnx: bool) -> np.ndarray:
    """Row indices that reorder gate-stacked weights (or biases) from the IR's order to ONNX's, or back."""
    ir, onnx = get_op(op).gates, ONNX_GATE_ORDER[op]
    source, target = (ir, onnx) if to_onnx else (onnx, ir)
    return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in (source.index(g) for g in target)])
