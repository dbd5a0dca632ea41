"""``emit_c``: render a graph as a self-contained C99 project (model, runtime kernels, build files, example).

The graph is lowered (``lowering.py``: kernel table, state from the registry, memory plan, call arguments), then
rendered by the model templates, which render every step the same way (``_calls.j2``); the runtime kernels the
model's families need are copied beside it. Output is byte-identical for identical input: names come from one
namespace, order from the graph, numbers from one formatter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kwsc.backends.c.kernels import BASE_SOURCES, OPT_HEADERS, OPT_SOURCES, RUNTIME_HEADERS, RUNTIME_SOURCES
from kwsc.backends.c.lowering import LoweredModel, float_literal, lower_graph
from kwsc.backends.c.project import write_project
from kwsc.backends.c.targets import Target, get_target
from kwsc.errors import InputError
from kwsc.ir.graph import Graph

__all__ = ["EmitResult", "emit_c", "render_project", "runtime_dir", "quantized_graph"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
WEIGHTS_DTYPES = ("float32", "int8")


def runtime_dir() -> Path:
    """Where the C runtime lives: ``kwsc/runtime`` inside the package (``runtime/`` at the repository root is a
    symlink to it), so an editable install and ``pip install .`` (package data) find the same files."""
    return Path(__file__).resolve().parents[2] / "runtime"


@dataclass
class EmitResult:
    """What ``emit_c`` produced.

    Attributes:
        outdir: the project folder.
        name: the module name (C prefix).
        arch: the target architecture.
        files: the files written, relative to ``outdir``, sorted.
        arena_bytes: activation memory of one instance (the static plan's arena).
        state_bytes: bytes of one ``<name>_State`` excluding the arena, as laid out in the struct (estimate).
        weights_dtype: ``float32`` or ``int8``.
        built: artifacts built (paths relative to ``outdir``); empty unless ``build=True``.
        size: the size report (``build.SizeReport``) when ``size_report=True``.
        notes: one line per file of the user's that was not simply replaced (``project.ProjectWrite.notes``).
    """

    outdir: Path
    name: str
    arch: str
    files: list[str]
    arena_bytes: int
    state_bytes: int
    weights_dtype: str
    built: list[str] = field(default_factory=list)
    size: Any = None
    notes: list[str] = field(default_factory=list)


def _c_values(const) -> str:
    values = const.values
    if const.ctype == "float":
        items, per_line = [float_literal(v) for v in values.astype(np.float32)], 8
    elif const.ctype == "double":
        items, per_line = [repr(float(v)) for v in values.astype(np.float64)], 4
    else:
        items, per_line = [str(int(v)) for v in values.tolist()], 16
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + line for line in lines)


def _c_string(text: str) -> str:
    out = ['"']
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def _c_comment(text: str) -> str:
    """A name safe inside a C comment: printable ASCII only, no comment delimiters or line continuations (a node
    named ``x */ code /*`` or holding a newline would otherwise put code into the generated model)."""
    safe = "".join(ch if 32 <= ord(ch) < 127 and ch != "\\" else "?" for ch in str(text))
    return safe.replace("*/", "*?").replace("/*", "?*")


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["c_values"] = _c_values
    env.filters["c_string"] = _c_string
    env.filters["c_comment"] = _c_comment
    return env


def _runtime_sources(model: LoweredModel, target: Target) -> tuple[list[str], list[str]]:
    files = sorted({f for family in model.families for f in RUNTIME_SOURCES[family]} | set(BASE_SOURCES))
    def use_opt(f: str) -> bool:
        int8 = bool({"quant", "qconv"} & set(model.families))  # the integer products use each target's SIMD
        return f in OPT_SOURCES and (target.kernels == "opt" or (f in target.opt_files and int8))

    ref = [f"runtime/src/ref/{f}" for f in files if not use_opt(f)]
    opt = [f"runtime/src/opt/{f}" for f in files if use_opt(f)]
    return ref, opt


def render_project(model: LoweredModel, target: Target) -> dict[str, bytes]:
    """All files of the project: relative path → content."""
    env = _environment()
    ref_sources, opt_sources = _runtime_sources(model, target)
    headers, opt_headers = list(RUNTIME_HEADERS), (list(OPT_HEADERS) if opt_sources else [])
    ctx = {"m": model, "t": target, "ref_sources": ref_sources, "opt_sources": opt_sources,
           "headers": [f"runtime/{h}" for h in headers], "opt_headers": [f"runtime/{h}" for h in opt_headers]}
    files: dict[str, bytes] = {}
    for template, out in (("model.h.j2", f"{model.name}.h"), ("model.c.j2", f"{model.name}.c"),
                          ("main.c.j2", "main.c"), ("harness.c.j2", "test_harness.c"), ("probe.c.j2", "probe.c"),
                          ("bench.c.j2", "bench.c"),
                          ("Makefile.j2", "Makefile"), ("CMakeLists.txt.j2", "CMakeLists.txt")):
        text = env.get_template(template).render(**ctx)
        files[out] = re.sub(r"\n{3,}", "\n\n", text).encode("utf-8")
    # one id for the header and the model source, from their content: model.c checks it at compile time
    pair = (f"{model.name}.h", f"{model.name}.c")
    emit_id = hashlib.sha256(b"".join(files[k] for k in pair)).hexdigest()[:8]
    for key in pair:
        files[key] = files[key].replace(b"@KWSC_EMIT_ID@", emit_id.encode())
    runtime = runtime_dir()
    copies = headers + opt_headers + [p.removeprefix("runtime/") for p in ref_sources + opt_sources]
    if target.artifact == "baremetal":
        copies += list(target.startup) + [target.linker_script]
    for rel in copies:
        files[f"runtime/{rel}"] = (runtime / rel).read_bytes()
    return files


def quantized_graph(graph: Graph) -> Graph:
    """``graph`` with Dense/GRU/LSTM/RNN in int8 arithmetic (the ``quantize`` pass on a copy)."""
    from kwsc.ir.op_quant import to_int8

    out = graph.copy()
    to_int8(out)
    return out


def _state_bytes(model: LoweredModel) -> int:
    return sum(f.nbytes for f in model.state) + 4  # + the ``initialized`` flag


def emit_c(graph: Graph, outdir: str | Path, *, name: str = "model", arch: str = "host", build: bool = False,
           weights_dtype: str = "float32", size_report: bool = False) -> EmitResult:
    """Render ``graph`` as a C99 project in ``outdir`` (and build it, and report its size, when asked).

    Args:
        graph: a verified streaming graph (float inputs).
        outdir: the project folder: a new one appears whole (temp folder + rename); in an existing one the
            files kwsc wrote are replaced, files the user edited are kept (see ``project.write_project``) and
            other files are left alone.
        name: module name, the prefix of every API function (a C identifier).
        arch: ``host``, ``armv7``, ``aarch64`` or ``cortex-m4``.
        build: run ``make`` for the target (host: ``lib<name>.so`` for ``load()``, plus example and harness).
        weights_dtype: ``float32``; or ``int8``: Dense/GRU/LSTM/RNN/Conv in int8 arithmetic (the ``quantize``
            pass: int8 weights with a scale per row, activations quantized per step, int32 accumulation); other
            ops' weights int8 with float activations. Ops quantized already (QDense …) are int8 either way.
        size_report: build and measure flash (code, weights, tables) and RAM (state, activations, stack).

    Returns:
        An ``EmitResult``.

    Raises:
        InputError: a bad name, arch or weights dtype.
        BackendError: the graph has an op, dtype or shape the C backend does not support (before any file is
            written). ToolchainError: the build failed or a tool is missing.
    """
    if not _IDENT.match(name):
        raise InputError(f"module name {name!r} is not a C identifier (letters, digits, _; not starting with a digit)")
    if weights_dtype not in WEIGHTS_DTYPES:
        raise InputError(f"weights dtype {weights_dtype!r} not supported; choose one of: {', '.join(WEIGHTS_DTYPES)}")
    target = get_target(arch)
    if weights_dtype == "int8":
        graph = quantized_graph(graph)
    model = lower_graph(graph, name, target.align, quantize=weights_dtype == "int8", qlayout=target.qlayout)
    files = render_project(model, target)
    outdir = Path(outdir).absolute()  # the build and size tools run inside it: relative paths would break
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    written = write_project(outdir, files)  # unchanged files keep their timestamps, so make does not rebuild them
    result = EmitResult(outdir=outdir, name=name, arch=arch, files=sorted(files), arena_bytes=4 * model.arena_size,
                        state_bytes=_state_bytes(model), weights_dtype=weights_dtype, notes=written.notes())
    if build or size_report:
        from kwsc.backends.c.build import build_project

        result.built = build_project(outdir, target)
    if size_report:
        from kwsc.backends.c.build import size_report as measure

        result.size = measure(outdir, target, name)
    return result
