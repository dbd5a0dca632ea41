"""Reading ONNX protobufs safely: the model file, its tensors and its typed attributes.

Everything that can fail on a malformed model fails here with one clear KwscError line: a missing file is an
InputError, undecodable bytes a FormatError, a tensor or attribute of the wrong kind a FrontendError naming
the node (or initializer) and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kwsc.errors import FormatError, FrontendError, InputError

__all__ = ["load_model_proto", "tensor_to_array", "attr", "dtype_from_onnx", "MISSING", "node_label"]

MISSING = object()

# ONNX TensorProto.DataType → IR dtype (the IR's element types; others are refused).
_ONNX_DTYPES = {1: "float32", 11: "float64", 6: "int32", 7: "int64", 9: "bool"}
_ONNX_DTYPE_NAMES = {0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                     7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
                     14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"}
# Largest tensor (elements) the importer materialises: keyword spotters are tiny; a bigger one is a bad model.
MAX_ELEMENTS = 1 << 24


def node_label(node) -> str:
    """How errors name an ONNX node: its name (or first output) and op type."""
    name = node.name or (node.output[0] if len(node.output) else "?")
    return f"node {name!r} ({node.op_type})"


def dtype_from_onnx(code: int, where: str) -> str:
    """The IR dtype for an ONNX element type code, or a FrontendError naming ``where``."""
    if code not in _ONNX_DTYPES:
        name = _ONNX_DTYPE_NAMES.get(code, str(code))
        raise FrontendError(f"{where}: element type {name} is not supported (supported: FLOAT, DOUBLE, INT32, INT64, BOOL)")
    return _ONNX_DTYPES[code]


def load_model_proto(source: Any):
    """An ``onnx.ModelProto`` from a path, raw bytes or a ModelProto (returned as is).

    Raises:
        InputError: the file does not exist or cannot be read.
        FormatError: the bytes are not a valid ONNX protobuf, or external tensor data is missing.
    """
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "ONNX bytes"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FormatError(f"{where}: not a valid ONNX model (protobuf decode failed: {exc})") from exc
    if not model.HasField("graph"):
        raise FormatError(f"{where}: not a valid ONNX model (no graph)")
    has_external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if has_external:
        if isinstance(source, (bytes, bytearray)):
            raise FormatError(f"{where}: model stores tensors in external files; load it from its path")
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(Path(source).parent))
        except Exception as exc:  # the helper raises OSError, ValueError, onnx errors … all mean "bad file set"
            raise FormatError(f"{where}: cannot load external tensor data: {type(exc).__name__}: {exc}") from exc
    return model


def tensor_to_array(tensor, where: str) -> np.ndarray:
    """A numpy array from a TensorProto, with the IR's element types; FrontendError naming ``where``."""
    from onnx import numpy_helper

    dtype = dtype_from_onnx(tensor.data_type, where)
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise FrontendError(f"{where}: negative dimension in tensor shape {dims}")
    size = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if size > MAX_ELEMENTS:
        raise FrontendError(f"{where}: tensor of shape {dims} is too large ({size} elements)")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # onnx raises ValueError/TypeError/its own errors for inconsistent tensors
        raise FrontendError(f"{where}: malformed tensor (shape {dims}): {type(exc).__name__}: {exc}") from exc
    if array.shape != tuple(dims):
        raise FrontendError(f"{where}: tensor data has {array.size} elements, shape {dims} needs {size}")
    return np.array(array, dtype=dtype, order="C")  # (ascontiguousarray would turn scalars into vectors)


_KIND_CODES = {"float": 1, "int": 2, "str": 3, "tensor": 4, "floats": 6, "ints": 7, "strs": 8}


def attr(node, name: str, kind: str, default: Any = MISSING) -> Any:
    """The value of attribute ``name`` of an ONNX node, checked to be of ``kind``.

    Args:
        node: the NodeProto.
        name: attribute name.
        kind: one of float, int, str, tensor, floats, ints, strs.
        default: returned when the attribute is absent; without it, absence is an error.
    """
    found = [a for a in node.attribute if a.name == name]
    if not found:
        if default is MISSING:
            raise FrontendError(f"{node_label(node)}: required attribute {name!r} is missing")
        return default
    a = found[-1]
    if a.type != _KIND_CODES[kind]:
        got = {v: k for k, v in _KIND_CODES.items()}.get(a.type, f"type {a.type}")
        raise FrontendError(f"{node_label(node)}: attribute {name!r} must be {kind}, got {got}")
    if kind == "float":
        return float(a.f)
    if kind == "int":
        return int(a.i)
    if kind == "str":
        try:
            return a.s.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrontendError(f"{node_label(node)}: attribute {name!r} is not valid UTF-8") from exc
    if kind == "tensor":
        return tensor_to_array(a.t, f"{node_label(node)} attribute {name!r}")
    if kind == "floats":
        return [float(v) for v in a.floats]
    if kind == "ints":
        return [int(v) for v in a.ints]
    try:
        return [s.decode("utf-8") for s in a.strings]
    except UnicodeDecodeError as exc:
        raise FrontendError(f"{node_label(node)}: attribute {name!r} is not valid UTF-8") from exc
