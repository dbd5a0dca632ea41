"""``kwsc print``: a picture of a model's graph as text, dot, DGML, or (through graphviz) SVG/PNG/PDF."""

from __future__ import annotations

import sys

from kwsc.commands._util import add_command, existing_file, option
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
(.txt .dot .gv .dgml .svg .png .pdf) unless --format is given.

examples:
  kwsc print model.kwsc
  kwsc print model.kwsc -o model.png
  kwsc print featurizer.ell --format dot > featurizer.dot
"""


def register(sub) -> None:
    from kwsc.backends.viz import FORMATS

    p = add_command(sub, "print", run, help="print a model's graph as text, dot, dgml, svg, png or pdf",
                    description=_DESCRIPTION)
    p.add_argument("model", help="model file (.kwsc, .ell, .onnx)")
    option(p, "--format", "-f", choices=FORMATS, default=None, help="output format (default: from -o's extension, else text)")
    option(p, "--output", "-o", default=None, metavar="FILE", help="write to FILE (atomically) instead of stdout")


def run(args) -> int:
    from kwsc.backends.viz import format_for_path, format_graph
    from kwsc.fileio import atomic_write
    from kwsc.models import load_model

    fmt = args.format
    if fmt is None and args.output:
        fmt = format_for_path(args.output)
        if fmt is None:
            raise InputError(f"{args.output}: cannot tell the format from the extension; pass --format")
    fmt = fmt or "text"
    if fmt in ("png", "pdf") and not args.output:
        raise InputError(f"--format {fmt} writes binary data; pass -o FILE")
    graph = load_model(existing_file(args.model, "model file"))
    data = format_graph(graph, fmt)
    if args.output:
        atomic_write(args.output, data)
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    return 0
