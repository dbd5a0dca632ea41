"""ONNX's own node tests for the ops of issue 15, run through kwsc: import → reference interpreter, and the
compiled C (many cases in one C project per target).

The cases are generated from the pinned onnx package (``onnx.backend.test.case.node``: importing an op's module
runs its ``export_*`` functions, each of which records one single-node model with its inputs and expected
outputs). Two adaptations, both stated in the README:
  * inputs that kwsc needs constant (Conv weights and bias, BatchNormalization's statistics, Clip's bounds,
    Pad's pads/value/axes, the reductions' axes) become initializers with the test's values;
  * a model generated at an opset above 21 (Conv, the pools, HardSigmoid… are at 22, Pad at 25: those versions
    only added element types) is run at opset 21 when the node is valid for the opset-21 schema.
Everything else (element types, attributes, shapes) is the test's own; a case kwsc refuses counts as failed,
with the one-line reason it gave.

``python -m tests.frontends.onnx_node_cases`` prints the README's per-op table (reference and every C target).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["OPS", "NodeCase", "collect", "run_reference", "run_c", "merge_graphs", "table"]

# op → the module of onnx.backend.test.case.node that generates its cases
OPS = {"Conv": "conv", "BatchNormalization": "batch_normalization", "MaxPool": "maxpool",
       "AveragePool": "averagepool", "GlobalAveragePool": "globalaveragepool", "GlobalMaxPool": "globalmaxpool",
       "Pad": "pad", "Clip": "clip", "ReduceMean": "reducemean", "ReduceMax": "reducemax", "Exp": "exp",
       "Log": "log", "Sqrt": "sqrt", "Abs": "abs", "Neg": "neg", "Pow": "pow", "Max": "max", "Min": "min",
       "LeakyRelu": "leakyrelu", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "Softmax": "softmax",
       "LogSoftmax": "logsoftmax", "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
# inputs (by position) that kwsc reads as constants
STATIC_INPUTS = {"Conv": {1, 2}, "BatchNormalization": {1, 2, 3, 4}, "Clip": {1, 2}, "Pad": {1, 2, 3},
                 "ReduceMean": {1}, "ReduceMax": {1}}
NEWEST_OPSET = 21


@dataclass
class NodeCase:
    """One node test: its model (adapted), feeds and expected outputs, and what happened to it in kwsc."""

    name: str
    op: str
    model: object
    feeds: dict[str, np.ndarray]
    expected: list[np.ndarray]
    rtol: float
    atol: float
    adapted: list[str] = field(default_factory=list)
    graph: object = None
    reference: str | None = None  # None: passed; else why it failed
    c: dict[str, str | None] = field(default_factory=dict)  # arch → None (passed) or why it failed


def _adapt(case) -> NodeCase:
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    node = model.graph.node[0]
    inputs, expected = case.data_sets[0]
    present = [name for name in node.input if name]
    feeds = dict(zip(present, inputs))
    adapted = []
    static = [node.input[i] for i in sorted(STATIC_INPUTS.get(node.op_type, ())) if i < len(node.input)
              and node.input[i]]
    for name in static:
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(feeds.pop(name)), name))
        for i, vi in enumerate(model.graph.input):
            if vi.name == name:
                del model.graph.input[i]
                break
    if static:
        adapted.append(f"{', '.join(static)} as initializers")
    opset = model.opset_import[0].version
    if opset > NEWEST_OPSET:
        schema = onnx.defs.get_schema(node.op_type, NEWEST_OPSET)
        if {a.name for a in node.attribute} <= set(schema.attributes):
            model.opset_import[0].version = NEWEST_OPSET
            adapted.append(f"opset {opset} → {NEWEST_OPSET}")
    return NodeCase(case.name.removeprefix("test_"), node.op_type, model, feeds, [np.asarray(e) for e in expected],
                    case.rtol, case.atol, adapted)


def collect(ops=OPS) -> list[NodeCase]:
    """The single-node cases of ``ops`` from the pinned onnx, adapted (see the module docstring)."""
    import warnings

    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for op in ops:
            importlib.import_module(f"onnx.backend.test.case.node.{OPS[op]}")
    cases = [c for c in node_cases._NodeTestCases if len(c.model.graph.node) == 1
             and c.model.graph.node[0].op_type in ops]
    unique = {c.name: c for c in cases}  # a module imported twice would record nothing new, but be safe
    return [_adapt(c) for c in unique.values()]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:240]


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {list(got.shape)} ≠ expected {list(want.shape)}"
    if want.dtype.kind in "fc":
        bad = ~np.isclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = got.astype(want.dtype) != want
    if bad.any():
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))[bad].max()
        return f"{int(bad.sum())} of {want.size} values differ (max |Δ| {diff:.3g})"
    return None


def run_reference(cases: list[NodeCase]) -> None:
    """Import each case and run the reference interpreter; sets ``case.reference`` (None: passed)."""
    from kwsc.backends.reference import Interpreter
    from kwsc.errors import KwscError
    from kwsc.frontends.onnx import import_onnx

    for case in cases:
        try:
            case.graph = import_onnx(case.model)
            outs = Interpreter(case.graph).step({n.attrs["name"]: case.feeds[n.attrs["name"]]
                                                 for n in case.graph.input_nodes})
        except KwscError as exc:
            case.reference = _one_line(exc)
            continue
        outs = outs if isinstance(outs, dict) else {case.graph.output_nodes[0].attrs["name"]: outs}
        names = [vi.name for vi in case.model.graph.output]
        problems = [p for name, want in zip(names, case.expected)
                    if (p := _compare(outs[name], want, case.rtol, case.atol))]
        case.reference = "; ".join(problems) or None


def merge_graphs(graphs: dict[str, object]):
    """One graph holding every given graph side by side (inputs, nodes and outputs prefixed by the key)."""
    from kwsc.ir import Graph, verify

    merged = Graph("node_tests")
    for key, graph in graphs.items():
        mapping = {}
        for node in graph.nodes:
            attrs = dict(node.attrs)
            if node.op in ("Input", "Output"):
                attrs["name"] = f"{key}__{attrs['name']}"
            new = merged.add(node.op, [mapping[v] if v is not None else None for v in node.inputs], attrs,
                             name=f"{key}__{node.name}")
            mapping.update(zip(node.outputs, new.outputs))
    return verify(merged)


def run_c(cases: list[NodeCase], arch: str, workdir: Path | None = None) -> None:
    """Run the cases that pass in the reference through generated C for ``arch``, all in one project;
    sets ``case.c[arch]`` (None: passed; a case the C backend refuses keeps the one-line reason)."""
    from kwsc.backends.c import emit_c, run_harness
    from kwsc.backends.c.lowering import lower_graph
    from kwsc.backends.c.targets import get_target
    from kwsc.errors import KwscError

    accepted = {}
    for index, case in enumerate(cases):
        if case.reference is not None:
            case.c[arch] = "fails in the reference"
            continue
        try:
            lower_graph(case.graph, "probe", 1)
        except KwscError as exc:
            case.c[arch] = _one_line(exc)
            continue
        accepted[f"c{index}"] = case
    if not accepted:
        return
    merged = merge_graphs({key: case.graph for key, case in accepted.items()})
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        # only the test harness is built: the example program's main.c takes one input (issue 16)
        emit_c(merged, Path(folder) / arch, arch=arch)
        exe = "harness" + get_target(arch).exe_suffix
        subprocess.run(["make", "-s", f"-j{min(os.cpu_count() or 1, 4)}", exe], cwd=Path(folder) / arch, check=True,
                       capture_output=True, timeout=900)
        frame = np.concatenate([np.asarray(case.feeds[n.attrs["name"]], np.float32).reshape(-1)
                                for case in accepted.values() for n in case.graph.input_nodes])
        out = run_harness(Path(folder) / arch, arch, frame[None])[0]
    start = 0
    for case in accepted.values():
        problems = []
        names = [vi.name for vi in case.model.graph.output]
        for node in case.graph.output_nodes:
            size = node.inputs[0].type.size
            got = out[start:start + size].reshape(node.inputs[0].shape)
            start += size
            want = case.expected[names.index(node.attrs["name"])]
            problem = _compare(got, want.reshape(got.shape) if want.size == got.size else want, case.rtol, case.atol)
            if problem:
                problems.append(problem)
        case.c[arch] = "; ".join(problems) or None


def table(cases: list[NodeCase], arches: list[str]) -> str:
    """The README's markdown table: per op, cases passing in the reference and in C per target, and totals."""
    ops = sorted({c.op for c in cases}, key=list(OPS).index)
    head = "| op | cases | reference | " + " | ".join(f"C {a}" for a in arches) + " |"
    lines = [head, "|" + "---|" * (3 + len(arches))]
    for op in ops + ["all"]:
        mine = [c for c in cases if op in ("all", c.op)]
        cells = [str(sum(c.reference is None for c in mine))]
        cells += [str(sum(c.c.get(a, "not run") is None for c in mine)) for a in arches]
        label = "**all**" if op == "all" else op
        lines.append(f"| {label} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(cases: list[NodeCase], arches: list[str]) -> str:
    """Every failing case with its reason, one line each (a reason shared by every C target is said once)."""
    lines = []
    for case in cases:
        if case.reference is not None:
            lines.append(f"- `{case.name}` ({case.op}), reference and C: {case.reference}")
            continue
        reasons = {arch: case.c.get(arch) for arch in arches if case.c.get(arch) is not None}
        if reasons and len(set(reasons.values())) == 1 and len(reasons) == len(arches):
            lines.append(f"- `{case.name}` ({case.op}), C: {next(iter(reasons.values()))}")
        else:
            lines += [f"- `{case.name}` ({case.op}), C {arch}: {why}" for arch, why in reasons.items()]
    return "\n".join(lines)


if __name__ == "__main__":  # the README table: every case, every target
    import sys

    from kwsc.backends.c import toolchain_missing

    all_cases = collect()
    run_reference(all_cases)
    targets = [a for a in ("host", "armv7", "aarch64", "cortex-m4") if not toolchain_missing(a)]
    for target in targets:
        run_c(all_cases, target)
    print(table(all_cases, targets))
    print()
    print(failures(all_cases, targets))
    sys.exit(0)
