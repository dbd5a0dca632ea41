"""The meaning of ops in numpy: the kernel contract, the helpers kernels share, and the one constant evaluator.

Every op's kernel is declared with the op itself (``OpDef.kernel`` in ``op_basic.py``, ``op_dsp.py``, ``op_nn.py``),
so an op's definition and its meaning sit in one place. A kernel is ``kernel(node, inputs, state, nb) -> (outputs,
new_state)``:
  * ``inputs`` are arrays with ``nb`` leading batch dimensions (independent streams, or time in sequence mode),
    except *static* values (constants and what is computed only from constants), which come without them;
    ``lift()`` aligns them. Parameter inputs (``OpDef.param_inputs``: weights, biases, indices) are passed as
    they are.
  * ``state`` maps the op's declared state names to arrays with the batch dimensions in front.
Stateful ops may also have a ``scan`` that runs a whole time sequence at once (faster, same result).

Constant evaluation (``evaluate_static``, ``static_outputs``) runs these kernels and nothing else: constant
folding, the ONNX importer and every backend that needs constant values use it, so folding means exactly what
running the graph means. The reference interpreter (``kwsc.backends.reference``) is the loop over the kernels.

# NOTE: [Reset timing]
# A recurrent node's state is zeroed when its reset trigger goes non-zero → 0, *after* the output of that tick
# is computed (ELL's compiled code; its interpreter zeroes before, which we deliberately do not copy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np

from kwsc.ir.ops import REGISTRY, get_op

if TYPE_CHECKING:
    from kwsc.ir.graph import Graph, Node, Value

__all__ = ["Kernel", "KERNELS", "SCANS", "lift", "align", "sigmoid", "ACTIVATION_FN",
           "evaluate_node", "static_outputs", "evaluate_static"]

Kernel = Callable[["Node", list, dict, int], tuple[list, dict]]


class _ByOp(Mapping):
    """A read-only view ``op name → OpDef.<field>`` over the registry (ops without one are absent)."""

    def __init__(self, field: str) -> None:
        self._field = field

    def __getitem__(self, name: str) -> Callable:
        opdef = REGISTRY.get(name)
        fn = getattr(opdef, self._field) if opdef is not None else None
        if fn is None:
            raise KeyError(name)
        return fn

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, opdef in REGISTRY.items() if getattr(opdef, self._field) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


KERNELS: Mapping[str, Kernel] = _ByOp("kernel")
SCANS: Mapping[str, Callable] = _ByOp("scan")



def lift(x: np.ndarray, nb: int) -> np.ndarray:
    """Give a static value ``nb`` leading batch dimensions of size 1 (a view)."""
    return x.reshape((1,) * nb + x.shape)


def align(xs: list[np.ndarray], nb: int) -> list[np.ndarray]:
    """Pad each array's semantic part to the same rank right after its batch dims (numpy broadcasting)."""
    ranks = [x.ndim - nb for x in xs]
    r = max(ranks)
    return [x.reshape(x.shape[:nb] + (1,) * (r - xr) + x.shape[nb:]) for x, xr in zip(xs, ranks)]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (ELL's split form)."""
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


# The activations recurrent cells and Dense apply (ACTIVATIONS in op_nn.py names them).
ACTIVATION_FN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda x: np.maximum(x, 0).astype(x.dtype, copy=False),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1).astype(x.dtype, copy=False),
    "hard_tanh": lambda x: np.clip(x, -1, 1).astype(x.dtype, copy=False),
    "none": lambda x: x,
}


# ---------------------------------------------------------------------------------------- constant evaluation
def evaluate_node(node: Node, inputs: list[np.ndarray | None], dtype: str | None = None) -> list[np.ndarray]:
    """A stateless node's outputs from batch-free input arrays, shaped as its output values and cast to their
    dtypes (or to ``dtype``: the ONNX importer traces element positions through shape ops in float64)."""
    with np.errstate(all="ignore"):
        outs, _ = get_op(node.op).kernel(node, inputs, {}, 0)
    return [np.asarray(out).astype(dtype or value.dtype, copy=False).reshape(value.shape)
            for value, out in zip(node.outputs, outs)]


def static_outputs(node: Node, static: Mapping[Value, np.ndarray]) -> list[np.ndarray] | None:
    """The node's outputs when they follow from ``static`` values alone, else None.

    That is: a Constant; a pure, stateless op whose inputs are all static (or absent); or an op with the
    ``static`` trait (``Shape``), whose output depends only on its input's type.
    """
    if node.op == "Constant":
        return [node.attrs["value"]]
    opdef = get_op(node.op)
    if opdef.kernel is None or opdef.stateful or "pure" not in opdef.traits:
        return None
    if "static" not in opdef.traits and not all(v is None or v in static for v in node.inputs):
        return None
    return evaluate_node(node, [None if v is None else static.get(v) for v in node.inputs])


def evaluate_static(graph: Graph) -> dict[Value, np.ndarray]:
    """Values computable from constants alone (no input, no state): Constant nodes and pure nodes fed only by them."""
    static: dict[Value, np.ndarray] = {}
    for node in graph.nodes:
        outs = static_outputs(node, static)
        if outs is not None:
            static.update(zip(node.outputs, outs))
    return static
