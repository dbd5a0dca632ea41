"""``kwsc import / transform / emit``: models into the IR, passes over it, and out through a backend."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from pathlib import Path

from kwsc.commands._util import add_command, existing_file, option, parse_bool
from kwsc.errors import BackendError, InputError

__all__ = ["register", "graph_summary"]

ORDER = 35

_IMPORT_DESCRIPTION = """\
Translate a model (.onnx from PyTorch/tf2onnx/Keras, .ell, or .kwsc) into kwsc's native .kwsc file and print
a one-line summary: node count, inputs and outputs with shapes, recurrent layers.

examples:
  kwsc import GRU128KeywordSpotter.onnx -o GRU128KeywordSpotter.kwsc
  kwsc import featurizer.ell -o featurizer.kwsc
"""

_TRANSFORM_DESCRIPTION = """\
Run graph passes over a model (.kwsc, or .onnx/.ell imported on the fly) and write the result atomically.
The passes run in the order given; the graph is verified after each one; what each changed is printed.
Pass options (below) go to every listed pass that has them; `kwsc transform --list` describes them.

examples:
  kwsc transform model.onnx --passes shapes,fold,dce -o model.kwsc
  kwsc transform GRU128KeywordSpotter.kwsc --passes add_vad --sample_rate 16000 --window_size 512 \\
      --tau_up 1.5 --tau_down 0.09 --large_input 4 --gain_att 0.01 --threshold_up 3.5 --threshold_down 0.9 \\
      --level_threshold 0.02 -o out.kwsc
  kwsc transform classifier.kwsc --passes fuse_featurizer,fuse_dense --featurizer featurizer.kwsc -o model.kwsc
"""

_EMIT_DESCRIPTION = """\
Write a model through a backend:
  ell   ELL's .ell JSON archive            c     a C99 project (folder) for host/armv7/aarch64/cortex-m4
  dot   graphviz source                    dgml  Visual Studio DGML
  text  one line per node                  onnx  ONNX (every op must map), for Netron and onnxruntime
Without --target the target follows -o's extension (.ell .dot .gv .dgml .txt .onnx; anything else: c).

examples:
  kwsc emit model.kwsc --target ell -o model.ell
  kwsc emit model.kwsc --target dot -o model.dot
  kwsc emit model.kwsc --target c --arch cortex-m4 --name model -o build/model
"""

TARGETS = ("ell", "c", "dot", "dgml", "text", "onnx")
_TARGET_OF_SUFFIX = {".ell": "ell", ".dot": "dot", ".gv": "dot", ".dgml": "dgml", ".txt": "text", ".onnx": "onnx"}


# ------------------------------------------------------------------------------------------------ helpers
def graph_summary(graph) -> str:
    """One line: node count, inputs and outputs with types, recurrent layers."""
    from kwsc.ir.ops import ops_with_trait

    def values(nodes):
        return ", ".join(f"{n.attrs['name']} {n.outputs[0].type if n.outputs else n.inputs[0].type}"
                         for n in nodes) or "none"

    recurrent = ops_with_trait("recurrent")
    rnns = [f"{n.op}({n.attrs['hidden_size']})" for n in graph.nodes if n.op in recurrent]
    vads = len(graph.find("VAD"))
    parts = [f"{len(graph)} nodes", f"inputs: {values(graph.input_nodes)}", f"outputs: {values(graph.output_nodes)}",
             f"recurrent: {', '.join(rnns) if rnns else 'none'}"]
    if vads:
        parts.append(f"VAD: {vads}")
    return "; ".join(parts)


def _load(path: str, dims: dict[str, int] | None = None):
    from kwsc.models import load_model

    return load_model(existing_file(path, "model file"), dims=dims)


def _dims(given: list[str] | None) -> dict[str, int] | None:
    """``--dim T=98`` (repeatable) → ``{"T": 98}``; InputError on anything else."""
    dims = {}
    for item in given or ():
        name, _, length = item.partition("=")
        if not name or not length.isdigit() or int(length) < 1:
            raise InputError(f"--dim {item!r}: expected NAME=LENGTH with a positive length (e.g. --dim T=98)")
        dims[name] = int(length)
    return dims or None


def _field_docs(options_cls) -> dict[str, str]:
    """``name: text`` lines of the options class's ``Attributes:`` section."""
    docs: dict[str, str] = {}
    current = None
    in_attrs = False
    for line in (options_cls.__doc__ or "").splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_attrs = True
            continue
        if not in_attrs or not stripped:
            continue
        head, sep, rest = stripped.partition(":")
        if sep and head.isidentifier() and " " not in head:
            current = head
            docs[current] = rest.strip()
        elif current:
            docs[current] += " " + stripped
    return docs


def _cli_fields():
    """(field name, python type, [(pass name, default, doc)]) for every command-line pass option."""
    from kwsc.passes import all_passes

    fields: dict[str, tuple[type, list]] = {}
    for info in all_passes().values():
        hints = typing.get_type_hints(info.options)
        docs = _field_docs(info.options)
        for f in dataclasses.fields(info.options):
            if f.metadata.get("cli", True) is False:
                continue
            kind = _plain_type(hints.get(f.name, str))
            entry = fields.setdefault(f.name, (kind, []))
            entry[1].append((info.name, f.default, docs.get(f.name, "")))
    return fields


def _plain_type(kind):
    """``float`` for ``float | None`` (an option that may be left unset), else the hint itself."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if len(args) == 1 else kind


def _type_of(kind):
    return {bool: parse_bool, int: int, float: float}.get(kind, str)


# ------------------------------------------------------------------------------------------------ register
def register(sub) -> None:
    p = add_command(sub, "import", run_import, help="translate a model (.onnx, .ell) into a .kwsc file",
                    description=_IMPORT_DESCRIPTION)
    p.add_argument("model", help="model file (.onnx, .ell, .kwsc)")
    option(p, "--output", "-o", required=True, metavar="OUT.kwsc", help="output model (written atomically)")
    option(p, "--dim", action="append", metavar="NAME=N",
           help="length of a named symbolic input dim of an ONNX model (repeatable), e.g. the window of a "
                "convolutional model: --dim T=98; without it a symbolic dim is 1 (one frame per tick)")

    p = add_command(sub, "transform", run_transform, help="run graph passes (fold, dce, add_vad, …) over a model",
                    description=_TRANSFORM_DESCRIPTION)
    p.add_argument("model", nargs="?", help="model file (.kwsc, .onnx, .ell)")
    option(p, "--output", "-o", metavar="OUT.kwsc", help="output model (written atomically; may equal the input)")
    option(p, "--passes", "-p", metavar="A,B,…", help="comma-separated pass names, run in order")
    option(p, "--list", action="store_true", help="list the passes, what they do and their options, then exit")
    option(p, "--featurizer", metavar="F.kwsc", help="featurizer model for the fuse_featurizer pass")
    group = p.add_argument_group("pass options (each goes to the listed passes that take it)")
    for name, (kind, owners) in _cli_fields().items():
        text = "; ".join(f"{pass_name}: {doc} (default {default})".replace("``", "")
                         for pass_name, default, doc in owners)
        option(group, f"--{name}", dest=f"pass_opt_{name}", type=_type_of(kind), default=None,
               metavar=kind.__name__.upper() if kind in (int, float, str) else "BOOL", help=text.replace("%", "%%"))

    p = add_command(sub, "emit", run_emit, help="write a model as .ell, a C project, dot, dgml, text or onnx",
                    description=_EMIT_DESCRIPTION)
    p.add_argument("model", help="model file (.kwsc, .onnx, .ell)")
    option(p, "--target", "-t", choices=TARGETS, default=None, help="backend (default: from -o's extension)")
    option(p, "--output", "-o", required=True, metavar="OUT", help="output file (a folder for --target c)")
    c = p.add_argument_group("C target options")
    option(c, "--arch", default=None, help="host, armv7, aarch64 or cortex-m4")
    option(c, "--build", action="store_true", default=None, help="also compile the generated project")
    option(c, "--size_report", action="store_true", default=None, help="report code and data sizes")
    option(c, "--weights_dtype", default=None, help="weight element type (e.g. float32)")
    option(c, "--name", default=None, help="C module name (prefix of the API functions)")


# ------------------------------------------------------------------------------------------------ commands
def run_import(args) -> int:
    from kwsc.models import save_model

    graph = _load(args.model, _dims(args.dim))
    save_model(graph, args.output)
    print(f"imported {args.model} -> {args.output}: {graph_summary(graph)}")
    return 0


def _list_passes() -> None:
    from kwsc.passes import all_passes

    for info in all_passes().values():
        print(f"{info.name:16s} {info.doc}")
        docs = _field_docs(info.options)
        hints = typing.get_type_hints(info.options)
        for f in dataclasses.fields(info.options):
            doc = docs.get(f.name, "").replace("``", "")
            if f.metadata.get("cli", True) is False:
                print(f"    --{f.name} FILE (model file): {doc}")
                continue
            kind = getattr(_plain_type(hints.get(f.name)), "__name__", "value")
            print(f"    --{f.name} ({kind} = {f.default}): {doc}")


def run_transform(args) -> int:
    from kwsc.models import save_model
    from kwsc.passes import get_pass, run_passes

    if args.list:
        _list_passes()
        return 0
    if not args.model:
        raise InputError("transform: a model file is required (or --list)")
    if not args.passes:
        raise InputError("transform: --passes is required (e.g. --passes fold,dce,add_vad); see --list")
    if not args.output:
        raise InputError("transform: -o OUT.kwsc is required")
    names = [n.strip() for n in args.passes.split(",") if n.strip()]
    if not names:
        raise InputError(f"transform: --passes {args.passes!r} names no pass; see --list")
    infos = [get_pass(n) for n in names]  # unknown names fail before any file is read
    given = {k.removeprefix("pass_opt_"): v for k, v in vars(args).items()
             if k.startswith("pass_opt_") and v is not None}
    options: dict[str, dict] = {}
    used: set[str] = set()
    for info in infos:
        fields = {f.name for f in dataclasses.fields(info.options)}
        opts = {k: v for k, v in given.items() if k in fields}
        used |= set(opts)
        if info.name == "fuse_featurizer":
            if not args.featurizer:
                raise InputError("transform: the fuse_featurizer pass needs --featurizer F.kwsc")
            opts["featurizer"] = _load(args.featurizer)
            used.add("featurizer")
        options[info.name] = opts
    unused = sorted(set(given) - used) + (["featurizer"] if args.featurizer and "featurizer" not in used else [])
    if unused:
        raise InputError(f"transform: option(s) {', '.join('--' + u for u in unused)} belong to no pass in "
                         f"--passes {','.join(names)}; see --list")
    graph = _load(args.model)
    result, report = run_passes(graph, names, options)
    for name, pass_result in report:
        print(f"{name}: {pass_result.summary()}")
    save_model(result, args.output)
    print(f"wrote {args.output}: {graph_summary(result)}")
    return 0


def _emit_c(graph, out: Path, args) -> None:
    try:
        from kwsc.backends.c import emit_c
    except ImportError as exc:
        raise BackendError(f"the C backend (kwsc.backends.c.emit_c) is not available: {exc}") from None
    kwargs = {k: getattr(args, k) for k in ("arch", "build", "size_report", "weights_dtype", "name")
              if getattr(args, k) is not None}
    params = inspect.signature(emit_c).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unsupported = [k for k in kwargs if k not in params]
        if unsupported:
            raise InputError(f"emit: the C backend does not take {', '.join('--' + k for k in unsupported)}")
    result = emit_c(graph, out, **kwargs)
    if dataclasses.is_dataclass(result):  # e.g. EmitResult: one line of its scalar fields, lists as counts
        items = []
        for f in dataclasses.fields(result):
            value = getattr(result, f.name)
            if isinstance(value, (list, tuple)):
                items.append(f"{f.name}={len(value)}")
            elif value is not None and not isinstance(value, (dict, Path)):
                items.append(f"{f.name}={value}")
        print("C project: " + ", ".join(items))
        if getattr(result, "size", None) is not None:  # --size-report: the table as well
            from kwsc.backends.c import format_size_report

            print(format_size_report(result.size))


def run_emit(args) -> int:
    out = Path(args.output)
    target = args.target or _TARGET_OF_SUFFIX.get(out.suffix.lower(), "c")
    c_only = [k for k in ("arch", "build", "size_report", "weights_dtype", "name") if getattr(args, k) is not None]
    if c_only and target != "c":
        raise InputError(f"emit: {', '.join('--' + k for k in c_only)} only apply to --target c")
    graph = _load(args.model)
    if target == "ell":
        from kwsc.backends.ell import save_ell

        save_ell(graph, out)
    elif target == "onnx":
        try:
            from kwsc.backends.onnx import save_onnx
        except ImportError as exc:
            raise BackendError(f"the ONNX backend (kwsc.backends.onnx.save_onnx) is not available: {exc}") from None
        save_onnx(graph, out)
    elif target == "c":
        _emit_c(graph, out, args)
    else:
        from kwsc.backends.viz import format_graph
        from kwsc.fileio import atomic_write

        atomic_write(out, format_graph(graph, target))
    print(f"wrote {out} ({target}): {graph_summary(graph)}")
    return 0
