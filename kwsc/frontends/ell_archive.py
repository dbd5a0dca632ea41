"""Reading ELL's JSON archive: ordered (name, value) pairs, ELL's dangling commas, metadata PropertyBags.

Kept apart from the node translation in ``kwsc.frontends.ell``. Objects stay ordered pair lists because
ELL writes duplicate field names (the two ``activation`` fields of GRU/LSTM nodes).
"""

from __future__ import annotations

import json
import re
from typing import Any

from kwsc.errors import FormatError
from kwsc.formats.ell_schema import MAP_TYPES
from kwsc.limits import load_json

__all__ = ["ArchivedObject", "is_object", "parse_ell_text", "template_args", "layout_size", "read_metadata",
           "type_names"]

_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])')


class ArchivedObject:
    """An archived object: ordered (name, value) pairs; ``get`` finds the first field of a name."""

    def __init__(self, pairs: list, where: str) -> None:
        self.pairs = pairs
        self.where = where

    @property
    def type(self) -> str:
        return str(self.get("_type", ""))

    def get(self, name: str, default: Any = ...) -> Any:
        for key, value in self.pairs:
            if key == name:
                return value
        if default is ...:
            raise FormatError(f"{self.where}: field {name!r} is missing")
        return default

    def get_all(self, name: str) -> list:
        return [value for key, value in self.pairs if key == name]

    def obj(self, name: str) -> "ArchivedObject":
        value = self.get(name)
        if not isinstance(value, list) or (value and not isinstance(value[0], tuple)):
            raise FormatError(f"{self.where}: field {name!r} is not an object")
        return ArchivedObject(value, f"{self.where}.{name}")


def is_object(value: Any) -> bool:
    """Whether a parsed value is an object (a list of pairs) rather than an array."""
    return isinstance(value, list) and (not value or isinstance(value[0], tuple))


def parse_ell_text(text: str, source: str = "<string>") -> ArchivedObject:
    """Parse archive text into ordered pairs; FormatError ``source:line:col: message`` on bad JSON.

    ELL ends the ``_version`` line of field-less objects with a comma; such dangling commas are accepted.
    """
    try:
        root = load_json(text, source, object_pairs_hook=list)
    except json.JSONDecodeError:
        # Dropping a comma that ends a line moves no later line, so positions still point into the file.
        try:
            root = load_json(_TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text), source,
                             object_pairs_hook=list)
        except json.JSONDecodeError as err:
            raise FormatError(f"{source}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}") from None
    if not is_object(root) or dict(root).get("_type") not in MAP_TYPES:
        raise FormatError(f"{source}: not an ELL model (the top-level object must have \"_type\": \"Map\", "
                          "or \"DynamicMap\" in files of ELL 2.1 and older)")
    return ArchivedObject(root, source)


def template_args(type_name: str) -> tuple[str, list[str]]:
    """``"TypeCastNode<int,float>"`` → ``("TypeCastNode", ["int", "float"])``; nested arguments stay whole
    (``"ActivationLayer<float,HardSigmoidActivation<float>>"`` → ``[..., "HardSigmoidActivation<float>"]``)."""
    base, _, rest = type_name.partition("<")
    if not rest:
        return base, []
    args, depth, current = [], 0, ""
    for char in rest[:-1] if rest.endswith(">") else rest:
        if char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += {"<": 1, ">": -1}.get(char, 0)
        current += char
    return base, args + [current.strip()]


def type_names(root: ArchivedObject) -> list[str]:
    """Every ``_type`` in the archive (nodes, ports, layers …), for telling which ELL version wrote it."""
    found: list[str] = []
    stack: list[Any] = [root.pairs]
    while stack:
        item = stack.pop()
        if is_object(item):
            for key, value in item:
                if key == "_type":
                    found.append(str(value))
                elif isinstance(value, list) and value and isinstance(value[0], list):
                    stack.append(value)
                elif is_object(value) and value:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, list))
    return found


def layout_size(layout: ArchivedObject) -> tuple[int, ...]:
    """The active shape of a MemoryLayout, or of ELL ≤ 2.3.6's PortMemoryLayout (``size``; ``extent``/``stride``
    would include padding)."""
    return tuple(int(d) for d in layout.get("size"))


def read_metadata(obj: ArchivedObject, typed: bool = False) -> dict[str, Any]:
    """An object's PropertyBag: strings for node metadata; with ``typed`` the Variant types (int, double,
    bool, std::string) are kept, as kwsc writes graph metadata."""
    if not is_object(obj.get("metadata", None)):
        return {}
    out: dict[str, Any] = {}
    for entry in obj.obj("metadata").get("data", []):
        pair = ArchivedObject(entry, obj.where + ".metadata")
        variant = pair.obj("v")
        value = variant.get("value")
        kind = variant.get("type", "std::string")
        if not typed:
            value = value if isinstance(value, str) else json.dumps(value)
        elif kind == "bool":
            value = value == "true" if isinstance(value, str) else bool(value)
        elif kind in ("double", "float") and isinstance(value, (int, float)):
            value = float(value)
        elif kind in ("int", "int32_t", "int64_t", "int64") and isinstance(value, (int, float)):
            value = int(value)
        out[str(pair.get("k"))] = value
    return out
