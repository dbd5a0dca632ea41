"""Pictures of a graph: one neutral structure (``VizGraph``) written as graphviz dot, DGML or text.

The conventions are ELL's ``print`` tool (ell-behaviour.md §6.3): nodes labelled by op, binary ops by their
operator symbol and unary ops by their lower-case name (both with the property ``name=<Op>``), fill colours by
kind, input/output shapes as node properties with dims joined by `` × ``, edges carrying the input and output
port names (dot ``samehead``/``sametail``). Where kwsc adds to ELL it is to make the picture readable: a second
label line with the node name and the output shape, a small edge label naming the input port when the op has
several (so the VAD → GRU ``reset_trigger`` edge shows), dashed edges for int32 control signals. Nodes and
edges follow the graph's (stable, topological) order instead of ELL's sort by id string. Every ELL quirk of
printing lives in this module.

Output is a pure function of the graph: identical graphs give byte-identical text.

Example::

    viz = build_viz(graph)
    Path("g.dot").write_text(to_dot(viz))
    Path("g.png").write_bytes(render(to_dot(viz), "png"))     # through graphviz's `dot`
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kwsc.errors import InputError, ToolchainError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.ops import OpDef

__all__ = [
    "VizNode", "VizEdge", "VizGraph", "build_viz", "fill_colour", "node_label",
    "to_dot", "to_dgml", "to_text", "render", "FORMATS", "RENDERED_FORMATS", "format_graph",
    "format_for_path", "shape_text",
]

TIMES = " \u00d7 "  # ELL joins dims with ' × ' (written as &#xd7; in its dot files)

# Fill colours by kind (X11 names, which graphviz knows). ELL colours a few layer kinds (Activation plum,
# BatchNormalization/Scaling/Bias papayawhip, Pooling powderblue, BinaryOperation snow2, ReorderData lightcoral);
# kwsc extends the same palette to its op categories so featurizer, VAD and classifier stand apart.
PALETTE = {
    "input": "palegreen",
    "output": "lightsalmon",
    "constant": "gray95",
    "vad": "khaki",
    "dsp": "powderblue",
    "recurrent": "plum",
    "dense": "papayawhip",
    "nn": "thistle",
    "binary": "snow2",
    "shape": "mistyrose",
    "default": "white",
}
# The same colours as RGB for DGML (Visual Studio understands hex everywhere, not every X11 name).
HEX = {
    "palegreen": "#98FB98", "lightsalmon": "#FFA07A", "gray95": "#F2F2F2", "khaki": "#F0E68C",
    "powderblue": "#B0E0E6", "plum": "#DDA0DD", "papayawhip": "#FFEFD5", "thistle": "#D8BFD8",
    "snow2": "#EEE9E9", "mistyrose": "#FFE4E1", "white": "#FFFFFF",
}

# Graphviz node attributes an IR attribute or metadata key could collide with; such properties are written
# under "ir_<key>" in dot so that, e.g., Reshape's ``shape`` attribute does not change the node's box.
_GRAPHVIZ_NODE_ATTRS = frozenset(
    "area class color colorscheme comment distortion fixedsize fontcolor fontname fontsize gradientangle group "
    "height href id image imagepos imagescale label labelloc layer margin nojustify ordering orientation "
    "penwidth peripheries pin pos rects regular root samplepoints shape shapefile showboxes sides skew "
    "sortv style target tooltip URL vertices width xlabel xlp z".split()
)


_MAX_SAME_GROUPS = 5  # graphviz: "too many (> 5) same{head,tail} groups for node"


@dataclass
class VizNode:
    """One box: ``id`` (the IR node name), ``label`` lines, string ``properties`` (sorted when written),
    ``fillcolor``, and what the text format needs (op, input references, output shapes, key attributes)."""

    id: str
    label: str
    fillcolor: str
    properties: dict[str, str] = field(default_factory=dict)
    op: str = ""
    input_refs: list[str] = field(default_factory=list)
    output_shapes: list[str] = field(default_factory=list)
    key_attrs: list[str] = field(default_factory=list)
    subtitle: str = ""


@dataclass
class VizEdge:
    """One connection: producer output port → consumer input port."""

    source: str
    target: str
    source_port: str
    target_port: str
    label: str = ""
    control: bool = False
    tail_label: str = ""


@dataclass
class VizGraph:
    """Nodes in the graph's (topological, stable) order and edges in consumer order."""

    name: str
    nodes: list[VizNode]
    edges: list[VizEdge]


# ---------------------------------------------------------------------------------------------- building
def shape_text(shape: tuple[int, ...], joiner: str = TIMES) -> str:
    """Dims joined ELL's way; a scalar is ``1``."""
    return joiner.join(str(d) for d in shape) if shape else "1"


def _type_text(value: Value, sep: str = "") -> str:
    dtype = "" if value.dtype == "float32" else sep + value.dtype
    return f"{dtype}[{shape_text(value.shape, ', ')}]"


def fill_colour(opdef: OpDef) -> str:
    """The fill colour of an op, derived from its category and traits (never from a list of op names)."""
    if opdef.category == "io":
        return PALETTE["input" if not opdef.inputs else "output"]
    if opdef.category == "constant":
        return PALETTE["constant"]
    if "vad" in opdef.traits:
        return PALETTE["vad"]
    if opdef.category == "dsp":
        return PALETTE["dsp"]
    if "recurrent" in opdef.traits:
        return PALETTE["recurrent"]
    if opdef.category == "nn":
        return PALETTE["dense" if "weights" in opdef.input_names else "nn"]
    if "binary" in opdef.traits:
        return PALETTE["binary"]
    if opdef.category == "shape":
        return PALETTE["shape"]
    return PALETTE["default"]


def node_label(opdef: OpDef) -> str:
    """ELL's label: the operator symbol for binary ops, the operation name for unary ops, else the op name."""
    if opdef.symbol and ({"binary", "unary"} & opdef.traits):
        return opdef.symbol
    return opdef.name


def _attr_text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4:  # small constants (reset triggers, offsets) are worth seeing
            items = [str(v) for v in value.reshape(-1)]  # numpy scalars print their shortest round-trip form
            return "[" + ", ".join(items) + "]"
        return f"{value.dtype.name}[{shape_text(value.shape, ', ')}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_attr_text(v) for v in value) + "]"
    return str(value)


def _key_attrs(node: Node, opdef: OpDef) -> list[str]:
    """Attributes worth printing: required ones and those differing from the op's default."""
    out = []
    for key, spec in opdef.attrs.items():
        value = node.attrs.get(key)
        if node.op == "Input" and key in ("shape", "dtype"):
            continue  # already shown as the output type
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        if spec.required or isinstance(value, np.ndarray) or value != default:
            out.append(f"{key}={_attr_text(value)}")
    return out


def _port_names(opdef: OpDef, count: int) -> list[str]:
    names = opdef.input_names
    if opdef.variadic:
        return [names[min(i, len(names) - 1)] + (f"[{i}]" if i >= len(names) - 1 else "") for i in range(count)]
    return names[:count]


def build_viz(graph: Graph, annotations: Mapping[str, Mapping[str, str]] | None = None) -> VizGraph:
    """The neutral picture of ``graph``.

    Args:
        graph: any graph (it is only read).
        annotations: node name → extra properties for that node (e.g. from a diff tool); a ``fillcolor`` key
            overrides the colour, ``note`` adds a label line. Unknown node names raise InputError.

    Returns:
        A VizGraph with one VizNode per IR node, in the graph's order, and one VizEdge per connected input.
    """
    annotations = dict(annotations or {})
    unknown = sorted(set(annotations) - {n.name for n in graph.nodes})
    if unknown:
        raise InputError(f"annotations name nodes not in graph {graph.name!r}: {', '.join(unknown)}")
    nodes: list[VizNode] = []
    edges: list[VizEdge] = []
    for node in graph.nodes:
        opdef = node.opdef
        label = node_label(opdef)
        props: dict[str, str] = {"op": node.op}
        if label != node.op:
            props["name"] = node.op  # ELL: BinaryOperation/UnaryOperation nodes carry their type name
        for key, value in node.attrs.items():
            props[key] = _attr_text(value)
        props.update({str(k): str(v) for k, v in node.metadata.items()})
        connected = [v for v in node.inputs if v is not None]
        if connected:
            props["inputs"] = ", ".join(shape_text(v.shape) for v in connected)
        if node.outputs:
            props["outputs"] = ", ".join(shape_text(v.shape) for v in node.outputs)
            props["type"] = node.outputs[0].dtype
        fill = fill_colour(opdef)
        extra = {str(k): str(v) for k, v in annotations.get(node.name, {}).items()}
        fill = extra.pop("fillcolor", fill)
        props.update(extra)
        props["fillcolor"] = fill
        ports = _port_names(opdef, len(node.inputs))
        refs = []
        for i, value in enumerate(node.inputs):
            if value is None:
                refs.append("-")
                continue
            refs.append(value.name + _type_text(value, ":"))
            # Port names say something only where inputs play different roles (not a + b, not one input).
            many = (len(opdef.inputs) > 1 or opdef.variadic) and "commutative" not in opdef.traits
            edges.append(VizEdge(
                source=value.producer.name, target=node.name,
                source_port=value.producer.opdef.output_names[value.index], target_port=ports[i],
                label=ports[i] if many else "", control=value.dtype in ("int32", "int64", "bool"),
                tail_label=value.producer.opdef.output_names[value.index] if len(value.producer.outputs) > 1 else "",
            ))
        # ELL appends a metadata "name" to the label; kwsc shows the node name when it says more than the op
        # (not for "buffer", "gru_1" …).
        if "name" in node.metadata:
            lines = [str(node.metadata["name"])]
        else:
            lines = [] if re.fullmatch(re.escape(node.op.lower()) + r"(_\d+)?", node.name) else [node.name]
        if node.outputs:
            lines.append(", ".join(f"[{shape_text(v.shape)}]" for v in node.outputs))
        if "note" in extra:
            lines.append(extra["note"])
        subtitle = "\n".join(lines)
        nodes.append(VizNode(
            id=node.name, label=label, fillcolor=fill, properties=props, op=node.op, input_refs=refs,
            output_shapes=[(v.name.rsplit(".", 1)[-1] if len(node.outputs) > 1 else "") + _type_text(v)
                           for v in node.outputs],
            key_attrs=_key_attrs(node, opdef), subtitle=subtitle,
        ))
    return VizGraph(graph.name, nodes, edges)


# ---------------------------------------------------------------------------------------------- writers
def _dot_string(text: str) -> str:
    """A double-quoted dot string; non-ASCII as HTML entities (as ELL writes ×), newlines as centred breaks."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = "".join(c if 32 <= ord(c) < 127 else f"&#x{ord(c):x};" for c in text)
    return f'"{text}"'


def to_dot(viz: VizGraph) -> str:
    """Graphviz dot in ELL's layout (``digraph network_graph``, rounded filled boxes, port names on edges)."""
    lines = [
        "digraph network_graph {",
        f"graph [label={_dot_string(viz.name)} labelloc=t fontname=\"Helvetica\" fontsize=14 nodesep=0.3 ranksep=0.35];",
        'node [shape=box style="rounded, filled" fontname="Helvetica" fontsize=11 margin="0.12,0.04"];',
        'edge [fontname="Helvetica" fontsize=8 color="gray35" fontcolor="gray25" arrowsize=0.7];',
    ]
    for node in viz.nodes:
        label = node.label + ("\n" + node.subtitle if node.subtitle else "")
        fields = [f"label={_dot_string(label)}"]
        props = {(key if key == "fillcolor" or key not in _GRAPHVIZ_NODE_ATTRS else f"ir_{key}"): value
                 for key, value in node.properties.items()}
        for key in sorted(props):  # alphabetical, as ELL's std::map
            fields.append(f"{_dot_string(key)}={_dot_string(props[key])}")
        if node.op == "Constant":
            fields.append('fontsize=9 color="gray50" fontcolor="gray30"')
        lines.append(f"{_dot_string(node.id)} [ {', '.join(fields)}];")
    # ELL writes samehead/sametail on every edge; graphviz refuses more than 5 groups per node, so beyond that
    # the port names travel as plain attributes (and in the edge label).
    heads: dict[str, set[str]] = {}
    tails: dict[str, set[str]] = {}
    for edge in viz.edges:
        heads.setdefault(edge.target, set()).add(edge.target_port)
        tails.setdefault(edge.source, set()).add(edge.source_port)
    for edge in viz.edges:
        head = "samehead" if len(heads[edge.target]) <= _MAX_SAME_GROUPS else "ir_samehead"
        tail = "sametail" if len(tails[edge.source]) <= _MAX_SAME_GROUPS else "ir_sametail"
        fields = [f"{head}={_dot_string(edge.target_port)}", f"{tail}={_dot_string(edge.source_port)}"]
        if edge.label:
            fields.append(f"label={_dot_string(' ' + edge.label)}")
        if edge.tail_label:
            fields.append(f"taillabel={_dot_string(edge.tail_label)}")
        if edge.control:
            fields.append('style=dashed color="darkorange3" fontcolor="darkorange3"')
        lines.append(f"{_dot_string(edge.source)} -> {_dot_string(edge.target)}[{', '.join(fields)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _xml_attr(text: str) -> str:
    """An XML attribute value for single quotes: ELL escapes & < > ' (and we also escape " and line breaks)."""
    text = "".join(c for c in str(text) if c in "\n\t" or ord(c) >= 32)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
            .replace('"', "&quot;").replace("\n", "&#xA;").replace("\t", "&#x9;"))


_XML_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def _xml_name(key: str) -> str:
    name = _XML_NAME_BAD.sub("_", key) or "_"
    return name if (name[0].isalpha() or name[0] == "_") else "_" + name


def to_dgml(viz: VizGraph) -> str:
    """Visual Studio DGML: ``<DirectedGraph xmlns='http://schemas.microsoft.com/vs/2009/dgml'>`` with Nodes,
    Links, Properties and Styles; node properties become attributes, colours ``Background``."""
    reserved = {"Id", "Label", "Background"}
    lines = ["<?xml version='1.0' encoding='utf-8'?>",
             "<DirectedGraph xmlns='http://schemas.microsoft.com/vs/2009/dgml'>", "  <Nodes>"]
    names: set[str] = set()
    for node in viz.nodes:
        attrs = [f"Id='{_xml_attr(node.id)}'", f"Label='{_xml_attr(node.label + (chr(10) + node.subtitle if node.subtitle else ''))}'",
                 f"Background='{HEX.get(node.fillcolor, node.fillcolor)}'"]
        written = set(reserved)
        for key in sorted(node.properties):
            name = _xml_name(key)
            if key == "fillcolor" or name in written:
                continue
            written.add(name)
            names.add(name)
            attrs.append(f"{name}='{_xml_attr(node.properties[key])}'")
        lines.append(f"    <Node {' '.join(attrs)}/>")
    lines.append("  </Nodes>")
    lines.append("  <Links>")
    for edge in viz.edges:
        attrs = [f"Source='{_xml_attr(edge.source)}'", f"Target='{_xml_attr(edge.target)}'",
                 f"SourcePort='{_xml_attr(edge.source_port)}'", f"TargetPort='{_xml_attr(edge.target_port)}'"]
        if edge.label:
            attrs.append(f"Label='{_xml_attr(edge.label)}'")
        lines.append(f"    <Link {' '.join(attrs)}/>")
    lines.append("  </Links>")
    lines.append("  <Properties>")
    for name in sorted(names | {"SourcePort", "TargetPort"}):
        lines.append(f"    <Property Id='{name}' DataType='System.String'/>")
    lines.append("  </Properties>")
    lines.append("  <Styles/>")
    lines.append("</DirectedGraph>")
    return "\n".join(lines) + "\n"


def to_text(viz: VizGraph) -> str:
    """One line per node in dependency order: ``name: Op(ref[shape], …) -> [shape]  key=value …``."""
    lines = []
    for node in viz.nodes:
        out = ", ".join(node.output_shapes) if node.output_shapes else "()"
        line = f"{node.id}: {node.op}({', '.join(node.input_refs)}) -> {out}"
        if node.key_attrs:
            line += "  " + " ".join(node.key_attrs)
        lines.append(line)
    return "\n".join(lines) + "\n"


FORMATS = ("text", "dot", "dgml", "svg", "png", "pdf")
RENDERED_FORMATS = ("svg", "png", "pdf")


def render(dot_text: str, fmt: str, timeout: float = 120.0) -> bytes:
    """Run graphviz's ``dot -T<fmt>`` on dot text and return the picture's bytes.

    Raises:
        ToolchainError: ``dot`` is not installed, timed out, or rejected the input.
    """
    if fmt not in RENDERED_FORMATS:
        raise InputError(f"cannot render format {fmt!r}; one of {', '.join(RENDERED_FORMATS)}")
    exe = shutil.which("dot")
    if exe is None:
        raise ToolchainError("graphviz's `dot` is not installed; install graphviz: apt-get install graphviz")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"graphviz `dot -T{fmt}` took longer than {timeout:.0f} s") from None
    if proc.returncode != 0 or not proc.stdout:
        first = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[0]
        raise ToolchainError(f"graphviz `dot -T{fmt}` failed (exit {proc.returncode}): {first}")
    return proc.stdout


def format_graph(graph: Graph, fmt: str, annotations: Mapping[str, Mapping[str, str]] | None = None) -> bytes:
    """The graph in one of ``FORMATS`` as bytes (text formats UTF-8)."""
    viz = build_viz(graph, annotations)
    if fmt == "text":
        return to_text(viz).encode("utf-8")
    if fmt == "dot":
        return to_dot(viz).encode("utf-8")
    if fmt == "dgml":
        return to_dgml(viz).encode("utf-8")
    return render(to_dot(viz), fmt)


def format_for_path(path: str | Path) -> str | None:
    """The output format an extension implies (``.gv`` is dot, ``.txt`` text), or None."""
    ext = Path(path).suffix.lower().lstrip(".")
    return {"gv": "dot", "txt": "text"}.get(ext, ext if ext in FORMATS else None)
