"""``kwsc quantize``: a model's Dense/GRU/LSTM/RNN/Conv in int8 arithmetic, optionally with calibrated activation
scales."""

from __future__ import annotations

from kwsc.commands._util import add_command, existing_file, option
from kwsc.errors import InputError

__all__ = ["register"]

ORDER = 36

_DESCRIPTION = """\
Turn a model's Dense/GRU/LSTM/RNN/Conv layers into int8 arithmetic (QDense/QGRU/QLSTM/QRNN/QConv: int8 weights
with a scale per row or output channel, activations quantized per step and tensor, int32 accumulation, float gate
math) and write it (.kwsc).
The reference interpreter runs the same integer arithmetic as the generated C, so `kwsc test` on the result
measures what the int8 firmware computes. Without --calibrate each step's vector is scaled by its own max|x| at run
time; with --calibrate DATA.npz (a kwsc make-dataset file) the float model runs over the rows and each layer's
input (and hidden state) gets a fixed scale from the largest value seen (--percentile below 100 clips outliers).

examples:
  kwsc quantize classifier.kwsc -o classifier_int8.kwsc
  kwsc quantize classifier.kwsc --calibrate dataset/validation_list.npz --scales hidden -o classifier_int8.kwsc
  kwsc quantize classifier.kwsc --keep_float Dense -o classifier_int8.kwsc     # the last Dense stays float
"""


def register(sub) -> None:
    p = add_command(sub, "quantize", run, help="Dense/GRU/LSTM/Conv in int8 arithmetic (optionally calibrated)",
                    description=_DESCRIPTION)
    p.add_argument("model", help="model file (.kwsc, .ell, .onnx)")
    option(p, "-o", "--output", required=True, metavar="OUT.kwsc", help="the int8 model (.kwsc)")
    option(p, "--calibrate", default=None, metavar="DATA.npz", help="fixed activation scales from this dataset")
    option(p, "--scales", default="input,hidden", metavar="LIST",
           help="which calibrated scales to fix: input, hidden (default both; the rest stay run-time)")
    option(p, "--percentile", type=float, default=100.0, help="percentile of the steps' peaks (default 100)")
    option(p, "--max_rows", type=int, default=0, metavar="N", help="calibrate on the first N rows (default all)")
    option(p, "--keep_float", default="", metavar="LIST", help="ops (Dense) or node names left in float32")


def run(args) -> int:
    from pathlib import Path

    from kwsc.commands.compile import graph_summary
    from kwsc.models import load_model, save_model
    from kwsc.passes import run_passes

    out = Path(args.output)
    if out.suffix.lower() != ".kwsc":
        raise InputError(f"-o {out}: int8 models are written as .kwsc (ONNX and ELL have no form for them)")
    source = existing_file(args.model, "model file")
    if out.resolve() == source.resolve():
        raise InputError(f"-o {out}: is the input model; write the int8 model to another file")
    data = existing_file(args.calibrate, "calibration dataset") if args.calibrate else None
    graph = load_model(source)
    streams = None
    if data is not None:
        from kwsc.evaluate.calibrate import dataset_streams

        streams = dataset_streams(data, graph, args.max_rows)  # a bad dataset fails before any work
    result, report = run_passes(graph, ["quantize"], {"quantize": {"keep_float": args.keep_float}})
    print(f"quantize: {report[0][1].summary()}")
    if streams is not None:
        from kwsc.evaluate.calibrate import activation_scales, apply_scales

        scales = activation_scales(graph, streams, args.percentile)
        count = apply_scales(result, scales, args.scales)
        print(f"calibrated {count} scales on {streams.shape[1]} rows × {streams.shape[0]} steps of {data.name}: "
              + ", ".join(f"{name} " + "/".join(f"{k.removesuffix('_scale')} {v:.4g}" for k, v in s.items())
                          for name, s in scales.items()))
    save_model(result, out)
    print(f"wrote {out}: {graph_summary(result)}")
    return 0
