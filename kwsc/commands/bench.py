"""``kwsc bench``: a model's speed per implementation and target (µs/frame, × real time, instructions/frame)."""

from __future__ import annotations

from kwsc.commands._util import add_command, existing_file, option
from kwsc.errors import InputError

__all__ = ["register"]

ORDER = 70

_DESCRIPTION = """\
Measure a model (.kwsc, .ell or .onnx with one float input) per implementation:
  reference interpreter (numpy)   onnxruntime on the model exported to ONNX (skipped when an op has no mapping)
  generated C (host)              timed in C (process CPU time), no Python in the loop
  generated C (armv7, aarch64[-dotprod], cortex-m4)   instructions per frame under qemu (a stand-in for cycles)
With --int8 every C target is built twice, float32 and int8 (Dense/GRU/LSTM in int8 arithmetic, as
`kwsc emit --weights-dtype int8`), side by side, and the ratios follow the table: int8 vs float per target, vs
onnxruntime, vs the FLOP limit and the memory-bandwidth limit (parameter bytes per frame / the rate one core reads
a buffer of that size, measured here).
Each row: µs/frame (median, min, max over rounds), × real time (a frame is input_size/sample_rate from the
model's metadata, else 32 ms), instructions/frame, and the largest difference from the reference on the same
frames. The header gives FLOPs/frame and the limit: FLOPs / this CPU's measured single-core FMA peak. With the
host among the targets, the float build is also set against the bandwidth limit (float32 parameter bytes per
frame / the rate one core reads a buffer of that size, measured in the same run), on the "host float:" line.

examples:
  kwsc bench model.kwsc
  kwsc bench model.kwsc --targets host,armv7,aarch64,cortex-m4 --json bench.json
  kwsc bench model.kwsc --compare bench.json
  kwsc bench model.kwsc --int8 --targets host,armv7,aarch64,aarch64-dotprod,cortex-m4
"""


def register(sub) -> None:
    p = add_command(sub, "bench", run, help="benchmark a model: µs/frame per implementation, ARM instructions/frame",
                    description=_DESCRIPTION)
    p.add_argument("model", help="model file (.kwsc, .ell, .onnx)")
    option(p, "--targets", default="host", metavar="LIST",
           help="comma-separated: host, armv7, aarch64, aarch64-dotprod, cortex-m4 (default: host)")
    option(p, "--int8", action="store_true", help="also the int8 build of every C target, beside the float one")
    option(p, "--frames", type=int, default=200, metavar="N", help="distinct input frames per round (default 200)")
    option(p, "--rounds", type=int, default=10, metavar="R", help="timing rounds (default 10)")
    option(p, "--seed", type=int, default=0, help="seed of the input frames (default 0)")
    option(p, "--json", default=None, metavar="OUT.json", help="also write the results as JSON (atomically)")
    option(p, "--compare", default=None, metavar="OLD.json",
           help="print the change vs a previous --json run; slowdowns over 10%% are flagged")
    option(p, "--workdir", default=None, metavar="DIR", help="keep the generated C projects in DIR")


def run(args) -> int:
    from pathlib import Path

    from kwsc.evaluate.bench_run import (BENCH_TARGETS, bench_model, compare_reports, format_report, load_report,
                                         save_report)
    from kwsc.models import load_model

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    unknown = [t for t in targets if t not in BENCH_TARGETS]
    if unknown or not targets:
        raise InputError(f"--targets: unknown {', '.join(unknown) or '(empty)'}; "
                         f"choose from {', '.join(BENCH_TARGETS)}")
    old = load_report(args.compare) if args.compare else None  # a bad file fails before minutes of measuring
    graph = load_model(existing_file(args.model, "model file"))
    report = bench_model(graph, targets=targets, frames=args.frames, rounds=args.rounds, seed=args.seed,
                         workdir=args.workdir, model_name=Path(args.model).name, int8=args.int8)
    print(format_report(report))
    if args.json:
        save_report(report, args.json)
        print(f"wrote {args.json}")
    if old is not None:
        text, slower = compare_reports(report, old)
        print(text)
        if slower:
            print(f"slower by more than 10%: {', '.join(slower)}")
    return 0
