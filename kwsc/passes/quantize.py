"""``quantize``: Dense/GRU/LSTM/RNN/Conv → their int8 twins QDense/QGRU/QLSTM/QRNN/QConv (issues 18, 15;
NOTE [int8 arithmetic]). Window models and streamed ones (the ``stream`` pass's History rings feed each Conv the
frames it looks back over) are converted alike; the stream pass also streams a quantized window model."""

from __future__ import annotations

from dataclasses import dataclass

from kwsc.errors import PassError
from kwsc.ir.graph import Graph
from kwsc.ir.op_quant import FLOAT_TWIN, INT8_OF, to_int8
from kwsc.passes.manager import PassResult, register_pass

__all__ = ["quantize", "QuantizeOptions"]


@dataclass(frozen=True)
class QuantizeOptions:
    """Options of ``quantize``.

    Attributes:
        keep_float: comma-separated ops (``Dense``) or node names left in float32.
    """

    keep_float: str = ""


@register_pass("quantize", QuantizeOptions)
def quantize(graph: Graph, options: QuantizeOptions) -> PassResult:
    """Turn Dense/GRU/LSTM/RNN/Conv into int8 arithmetic (QDense/QGRU/QLSTM/QRNN/QConv), activations scaled at
    run time.

    Rules:
        1. Each Dense, GRU, LSTM, RNN or Conv whose weights and biases are constant becomes its Q twin with the same
           inputs, attributes and state, ``input_scale = hidden_scale = 0`` (each step's max|x|); calibrated scales
           are set afterwards (``kwsc quantize --calibrate``, ``kwsc.evaluate.calibrate``).
        2. Nothing is done to ops named in ``keep_float`` (by op or node name), to nodes whose weights are computed
           per tick, or to nodes already in int8 (the pass is idempotent).
    """
    keep = {k.strip() for k in options.keep_float.split(",") if k.strip()}
    names = {n.name for n in graph.nodes}
    unknown = {k for k in keep if k not in INT8_OF and k not in FLOAT_TWIN and k not in names}
    if unknown:
        raise PassError(f"quantize: keep_float names no op or node of {graph.name!r}: {', '.join(sorted(unknown))}")
    return PassResult({"nodes_quantized": to_int8(graph, frozenset(keep))})
