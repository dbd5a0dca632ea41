"""The native ``.kwsc`` file: the graph as name-keyed JSON a person can read, tensors as base64 blobs.

Layout (format version 1)::

    {"format": "kwsc", "version": 1, "name": "...", "metadata": {...},
     "nodes": [{"name": "gru1", "op": "GRU", "inputs": ["fc.0", null, ...], "outputs": ["gru1"],
                "attrs": {"hidden_size": 128, "w": {"tensor": {"dtype": "float32", "shape": [3, 4], "data": "<b64>"}}},
                "metadata": {...}, "meta": {...}}, ...]}

Inputs reference ``<producer node>.<output index>``. Readers accept any key order; unknown top-level keys
are ignored; a file from a newer format version is refused with a clear message.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import os
from pathlib import Path
from typing import Any

import numpy as np

from kwsc.errors import FormatError, InputError, KwscError
from kwsc.fileio import atomic_write
from kwsc.ir.graph import Graph, Value
from kwsc.ir.types import DTYPES
from kwsc.ir.validate import quiet_numpy, validate
from kwsc.ir.verify import verify
from kwsc.limits import load_json

__all__ = ["FORMAT_VERSION", "graph_to_json", "graph_from_json", "save", "load"]

FORMAT_VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
        return {"tensor": {"dtype": value.dtype.name, "shape": list(value.shape),
                           "data": base64.b64encode(data.tobytes()).decode("ascii")}}
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN/inf; the bits keep a NaN's sign and payload (repr writes every NaN as "nan")
        return {"float": repr(value), "bits": struct.pack("<d", value).hex()}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return _encode(float(value))
    if isinstance(value, dict):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if "tensor" in value:
            spec = value["tensor"]
            try:
                dtype = spec["dtype"]
                if dtype not in DTYPES:
                    raise ValueError(f"unsupported dtype {dtype!r}")
                raw = base64.b64decode(spec["data"], validate=True)
                array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
                return array.reshape([int(d) for d in spec["shape"]]).copy()
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(f"{where}: bad tensor: {exc}") from None
        if "float" in value:
            try:
                if "bits" in value:
                    return struct.unpack("<d", bytes.fromhex(value["bits"]))[0]
                return float(value["float"])
            except (TypeError, ValueError, struct.error):
                raise FormatError(f"{where}: bad float {value['float']!r}") from None
        if "dict" in value:
            if not isinstance(value["dict"], dict):
                raise FormatError(f"{where}: \"dict\" must be an object, got {type(value['dict']).__name__}")
            return {k: _decode(v, where) for k, v in value["dict"].items()}
        raise FormatError(f"{where}: unexpected object {sorted(value)}")
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    return value


def graph_to_json(graph: Graph) -> dict:
    """The graph as a JSON-ready dict (format version 1)."""
    ref = {}
    nodes = []
    for node in graph.nodes:
        for out in node.outputs:
            ref[out] = f"{node.name}.{out.index}"
        entry: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "inputs": [ref[v] if v is not None else None for v in node.inputs],
            "outputs": [v.name for v in node.outputs],
            "attrs": {k: _encode(v) for k, v in node.attrs.items()},
        }
        if node.metadata:
            entry["metadata"] = dict(node.metadata)
        if node.meta:
            entry["meta"] = _encode(node.meta)
        nodes.append(entry)
    return {"format": "kwsc", "version": FORMAT_VERSION, "name": graph.name,
            "metadata": _encode(graph.metadata), "nodes": nodes}


def graph_from_json(doc: Any, where: str = "<memory>") -> Graph:
    """Rebuild a graph from ``graph_to_json`` output; FormatError for anything malformed."""
    if not isinstance(doc, dict) or doc.get("format") != "kwsc":
        raise FormatError(f"{where}: not a kwsc model (missing \"format\": \"kwsc\")")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise FormatError(f"{where}: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(f"{where}: written by a newer kwsc (format version {version}; this kwsc reads up to "
                          f"{FORMAT_VERSION}); upgrade kwsc")
    graph = Graph(str(doc.get("name", "model")))
    metadata = _decode(doc.get("metadata", {"dict": {}}), f"{where}: metadata")
    if not isinstance(metadata, dict):
        raise FormatError(f"{where}: metadata must be an object")
    graph.metadata = metadata
    values: dict[str, Value] = {}
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        raise FormatError(f"{where}: \"nodes\" must be a list")
    for i, entry in enumerate(nodes):
        loc = f"{where}: node #{i}"
        try:
            name, op = entry["name"], entry["op"]
            inputs = []
            for ref in entry.get("inputs", []):
                if ref is None:
                    inputs.append(None)
                elif ref not in values:
                    raise FormatError(f"{loc} ({name}): input {ref!r} is not produced by an earlier node")
                else:
                    inputs.append(values[ref])
            attrs = {k: _decode(v, loc) for k, v in entry.get("attrs", {}).items()}
            node = graph.add(op, inputs, attrs, name=name)
            if node.name != name:
                raise FormatError(f"{loc}: duplicate node name {name!r}")
            for out, label in zip(node.outputs, entry.get("outputs", [])):
                out.name = str(label)
            node.metadata.update({str(k): str(v) for k, v in entry.get("metadata", {}).items()})
            meta = _decode(entry.get("meta", {"dict": {}}), loc)
            node.meta.update(meta if isinstance(meta, dict) else {})
            for out in node.outputs:
                values[f"{node.name}.{out.index}"] = out
        except KwscError as exc:
            if isinstance(exc, FormatError) or str(exc).startswith(where):
                raise
            raise type(exc)(f"{loc}: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"{loc}: malformed node entry ({type(exc).__name__}: {exc})") from None
    return verify(graph)


def save(graph: Graph, path: str | os.PathLike) -> None:
    """Write a ``.kwsc`` file atomically."""
    try:
        text = json.dumps(graph_to_json(graph), indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:  # e.g. an object in metadata that JSON cannot hold
        raise FormatError(f"{path}: cannot save graph {graph.name!r}: {exc}") from None
    atomic_write(path, text + "\n")


def load(path: str | os.PathLike) -> Graph:
    """Read a ``.kwsc`` file; InputError if missing, FormatError if malformed, truncated or too new."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a .kwsc file") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a kwsc model (binary data at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = load_json(text, str(path))
    except json.JSONDecodeError as exc:
        # A cut inside a long base64 string is reported at the string's start, not at the end of the file.
        truncated = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        hint = " (file truncated?)" if truncated else ""
        raise FormatError(f"{path}:{exc.lineno}:{exc.colno}: malformed kwsc model: {exc.msg}{hint}") from None
    with quiet_numpy():  # a file is checked at the door; graph_from_json alone stays lossless (NaN weights too)
        return validate(graph_from_json(doc, str(path)), str(path))
