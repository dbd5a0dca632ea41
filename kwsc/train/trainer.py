"""The training loop: whole dataset as tensors on the device, batches sliced there, checkpoint every epoch.

One code path for CPU and GPU: the training set (and its labels) is moved to the device once, each epoch draws a
permutation there and slices batches from it, so no per-sample Python/DataLoader work happens. Each epoch ends by
saving model, optimizer, iteration, log and every random generator to ``checkpoint.pt``, so ``resume=True``
continues with exactly the result of an uninterrupted run. Under ``torchrun`` (WORLD_SIZE > 1) the model is
wrapped in DistributedDataParallel: every rank draws the same permutation and takes its share of each batch.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from kwsc.errors import FormatError, InputError
from kwsc.train.config import validate_config
from kwsc.train.data import Augmenter, load_splits, normalization_stats, read_categories
from kwsc.train.models import KeywordSpotter, build_model
from kwsc.train.schedulers import make_schedule

__all__ = ["TrainingRun", "prepare", "fit", "evaluate", "per_file", "make_optimizer", "resolve_device", "ema_weights",
           "use_ema_weights", "checkpoint_config", "CHECKPOINT"]

CHECKPOINT = "checkpoint.pt"
_OPTIMIZER_KEYS = {
    "RMSprop": ("alpha", "eps", "weight_decay", "momentum", "centered"),
    "Adam": ("betas", "eps", "weight_decay"), "AdamW": ("betas", "eps", "weight_decay"),
    "Adamax": ("betas", "eps", "weight_decay"), "SGD": ("momentum", "dampening", "weight_decay"),
    "Adadelta": ("rho", "eps", "weight_decay"), "Adagrad": ("lr_decay", "weight_decay"),
    "ASGD": ("lambd", "t0", "weight_decay"), "Rprop": ("etas", "step_sizes"),
}


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; asking for cuda without one is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but torch sees no CUDA device")
    return torch.device(name)


def make_optimizer(name: str, params, lr: float, options: dict) -> torch.optim.Optimizer:
    """The seed's optimizer by name with the options that optimizer takes (tuples restored from JSON lists)."""
    kwargs = {k: tuple(options[k]) if isinstance(options[k], list) else options[k]
              for k in _OPTIMIZER_KEYS[name] if k in options}
    return getattr(torch.optim, name)(params, lr=lr, **kwargs)


@dataclass
class TrainingRun:
    """Everything one training run holds: config, data tensors, model, optimizer, schedule, progress."""

    config: dict
    outdir: Path
    device: torch.device
    categories: list[str]
    parameters: list[int]
    tensors: dict
    model: KeywordSpotter
    optimizer: torch.optim.Optimizer
    schedule: object
    augmenter: Augmenter
    batch_size: int
    ticks: int
    rank: int = 0
    world: int = 1
    epoch: int = 0
    log: list = field(default_factory=list)
    training_time: float = 0.0
    generators: dict = field(default_factory=dict)
    class_weights: torch.Tensor | None = None
    ddp_model: torch.nn.Module | None = None
    waveforms: object = None  # a WaveformTrainingSet when training from the wavs
    ema: list | None = None  # exponential moving average of the parameters (evaluated and exported)
    vad_training: object = None  # a VadTraining when --vad_training is on
    stream_training: object = None  # a StreamTraining when --stream_training is on
    window_stream: object = None  # a WindowStream for window models (its tick loss with --window_stream)
    teachers: object = None  # distill.Teachers with --teacher

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def prepare(config: dict, dataset_dir: str | Path, outdir: str | Path, categories_path: str | Path | None = None
            ) -> TrainingRun:
    """Load data, build model/optimizer/schedule on the device; start or join the process group under torchrun."""
    validate_config(config)
    t = config["training"]
    if int(t.get("threads") or 0) > 0:
        torch.set_num_threads(int(t["threads"]))
    else:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                  else (os.cpu_count() or 1)))
    rank, world = _distributed()
    device = resolve_device(t["device"])
    if world > 1:
        import torch.distributed as dist
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    categories = read_categories(categories_path) if categories_path else None
    splits = load_splits(dataset_dir, categories)
    train_set = splits["training_list"]
    categories = train_set.classes
    seed = int(t["seed"])
    torch.manual_seed(seed)
    num_features, num_keywords = train_set.features.shape[2], len(categories)
    model = build_model(config, num_features, num_keywords, window=train_set.features.shape[1])
    if config["dataset"].get("normalize"):
        model.set_normalization(*normalization_stats(train_set.features))
    if t.get("init_weights"):
        _load_initial_weights(model, Path(t["init_weights"]))
    teachers = None
    if t.get("teacher"):  # knowledge distillation: checked before anything heavier is loaded
        from kwsc.train.distill import load_teachers
        teachers = load_teachers(t["teacher"], num_features, num_keywords, train_set.features.shape[1], device)
    model.to(device)
    tensors = {name.split("_")[0]: (torch.from_numpy(s.features).to(device), torch.from_numpy(s.labels).to(device))
               for name, s in splits.items()}
    aug = config.get("augment", {})
    waveforms = None
    if config["dataset"].get("wav_files"):
        from kwsc.train.waveform import load_waveform_training_set
        list_file = config["dataset"].get("training_list") or Path(dataset_dir) / "training_list.txt"
        extra = [p for p in str(config["dataset"].get("extra_wavs") or "").split(",") if p.strip()]
        waveforms = load_waveform_training_set(config["dataset"]["wav_files"], list_file, categories,
                                               train_set.parameters, aug, device, train_set.features, extra)
    rows = len(waveforms) if waveforms is not None else len(train_set)
    batch_size = min(int(t["batch_size"]), rows)
    ticks = rows // batch_size  # drop_last, as the seed's DataLoader
    lr = float(t["learning_rate"])
    scale = batch_size / 128.0
    lr *= {"none": 1.0, "linear": scale, "sqrt": math.sqrt(scale)}[t.get("lr_batch_scaling", "none")]
    optimizer = make_optimizer(t["optimizer"], model.parameters(), lr, config["optimizer_options"])
    lr_min = float(t["lr_min"]) if t.get("lr_min") else 0.0
    schedule = make_schedule(t.get("lr_scheduler"), lr, lr_min, int(t["max_epochs"]), ticks,
                             float(t.get("lr_peaks") or 1), float(t.get("lr_gamma") or 1),
                             int(t.get("lr_step_size") or 1), float(t.get("warmup_epochs") or 0))
    noise_rows = None
    noise_class = aug.get("noise_class")
    if float(aug.get("noise_prob") or 0) > 0 and noise_class in categories:
        noise_rows = tensors["training"][0][tensors["training"][1] == categories.index(noise_class)]
    # rows made from the wavs are shifted by samples there; rolling whole frames on top only blurs them
    augmenter = Augmenter({**aug, "time_shift": 0} if waveforms is not None else aug, model.mean, noise_rows)
    class_weights = None
    if t.get("class_weights"):  # the seed's Dataset weights: total / count per class
        counts = np.bincount(train_set.labels, minlength=num_keywords).astype(np.float64)
        class_weights = torch.tensor(len(train_set) / np.maximum(counts, 1), dtype=torch.float32, device=device)
        class_weights = class_weights / class_weights.mean()
    generators = {"order": torch.Generator(device=device), "augment": torch.Generator(device=device)}
    generators["order"].manual_seed(seed)
    generators["augment"].manual_seed(seed + 7919 * (rank + 1))
    run = TrainingRun(config, Path(outdir), device, categories, train_set.parameters, tensors, model, optimizer,
                      schedule, augmenter, batch_size, ticks, rank, world, generators=generators,
                      class_weights=class_weights, waveforms=waveforms, teachers=teachers)
    if float(t.get("vad_training") or 0) > 0:
        from kwsc.train.vad_training import VadTraining
        run.vad_training = VadTraining(train_set.parameters, num_keywords,
                                       categories.index(noise_class) if noise_class in categories else None,
                                       device, float(t["idle_confidence"]), int(t["vad_forget"]))
    if float(t.get("stream_training") or 0) > 0:
        run.stream_training = _stream_training(config, train_set, tensors, categories, waveforms, device,
                                               window=model.window if hasattr(model, "tick_log_probs") else 0)
    if hasattr(model, "tick_log_probs"):  # a window model: `kwsc test --reset`'s per-file rule, streamed
        from kwsc.train.window_stream import WindowStream
        run.window_stream = WindowStream(train_set.parameters, num_keywords,
                                         categories.index(noise_class) if noise_class in categories else None,
                                         device, float(t.get("label_smoothing") or 0))
    if float(t.get("ema_decay") or 0) > 0:
        run.ema = [p.detach().clone() for p in model.parameters()]
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        run.ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return run


def _load_initial_weights(model, path: Path) -> None:
    """``--init_weights``: a state_dict of this very model (tensors only; one line naming what differs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such weights file (--init_weights)") from None
    except Exception as exc:  # noqa: BLE001 (a foreign or crafted file: one line, never run)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: not a state_dict of tensors (--init_weights): {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(f"{path}: not a state_dict of tensors (--init_weights; a training's <stem>.pt)")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    if ours != theirs:
        differ = sorted(set(ours) ^ set(theirs)) or [k for k in ours if ours[k] != theirs[k]]
        raise InputError(f"{path} holds another model than this run builds ({', '.join(differ[:3])}"
                         f"{', …' if len(differ) > 3 else ''} differ); give the architecture and --hidden_units it "
                         "was trained with")
    model.load_state_dict(state)


def _stream_training(config: dict, train_set, tensors: dict, categories: list[str], waveforms, device,
                     window: int = 0):
    """The StreamTraining of a config; its background noise: the noise recordings featurized (``--wav_files``),
    else the background class's training rows (their real frames, in order); ``window``: a window model's."""
    from kwsc.train.stream_training import StreamTraining

    t, aug = config["training"], config.get("augment", {})
    noise_class = aug.get("noise_class")
    background = categories.index(noise_class) if noise_class in categories else None
    bank, gain = None, float(aug.get("noise_max_gain") or 0)
    if waveforms is not None and waveforms.noise is not None:
        size = waveforms.input_size
        usable = len(waveforms.noise) // size * size
        with torch.no_grad():
            bank = torch.cat([waveforms.features(part.reshape(-1, size))
                              for part in waveforms.noise[:usable].split(size * 4096)])
        gain = float(aug.get("wave_noise_max") or 0)
    elif background is not None:
        x, y = tensors["training"]
        real = min(x.shape[1], math.ceil(train_set.parameters[0] / train_set.parameters[1]) - 1)
        bank = x[y == background][:, :real].reshape(-1, x.shape[2])
    return StreamTraining(
        train_set.parameters, len(categories), background, device, seconds=float(t["stream_seconds"]),
        gap=(float(t["stream_gap_min"]), float(t["stream_gap_max"])), target_frames=int(t["stream_target"]),
        background_weight=float(t["stream_background_weight"]), confidence=float(t["idle_confidence"]),
        label_smoothing=float(t.get("label_smoothing") or 0), sequences=int(t["stream_sequences"]),
        restart=float(t["stream_restart"]), noise_bank=bank, noise_max_gain=gain, window=window)


def _plain(value):
    """JSON's types only (numpy scalars → float/int), so the checkpoint loads with ``weights_only=True``."""
    import json

    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _checkpoint_state(run: TrainingRun) -> dict:
    """Tensors and plain values only: ``load_checkpoint`` reads it with ``torch.load(weights_only=True)``, which
    refuses anything else (a pickle that would run code)."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    numpy_rng = {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                 "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "epoch": run.epoch,
             "log": _plain(run.log), "training_time": float(run.training_time), "config": _plain(run.config),
             "generators": {k: g.get_state() for k, g in run.generators.items()},
             "torch_rng": torch.get_rng_state(), "numpy_rng": numpy_rng, "ema": run.ema,
             "stream_states": run.stream_training.states if run.stream_training is not None else None}
    if run.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(run.device)
    return state


def save_checkpoint(run: TrainingRun) -> None:
    """Atomically write ``checkpoint.pt`` (main process only)."""
    if not run.is_main:
        return
    path = run.outdir / CHECKPOINT
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(_checkpoint_state(run), tmp)
    os.replace(tmp, path)


def load_checkpoint(run: TrainingRun) -> bool:
    """Restore the last saved epoch; False when there is no checkpoint."""
    path = run.outdir / CHECKPOINT
    if not path.exists():
        return False
    try:  # weights_only: tensors and plain values; a pickle that would run code is refused, not run
        state = torch.load(path, map_location=run.device, weights_only=True)
    except Exception as exc:  # a truncated, foreign, older-kwsc or crafted file: one line saying which
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: cannot resume: not a checkpoint of tensors and plain values, which is all kwsc "
                          f"loads (torch.load weights_only=True): {first}; start again without --resume") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise FormatError(f"{path}: cannot resume: not a kwsc checkpoint (no model weights in it)")
    _check_same_model(path, state, run)
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
    except Exception as exc:  # noqa: BLE001 (a foreign file: say which and why, in one line)
        first = str(exc).strip().splitlines()[0][:160]
        raise FormatError(f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: {first})") from None
    run.epoch, run.log, run.training_time = int(state["epoch"]), list(state["log"]), float(state["training_time"])
    if run.ema is not None and state.get("ema") is not None:
        run.ema = [t.to(run.device) for t in state["ema"]]
    if run.stream_training is not None and state.get("stream_states") is not None:
        run.stream_training.states = [tuple(s.to(run.device) for s in st) if isinstance(st, tuple)
                                      else st.to(run.device) for st in state["stream_states"]]
    for k, g in run.generators.items():
        g.set_state(state["generators"][k].cpu())  # generator states are CPU byte tensors, even for CUDA
    torch.set_rng_state(state["torch_rng"].cpu())
    rng = state["numpy_rng"]
    np.random.set_state((rng["kind"], rng["keys"].cpu().numpy().astype(np.uint32), rng["pos"], rng["has_gauss"],
                         rng["cached_gaussian"]))
    if "cuda_rng" in state and run.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), run.device)
    return True


def checkpoint_config(outdir: str | Path) -> dict:
    """The training config saved in ``outdir``'s checkpoint ({} when there is none or it cannot be read: then
    ``load_checkpoint`` says why)."""
    path = Path(outdir) / CHECKPOINT
    if not path.is_file():
        return {}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 (load_checkpoint reports it in one line)
        return {}
    config = state.get("config") if isinstance(state, dict) else None
    return config if isinstance(config, dict) else {}


def _check_same_model(path: Path, state: dict, run: TrainingRun) -> None:
    """One line naming what differs when ``--resume`` meets a checkpoint of another model (it was a 10-line
    ``load_state_dict`` error): the model options first, then the weights' names and shapes."""
    saved = (state.get("config") or {}).get("model") or {}
    current = run.config.get("model", {})
    differ = [k for k in current if k in saved and k != "filename" and saved[k] != current[k]]
    if differ:
        raise InputError(f"{path} was trained with {', '.join(f'--{k} {saved[k]}' for k in differ)}; this run asks "
                         f"for {', '.join(f'--{k} {current[k]}' for k in differ)}: resume with the checkpoint's "
                         f"options, or train into another --outdir")
    ours = {k: tuple(v.shape) for k, v in run.model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state["model"].items() if hasattr(v, "shape")}
    if ours != theirs:
        missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        shapes = [f"{k} {list(theirs[k])} vs {list(ours[k])}" for k in ours if k in theirs and ours[k] != theirs[k]]
        what = (f"different weight shapes ({', '.join(shapes[:2])}{', …' if len(shapes) > 2 else ''}; checkpoint vs "
                f"this run)" if shapes else f"weights missing ({', '.join(missing[:3])}) or extra "
                                            f"({', '.join(extra[:3])})")
        raise InputError(f"{path} holds another model than this run builds: {what}; resume with the checkpoint's "
                         f"options, or train into another --outdir")


class ema_weights:  # noqa: N801 (a context manager used like a function)
    """Inside the block the model holds the averaged weights (when EMA is on); the training weights come back."""

    def __init__(self, run: TrainingRun):
        self.run = run

    def __enter__(self):
        if self.run.ema is not None:
            with torch.no_grad():
                self.saved = [p.detach().clone() for p in self.run.model.parameters()]
                torch._foreach_copy_([p.data for p in self.run.model.parameters()], self.run.ema)
        return self.run.model

    def __exit__(self, *exc):
        if self.run.ema is not None:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.run.model.parameters()], self.saved)
        return False


def use_ema_weights(run: TrainingRun) -> None:
    """Put the averaged weights into the model for good (testing, saving, export)."""
    if run.ema is not None:
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in run.model.parameters()], run.ema)


@torch.no_grad()
def evaluate(model: KeywordSpotter, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096, per_file=None
             ) -> tuple[float, np.ndarray]:
    """Accuracy over all rows (the seed skipped the last partial batch) and the predicted class indices.

    ``per_file`` (a StreamTraining): by `kwsc test`'s rule instead (padded file, most confident frame), for
    models trained to name a word right after it ends rather than at the row's last frame."""
    if per_file is not None:
        pred = per_file.file_predictions(model, x)
        return (float((pred == y).float().mean()) if len(y) else float("nan")), pred.cpu().numpy()
    was_training = model.training
    model.eval()
    preds = [model(x[i:i + batch_size])[0].argmax(dim=1) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=x.device)
    accuracy = float((pred == y).float().mean()) if len(y) else float("nan")
    return accuracy, pred.cpu().numpy()


def per_file(run: TrainingRun):
    """What scores a file in validation and test: the stream's rule for models trained for it (StreamTraining for
    GRU/LSTM, WindowStream for window models with --window_stream or --stream_training), else None (the row's last
    frame / window)."""
    if run.stream_training is not None:  # a window model is scored by the test's rule on its ticks
        return run.window_stream if run.window_stream is not None else run.stream_training
    if float(run.config["training"].get("window_stream") or 0) > 0:
        return run.window_stream
    return None


def _train_epoch(run: TrainingRun, progress: bool) -> float:
    t = run.config["training"]
    x_all, y_all = run.tensors["training"]
    net = run.ddp_model or run.model
    net.train()
    rows = len(run.waveforms) if run.waveforms is not None else len(x_all)
    order = torch.randperm(rows, generator=run.generators["order"], device=run.device)
    use_amp = bool(t.get("amp")) and run.device.type == "cuda"
    smoothing = float(t.get("label_smoothing") or 0)
    first = bool(t.get("scheduler_first"))
    loss_frames = max(1, int(t.get("loss_frames") or 1))
    ema_decay = float(t.get("ema_decay") or 0)
    vad_weight = float(t.get("vad_training") or 0)
    stream_weight = float(t.get("stream_training") or 0)
    window_stream_weight = float(t.get("window_stream") or 0)
    distill_weight, temperature = float(t.get("distill_weight", 1.0)), float(t.get("distill_temperature", 2.0))
    mixup = float(t.get("mixup") or 0)
    total, count = torch.zeros((), device=run.device), 0
    bar = tqdm(total=run.ticks, desc=f"Epoch {run.epoch + 1}", leave=False, file=sys.stderr,
               disable=not (progress and run.is_main), unit="batch")
    for tick in range(run.ticks):
        it = run.epoch * run.ticks + tick
        lr = run.schedule(it + 1 if first else it)  # the seed calls scheduler.step() before optimizer.step()
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        index = order[tick * run.batch_size:(tick + 1) * run.batch_size][run.rank::run.world]
        if run.waveforms is not None:
            x, y = run.waveforms.batch(index, run.generators["augment"]), run.waveforms.labels[index]
        else:
            x, y = x_all[index], y_all[index]
        if run.augmenter.active:
            x = run.augmenter(x, run.generators["augment"])
        if run.stream_training is not None and run.window_stream is not None:  # every tick of the rows, streamed
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = run.window_stream.stream_loss(run.model, x, y, run.generators["augment"], run.stream_training)
        elif run.stream_training is not None:  # the rows with the stream's frame targets (loss_frames does not apply)
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = run.stream_training.row_loss(net, x, y)
        elif window_stream_weight > 0:  # rows and every tick of the sequences `kwsc test --reset` streams, one pass
            distill = None
            if run.teachers is not None and distill_weight > 0:  # soft targets on the ticks that hold the word
                from kwsc.train.distill import distillation_loss

                def distill(sequences, log_probs, word):
                    return distill_weight * distillation_loss(log_probs, run.teachers.tick_log_probs(sequences),
                                                              temperature, word)
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = run.window_stream.loss(run.model, x, y, run.generators["augment"], window_stream_weight,
                                              distill=distill)
        else:
            partner = None
            if mixup > 0:  # λ·row + (1 − λ)·another row of the batch, both labels weighted alike
                x, partner, lam = mixup_rows(x, mixup, run.generators["augment"])
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                log_probs, _ = net(x, None, loss_frames)
            if loss_frames > 1:  # every one of the last frames must name the word (what a streaming detector reads)
                log_probs = log_probs.reshape(-1, log_probs.shape[-1])
            loss = row_loss(log_probs, y, loss_frames, run.class_weights, smoothing,
                            None if partner is None else (partner, lam))
            if run.teachers is not None and distill_weight > 0:  # the teachers' soft targets for the same rows
                from kwsc.train.distill import distillation_loss
                taught = [q.repeat_interleave(loss_frames, dim=0) for q in run.teachers.row_log_probs(x)]
                loss = loss + distill_weight * distillation_loss(log_probs, taught, temperature)
        if run.vad_training is not None:  # what to say after a VAD reset and a second after a word
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss + vad_weight * run.vad_training.loss(net, x, run.generators["augment"])
        if run.stream_training is not None:  # continuous sequences of this batch's clips, frame targets
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_amp):
                stream_net = run.model if run.window_stream is not None else net  # window models: no DDP hooks
                loss = loss + stream_weight * run.stream_training.loss(stream_net, x, y, run.generators["augment"])
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(run.ema, [p.detach() for p in run.model.parameters()], 1.0 - ema_decay)
        total += loss.detach()
        count += 1
        bar.update(1)
    bar.close()
    return float(total) / max(1, count)


def row_loss(log_probs: torch.Tensor, y: torch.Tensor, loss_frames: int = 1, weight: torch.Tensor | None = None,
             smoothing: float = 0.0, mix: tuple[torch.Tensor, float] | None = None) -> torch.Tensor:
    """Cross entropy of the rows' log-probabilities (B × loss_frames, K) against their labels (B,), each repeated
    for the last ``loss_frames`` frames; with ``mix`` = (partner, λ) from ``mixup_rows`` the mixed rows' loss
    λ·CE(y) + (1 − λ)·CE(y[partner]) (= the cross entropy against the mixed label distribution)."""
    # cross_entropy re-normalizes log-probabilities (a no-op) and adds label smoothing / class weights
    loss = F.cross_entropy(log_probs.float(), y.repeat_interleave(loss_frames), weight=weight,
                           label_smoothing=smoothing)
    if mix is None:
        return loss
    partner, lam = mix
    other = F.cross_entropy(log_probs.float(), y[partner].repeat_interleave(loss_frames), weight=weight,
                            label_smoothing=smoothing)
    return lam * loss + (1.0 - lam) * other


def mixup_rows(x: torch.Tensor, alpha: float, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): (λ·x + (1 − λ)·x[partner], partner, λ), λ ~ Beta(alpha, alpha) once per batch
    and partner a permutation of the batch, both drawn from ``generator`` (so ``--resume`` repeats them)."""
    partner = torch.randperm(len(x), generator=generator, device=generator.device).to(x.device)
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam * x + (1.0 - lam) * x[partner], partner, lam


def fit(run: TrainingRun, progress: bool = True, echo=print, stop_after: int | None = None) -> None:
    """Train from ``run.epoch`` to max_epochs; prints the seed's per-epoch line; checkpoints every epoch.

    ``stop_after`` ends the loop after that epoch (the schedule still spans max_epochs); resume continues it.
    """
    epochs = int(run.config["training"]["max_epochs"])
    if stop_after is not None:
        epochs = min(epochs, int(stop_after))
    x_val, y_val = run.tensors["validation"]
    while run.epoch < epochs:
        start = time.perf_counter()
        loss = _train_epoch(run, progress)
        lr = run.optimizer.param_groups[0]["lr"]
        with ema_weights(run):
            accuracy, _ = evaluate(run.model, x_val, y_val, per_file=per_file(run))
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        run.training_time += time.perf_counter() - start
        run.epoch += 1
        run.log.append({"epoch": run.epoch, "loss": loss, "accuracy": accuracy, "learning_rate": lr})
        if run.is_main:
            echo(f"Epoch {run.epoch}, Loss {loss:.6f}, Validation Accuracy {accuracy * 100:.3f}, "
                 f"Learning Rate {lr:.6g}")
        save_checkpoint(run)
