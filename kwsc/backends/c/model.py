"""The lowered model: plain data the templates render (buffers, constants, state fields, steps and their arguments).

Nothing here knows an op: the lowering (``lowering.py``) fills these from the kernel table and the registry, and
the templates turn them into C without asking which op a step is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kwsc.errors import BackendError

__all__ = ["float_literal", "CNamespace", "Buf", "ConstArray", "StateField", "Arg", "StructDecl", "Trigger", "Step",
           "LoweredModel"]

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "s context".split())


def float_literal(x: float) -> str:
    """A C float literal that reads back as exactly this float32 (shortest form, so output stays diff-friendly)."""
    text = str(np.float32(x))
    if text in ("inf", "-inf", "nan"):
        raise BackendError(f"non-finite constant {text} cannot be emitted as C")
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


class CNamespace:
    """Valid, unique C identifiers from arbitrary names (deterministic: same names in, same identifiers out)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def name(self, base: str, prefix: str = "") -> str:
        ident = re.sub(r"[^A-Za-z0-9_]", "_", prefix + base) or "x"
        if ident[0].isdigit():
            ident = "n" + ident
        if ident in _C_KEYWORDS:
            ident += "_"
        candidate, k = ident, 1
        while candidate in self._used:
            candidate = f"{ident}_{k}"
            k += 1
        self._used.add(candidate)
        return candidate


@dataclass(frozen=True)
class Buf:
    """Where a value lives: the arena (offset in floats), a Predict argument, a state field or a constant."""

    kind: str  # "arena" | "input" | "state" | "const"
    dtype: str  # "float32" | "int32"
    size: int
    offset: int = 0
    name: str = ""


@dataclass
class ConstArray:
    """A ``static const`` array in flash. kind: ``weights`` (learned parameters) or ``table`` (derived tables)."""

    name: str
    ctype: str
    values: np.ndarray
    kind: str

    @property
    def size(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class StateField:
    """A member of the model's state struct, made from the op's declared state (``OpDef.state``).

    Attributes:
        name: the C member name.
        ctype: its element type (or the runtime struct type).
        size: elements of an array; None for a scalar or a struct.
        nbytes: bytes it takes (a struct laid out by C's alignment rules).
        initial: the value ``Reset`` restores (C text) for arrays and scalars.
        reset: the runtime function that resets a struct (``reset(&s->name)``); None otherwise.
    """

    name: str
    ctype: str
    size: int | None
    nbytes: int = 4
    initial: str = "0"
    reset: str | None = None


@dataclass(frozen=True)
class Arg:
    """One C expression the templates render: a buffer, a state field (or its address), a matrix, or text."""

    kind: str  # "buf" | "state" | "mat" | "text"
    value: Any
    address: bool = False


@dataclass(frozen=True)
class StructDecl:
    """A ``static const`` struct: type, name, initializer lines (of Args) or one Arg that is the whole
    initializer (a ``kwsc_mat``), and whether the items go on their own lines."""

    ctype: str
    name: str
    lines: list[list[Arg]]
    block: bool = False
    whole: Arg | None = None


@dataclass(frozen=True)
class Trigger:
    """ELL's reset trigger after the call: the previous-trigger field, the trigger input, the fields it zeroes."""

    prev: str
    input: Buf
    as_int: bool
    fields: list[StateField]


@dataclass
class Step:
    """One node as a runtime call: its buffers, its arguments, the struct it declares, its trigger."""

    node: str
    op: str
    family: str
    function: str
    ins: list[Buf | None]
    outs: list[Buf]
    scratch: Buf | None
    p: dict[str, Any]
    args: list[Arg] = field(default_factory=list)
    decl: StructDecl | None = None
    trigger: Trigger | None = None


@dataclass
class LoweredModel:
    """Everything the templates need to render the model."""

    name: str
    steps: list[Step]
    consts: list[ConstArray]
    state: list[StateField]
    arena_size: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metadata: list[tuple[str, str]]
    families: list[str]
    num_nodes: int
    quantized: bool
    # the output a Detector writes ([keyword or -1, score] per tick): the API's keyword events come from it
    detection: int | None = None
    # how many classes that Detector chooses among (its input's size): a detection's keyword is 0 .. this - 1
    detection_classes: int = 0
