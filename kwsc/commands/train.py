"""``kwsc train``: train a GRU/LSTM keyword spotter on an ELL-layout dataset and export it to ONNX."""

from __future__ import annotations

import sys

from kwsc.commands._util import add_command

ORDER = 30

_DESCRIPTION = """\
Train a GRU/LSTM keyword spotter (or a window model: --architecture DSCNN, TCResNet, BCResNet, CRNN, exported as
one-window ONNX that the stream pass makes per-tick) on DIR/{training,validation,testing}_list.npz (ELL layout) and
write into OUTDIR:
<Arch><H>KeywordSpotter.pt, .onnx (one frame [1,1,F] in, state kept by the runtime), _stateful.onnx (explicit
h_in_k/h_out_k state), categories.txt, train_results.json, results.txt, training_curves.png, confusion_matrix.png.

Two recipes: kwsc (default: normalization, time shift, SpecAugment, noise mixing, label smoothing, AdamW with
warm-up + cosine, 60 epochs, batch 64; a GRU/LSTM also learns from continuous sequences of its clips,
--stream_training 1, for the stream and VAD modes; --stream_training 0 trains per row only) and seed (ELL's
train_classifier.py defaults: RMSprop alpha 0, lr 1e-3, 30 epochs, batch 128). Options given override the recipe
and --config.

As `train_classifier` (ELL's script name) the default model is the tutorial's GRU 2×128, so the files are named
GRU128KeywordSpotter.* as the tutorial's next steps expect; the recipe is still kwsc's unless --recipe seed.

example:
  kwsc train_classifier --architecture GRU --num_layers 2 --dataset . --use_gpu --outdir .   # the tutorial's line
  kwsc train --dataset data/ --outdir model/
  kwsc train --dataset data/ --wav_files WAVS --outdir tc/ --architecture TCResNet --hidden_units 20 --epochs 100
  kwsc train --dataset data/ --outdir seed-model/ --recipe seed --epochs 30
  torchrun --nproc_per_node 2 -m kwsc.train --dataset data/ --outdir model/   # DistributedDataParallel
"""


def register(sub) -> None:
    from kwsc.train.options import add_train_arguments

    p = add_command(sub, "train", run, help="train a GRU/LSTM or convolutional keyword spotter and export it to ONNX",
                    description=_DESCRIPTION, aliases=("train_classifier",))
    add_train_arguments(p)


def run(args) -> int:
    from kwsc.train.options import resolve_config

    # ELL's train_classifier.py trains a GRU 2×128 (GRU128KeywordSpotter.onnx, the file the tutorial imports next)
    tutorial = {"model": {"hidden_units": 128}} if args.command == "train_classifier" else None
    config, applied = resolve_config(args, tutorial)
    try:
        from kwsc.train.pipeline import settle_defaults, train
        from kwsc.train.trainer import resolve_device
    except ImportError as exc:  # torch is the optional "train" extra
        from kwsc.errors import InputError
        raise InputError(f"kwsc train needs torch: pip install 'kwsc[train]' ({exc})") from None
    if args.use_gpu and resolve_device("auto").type != "cuda":
        print("kwsc: --use_gpu: torch sees no CUDA device here; training on the CPU", file=sys.stderr)
    settle_defaults(config, applied, args.outdir, args.resume)
    results = train(config, args.dataset, args.outdir, args.categories, resume=args.resume,
                    progress=not args.no_progress, opset=args.opset, export=not args.no_export)
    if results:
        print(f"Wrote {args.outdir}: test accuracy {results['accuracy_test'] * 100:.2f} %, "
              f"training time {results['training_time']:.1f} s")
    return 0
