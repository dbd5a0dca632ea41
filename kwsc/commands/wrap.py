"""``kwsc wrap``: ELL's ``wrap.py`` + ``makeit`` in one step — a model → a built C module ``OUTDIR/MODULE``."""

from __future__ import annotations

from pathlib import Path

from kwsc.commands._util import add_command, option
from kwsc.errors import InputError
from kwsc.fileio import same_file

__all__ = ["register"]

ORDER = 36

_DESCRIPTION = """\
ELL's wrap.py followed by the tutorial's `makeit`: generate the C project of a model into --outdir with the
API prefix --module_name, and build it (host: lib<module>.so, which Python opens with ctypes). The model it was
built from is saved beside it as <outdir>/<module>.kwsc. Afterwards ELL's path OUTDIR/MODULE names this compiled
module wherever a model is expected (make_dataset --featurizer, test, listen, print): commands run the host
library when it is built for this machine, else the model beside it, and say which.

Targets: host (default), armv7 (ELL's pi3, orangepi0), aarch64 (ELL's pi3_64), cortex-m4 (bare metal; built with
arm-none-eabi-gcc). kwsc writes portable C99 (a C header, usable from C++); Python uses the library through
ctypes (kwsc.backends.c.load), so --language is accepted for ELL's command lines and changes nothing.

examples (the ELL tutorial's lines, `makeit` included):
  kwsc wrap --model_file featurizer.ell --outdir compiled_featurizer --module_name mfcc
  kwsc wrap --model_file GRU128KeywordSpotter.ell --outdir KeywordSpotter --module_name model
  kwsc wrap --model_file model.kwsc --outdir m4 --module_name model --target cortex-m4
"""

# ELL's wrap.py target names → kwsc's C targets
_TARGETS = {"host": "host", "pi3": "armv7", "orangepi0": "armv7", "armv7": "armv7", "pi3_64": "aarch64",
            "aarch64": "aarch64", "cortex-m4": "cortex-m4", "pi0": None}


def register(sub) -> None:
    p = add_command(sub, "wrap", run, help="generate and build a model's C module (ELL's wrap.py + makeit)",
                    description=_DESCRIPTION)
    option(p, "--model_file", "-f", required=True, metavar="MODEL", help="the model (.ell, .kwsc, .onnx)")
    option(p, "--outdir", "-od", metavar="DIR", help="the project folder (default: the target's name, as ELL)")
    option(p, "--module_name", "-n", metavar="NAME",
           help="C module name: the API prefix and ELL's DIR/NAME path (default: the model file's name)")
    option(p, "--target", "-t", default="host", choices=sorted(_TARGETS), help="target (default host)")
    option(p, "--language", "-l", choices=("python", "cpp", "c"), default="python",
           help="accepted for ELL's command lines; kwsc always writes C99 (see above)")
    option(p, "--weights_dtype", default="float32", choices=("float32", "int8"), help="weight storage (default float32)")
    option(p, "--no_build", action="store_true", help="write the project only (ELL's wrap.py without makeit)")


def run(args) -> int:
    from kwsc.backends.c import emit_c
    from kwsc.commands.compile import c_project_summary
    from kwsc.models import clean_graph, load_model_arg, save_model

    arch = _TARGETS[args.target]
    if arch is None:
        raise InputError(f"--target {args.target}: the Raspberry Pi Zero's armv6 is not a kwsc target; use armv7 "
                         "(Pi 2/3, orangepi0), aarch64 (64-bit Pi 3/4) or cortex-m4")
    graph, ref = load_model_arg(args.model_file, "model file")
    if ref.file.suffix.lower() == ".onnx":  # an exporter's graph: its shape plumbing has no C form
        graph, _ = clean_graph(graph)
    name = args.module_name or ref.file.stem.replace("-", "_")
    outdir = Path(args.outdir or args.target)
    source = outdir / f"{name}.kwsc"
    if same_file(source, ref.file):
        raise InputError(f"wrap: the model file {ref.file} is where the module's model is saved ({source}); it would "
                         f"be replaced: wrap a copy, or into another --outdir or --module_name; nothing written")
    result = emit_c(graph, outdir, name=name, arch=arch, build=not args.no_build, weights_dtype=args.weights_dtype)
    save_model(graph, source)
    print(c_project_summary(result))
    where = f"{outdir}/{name}"
    if arch == "host" and not args.no_build:
        print(f"{where} now names this module: test and listen run its library, make_dataset featurizes with {source}")
    else:
        print(f"{where} now names this module; commands on this machine run the model beside it, {source}")
    return 0
