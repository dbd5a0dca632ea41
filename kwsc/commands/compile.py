"""``kwsc import / transform / emit``: models into the IR, passes over it, and out through a backend."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import typing
from pathlib import Path

from kwsc.commands._util import add_command, option, parse_bool
from kwsc.errors import BackendError, InputError

__all__ = ["register", "graph_summary"]

ORDER = 35

_IMPORT_DESCRIPTION = """\
Translate a model (.onnx from PyTorch/tf2onnx/Keras, .ell, or .kwsc) into kwsc's native .kwsc file (or .ell by
-o's extension) and print a one-line summary: node count, inputs and outputs with shapes, recurrent layers.
The clean-up passes (shapes,fold,dce: the exporter's shape plumbing, constant subgraphs, dead nodes) run by
default, so the result emits as it is (.ell, C); outputs are unchanged by them. --raw keeps the frontend's graph.
As `onnx_import` (ELL's onnx_import.py) the default output is MODEL's name with .ell, in MODEL's folder.

examples:
  kwsc import GRU128KeywordSpotter.onnx                  # → GRU128KeywordSpotter.kwsc
  kwsc onnx_import GRU128KeywordSpotter.onnx             # → GRU128KeywordSpotter.ell (the ELL tutorial's line)
  kwsc import featurizer.ell -o featurizer.kwsc
  kwsc import model.onnx --raw -o raw.kwsc               # the frontend's translation, plumbing and all
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
  kwsc emit model.kwsc --target c --arch host --build --name model -o KeywordSpotter   # (= kwsc wrap)
"""

_ADD_VAD_DESCRIPTION = """\
ELL's add_vad.py: add one voice-activity detector (VAD) on the classifier input, driving every GRU/LSTM/RNN's
reset trigger, so the recurrent state is cleared at the end of each word (ell-behaviour.md §2). The model file is
edited in place, atomically (written to a temp file, then renamed), as the ELL tutorial does; -o writes elsewhere.
A model whose recurrent nodes are already VAD-driven is left unchanged. Defaults are ELL's add_vad.py defaults.

example (the ELL tutorial's line):
  kwsc add_vad GRU128KeywordSpotter.ell --sample_rate 16000 --window_size 512 --tau_up 1.5 --tau_down 0.09 \\
      --large_input 4 --gain_att 0.01 --threshold_up 3.5 --threshold_down 0.9 --level_threshold 0.02
"""

_ADD_DETECTOR_DESCRIPTION = """\
Add a keyword Detector after the classifier (the add_detector pass): the posteriors are smoothed over
--smoothing frames, the best keyword that is not ignored fires when it exceeds its threshold, and no detection
follows for --refractory seconds. The model gets a second output `detection` = [keyword index or -1, score] per
tick, which the generated C example prints as DETECTED lines. Thresholds are given, or chosen from the streaming
benchmark's JSON (kwsc test --stream-minutes) at a false-alarm rate. Edits MODEL in place (atomically) or writes -o.
A model that already has a Detector gets the new settings.

examples:
  kwsc add-detector model.kwsc --threshold 0.8 --smoothing 3 -o detector.kwsc
  kwsc add-detector model.kwsc --thresholds yes=0.7,no=0.9 --categories categories.txt
  kwsc add-detector model.kwsc --curve stream.json --fa-per-hour 2 -o detector.kwsc
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


def _model_files(path: str | None) -> list[Path]:
    """The files a model argument reads: the path itself, and for ELL's DIR/MODULE the model file it names."""
    if not path:
        return []
    files = [Path(path)]
    try:
        from kwsc.models import resolve_model_path

        ref = resolve_model_path(path)
        if ref.file is not None:
            files.append(Path(ref.file))
    except InputError:  # not a model: loading it says why, in its own words
        pass
    return files


def _refuse_overwriting(output, command: str, **inputs: str | None) -> None:
    from kwsc.fileio import refuse_overwriting

    pairs = [(f"{role} file", f) for role, path in inputs.items() for f in _model_files(path)]
    refuse_overwriting(output, pairs, command)


def _load(path: str, raw: bool = False, dims: dict[str, int] | None = None):
    from kwsc.models import load_model_arg

    return load_model_arg(path, "model file", raw=raw, dims=dims)[0]


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


_ELL_SHORT = {"sample_rate": "-sr", "window_size": "-ws"}  # add_vad.py's short spellings


def _pass_options(p, name: str) -> None:
    """A pass's options as flags (names, defaults and help from its options class)."""
    from kwsc.passes import get_pass

    info = get_pass(name)
    docs = _field_docs(info.options)
    hints = typing.get_type_hints(info.options)
    for f in dataclasses.fields(info.options):
        kind = _plain_type(hints.get(f.name, str))
        option(p, f"--{f.name}", type=_type_of(kind), default=f.default,
               metavar=kind.__name__.upper() if kind in (int, float, str) else None,
               help=f"{docs.get(f.name, '')}{'' if f.default is None else f' (default {f.default})'}"
               .replace("``", "").replace("%", "%%"))


def _add_vad_pass_options(p) -> None:
    """add_vad's options from the pass's own options class (names, defaults and help in one place)."""
    from kwsc.passes import get_pass

    info = get_pass("add_vad")
    docs = _field_docs(info.options)
    hints = typing.get_type_hints(info.options)
    for f in dataclasses.fields(info.options):
        names = [f"--{f.name}"] + ([_ELL_SHORT[f.name]] if f.name in _ELL_SHORT else [])
        default = "the model's own" if f.default is None else f.default
        option(p, *names, type=_type_of(_plain_type(hints.get(f.name, str))), default=f.default,
               help=f"{docs.get(f.name, '')} (default {default})".replace("%", "%%"))


# ------------------------------------------------------------------------------------------------ register
def register(sub) -> None:
    p = add_command(sub, "import", run_import, help="translate a model (.onnx, .ell) into a .kwsc file",
                    description=_IMPORT_DESCRIPTION, aliases=("onnx_import",))
    p.add_argument("model", help="model file (.onnx, .ell, .kwsc)")
    option(p, "--output", "-o", "--output_directory", metavar="OUT",
           help="output model (.kwsc or .ell; written atomically) or an existing folder (default: MODEL's name with "
                ".kwsc, or .ell as onnx_import)")
    option(p, "--raw", action="store_true",
           help="skip the clean-up passes (shapes,fold,dce; for .ell also the fusion of bias layers into Dense and "
                "softmax+log into LogSoftmax)")
    option(p, "--dim", action="append", metavar="NAME=N",
           help="length of a named symbolic input dim of an ONNX model (repeatable), e.g. the window of a "
                "convolutional model: --dim T=98; without it a symbolic dim is 1 (one frame per tick)")

    p = add_command(sub, "transform", run_transform, help="run graph passes (fold, dce, add_vad, …) over a model",
                    description=_TRANSFORM_DESCRIPTION)
    p.add_argument("model", nargs="?", help="model file (.kwsc, .onnx, .ell)")
    option(p, "--output", "-o", metavar="OUT.kwsc",
           help="output model (written atomically; may equal a .kwsc/.ell input, which is then replaced)")
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
    option(c, "--arch", default=None,
           help="host (default), armv7, aarch64, aarch64-dotprod or cortex-m4 (host-ref: plain C, for tests)")
    option(c, "--build", action="store_true", default=None, help="also compile the generated project")
    option(c, "--size_report", action="store_true", default=None, help="report code and data sizes")
    option(c, "--weights_dtype", default=None, help="weight element type (e.g. float32)")
    option(c, "--name", default=None, help="C module name (prefix of the API functions)")

    p = add_command(sub, "add-vad", run_add_vad, help="add a VAD resetting the GRUs to a model, in place (ELL's add_vad)",
                    description=_ADD_VAD_DESCRIPTION, aliases=("add_vad",))
    p.add_argument("model", help="the model to edit (.ell, .kwsc)")
    option(p, "--output", "-o", metavar="OUT", help="write the result here instead of over MODEL")
    _add_vad_pass_options(p)

    p = add_command(sub, "add-detector", run_add_detector,
                    help="add a keyword Detector (smoothing, thresholds, suppression) after the classifier",
                    description=_ADD_DETECTOR_DESCRIPTION, aliases=("add_detector",))
    p.add_argument("model", help="the model to edit (.kwsc, .onnx, .ell)")
    option(p, "--output", "-o", metavar="OUT", help="write the result here instead of over MODEL")
    _pass_options(p, "add_detector")


# ------------------------------------------------------------------------------------------------ commands
def _import_output(args) -> Path:
    """-o as given (a folder: the model's name inside it), else MODEL's name with .kwsc (.ell for onnx_import)."""
    source = Path(args.model)
    suffix = ".ell" if args.command == "onnx_import" else ".kwsc"
    if args.output is None:
        out = source.with_suffix(suffix)
        if out.resolve() == source.resolve():
            raise InputError(f"{args.model} is already {suffix}: name the output with -o")
        return out
    out = Path(args.output)
    return out / source.with_suffix(suffix).name if out.is_dir() else out

def run_import(args) -> int:
    from kwsc.models import clean_graph, save_model

    out = _import_output(args)
    _refuse_overwriting(out, args.command, model=args.model)
    graph = _load(args.model, raw=args.raw, dims=_dims(args.dim))
    done = ""
    if not args.raw:
        before = len(graph)
        graph, _ = clean_graph(graph)
        done = f" (clean-up shapes,fold,dce: {before} → {len(graph)} nodes)"
    save_model(graph, out)
    print(f"imported {args.model} -> {out}{done}: {graph_summary(graph)}")
    return 0


def run_add_vad(args) -> int:
    from kwsc.models import save_model
    from kwsc.passes import get_pass, run_passes
    from kwsc.passes.manager import make_options

    out = Path(args.output or args.model)
    fields = [f.name for f in dataclasses.fields(get_pass("add_vad").options)]
    options = {name: getattr(args, name) for name in fields}
    graph = _load(args.model)
    rate, hop = make_options(get_pass("add_vad"), options).timing(graph.metadata)
    print(f"Adding VAD node with sample rate {rate:g} and window size {hop} to {args.model}")
    result, report = run_passes(graph, ["add_vad"], {"add_vad": options})
    changed = report[0][1]
    if not changed.modified:
        print(f"model unchanged: its recurrent nodes are already reset by a VAD (to change that VAD's parameters, "
              f"add_vad to the model before it had one){'' if out == Path(args.model) else '; nothing written'}")
        return 0
    save_model(result, out)
    print(f"model updated ({changed.summary()}): wrote {out}: {graph_summary(result)}")
    from kwsc.evaluate.session import vad_training_note

    note = vad_training_note(result.metadata, args.model, "its accuracy with the VAD")
    if note:
        print(note, file=sys.stderr)
    return 0


def run_add_detector(args) -> int:
    from kwsc.models import save_model
    from kwsc.passes import get_pass, run_passes
    from kwsc.passes.manager import make_options

    out = Path(args.output or args.model)
    info = get_pass("add_detector")
    options = make_options(info, {f.name: getattr(args, f.name) for f in dataclasses.fields(info.options)})
    graph = _load(args.model)
    result, report = run_passes(graph, ["add_detector"], {"add_detector": options})
    detector = result.find("Detector")[0]
    save_model(result, out)
    a = detector.attrs
    thresholds = a["thresholds"]
    chosen = (f"threshold {thresholds[0]:g}" if len(thresholds) == 1 else
              "thresholds " + ",".join(f"{t:g}" for t in thresholds))
    if "detector_fa_per_hour" in detector.metadata:
        chosen += (f" (from {detector.metadata['detector_curve']}: {detector.metadata['detector_fa_per_hour']} "
                   f"false alarms/h, hit rate {float(detector.metadata['detector_hit_rate']):.1%})")
    labels = result.metadata.get("labels")
    ignored = [labels[i] if isinstance(labels, list) and len(labels) > i else str(i) for i in a["ignore"]]
    print(f"detector: {chosen}, smoothing {a['smoothing']} frames, suppression {a['suppression']} ticks "
          f"({detector.metadata['detector_refractory_s']} s), ignoring {', '.join(ignored) or 'no class'}")
    print(f"model updated ({report[0][1].summary()}): wrote {out}: {graph_summary(result)}")
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


def _in_place_ok(model: str, output: str) -> bool:
    """transform may edit a .kwsc or .ell in place, atomically, as add_vad does (documented); it never writes over an
    .onnx (kwsc's ONNX is a re-export, not the exporter's file) nor changes a file's format in place."""
    return Path(model).suffix.lower() in (".kwsc", ".ell") and Path(model).suffix.lower() == Path(output).suffix.lower()


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
    _refuse_overwriting(args.output, "transform", featurizer=args.featurizer)
    if not _in_place_ok(args.model, args.output):
        _refuse_overwriting(args.output, "transform", model=args.model)
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
        for note in pass_result.notes:
            print(f"  {note}")
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
    print(c_project_summary(result))
    if getattr(result, "size", None) is not None:  # --size-report: the table as well
        from kwsc.backends.c import format_size_report

        print(format_size_report(result.size))


_BUILT = {"example": "wav → DETECTED lines", "harness": "replays frames for the tests", "bench": "Predict timing",
          "harness.elf": "bare-metal test image", "probe.elf": "size probe"}


def c_project_summary(result) -> str:
    """What a C project holds and what was built, in words (for emit and wrap)."""
    text = (f"C project {result.outdir}: module {result.name} for {result.arch}, {len(result.files)} files, "
            f"{result.weights_dtype} weights, {result.arena_bytes:,} B activations + {result.state_bytes:,} B state")
    if result.built:
        what = [f"{b} ({_BUILT[b]})" if b in _BUILT else
                f"{b} (the model as a shared library: kwsc.backends.c.load)" if b.endswith(".so") else b
                for b in result.built]
        text += "\n  built with make: " + ", ".join(what)
    else:
        text += " (not built: --build compiles it)"
    for note in getattr(result, "notes", ()):
        text += f"\n  note: {note}"
    return text


def run_emit(args) -> int:
    out = Path(args.output)
    target = args.target or _TARGET_OF_SUFFIX.get(out.suffix.lower(), "c")
    c_only = [k for k in ("arch", "build", "size_report", "weights_dtype", "name") if getattr(args, k) is not None]
    if c_only and target != "c":
        raise InputError(f"emit: {', '.join('--' + k for k in c_only)} only apply to --target c")
    _refuse_overwriting(out, "emit", model=args.model)
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
