"""``kwsc print``: a picture of a model's graph as text, dot, DGML, or (through graphviz) SVG/PNG/PDF."""

from __future__ import annotations

import sys

from kwsc.commands._util import add_command, option
from kwsc.errors import InputError

__all__ = ["register"]

ORDER = 40

_DESCRIPTION = """\
Print the graph of a model (.kwsc, .ell or .onnx) in ELL's print conventions.

  text  one line per node: name: Op(inputs[shape], ...) -> [shape]  key attributes
  dot   graphviz source (nodes coloured by kind, port names on edges)
  dgml  Visual Studio DGML
  svg, png, pdf  rendered with graphviz's `dot` (apt-get install graphviz)

Without -o the output goes to stdout (text by default); with -o FILE the format follows the extension
(.txt .dot .gv .dgml .svg .png .pdf) unless --format is given. ELL's print spellings work too:
-imap MODEL, -fmt FORMAT, -of FILE.

examples:
  kwsc print model.kwsc
  kwsc print model.kwsc -o model.png
  kwsc print featurizer.ell --format dot > featurizer.dot
  kwsc print -imap GRU128KeywordSpotter.ell -fmt dot -of graph.dot      # the ELL tutorial's line
"""


def register(sub) -> None:
    from kwsc.backends.viz import FORMATS

    p = add_command(sub, "print", run, help="print a model's graph as text, dot, dgml, svg, png or pdf",
                    description=_DESCRIPTION)
    p.add_argument("model", nargs="?", help="model file (.kwsc, .ell, .onnx) or compiled module (folder/module)")
    option(p, "--input_map", "-imap", "--inputMapFilename", dest="input_map", metavar="MODEL",
           help="the model, ELL's spelling (instead of the positional argument)")
    option(p, "--format", "-f", "-fmt", "--outputFormat", choices=FORMATS, default=None,
           help="output format (default: from -o's extension, else text)")
    option(p, "--output", "-o", "-of", "--outputFilename", default=None, metavar="FILE",
           help="write to FILE (atomically) instead of stdout")


def run(args) -> int:
    from kwsc.backends.viz import format_for_path, format_graph
    from kwsc.fileio import atomic_write
    from kwsc.models import load_model_arg

    if args.model and args.input_map:
        raise InputError(f"print: two models given ({args.model} and -imap {args.input_map}); give one")
    model = args.model or args.input_map
    if not model:
        raise InputError("print: which model? (kwsc print MODEL, or ELL's -imap MODEL)")
    fmt = args.format
    if fmt is None and args.output:
        fmt = format_for_path(args.output)
        if fmt is None:
            raise InputError(f"{args.output}: cannot tell the format from the extension; pass --format")
    fmt = fmt or "text"
    if fmt in ("png", "pdf") and not args.output:
        raise InputError(f"--format {fmt} writes binary data; pass -o FILE")
    graph, ref = load_model_arg(model, "model file")
    if args.output:
        from kwsc.fileio import refuse_overwriting

        refuse_overwriting(args.output, [("model file", model), ("model file", ref.file)], "print")
    data = format_graph(graph, fmt)
    if args.output:
        atomic_write(args.output, data)
        print(f"wrote {args.output} ({fmt}, {len(graph)} nodes)", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    return 0
