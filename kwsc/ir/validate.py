"""validate(graph): the checks at the door, the same for every format (ONNX, ``.ell``, ``.kwsc``, featurizer options).

``verify`` checks the IR's invariants (registered ops, arity, attribute kinds and ranges from the registry, every
input produced earlier, stored types equal to inferred ones); every frontend runs it. ``validate`` adds what only a
file from outside can get wrong: sizes within ``kwsc.limits`` (rank, axis length, elements per tensor and per
model, node count), no empty float tensors, and constants that are finite numbers of a sane magnitude. Frontends
call it after ``verify``; passes do not (a folded ``log(0)`` is the model's business, not a malformed file).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import numpy as np

from kwsc.errors import VerifyError
from kwsc.ir.graph import Graph
from kwsc.limits import MAX_ABS_CONSTANT, MAX_DIM, MAX_ELEMENTS, MAX_GRAPH_ELEMENTS, MAX_NODES, MAX_RANK

__all__ = ["validate", "quiet_numpy"]


@contextlib.contextmanager
def quiet_numpy() -> Iterator[None]:
    """No numpy warnings printed while a file is read: overflow in a cast and the like become values that
    ``validate`` refuses in one line, instead of warnings before the error line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            yield


def _check_shape(where: str, shape: tuple[int, ...], dtype: str) -> None:
    if len(shape) > MAX_RANK:
        raise VerifyError(f"{where}: rank {len(shape)} exceeds the limit {MAX_RANK}")
    if any(d > MAX_DIM for d in shape):
        raise VerifyError(f"{where}: shape {list(shape)} has an axis longer than the limit {MAX_DIM:,}")
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size > MAX_ELEMENTS:
        raise VerifyError(f"{where}: shape {list(shape)} has {size:,} elements, more than the limit {MAX_ELEMENTS:,}")
    if size == 0 and dtype not in ("int64", "int32"):
        raise VerifyError(f"{where}: shape {list(shape)} is empty (no elements)")


def _check_constant(where: str, value: np.ndarray) -> None:
    if value.dtype.kind != "f" or value.size == 0:
        return
    with quiet_numpy():
        finite = np.isfinite(value)
        if not finite.all():
            index = np.unravel_index(int(np.argmin(finite)), value.shape) if value.shape else ()
            raise VerifyError(f"{where}: value {float(value[index])} at {list(map(int, index))} is not finite "
                              "(NaN/Inf weights are refused)")
        biggest = float(np.max(np.abs(value)))
    if biggest > MAX_ABS_CONSTANT:
        raise VerifyError(f"{where}: |value| {biggest:g} exceeds the limit {MAX_ABS_CONSTANT:g} for weights and "
                          "constants")


def validate(graph: Graph, where: str = "") -> Graph:
    """Check a verified graph against ``kwsc.limits``; return it. Raises VerifyError naming the node and field."""
    prefix = f"{where}: " if where else ""
    if len(graph.nodes) > MAX_NODES:
        raise VerifyError(f"{prefix}{len(graph.nodes):,} nodes exceed the limit {MAX_NODES:,}")
    constants = 0
    for node in graph.nodes:
        label = f"{prefix}node {node.name} ({node.op})"
        for out in node.outputs:
            _check_shape(f"{label} output {out.index}", out.shape, out.dtype)
        if node.op == "Constant":
            value = node.attrs["value"]
            constants += value.size
            _check_constant(f"{label} value", value)
    if constants > MAX_GRAPH_ELEMENTS:
        raise VerifyError(f"{prefix}constants hold {constants:,} elements, more than the limit {MAX_GRAPH_ELEMENTS:,}")
    return graph
