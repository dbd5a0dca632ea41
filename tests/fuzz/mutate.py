"""Structured mutators: one seed file in, one hostile file out, driven by a ``random.Random``.

Every mutator knows its format's structure, so most cases get past the parser and reach the checks behind it:
ONNX protobufs (attributes, shapes, initializers, node inputs and outputs, opsets, element types, op types),
``.ell`` and ``.kwsc`` JSON (fields deleted, duplicated or retyped, extreme numbers, deep nesting, broken
references, corrupted tensors), and wav headers (every field of the fmt and data chunks, truncation, NaN
samples). A few byte-level mutations (truncation, flipped bytes) keep the parsers honest too.

The randomness is a ``random.Random``: hypothesis' ``st.randoms()`` in the bounded test (shrinkable), a seeded one
in ``make fuzz`` (case *i* is reproducible from its seed).
"""

from __future__ import annotations

import json
import random
import struct

__all__ = ["mutate", "MUTATORS"]

EXTREME_INTS = [0, -1, 1, 2, 3, 7, 64, 255, 65535, 1 << 20, (1 << 31) - 1, 1 << 31, 1 << 40, (1 << 63) - 1,
                -(1 << 63), -(1 << 40)]
EXTREME_FLOATS = [0.0, -0.0, -1.0, 0.5, 1e-38, 1e-45, 1e9, 1e30, 1e38, 3.4e38, -1e38, float("inf"), float("-inf"),
                  float("nan")]


def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


# ---------------------------------------------------------------------------------------------------- ONNX
def _onnx_node(rng, g):
    return g.node[rng.randrange(len(g.node))] if len(g.node) else None


def _onnx_attribute(rng, model):
    from onnx import AttributeProto, helper

    g = model.graph
    node = _onnx_node(rng, g)
    if node is None:
        return "attribute: no node"
    if not len(node.attribute) or rng.random() < 0.2:
        name = _pick(rng, ["axis", "alpha", "perm", "hidden_size", "foo", "kernel_shape", "pads", "group"])
        node.attribute.append(helper.make_attribute(name, _pick(rng, [1, 2.5, [1, 2], "x", -1])))
        return f"attribute: add {name} to {node.op_type}"
    a = node.attribute[rng.randrange(len(node.attribute))]
    how = _pick(rng, ["value", "value", "value", "retype", "drop", "duplicate"])
    if how == "drop":
        node.attribute.remove(a)
    elif how == "duplicate":
        node.attribute.append(a)
    elif how == "retype":
        a.type = _pick(rng, list(AttributeProto.AttributeType.values()) + [99])
    elif a.type == AttributeProto.INT:
        a.i = _pick(rng, EXTREME_INTS)
    elif a.type == AttributeProto.FLOAT:
        a.f = _pick(rng, EXTREME_FLOATS)
    elif a.type == AttributeProto.INTS:
        del a.ints[:]
        a.ints.extend(rng.choice(EXTREME_INTS) for _ in range(rng.randrange(5)))
    elif a.type == AttributeProto.FLOATS:
        del a.floats[:]
        a.floats.extend(rng.choice(EXTREME_FLOATS) for _ in range(rng.randrange(4)))
    elif a.type == AttributeProto.STRING:
        a.s = _pick(rng, [b"", b"reverse", b"bidirectional", b"Relu", b"\xff\xfe", b"SAME_UPPER", b"VALID", b"x" * 300])
    elif a.type == AttributeProto.TENSOR:
        a.t.dims[:] = [rng.choice([0, 1, 2, 1 << 30])]
    return f"attribute {a.name} of {node.op_type}: {how}"


def _onnx_shape(rng, model):
    g = model.graph
    infos = [("input", vi) for vi in g.input] + [("output", vi) for vi in g.output]
    if not infos:
        return "shape: none"
    kind, vi = _pick(rng, infos)
    dims = vi.type.tensor_type.shape.dim
    how = _pick(rng, ["value", "value", "param", "add", "remove", "elem_type"])
    if how == "elem_type":
        vi.type.tensor_type.elem_type = _pick(rng, [0, 1, 2, 3, 6, 7, 9, 10, 11, 16, 99])
    elif how == "add" or not len(dims):
        dims.add().dim_value = _pick(rng, [1, 2, 3])
    elif how == "remove":
        del dims[rng.randrange(len(dims))]
    elif how == "param":
        dims[rng.randrange(len(dims))].dim_param = _pick(rng, ["T", "batch", "", "N"])
    else:
        dims[rng.randrange(len(dims))].dim_value = _pick(rng, [0, -1, 1, 2, 5, 7, 1 << 20, 1 << 31, 1 << 40])
    return f"shape of {kind} {vi.name}: {how}"


def _onnx_initializer(rng, model):
    import numpy as np
    from onnx import TensorProto, numpy_helper

    g = model.graph
    if not len(g.initializer):
        return "initializer: none"
    t = g.initializer[rng.randrange(len(g.initializer))]
    how = _pick(rng, ["values", "values", "values", "dims", "truncate", "dtype", "rename", "drop", "duplicate"])
    if how == "values":
        try:
            array = numpy_helper.to_array(t).copy()
        except Exception:
            return "initializer: unreadable"
        if array.size:
            flat = array.reshape(-1)
            count = rng.choice([1, 1, max(flat.size // 2, 1), flat.size])
            for _ in range(count):
                value = _pick(rng, EXTREME_FLOATS) if array.dtype.kind == "f" else _pick(rng, EXTREME_INTS)
                with np.errstate(all="ignore"):
                    try:
                        flat[rng.randrange(flat.size)] = value
                    except (OverflowError, ValueError):
                        flat[rng.randrange(flat.size)] = -1
            t.CopyFrom(numpy_helper.from_array(array, t.name))
    elif how == "dims":
        del t.dims[:]
        t.dims.extend(rng.choice([-1, 0, 1, 2, 3, 4, 12, 1 << 31]) for _ in range(rng.randrange(5)))
    elif how == "truncate":
        if t.raw_data:
            t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
        else:
            del t.float_data[rng.randrange(len(t.float_data) + 1):]
            del t.int64_data[rng.randrange(len(t.int64_data) + 1):]
    elif how == "dtype":
        t.data_type = _pick(rng, [TensorProto.FLOAT16, TensorProto.STRING, TensorProto.INT8, TensorProto.DOUBLE,
                                  TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, 99])
    elif how == "rename":
        t.name = _pick(rng, ["", "x", "W", t.name + "_renamed"])
    elif how == "drop":
        g.initializer.remove(t)
    else:
        g.initializer.append(t)
    return f"initializer {t.name}: {how}"


def _onnx_inputs(rng, model):
    g = model.graph
    node = _onnx_node(rng, g)
    if node is None:
        return "inputs: no node"
    names = ([o for n in g.node for o in n.output] + [t.name for t in g.initializer] + [vi.name for vi in g.input]
             + ["nowhere", ""])
    how = _pick(rng, ["remove", "empty", "rename", "extra", "extra", "swap", "cycle"])
    if how == "extra":  # Softmax(x, W, b): more inputs than the op takes
        node.input.extend(rng.choice(names[:-2] or ["nowhere"]) for _ in range(rng.randint(1, 3)))
    elif not len(node.input):
        node.input.append(_pick(rng, names))
    elif how == "remove":
        del node.input[rng.randrange(len(node.input)):]
    elif how == "empty":
        node.input[rng.randrange(len(node.input))] = ""
    elif how == "rename":
        node.input[rng.randrange(len(node.input))] = _pick(rng, names)
    elif how == "swap" and len(node.input) > 1:
        i, j = rng.sample(range(len(node.input)), 2)
        node.input[i], node.input[j] = node.input[j], node.input[i]
    elif how == "cycle" and len(node.output):
        node.input[rng.randrange(len(node.input))] = node.output[0]
    return f"inputs of {node.op_type}: {how}"


def _onnx_nodes(rng, model):
    from kwsc.frontends.onnx import supported_ops

    g = model.graph
    node = _onnx_node(rng, g)
    if node is None:
        return "nodes: none"
    how = _pick(rng, ["drop", "duplicate", "op_type", "op_type", "rename_output", "extra_output", "domain"])
    if how == "drop":
        g.node.remove(node)
    elif how == "duplicate":
        g.node.append(node)
    elif how == "op_type":
        node.op_type = _pick(rng, supported_ops() + ["Einsum", "Loop", "NotAnOp", "gru", ""])
    elif how == "rename_output" and len(node.output):
        node.output[0] = _pick(rng, ["", "y", g.output[0].name if len(g.output) else "z", node.output[0] + "_x"])
    elif how == "extra_output":
        node.output.append(f"{node.name}_extra")
    elif how == "domain":
        node.domain = _pick(rng, ["com.microsoft", "ai.onnx.ml", "ai.onnx", "custom"])
    return f"node {node.op_type}: {how}"


def _onnx_opset(rng, model):
    how = _pick(rng, ["version", "version", "ir_version", "extra"])
    if how == "version":
        model.opset_import[0].version = _pick(rng, [-1, 0, 1, 6, 7, 9, 10, 11, 12, 13, 15, 17, 18, 19, 21, 22, 99,
                                                   1 << 40])
        return f"opset {model.opset_import[0].version}"
    if how == "ir_version":
        model.ir_version = _pick(rng, [0, 1, 3, 7, 10, 11, 99])
        return f"ir_version {model.ir_version}"
    model.opset_import.add(domain=_pick(rng, ["", "com.microsoft", "ai.onnx.ml"]), version=_pick(rng, [1, 13, 99]))
    return "opset: extra import"


def _onnx_graph_io(rng, model):
    g = model.graph
    how = _pick(rng, ["drop_output", "rename_output", "drop_input", "dup_input"])
    if how == "drop_output" and len(g.output):
        del g.output[rng.randrange(len(g.output))]
    elif how == "rename_output" and len(g.output):
        g.output[rng.randrange(len(g.output))].name = _pick(rng, ["nowhere", "", g.input[0].name if len(g.input) else "x"])
    elif how == "drop_input" and len(g.input):
        del g.input[rng.randrange(len(g.input))]
    elif how == "dup_input" and len(g.input):
        g.input.append(g.input[0])
    return f"graph io: {how}"


ONNX_MUTATORS = {"attribute": _onnx_attribute, "shape": _onnx_shape, "initializer": _onnx_initializer,
                 "inputs": _onnx_inputs, "nodes": _onnx_nodes, "opset": _onnx_opset, "graph_io": _onnx_graph_io}


def _bytes(rng, data: bytes) -> tuple[bytes, str]:
    how = _pick(rng, ["truncate", "flip", "garbage", "append"])
    if how == "truncate":
        return data[: rng.randrange(max(len(data), 1))], "bytes: truncate"
    if how == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if out:
                out[rng.randrange(len(out))] ^= rng.randint(1, 255)
        return bytes(out), "bytes: flip"
    if how == "append":
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))), "bytes: append"
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), "bytes: garbage"


def mutate_onnx(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    import onnx

    if rng.random() < 0.05:
        out, what = _bytes(rng, data)
        return out, [what]
    model = onnx.ModelProto()
    model.ParseFromString(data)
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        kind = _pick(rng, list(ONNX_MUTATORS))
        try:
            done.append(ONNX_MUTATORS[kind](rng, model))
        except (ValueError, TypeError, OverflowError, IndexError) as exc:  # protobuf refused the value itself
            done.append(f"{kind}: not applied ({type(exc).__name__})")
    return model.SerializeToString(), done


# ---------------------------------------------------------------------------------------------------- JSON
class Raw:
    """A JSON token written as is (NaN, Infinity, 1e999, a 5000-digit integer)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Obj(list):
    """A JSON object as its ordered (key, value) pairs (ELL writes duplicate keys)."""


def _dump(value, out: list) -> None:
    if isinstance(value, Raw):
        out.append(value.text)
    elif isinstance(value, Obj):
        out.append("{")
        for i, (k, v) in enumerate(value):
            out.append(("," if i else "") + json.dumps(k) + ":")
            _dump(v, out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _dump(v, out)
        out.append("]")
    elif isinstance(value, float) and value != value:
        out.append("NaN")
    else:
        out.append(json.dumps(value))


def dumps(value) -> str:
    out: list[str] = []
    _dump(value, out)
    return "".join(out)


def _containers(value, path=()):
    """Every (container, key/index) slot of the tree; objects are lists of (key, value) tuples."""
    slots = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for i, child in enumerate(item):
                if isinstance(item, Obj):
                    slots.append((item, i, True))
                    stack.append(child[1])
                else:
                    slots.append((item, i, False))
                    stack.append(child)
    return slots


def _get(slot):
    container, index, is_pair = slot
    return container[index][1] if is_pair else container[index]


def _set(slot, value) -> None:
    container, index, is_pair = slot
    if is_pair:
        container[index] = (container[index][0], value)
    else:
        container[index] = value


def _extreme_number(rng):
    return _pick(rng, [0, -1, 1, 2, 1 << 31, 1 << 40, 1 << 63, 10 ** 30, 0.5, -0.0, 1e-320, 1e39, 1e308, -1e308,
                       Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("9" * 5000), Raw("-0")])


def _json_slot_mutation(rng, tree, numbers_first: bool) -> str:
    slots = _containers(tree)
    if not slots:
        return "json: empty"
    numeric = [s for s in slots if isinstance(_get(s), (int, float)) and not isinstance(_get(s), bool)]
    how = _pick(rng, ["number", "number", "number", "delete", "duplicate", "retype", "retype", "string", "nest",
                      "list_len"])
    if how == "number" and numeric:
        slot = _pick(rng, numeric)
        _set(slot, _extreme_number(rng))
        key = slot[0][slot[1]][0] if slot[2] else f"[{slot[1]}]"
        return f"json: number {key}"
    slot = _pick(rng, slots)
    container, index, is_pair = slot
    key = container[index][0] if is_pair else f"[{index}]"
    if how == "delete":
        del container[index]
    elif how == "duplicate":
        container.insert(index, container[index])
    elif how == "retype":
        _set(slot, _pick(rng, ["", "x", 0, -1, 1.5, True, None, [], Obj([("a", 1)]), Obj(), [1, 2], "1004.output",
                               "{}"]))
    elif how == "string" and isinstance(_get(slot), str):
        text = _get(slot)
        _set(slot, _pick(rng, [text + "x", text[:-1], "", "0.output", "999999.output", "1.output[0:99999]",
                               "Buffer", "float32", "int8", text.replace("float", "double"), "\ud800"]))
    elif how == "nest":
        depth = _pick(rng, [10, 60, 99, 101, 1000, 100000])
        _set(slot, Raw("[" * depth + "1" + "]" * depth))
    elif how == "list_len" and isinstance(_get(slot), list) and not isinstance(_get(slot), Obj):
        items = _get(slot)
        _set(slot, items * rng.choice([0, 2, 3]) if items else [0] * rng.choice([1, 5]))
    else:
        _set(slot, _extreme_number(rng))
    return f"json: {how} {key}"


def _kwsc_tensor(rng, tree) -> str:
    """Break a base64 tensor of a .kwsc file: its data, shape or dtype."""
    slots = [s for s in _containers(tree) if isinstance(_get(s), Obj) and _get(s) and _get(s)[0][0] == "tensor"]
    if not slots:
        return "tensor: none"
    pairs = _get(_pick(rng, slots))[0][1]
    if not isinstance(pairs, Obj):
        return "tensor: not an object"
    spec = dict(pairs)
    how = _pick(rng, ["data", "shape", "dtype", "values"])
    for i, (k, v) in enumerate(pairs):
        if how == "data" and k == "data":
            pairs[i] = (k, _pick(rng, ["", "!!!", v[: len(v) // 2], v + "AAAA", "AAAA" * 1000]))
        elif how == "shape" and k == "shape":
            pairs[i] = (k, _pick(rng, [[], [0], [-1], [1 << 40], [Raw("Infinity")], v + [1], [2] * 7]))
        elif how == "dtype" and k == "dtype":
            pairs[i] = (k, _pick(rng, ["float16", "int8", "object", "float64", "bool", 7]))
        elif how == "values" and k == "data" and spec.get("dtype") == "float32":
            import base64

            import numpy as np

            try:
                array = np.frombuffer(base64.b64decode(v), "<f4").copy()
            except ValueError:  # an earlier mutation broke it already
                continue
            if array.size:
                array[rng.randrange(array.size)] = _pick(rng, [np.inf, -np.inf, np.nan, 1e38, 1e10, -3e9])
                pairs[i] = (k, base64.b64encode(array.tobytes()).decode())
    return f"tensor: {how}"


def mutate_json(rng: random.Random, data: bytes, fmt: str) -> tuple[bytes, list[str]]:
    if rng.random() < 0.05:
        out, what = _bytes(rng, data)
        return out, [what]
    from kwsc.frontends.ell_archive import _TRAILING_COMMA

    text = _TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), data.decode())  # ELL's dangling commas
    tree = json.loads(text, object_pairs_hook=Obj)
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        if fmt == "kwsc" and rng.random() < 0.3:
            done.append(_kwsc_tensor(rng, tree))
        else:
            done.append(_json_slot_mutation(rng, tree, True))
    return dumps(tree).encode("utf-8", "surrogatepass"), done


# ---------------------------------------------------------------------------------------------------- wav
_FMT_FIELDS = {"format": (20, "<H", [0, 1, 2, 3, 0xFFFE, 7, 65535]),
               "channels": (22, "<H", [0, 1, 2, 3, 17, 64, 65, 100, 65535]),
               "sample_rate": (24, "<I", [0, 1, 999, 1000, 8000, 16000, 44100, 384000, 384001, (1 << 31) - 1,
                                         (1 << 32) - 1]),
               "byte_rate": (28, "<I", [0, 1, (1 << 32) - 1]),
               "block_align": (32, "<H", [0, 1, 3, 65535]),
               "bits": (34, "<H", [0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]),
               "riff_size": (4, "<I", [0, 4, (1 << 32) - 1]),
               "fmt_size": (16, "<I", [0, 14, 15, 18, 40, (1 << 32) - 1]),
               "data_size": (40, "<I", [0, 1, 3, 7, (1 << 31), (1 << 32) - 1])}


def mutate_wav(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    out = bytearray(data)
    done = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        how = _pick(rng, list(_FMT_FIELDS) * 3 + ["truncate", "nan_samples", "chunk", "bytes"])
        if how in _FMT_FIELDS:
            offset, fmt, values = _FMT_FIELDS[how]
            if len(out) >= offset + struct.calcsize(fmt):
                struct.pack_into(fmt, out, offset, _pick(rng, values))
        elif how == "truncate":
            del out[rng.randrange(len(out) + 1):]
        elif how == "nan_samples" and len(out) > 48:
            for _ in range(rng.randint(1, 50)):
                at = 44 + 4 * rng.randrange((len(out) - 44) // 4)
                struct.pack_into("<f", out, at, _pick(rng, [float("nan"), float("inf"), -float("inf"), 1e30]))
        elif how == "chunk":
            chunk = _pick(rng, [b"LIST", b"fact", b"data", b"fmt "]) + struct.pack("<I", _pick(rng, [0, 3, 1 << 31]))
            at = _pick(rng, [12, 36, len(out)])
            out[at:at] = chunk
        else:
            mutated, what = _bytes(rng, bytes(out))
            out = bytearray(mutated)
        done.append(f"wav: {how}")
    return bytes(out), done


def mutate(fmt: str, rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    """A mutated copy of ``data`` (a ``fmt`` file) and what was done to it."""
    if fmt == "onnx":
        return mutate_onnx(rng, data)
    if fmt in ("ell", "kwsc"):
        return mutate_json(rng, data, fmt)
    return mutate_wav(rng, data)


MUTATORS = {"onnx": sorted(ONNX_MUTATORS) + ["bytes"], "ell": ["json", "bytes"], "kwsc": ["json", "tensor", "bytes"],
            "wav": sorted(_FMT_FIELDS) + ["truncate", "nan_samples", "chunk", "bytes"]}
