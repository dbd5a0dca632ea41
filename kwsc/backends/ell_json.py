"""ELL's JSON archive, written the way ELL's ``JsonArchiver`` writes it (ell-behaviour.md §4.1).

An archived object is an :class:`Archived`: its ``_type`` and ``_version`` strings followed by named
fields in a fixed order (duplicate names allowed: GRU/LSTM write two ``activation`` fields).
Field values are plain Python scalars and lists, :class:`Primitive` (an object ELL archives as a bare
string: node ids, port-element references, metadata values), :class:`Number` (a float with the C++
precision of its element type) or nested :class:`Archived` objects.

# NOTE: [ELL whitespace]
# The layout reproduces ELL's archiver byte for byte (checked against a real ELL-written file,
# ../shared/reference/ell-testdata/protonn_sample.ell): 2-space indent per level; ``"name": value``;
# a primitive object repeats the current indent after the colon (``"id":       "1000"``); elements of
# an object array sit at the array's own indent and are separated by ``}, `` + newline; the array
# closes with ``}]``; arrays of numbers and strings are inline; no newline after the final ``}``.
# One deliberate difference: ELL ends its ``"_version"`` line with a comma even when no field follows
# (activation objects), which is not JSON. We write ``"_version": "0"`` without the dangling comma; ELL's
# reader accepts both, and so the file stays readable by any JSON parser.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from kwsc.errors import BackendError

__all__ = ["Archived", "Primitive", "Number", "Numbers", "render", "format_number"]


@dataclass(frozen=True)
class Primitive:
    """An object ELL archives as a bare value (node id, port-element string, Variant value)."""

    value: Any


@dataclass(frozen=True)
class Number:
    """A floating-point scalar printed like C++ ``ostream`` at ``digits10 + 1`` significant digits."""

    value: float
    precision: int = 7  # float: 7, double: 16


@dataclass(frozen=True)
class Numbers:
    """An inline array of floats (``precision`` 7 for float elements, 16 for double) or integers (0)."""

    values: Any  # numpy array or sequence
    precision: int = 7

    def texts(self) -> list[str]:
        import numpy as np

        array = np.asarray(self.values)
        if self.precision == 0 or array.dtype.kind in "iub":
            return [format_number(int(v)) for v in array.reshape(-1).tolist()]
        flat = array.astype(np.float32 if self.precision == 7 else np.float64).reshape(-1)
        if not np.all(np.isfinite(flat)):
            raise BackendError("cannot write non-finite numbers (inf/nan) to an .ell file")
        return ["%.*g" % (self.precision, v) for v in flat.tolist()]


@dataclass
class Archived:
    """One archived object: type name, version and fields in write order."""

    type: str
    version: str
    fields: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, name: str, value: Any) -> "Archived":
        """Append a field (returns self, so calls chain)."""
        self.fields.append((name, value))
        return self


def format_number(value: Any, precision: int = 7) -> str:
    """C++ default stream formatting: integers plain, floats as ``%.{precision}g``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        raise BackendError(f"cannot write non-finite number {v} to an .ell file")
    if precision == 7:
        import numpy as np

        v = float(np.float32(v))
    return "%.*g" % (precision, v)


def _scalar_text(value: Any) -> str:
    if isinstance(value, Number):
        return format_number(value.value, value.precision)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bool, int)):
        return format_number(value)
    if isinstance(value, float):
        return format_number(value, 16)
    raise BackendError(f"cannot archive scalar of type {type(value).__name__}")  # pragma: no cover - emitter bug


class _Writer:
    """A port of the archiver's state machine: current indent and the pending end of the previous line."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.level = 0
        self.pending = ""

    def _indent(self) -> str:
        return "  " * self.level

    def _finish_line(self) -> None:
        self.parts.append(self.pending)
        self.pending = ""

    def field(self, name: str, value: Any) -> None:
        if isinstance(value, Archived):
            self.obj(name, value)
        elif isinstance(value, Primitive):
            self.primitive(name, value)
        elif isinstance(value, (list, tuple, Numbers)):
            self.array(name, value)
        else:
            self._finish_line()
            self.parts.append(f'{self._indent()}"{name}": {_scalar_text(value)}')
            self.pending = ",\n"

    def obj(self, name: str, value: Archived) -> None:
        self._finish_line()
        self.parts.append(self._indent())
        if name:
            self.parts.append(f'"{name}": ')
        self.parts.append("{\n")
        self.parts.append(f'{self._indent()}  "_type": "{value.type}",\n')
        self.parts.append(f'{self._indent()}  "_version": "{value.version}"')
        self.pending = ",\n"
        self.level += 1
        for key, item in value.fields:
            self.field(key, item)
        self.parts.append("\n")
        self.level -= 1
        self.parts.append(f"{self._indent()}}}")
        self.pending = ",\n" if name else "\n"

    def primitive(self, name: str, value: Primitive) -> None:
        self._finish_line()
        self.parts.append(self._indent())
        if name:
            self.parts.append(f'"{name}": ')
        # The primitive's own value is written as an unnamed scalar: the indent appears a second time.
        self.parts.append(self._indent() + _scalar_text(value.value))
        self.pending = ",\n" if name else "\n"

    def array(self, name: str, items: Sequence[Any] | Numbers) -> None:
        self._finish_line()
        self.parts.append(f'{self._indent()}"{name}": [')
        if isinstance(items, Numbers):
            self.parts.append(", ".join(items.texts()))
        elif items and isinstance(items[0], (Archived, Primitive)):
            self.parts.append("\n")
            for index, item in enumerate(items):
                if isinstance(item, Archived):
                    self.obj("", item)
                else:
                    self.primitive("", item)
                if index != len(items) - 1:
                    self.parts.append(", ")
        else:
            self.parts.append(", ".join(_scalar_text(item) for item in items))
        self.parts.append("]")
        self.pending = ",\n"


def render(root: Archived) -> str:
    """The archive text of ``root`` (the Map), exactly as ELL lays it out (see the module note)."""
    writer = _Writer()
    writer.obj("", root)
    return "".join(writer.parts)
