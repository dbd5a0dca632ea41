"""Training configuration: the seed's ``training_config`` keys (ell-behaviour.md §5.6) plus kwsc's additions.

A configuration is a nested dict with the seed's four sections ``model``, ``dataset``, ``training`` and
``optimizer_options``; kwsc adds ``augment`` and a few ``training`` keys. Two recipes give the defaults:

* ``seed`` — the seed's ``training_config`` exactly (RMSprop with alpha 0, lr 1e-3, 30 epochs, batch 128, no
  normalization, no augmentation): what ELL's tutorial users got.
* ``kwsc`` (the default) — the seed's GRU 2-layer network with 256 units, trained to generalize to unseen
  speakers: normalized inputs, time shift, SpecAugment masks, feature-space noise mixing, mel-axis warp (vocal
  tract length) and loudness changes, label smoothing, AdamW
  with a warm-up + cosine schedule; with ``--wav_files`` the rows are made from the wavs with waveform
  augmentation (sample shifts, loudness, background noise), the best recipe (README "kwsc train"). A GRU/LSTM
  also learns from continuous sequences of its clips (``stream_training`` 1, ``RECURRENT_STREAM_DEFAULTS``): as good
  per file as rows alone, and it keeps the continuous stream and VAD modes near the per-file accuracy. Those
  defaults step aside when the user chose ``stream_training`` or a recipe that excludes it (``stream_defaults``).

No torch import here: the command module reads this to build its parser.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from kwsc.errors import FormatError, InputError

__all__ = [
    "SEED_CONFIG", "RECIPES", "ARCHITECTURES", "WINDOW_ARCHITECTURES", "DEFAULT_WIDTH", "RECURRENT_STREAM_DEFAULTS",
    "STREAM_DEFAULTS", "recipe_config", "stream_defaults", "merge_config", "load_config_file", "validate_config",
    "model_filename",
]

SEED_CONFIG: dict = {
    "model": {
        "architecture": "GRU", "num_layers": 2, "hidden_units": 128, "filename": "",
        "dropout": 0.0,
    },
    "dataset": {
        "name": "speechcommandsv01", "featurizer": "featurizer_mel_16000_512_512_80_40_log",
        "categories": "categories.txt", "path": "", "auto_scale": True, "normalize": False,
        "wav_files": "", "training_list": "", "extra_wavs": "",
    },
    "training": {
        "max_epochs": 30, "learning_rate": 1e-3, "lr_scheduler": None, "lr_peaks": 1, "lr_min": 1e-5,
        "lr_gamma": 1, "lr_step_size": 1, "batch_size": 128, "optimizer": "RMSprop", "use_gpu": True,
        # kwsc additions (the seed's behaviour when left at these values)
        "recipe": "seed", "seed": 0, "device": "auto", "warmup_epochs": 0.0, "label_smoothing": 0.0,
        "class_weights": False, "amp": False, "lr_batch_scaling": "none", "scheduler_first": True,
        "threads": 0, "loss_frames": 1, "ema_decay": 0.0,
        "vad_training": 0.0, "idle_confidence": 0.5, "vad_forget": 20,
        "stream_training": 0.0, "stream_seconds": 4.0, "stream_gap_min": 0.3, "stream_gap_max": 3.0,
        "stream_target": 10, "stream_background_weight": 0.3, "stream_sequences": 16, "stream_restart": 0.25,
        "window_stream": 0.0, "init_weights": "",
        "teacher": "", "distill_weight": 1.0, "distill_temperature": 2.0,  # knowledge distillation (distill.py)
        "mixup": 0.0,
    },
    "optimizer_options": {
        "weight_decay": 1e-5, "momentum": 0, "centered": False, "alpha": 0, "eps": 1e-8, "rho": 0,
        "lr_decay": 0, "betas": [0.9, 0.999], "lambd": 1e-4, "t0": 1e6, "etas": [0.5, 1.2], "dampening": 0,
        "step_sizes": [1e-6, 50],
    },
    "augment": {
        "time_shift": 0, "freq_masks": 0, "freq_mask_width": 0, "time_masks": 0, "time_mask_width": 0,
        "noise_prob": 0.0, "noise_max_gain": 0.0, "noise_class": "_silence_", "gain_db": 0.0, "freq_warp": 0.0,
        "time_stretch": 0.0, "wave_shift": 0, "wave_gain_db": 0.0, "wave_noise_prob": 0.0, "wave_noise_max": 0.0,
    },
}

_KWSC_OVERRIDES: dict = {
    "model": {"hidden_units": 256, "dropout": 0.1},
    "dataset": {"normalize": True},
    "training": {
        "recipe": "kwsc", "max_epochs": 60, "learning_rate": 3e-3, "lr_scheduler": "WarmupCosineLR",
        "lr_min": 1e-5, "batch_size": 64, "optimizer": "AdamW", "warmup_epochs": 3.0, "label_smoothing": 0.1,
        "scheduler_first": False,
    },
    "optimizer_options": {"weight_decay": 1e-2},
    "augment": {
        "time_shift": 4, "freq_masks": 2, "freq_mask_width": 8, "time_masks": 2, "time_mask_width": 5,
        "noise_prob": 0.8, "noise_max_gain": 1.0, "freq_warp": 0.1, "gain_db": 6.0,
        # with --wav_files (training rows made from the wavs): these replace the feature-space time shift
        "wave_shift": 1600, "wave_gain_db": 6.0, "wave_noise_prob": 0.8, "wave_noise_max": 0.1,
    },
}

RECIPES = ("kwsc", "seed")
ARCHITECTURES = ("GRU", "LSTM", "DSCNN", "TCResNet", "BCResNet", "CRNN")
# window models (kwsc/train/models_conv.py): they read a whole window of frames once; ``hidden_units`` is their
# width, with these defaults when not given
WINDOW_ARCHITECTURES = ("DSCNN", "TCResNet", "BCResNet", "CRNN")
DEFAULT_WIDTH = {"DSCNN": 64, "TCResNet": 16, "BCResNet": 16, "CRNN": 64}
# The kwsc recipe's GRU/LSTM train for the stream (README "Training for the stream"): these training keys, applied
# by ``stream_defaults`` only when the user chose no stream_training and no recipe that excludes it, each key only
# when the user did not give it. Window models (rows of whole windows) and the seed recipe have none.
RECURRENT_STREAM_DEFAULTS = {"stream_training": 1.0}
STREAM_DEFAULTS = {"GRU": RECURRENT_STREAM_DEFAULTS, "LSTM": RECURRENT_STREAM_DEFAULTS}
OPTIMIZERS = ("RMSprop", "Adam", "AdamW", "SGD", "Adadelta", "Adagrad", "Adamax", "ASGD", "Rprop")
SCHEDULERS = ("none", "TriangleLR", "CosineAnnealingLR", "ExponentialLR", "StepLR", "ExponentialResettingLR",
              "WarmupCosineLR", "OneCycleLR")


def merge_config(base: dict, override: dict, where: str = "config") -> dict:
    """``base`` updated section by section with ``override`` (a new dict; unknown sections are errors)."""
    out = copy.deepcopy(base)
    for section, values in override.items():
        if section not in out:
            raise InputError(f"{where}: unknown section {section!r} (known: {', '.join(out)})")
        if not isinstance(values, dict):
            raise InputError(f"{where}: section {section!r} must be an object")
        out[section].update(copy.deepcopy(values))
    return out


def recipe_config(recipe: str = "kwsc") -> dict:
    """The full default configuration of a recipe (``kwsc`` or ``seed``)."""
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r} (choose {' or '.join(RECIPES)})")
    config = copy.deepcopy(SEED_CONFIG)
    return merge_config(config, _KWSC_OVERRIDES) if recipe == "kwsc" else config


def stream_defaults(config: dict, chosen: set[str]) -> dict:
    """The training keys of ``STREAM_DEFAULTS`` that apply to ``config`` ({key: value}; empty when none do).

    ``chosen``: the training keys the user gave (on the command line or in a --config JSON). The defaults apply to
    the kwsc recipe's GRU/LSTM when ``stream_training`` was not chosen and no recipe that validate_config refuses
    together with it was asked for (vad_training > 0, teacher, mixup > 0, loss_frames > 1): those train as before,
    per row. Each key applies only when it was not chosen itself.
    """
    t = config["training"]
    table = STREAM_DEFAULTS.get(config["model"]["architecture"], {})
    if t.get("recipe") != "kwsc" or not table or "stream_training" in chosen:
        return {}
    if (float(t.get("vad_training") or 0) > 0 or t.get("teacher") or float(t.get("mixup") or 0) > 0
            or int(t.get("loss_frames") or 1) > 1):
        return {}
    return {k: v for k, v in table.items() if k not in chosen}


def load_config_file(path: str | Path) -> dict:
    """A JSON training configuration (the seed's nested format); sections may be partial."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{p}: not a JSON training config ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{p}: a training config must be a JSON object of sections")
    # the seed writes train_results.json with extra top-level keys; keep only config sections
    return {k: v for k, v in data.items() if k in SEED_CONFIG and isinstance(v, dict)}


def validate_config(config: dict) -> None:
    """InputError naming the first bad value."""
    m, t = config["model"], config["training"]
    if m["architecture"] not in ARCHITECTURES:
        raise InputError(f"model.architecture {m['architecture']!r}: choose one of {', '.join(ARCHITECTURES)}")
    if int(m["num_layers"]) not in (1, 2, 3):
        raise InputError(f"model.num_layers {m['num_layers']}: must be 1, 2 or 3")
    if int(m["hidden_units"]) < 1:
        raise InputError(f"model.hidden_units {m['hidden_units']}: must be positive")
    if t["optimizer"] not in OPTIMIZERS:
        raise InputError(f"training.optimizer {t['optimizer']!r}: choose one of {', '.join(OPTIMIZERS)}")
    if (t["lr_scheduler"] or "none") not in SCHEDULERS:
        raise InputError(f"training.lr_scheduler {t['lr_scheduler']!r}: choose one of {', '.join(SCHEDULERS)}")
    if int(t["max_epochs"]) < 1 or int(t["batch_size"]) < 1:
        raise InputError("training.max_epochs and training.batch_size must be positive")
    if t["device"] not in ("auto", "cpu", "cuda") and not str(t["device"]).startswith("cuda:"):
        raise InputError(f"training.device {t['device']!r}: choose auto, cpu or cuda")
    if float(t["vad_training"]) < 0 or int(t["vad_forget"]) < 0:
        raise InputError("training.vad_training and training.vad_forget must be >= 0")
    if float(t["stream_training"]) < 0:
        raise InputError(f"training.stream_training {t['stream_training']}: must be >= 0")
    if float(t["stream_seconds"]) <= 0 or int(t["stream_target"]) < 1 or int(t["stream_sequences"]) < 1:
        raise InputError("training.stream_seconds, stream_target and stream_sequences must be positive")
    if not 0 <= float(t["stream_gap_min"]) <= float(t["stream_gap_max"]):
        raise InputError(f"training.stream_gap_min {t['stream_gap_min']} and stream_gap_max {t['stream_gap_max']}: "
                         "need 0 <= min <= max")
    if float(t["stream_background_weight"]) < 0 or not 0 <= float(t["stream_restart"]) <= 1:
        raise InputError("training.stream_background_weight must be >= 0 and stream_restart in [0, 1]")
    if not 0 < float(t["idle_confidence"]) < 1:
        raise InputError(f"training.idle_confidence {t['idle_confidence']}: must be between 0 and 1")
    if m["architecture"] in WINDOW_ARCHITECTURES:
        if int(t.get("loss_frames") or 1) != 1:
            raise InputError(f"training.loss_frames {t['loss_frames']}: a {m['architecture']} window model reads its "
                             "class once per window; loss_frames applies to GRU/LSTM only")
        if float(t.get("vad_training") or 0) > 0:
            raise InputError(f"training.vad_training: a {m['architecture']} window model has no recurrent state to "
                             "reset; vad_training applies to GRU/LSTM only")
        if float(t.get("stream_training") or 0) > 0 and float(t.get("window_stream") or 0) > 0:
            raise InputError("training.stream_training and training.window_stream: give one (stream_training "
                             "trains a window model's ticks on the continuous stream, window_stream on single files)")
    if float(t.get("window_stream") or 0) < 0:
        raise InputError(f"training.window_stream {t['window_stream']}: must be >= 0")
    if float(t.get("window_stream") or 0) > 0 and m["architecture"] not in WINDOW_ARCHITECTURES:
        raise InputError(f"training.window_stream: applies to the window models ({', '.join(WINDOW_ARCHITECTURES)}); "
                         f"a {m['architecture']} is trained for the stream with stream_training")
    if config["dataset"].get("extra_wavs") and not config["dataset"].get("wav_files"):
        raise InputError("dataset.extra_wavs: extra clips join the wavs --wav_files trains from; give --wav_files")
    if float(t.get("distill_weight", 1.0)) < 0 or float(t.get("distill_temperature", 2.0)) <= 0:
        raise InputError(f"training.distill_weight {t.get('distill_weight')} must be >= 0 and "
                         f"training.distill_temperature {t.get('distill_temperature')} > 0")
    if t.get("teacher") and float(t.get("stream_training") or 0) > 0:
        raise InputError("training.teacher: distillation teaches rows and window-stream ticks; it does not apply "
                         "with stream_training")
    if float(t.get("mixup") or 0) < 0:
        raise InputError(f"training.mixup {t['mixup']}: must be >= 0 (the Beta distribution's alpha; 0: off)")
    if float(t.get("mixup") or 0) > 0 and (float(t.get("window_stream") or 0) > 0
                                          or float(t.get("stream_training") or 0) > 0 or t.get("teacher")):
        raise InputError("training.mixup: mixes rows and their labels for the row loss only; it does not combine "
                         "with window_stream, stream_training or teacher (their targets are per tick)")
    if float(t.get("stream_training") or 0) > 0 and int(t.get("loss_frames") or 1) > 1:
        raise InputError(f"training.loss_frames {t['loss_frames']}: stream_training trains every frame against its "
                         "own target (the rows too); loss_frames is the per-row recipe's head loss: give one")
    if t["lr_batch_scaling"] not in ("none", "linear", "sqrt"):
        raise InputError(f"training.lr_batch_scaling {t['lr_batch_scaling']!r}: choose none, linear or sqrt")


def model_filename(config: dict) -> str:
    """The seed's default file stem: ``<Arch><H>KeywordSpotter`` (or model.filename without suffix)."""
    name = config["model"].get("filename") or ""
    if name:
        return Path(name).stem
    return f"{config['model']['architecture']}{config['model']['hidden_units']}KeywordSpotter"
