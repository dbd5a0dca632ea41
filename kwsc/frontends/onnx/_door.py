"""The ONNX checks at the door, before any translation: what onnxruntime refuses, kwsc refuses too, in one line.

ONNX's own operator registry (``onnx.defs``, the schemas onnxruntime loads models against) says how many inputs
and outputs each op takes at the model's opset and which attributes of which types it has; the IR's registry
(``kwsc.ir.ops``) then checks the translated attributes' ranges. Here, on the model as written (before any opset
upgrade): IR version and opset imports, names listed twice, every node input names a tensor, arity, attribute names,
types and required attributes per schema, attributes whose stored field disagrees with their type
(``onnx.checker.check_node``), ONNX's strict type inference; after the import, declared graph output types and fixed
dims against kwsc's inferred ones.
"""

from __future__ import annotations

import re

from kwsc.errors import FrontendError
from kwsc.frontends.onnx._load import dtype_from_onnx, node_label

__all__ = ["check_model", "check_nodes", "check_declared_outputs"]


_KINDS = {"INT": "int", "FLOAT": "float", "STRING": "str", "TENSOR": "tensor", "INTS": "ints", "FLOATS": "floats",
          "STRINGS": "strs", "GRAPH": "graph", "TENSORS": "tensors", "GRAPHS": "graphs", "UNDEFINED": "undefined"}


def _kind(name: str) -> str:
    return _KINDS.get(name, name.lower())


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).strip().splitlines()[:1]) or type(exc).__name__
    return text[:300]


def check_model(model, where: str, opset: int, translated: set[str] | frozenset[str]) -> None:
    """The model as written (before any opset upgrade): IR version, unique names, and every node of the default
    domain that kwsc translates (``translated``; the others get the importer's list of unsupported ops) against its
    ONNX schema at ``opset``; every input resolves."""
    import onnx

    if not 3 <= model.ir_version <= onnx.IR_VERSION:
        raise FrontendError(f"{where}: IR version {model.ir_version} is outside what kwsc (onnx {onnx.__version__}) "
                            f"reads: 3–{onnx.IR_VERSION}")
    _check_opset_imports(model, where)
    graph = model.graph
    for kind, names in (("graph input", [vi.name for vi in graph.input]),
                        ("initializer", [t.name for t in graph.initializer]),
                        ("graph output", [vi.name for vi in graph.output])):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise FrontendError(f"{where}: {kind} {name!r} is listed twice")
            seen.add(name)
    check_nodes(model, where, opset, translated)
    if all(n.domain in ("", "ai.onnx") and n.op_type in translated for n in graph.node):
        _check_types(model, where)


def _without_declared_shapes(model):
    """A copy whose graph outputs and value_info keep their element types but not their shapes."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for vi in list(copy.graph.output) + list(copy.graph.value_info):
        if vi.type.WhichOneof("value") == "tensor_type":
            vi.type.tensor_type.ClearField("shape")
    return copy


def _check_types(model, where: str) -> None:
    """ONNX's type and shape inference in strict mode: an op's type parameter bound to two element types, an
    attribute or input shape an op cannot take — what onnxruntime refuses when it resolves the graph.

    A declared shape that merely differs from ONNX's inferred one is left to ``check_declared_outputs`` (kwsc's own
    inference): onnxruntime only warns about it, and the pinned ONNX's inference is wrong for some ceil-mode pools
    whose declared shapes are right."""
    from onnx import shape_inference

    try:
        try:
            shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        except (shape_inference.InferenceError, RuntimeError, ValueError) as exc:
            if "existing shape differ" not in str(exc) and "existing shape" not in str(exc):
                raise
            shape_inference.infer_shapes(_without_declared_shapes(model), check_type=True, strict_mode=True)
    except (shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        text = _first_line(exc)
        for noise in ("[ShapeInferenceError] Inference error(s): ", "[TypeInferenceError] Inference error(s): "):
            text = text.replace(noise, "")
        match = re.match(r"\(op_type:(\w+), node name: ([^)]*)\): (?:\[\w+\] )?(.*)", text)
        if match:  # kwsc's way of naming a node
            text = f"node {match.group(2)!r} ({match.group(1)}): {match.group(3)}"
        raise FrontendError(f"{where}: {text} (ONNX type and shape inference)") from None


# Domains onnxruntime knows beyond ONNX's own (onnx.defs lists those): the newest version it accepts.
_RUNTIME_DOMAINS = {"com.microsoft": 1}


def _check_opset_imports(model, where: str) -> None:
    """Each domain imported once, at a version ONNX (or onnxruntime) knows; the default domain's range is checked by
    ``default_opset`` (7–21)."""
    from onnx import defs

    known = {**{d: r for d, r in defs.C.schema_version_map().items()}, **{d: (1, v) for d, v in _RUNTIME_DOMAINS.items()}}
    seen: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        if domain in seen and seen[domain] != entry.version:
            raise FrontendError(f"{where}: domain {domain or 'ai.onnx'!r} is imported twice, at opsets "
                                f"{seen[domain]} and {entry.version}")
        seen[domain] = entry.version
        low, high = known.get(domain, (1, None))
        if domain and (entry.version < low or (high is not None and entry.version > high)):
            raise FrontendError(f"{where}: opset {entry.version} of domain {domain!r} is outside {low}–{high}"
                                if high is not None else f"{where}: opset {entry.version} of domain {domain!r} is "
                                "not positive")


def check_nodes(model, where: str, opset: int, translated: set[str] | frozenset[str]) -> None:
    """Every translated node of the default domain against its ONNX schema at ``opset``; every input resolves."""
    from onnx import AttributeProto, checker, defs

    graph = model.graph
    known = {t.name for t in graph.initializer} | {vi.name for vi in graph.input}
    known |= {out for node in graph.node for out in node.output if out}
    context = checker.C.CheckerContext()
    context.ir_version = max(int(model.ir_version), 3)
    context.opset_imports = {"": opset}
    for node in graph.node:
        label = f"{where}: {node_label(node)}"
        for index, name in enumerate(node.input):
            if name and name not in known:
                raise FrontendError(f"{label}: input {index} {name!r} names no tensor (no node output, initializer "
                                    "or graph input has that name)")
        if node.domain not in ("", "ai.onnx") or node.op_type not in translated:
            continue  # refused by the importer's op check, with the list of supported ops
        try:
            schema = defs.get_schema(node.op_type, opset, "")
        except defs.SchemaError:
            raise FrontendError(f"{label}: ONNX has no {node.op_type} at opset {opset}") from None
        op = f"ONNX {node.op_type} (opset {schema.since_version})"
        if not schema.min_input <= len(node.input) <= schema.max_input:
            raise FrontendError(f"{label}: {len(node.input)} inputs; {op} takes {schema.min_input}"
                                + (f"..{schema.max_input}" if schema.max_input != schema.min_input else ""))
        if not schema.min_output <= len(node.output) <= schema.max_output:
            raise FrontendError(f"{label}: {len(node.output)} outputs; {op} has {schema.min_output}"
                                + (f"..{schema.max_output}" if schema.max_output != schema.min_output else ""))
        for index, name in enumerate(node.input):  # an empty name omits an input: only an optional one
            formal = schema.inputs[min(index, len(schema.inputs) - 1)] if schema.inputs else None
            if not name and formal is not None and formal.option != defs.OpSchema.FormalParameterOption.Optional:
                raise FrontendError(f"{label}: input {index} ({formal.name}) is empty; {op} requires it")
        seen: set[str] = set()
        for a in node.attribute:
            if a.name in seen:
                raise FrontendError(f"{label}: attribute {a.name!r} is given twice")
            seen.add(a.name)
            spec = schema.attributes.get(a.name)
            if spec is None:
                raise FrontendError(f"{label}: {op} has no attribute {a.name!r} (it has: "
                                    f"{', '.join(sorted(schema.attributes)) or 'none'})")
            if a.ref_attr_name:
                raise FrontendError(f"{label}: attribute {a.name!r} refers to a function attribute; not supported")
            if a.type != spec.type:
                got = AttributeProto.AttributeType.Name(a.type) if a.type in AttributeProto.AttributeType.values() \
                    else f"type {a.type}"
                raise FrontendError(f"{label}: attribute {a.name!r} must be {_kind(spec.type.name)}, got {_kind(got)}")
        missing = [name for name, spec in schema.attributes.items() if spec.required and name not in seen]
        if missing:
            raise FrontendError(f"{label}: required attribute {', '.join(map(repr, missing))} is missing")
        try:
            checker.check_node(node, context)
        except checker.ValidationError as exc:
            raise FrontendError(f"{label}: {_first_line(exc)}") from None


def check_declared_outputs(model, graph, where: str) -> None:
    """Each graph output's declared element type and fixed dims equal what kwsc inferred."""
    outputs = {node.attrs["name"]: node.inputs[0] for node in graph.output_nodes}
    for vi in model.graph.output:
        value = outputs.get(vi.name)
        if value is None or vi.type.WhichOneof("value") != "tensor_type":
            continue
        declared = vi.type.tensor_type
        label = f"{where}: graph output {vi.name!r}"
        if declared.elem_type == 0:
            raise FrontendError(f"{label}: declared element type UNDEFINED")
        if declared.elem_type:
            dtype = dtype_from_onnx(declared.elem_type, label)
            if dtype != value.dtype:
                raise FrontendError(f"{label}: declared element type {dtype}, the graph computes {value.dtype}")
        if not declared.HasField("shape"):
            continue
        dims = declared.shape.dim
        fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(fixed) != len(value.shape) or any(d is not None and d != s for d, s in zip(fixed, value.shape)):
            shown = [d if d is not None else (dims[i].dim_param or "?") for i, d in enumerate(fixed)]
            raise FrontendError(f"{label}: declared shape {shown}, the graph computes {list(value.shape)}")
