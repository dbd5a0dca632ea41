"""Command-line options of ``kwsc train`` (shared with ``python -m kwsc.train`` under torchrun); no torch here.

Precedence: the recipe's defaults < ``--config`` JSON < options given on the command line (each overrides only
when given, as the seed's train_classifier.py). Then the kwsc recipe's GRU/LSTM train for the stream
(config.stream_defaults) unless stream_training was given, or vad_training, teacher, mixup or loss_frames > 1 asks for another recipe.
"""

from __future__ import annotations

import argparse

from kwsc.options import option, parse_bool
from kwsc.train.config import (ARCHITECTURES, DEFAULT_WIDTH, OPTIMIZERS, RECIPES, SCHEDULERS, load_config_file,
                               merge_config, recipe_config, stream_defaults, validate_config)

__all__ = ["add_train_arguments", "config_from_args", "resolve_config", "stream_default_note"]

# option dest → (section, key)
_MAP = {
    "architecture": ("model", "architecture"), "num_layers": ("model", "num_layers"),
    "hidden_units": ("model", "hidden_units"), "dropout": ("model", "dropout"), "filename": ("model", "filename"),
    "normalize": ("dataset", "normalize"),
    "epochs": ("training", "max_epochs"), "batch_size": ("training", "batch_size"),
    "learning_rate": ("training", "learning_rate"), "optimizer": ("training", "optimizer"),
    "lr_scheduler": ("training", "lr_scheduler"), "lr_min": ("training", "lr_min"),
    "lr_peaks": ("training", "lr_peaks"), "lr_gamma": ("training", "lr_gamma"),
    "lr_step_size": ("training", "lr_step_size"), "warmup_epochs": ("training", "warmup_epochs"),
    "lr_batch_scaling": ("training", "lr_batch_scaling"), "seed": ("training", "seed"),
    "device": ("training", "device"), "label_smoothing": ("training", "label_smoothing"),
    "class_weights": ("training", "class_weights"), "amp": ("training", "amp"), "threads": ("training", "threads"),
    "loss_frames": ("training", "loss_frames"), "ema_decay": ("training", "ema_decay"),
    "vad_training": ("training", "vad_training"), "idle_confidence": ("training", "idle_confidence"),
    "vad_forget": ("training", "vad_forget"),
    **{name: ("training", name) for name in ("stream_training", "stream_seconds", "stream_gap_min", "stream_gap_max",
                                              "stream_target", "stream_background_weight", "stream_sequences",
                                              "stream_restart")},
    "window_stream": ("training", "window_stream"), "init_weights": ("training", "init_weights"),
    "teacher": ("training", "teacher"), "distill_weight": ("training", "distill_weight"),
    "distill_temperature": ("training", "distill_temperature"), "mixup": ("training", "mixup"),
    "weight_decay": ("optimizer_options", "weight_decay"), "momentum": ("optimizer_options", "momentum"),
    "time_shift": ("augment", "time_shift"), "freq_masks": ("augment", "freq_masks"),
    "freq_mask_width": ("augment", "freq_mask_width"), "time_masks": ("augment", "time_masks"),
    "time_mask_width": ("augment", "time_mask_width"), "noise_prob": ("augment", "noise_prob"),
    "noise_max_gain": ("augment", "noise_max_gain"), "noise_class": ("augment", "noise_class"),
    "gain_db": ("augment", "gain_db"), "freq_warp": ("augment", "freq_warp"),
    "time_stretch": ("augment", "time_stretch"), "wav_files": ("dataset", "wav_files"),
    "training_list": ("dataset", "training_list"), "extra_wavs": ("dataset", "extra_wavs"),
    "wave_shift": ("augment", "wave_shift"),
    "wave_gain_db": ("augment", "wave_gain_db"), "wave_noise_prob": ("augment", "wave_noise_prob"),
    "wave_noise_max": ("augment", "wave_noise_max"),
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """All ``kwsc train`` options (defaults None: only given options override the recipe/config)."""
    io = p.add_argument_group("data and outputs")
    option(io, "--dataset", "-a", required=True, metavar="DIR",
           help="folder with training_list.npz, validation_list.npz, testing_list.npz (ELL layout)")
    option(io, "--outdir", required=True, metavar="DIR", help="where the model, results and plots go")
    option(io, "--categories", "-c", metavar="FILE", help="class names, one per line (default: the npz valid_classes)")
    option(io, "--filename", "-o", help="model file stem (default <Arch><H>KeywordSpotter)")
    option(io, "--config", metavar="JSON", help="a training config (the seed's nested training_config keys)")
    option(io, "--recipe", choices=RECIPES, default="kwsc",
           help="defaults to start from: kwsc (default; generalizes) or seed (ELL's train_classifier.py)")
    option(io, "--resume", action="store_true", help="continue from OUTDIR/checkpoint.pt (saved every epoch)")
    option(io, "--opset", type=int, default=17, help="ONNX opset of the exports (default 17)")
    option(io, "--no_export", action="store_true", help="skip the ONNX export")
    option(io, "--no_progress", action="store_true", help="no progress bar")
    m = p.add_argument_group("model")
    option(m, "--architecture", choices=ARCHITECTURES,
           help="GRU (default) or LSTM (per frame, stateful), or a window model that reads the whole window once: "
                "DSCNN, TCResNet, BCResNet, CRNN (README \"Convolutional keyword spotters\")")
    option(m, "--num_layers", type=int, choices=(1, 2, 3), help="recurrent layers (default 2)")
    option(m, "--hidden_units", "-hu", type=int,
           help="units per layer (kwsc 256, seed 128); a window model's width (DSCNN 64, TCResNet 16, BCResNet 16, "
                "CRNN 64 GRU units)")
    option(m, "--dropout", type=float, help="dropout between layers, training only (kwsc 0.1, seed 0)")
    t = p.add_argument_group("training")
    option(t, "--epochs", type=int, help="epochs (kwsc 60, seed 30)")
    option(t, "--batch_size", "-bs", type=int, help="batch size (kwsc 64, seed 128)")
    option(t, "--learning_rate", "-lr", type=float, help="peak learning rate (kwsc 3e-3, seed 1e-3)")
    option(t, "--optimizer", choices=OPTIMIZERS, help="kwsc AdamW; seed RMSprop with alpha 0")
    option(t, "--weight_decay", type=float, help="kwsc 1e-2 (AdamW), seed 1e-5")
    option(t, "--momentum", type=float, help="momentum (RMSprop, SGD)")
    option(t, "--lr_scheduler", choices=SCHEDULERS, help="per-batch schedule (kwsc WarmupCosineLR, seed none)")
    option(t, "--lr_min", type=float, help="schedule floor (default 1e-5)")
    option(t, "--lr_peaks", type=float, help="TriangleLR/CosineAnnealingLR cycles (default 1)")
    option(t, "--lr_gamma", type=float, help="ExponentialLR/StepLR factor per iteration")
    option(t, "--lr_step_size", type=int, help="StepLR iterations per step")
    option(t, "--warmup_epochs", type=float, help="linear warm-up (WarmupCosineLR/OneCycleLR)")
    option(t, "--lr_batch_scaling", choices=("none", "linear", "sqrt"),
           help="scale the learning rate by batch_size/128 (large GPU batches)")
    option(t, "--normalize", type=parse_bool, nargs="?", const=True, metavar="BOOL",
           help="normalize inputs with the training mean/std, built into the model (kwsc on, seed off)")
    option(t, "--label_smoothing", type=float, help="label smoothing (kwsc 0.1)")
    option(t, "--class_weights", type=parse_bool, nargs="?", const=True, metavar="BOOL",
           help="weight the loss by total/count per class")
    option(t, "--loss_frames", type=int, help="train the head on each of the last N frames (default 1, the seed)")
    option(t, "--ema_decay", type=float, help="keep an exponential moving average of the weights (e.g. 0.995 "
           "per batch); validation, testing and export use it")
    option(t, "--vad_training", type=float, metavar="W",
           help="add W × a loss that teaches what to say after a VAD reset (padding from zero state) and a second "
                "after a word: for `kwsc test`'s VAD mode and continuous stream (default 0: off; README "
                "\"Training for the VAD\")")
    option(t, "--idle_confidence", type=float, metavar="P",
           help="with --vad_training or --stream_training: the background class's share of the soft target on "
                "frames that should say 'no word' (default 0.5)")
    option(t, "--vad_forget", type=int, metavar="N",
           help="with --vad_training: forget a word from N frames after its clip (default 20; 0: off)")
    option(t, "--stream_training", type=float, metavar="W",
           help="add W × a loss on continuous sequences built from each batch's clips (gaps, noise, frame targets, "
                "state carried across words and batches): for the continuous stream and VAD modes without a VAD "
                "(default: 1 for GRU/LSTM in the kwsc recipe; 0 with --vad_training, --teacher, --mixup or --loss_frames > 1, with "
                "--recipe seed, and for window models; 0: per row only; README \"Training for the stream\"); "
                "window models: every tick of the sequences from one pass, no state, and their rows' ticks with the "
                "same targets")
    option(t, "--stream_seconds", type=float, metavar="S", help="with --stream_training: sequence length (default 4)")
    option(t, "--stream_gap_min", type=float, metavar="S",
           help="with --stream_training: shortest gap between clips, seconds (default 0.3)")
    option(t, "--stream_gap_max", type=float, metavar="S",
           help="with --stream_training: longest gap between clips, seconds (default 3)")
    option(t, "--stream_target", type=int, metavar="N",
           help="with --stream_training: frames from a word's end that must name it (default 10)")
    option(t, "--stream_background_weight", type=float, metavar="B",
           help="with --stream_training: loss weight of a 'no word' frame relative to a word frame (default 0.3)")
    option(t, "--stream_sequences", type=int, metavar="N",
           help="with --stream_training: sequences per batch (default 16)")
    option(t, "--stream_restart", type=float, metavar="P",
           help="with --stream_training: share of sequences starting from zero state rather than the previous "
                "batch's (default 0.25)")
    option(t, "--window_stream", type=float, metavar="W",
           help="window models: add W × a loss on every tick of the sequence `kwsc test --reset` streams (zero "
                "frames, the clip, padding): name the word where the window holds it, nothing confidently where it "
                "does not; validation is then per file by the test's rule (default 0: off; README \"Convolutional "
                "keyword spotters\")")
    option(t, "--init_weights", metavar="PT",
           help="start from these weights (a <stem>.pt state_dict of the same model, e.g. to fine-tune a window "
                "model with --window_stream); --resume's checkpoint takes precedence")
    option(t, "--teacher", metavar="PT[,PT...]",
           help="knowledge distillation: trained window models (<stem>.pt files kwsc train wrote, its "
                "train_results.json beside each; several = an ensemble, their probabilities averaged) whose soft "
                "targets the model also learns (README \"Convolutional keyword spotters\")")
    option(t, "--distill_weight", type=float, metavar="A",
           help="with --teacher: loss + A × T² × KL(teachers ‖ model) at temperature T, on the rows, or with "
                "--window_stream on the ticks whose window holds the word (default 1)")
    option(t, "--distill_temperature", type=float, metavar="T", help="with --teacher: the temperature (default 2)")
    option(t, "--mixup", type=float, metavar="ALPHA",
           help="mixup: train on λ·row_i + (1−λ)·row_j with the loss λ·CE(y_i) + (1−λ)·CE(y_j), λ ~ Beta(ALPHA, "
                "ALPHA) per batch (e.g. 0.2; default 0: off; the row loss only: not with --window_stream, "
                "--stream_training or --teacher)")
    option(t, "--seed", type=int, help="random seed (default 0)")
    option(t, "--device", help="auto (default), cpu or cuda")
    option(t, "--use_gpu", action="store_true",
           help="ELL's flag: train on CUDA when there is a device, else on the CPU with a note (= --device auto)")
    option(t, "--amp", type=parse_bool, nargs="?", const=True, metavar="BOOL", help="bf16 autocast on CUDA")
    option(t, "--threads", type=int, help="CPU threads (default: all cores)")
    a = p.add_argument_group("augmentation (on the training device, in feature space)")
    option(a, "--no_augment", action="store_true", help="switch every augmentation off")
    option(a, "--time_shift", type=int, help="roll rows by up to ±N frames (kwsc 4)")
    option(a, "--freq_masks", type=int, help="SpecAugment frequency masks per row (kwsc 2)")
    option(a, "--freq_mask_width", type=int, help="largest frequency mask, in features (kwsc 8)")
    option(a, "--time_masks", type=int, help="SpecAugment time masks per row (kwsc 2)")
    option(a, "--time_mask_width", type=int, help="largest time mask, in frames (kwsc 5)")
    option(a, "--noise_prob", type=float, help="probability to mix a noise row into a row (kwsc 0.8)")
    option(a, "--noise_max_gain", type=float, help="largest noise gain (kwsc 1.0)")
    option(a, "--gain_db", type=float, help="random loudness change of up to ±N dB (kwsc 6)")
    option(a, "--freq_warp", type=float, help="random mel-axis warp factor 1±N, vocal-tract length (kwsc 0.1)")
    option(a, "--time_stretch", type=float, help="random time-axis stretch factor 1±N (speaking rate)")
    option(a, "--wav_files", "-w", metavar="DIR",
           help="train from these wavs (the training list's clips), augmented in the waveform domain")
    option(a, "--training_list", metavar="FILE", help="wav list for --wav_files (default DATASET/training_list.txt)")
    option(a, "--extra_wavs", metavar="DIR[,DIR...]",
           help="with --wav_files: more training clips, every <word>/*.wav of these Speech-Commands-style folders "
                "(e.g. espeak-ng speakers from `kwsc synth-dataset`): a category's word keeps its label, other words "
                "become _unknown_; augmented as the wavs (README \"Convolutional keyword spotters\")")
    option(a, "--wave_shift", type=int, help="with --wav_files: random shift of up to ±N samples (kwsc 1600)")
    option(a, "--wave_gain_db", type=float, help="with --wav_files: random loudness change of up to ±N dB (kwsc 6)")
    option(a, "--wave_noise_prob", type=float, help="with --wav_files: probability to add _background_noise_ (kwsc 0.8)")
    option(a, "--wave_noise_max", type=float, help="with --wav_files: largest noise amplitude factor (kwsc 0.1)")
    option(a, "--noise_class", help="class whose training rows are the noise (default _silence_)")


def resolve_config(args: argparse.Namespace, defaults: dict | None = None) -> tuple[dict, dict]:
    """The full training config: recipe defaults, then ``defaults`` ({section: {key: value}}), then --config, then
    the options given; with the stream defaults that applied ({training key: value}, config.stream_defaults: the
    kwsc recipe's GRU/LSTM train for the stream unless the user chose otherwise)."""
    config = recipe_config(args.recipe)
    chosen: set[str] = set()  # training keys the caller, the --config JSON or the command line gave
    for section, values in (defaults or {}).items():
        config[section].update(values)
        if section == "training":
            chosen |= set(values)
    width_given = args.hidden_units is not None
    if args.config:
        from_file = load_config_file(args.config)
        width_given = width_given or "hidden_units" in from_file.get("model", {})
        chosen |= set(from_file.get("training", {}))
        config = merge_config(config, from_file, where=args.config)
    if getattr(args, "no_augment", False):
        config["augment"].update(time_shift=0, freq_masks=0, time_masks=0, noise_prob=0.0, gain_db=0.0, freq_warp=0.0,
                                 time_stretch=0.0)
    for dest, (section, key) in _MAP.items():
        value = getattr(args, dest, None)
        if value is not None:
            config[section][key] = value
            if section == "training":
                chosen.add(key)
    if getattr(args, "use_gpu", False):
        if config["training"]["device"] == "cpu":
            from kwsc.errors import InputError

            raise InputError("--use_gpu and --device cpu contradict each other; give one")
        config["training"]["device"] = "auto"
    architecture = config["model"]["architecture"]
    if architecture in DEFAULT_WIDTH and not width_given:  # the GRU's 256 units mean nothing to a window model
        config["model"]["hidden_units"] = DEFAULT_WIDTH[architecture]
    config["training"]["recipe"] = args.recipe
    applied = stream_defaults(config, chosen)
    config["training"].update(applied)
    validate_config(config)
    return config, applied


def config_from_args(args: argparse.Namespace, defaults: dict | None = None) -> dict:
    """The full training config (``resolve_config`` without the note of which stream defaults applied)."""
    return resolve_config(args, defaults)[0]


STREAM_DEFAULT_NOTE = ("kwsc train: a {architecture} trains for the stream by default (--stream_training {weight:g}: "
                       "rows + continuous sequences of the clips); --stream_training 0 trains per row only")


def stream_default_note(config: dict, applied: dict) -> str | None:
    """The one line ``kwsc train`` prints when the stream default applied (None when it did not)."""
    if "stream_training" not in applied:
        return None
    return STREAM_DEFAULT_NOTE.format(architecture=config["model"]["architecture"],
                                      weight=float(config["training"]["stream_training"]))
