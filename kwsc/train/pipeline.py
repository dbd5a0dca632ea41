"""One training job end to end: train (or resume), test, write results and plots, export ONNX.

Files written into ``outdir`` (main process only):
``<Arch><H>KeywordSpotter.pt`` (state_dict), ``<stem>.onnx``, ``<stem>_stateful.onnx``, ``categories.txt``,
``train_results.json``, ``results.txt`` (test predictions, JSON list of labels), ``training_curves.png``,
``confusion_matrix.png``, ``mean.npy``/``std.npy`` (with normalization), ``checkpoint.pt`` (every epoch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from kwsc.errors import InputError
from kwsc.fileio import atomic_write
from kwsc.train.config import model_filename
from kwsc.train.export import DEFAULT_OPSET, export_onnx
from kwsc.train.report import confusion_matrix, plot_confusion_matrix, plot_training_curves, write_results
from kwsc.train.trainer import (CHECKPOINT, checkpoint_config, evaluate, fit, load_checkpoint, per_file, prepare,
                                use_ema_weights)

__all__ = ["train", "keep_checkpoint_defaults", "settle_defaults"]


def _save_tensor_file(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


def keep_checkpoint_defaults(config: dict, applied: dict, outdir: str | Path) -> dict:
    """For ``--resume``: the defaulted training keys (``applied``, options.resolve_config) whose value in
    ``outdir``'s checkpoint differs are set back to the checkpoint's in ``config`` — a run started before a default
    changed (per row, before GRU/LSTM trained for the stream by default) goes on as it started. Returns those keys
    with the checkpoint's values ({} when none differ or there is no checkpoint)."""
    saved = checkpoint_config(outdir).get("training") or {}
    kept = {k: saved[k] for k in applied if k in saved and saved[k] != config["training"].get(k)}
    config["training"].update(kept)
    return kept


def settle_defaults(config: dict, applied: dict, outdir: str | Path, resume: bool, echo=print) -> None:
    """Before training: with ``resume``, the checkpoint's values of the defaulted keys (keep_checkpoint_defaults),
    said in one line; then, when the stream defaults still apply, the one line that says so and how to turn them
    off (options.stream_default_note)."""
    from kwsc.train.options import stream_default_note

    kept = keep_checkpoint_defaults(config, applied, outdir) if resume else {}
    if kept:
        given = ", ".join(f"--{k} {v:g}" if isinstance(v, float) else f"--{k} {v}" for k, v in kept.items())
        echo(f"kwsc train: --resume: {Path(outdir) / CHECKPOINT} was trained with {given}, not today's default; "
             "it goes on so")
    note = stream_default_note(config, {k: v for k, v in applied.items() if k not in kept})
    if note:
        echo(note)


def train(config: dict, dataset_dir: str | Path, outdir: str | Path, categories: str | Path | None = None,
          resume: bool = False, progress: bool = True, echo=print, opset: int = DEFAULT_OPSET,
          export: bool = True, stop_after: int | None = None) -> dict:
    """Train as ``config`` says on the dataset folder, write every output into ``outdir``; the results dict.

    Args:
        resume: continue from ``outdir/checkpoint.pt`` when it exists (same result as not stopping).
        progress: show a tqdm bar per epoch (stderr).
        echo: where the per-epoch lines go.
        export: write and verify the two ONNX forms.
        stop_after: stop (checkpointed, nothing else written) after this epoch; ``resume`` continues. Returns {}.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    run = prepare(config, dataset_dir, outdir, categories)
    if resume:
        found = load_checkpoint(run)
        if run.is_main:
            echo(f"Resuming after epoch {run.epoch} from {outdir / CHECKPOINT}" if found
                 else f"No {outdir / CHECKPOINT} to resume from: starting at epoch 1")
    if run.is_main:
        rows = len(run.waveforms) if run.waveforms is not None else len(run.tensors["training"][0])
        echo(f"Training {run.model.name()} on {rows} {'clips' if run.waveforms is not None else 'rows'} "
             f"({run.ticks} batches of {run.batch_size} per epoch) on {run.device}"
             + (f" × {run.world} processes" if run.world > 1 else ""))
        if run.waveforms is not None and run.waveforms.noise_snr is not None:
            from kwsc.train.waveform import noise_snr_line
            echo(noise_snr_line(run.waveforms.noise_snr))
    fit(run, progress=progress, echo=echo, stop_after=stop_after)
    results: dict = {}
    finished = run.epoch >= int(config["training"]["max_epochs"])
    if run.is_main and finished:
        results = _finish(run, opset, export, echo)
    if run.world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return results


def _finish(run, opset: int, export: bool, echo) -> dict:
    use_ema_weights(run)
    config, outdir, model = run.config, run.outdir, run.model
    stem = model_filename(config)
    x_test, y_test = run.tensors["testing"]
    x_train, y_train = run.tensors["training"]
    accuracy_test, predictions = evaluate(model, x_test, y_test, per_file=per_file(run))
    accuracy_train, _ = evaluate(model, x_train, y_train, per_file=per_file(run))
    accuracy_val = run.log[-1]["accuracy"] if run.log else float("nan")
    echo(f"Training accuracy = {accuracy_train * 100:.3f} %")
    echo(f"Testing accuracy = {accuracy_test * 100:.3f} %")
    window_accuracy = {}
    if run.window_stream is not None:  # a window model: per window (its row) and streamed (`kwsc test --reset`)
        x_val, y_val = run.tensors["validation"]
        for split, (x, y) in (("test", (x_test, y_test)), ("validation", (x_val, y_val))):
            window_accuracy[f"accuracy_{split}_window"] = evaluate(model, x, y)[0]
            window_accuracy[f"accuracy_{split}_streamed"] = evaluate(model, x, y, per_file=run.window_stream)[0]
        echo("Per file, window / streamed (kwsc test --reset's rule): validation "
             f"{window_accuracy['accuracy_validation_window'] * 100:.2f} / "
             f"{window_accuracy['accuracy_validation_streamed'] * 100:.2f} %, test "
             f"{window_accuracy['accuracy_test_window'] * 100:.2f} / {window_accuracy['accuracy_test_streamed'] * 100:.2f} %")
    _save_tensor_file(outdir / f"{stem}.pt", {k: v.cpu() for k, v in model.state_dict().items()})
    atomic_write(outdir / "categories.txt", "\n".join(run.categories) + "\n")
    if bool(model.normalize):
        _save_npy(outdir / "mean.npy", model.mean.cpu().numpy())
        _save_npy(outdir / "std.npy", model.std.cpu().numpy())
    sample_rate, input_size, num_filters, window_size, shift = run.parameters
    dataset_info = {"sample_rate": sample_rate, "input_size": input_size, "num_filters": num_filters,
                    "window_size": window_size, "shift": shift}
    files = {"model": f"{stem}.pt"}
    if hasattr(model, "window_forward"):
        files["parameters"] = int(sum(p.numel() for p in model.parameters()))
    labels = y_test.cpu().numpy()
    counts = confusion_matrix(labels, predictions, len(run.categories))
    results = {
        "accuracy_val": accuracy_test,  # the seed stores the *test* accuracy under this name
        "accuracy_test": accuracy_test,
        "accuracy_validation": accuracy_val,
        "accuracy_train": accuracy_train,
        **window_accuracy,
        "training_time": run.training_time,
        "log": run.log,
        **{k: v for k, v in config.items()},
        "dataset": {**config["dataset"], **dataset_info},
        "categories": run.categories,
        "model_name": model.name(),
        "device": str(run.device),
        "processes": run.world,
        "confusion_matrix": counts.tolist(),
        "files": files,
    }
    if run.waveforms is not None and run.waveforms.noise_snr is not None:
        results["noise_snr_db"] = run.waveforms.noise_snr  # how loud --wav_files' mixed noise was (waveform.py)
    # The results go to disk before the export: an export that fails (onnxruntime differs, a disk error) must not
    # lose an hour of training's accuracies; the .pt is already there, so `kwsc train --resume` re-exports.
    if export:
        results["export"] = "pending"
    write_results(outdir / "train_results.json", results)
    write_results(outdir / "results.txt", [run.categories[int(i)] for i in predictions])
    plot_training_curves(outdir / "training_curves.png", run.log, f"{model.name()} — {config['training']['recipe']} recipe")
    plot_confusion_matrix(outdir / "confusion_matrix.png", counts, run.categories,
                          f"test accuracy {accuracy_test * 100:.1f} % ({len(labels)} rows)")
    if not export:
        return results
    try:
        files.update(_export(run, model, stem, opset, dataset_info, echo))
    except BaseException as exc:
        results["export"] = f"failed: {type(exc).__name__}: {exc}"
        write_results(outdir / "train_results.json", results)
        raise
    results["export"] = "done"
    write_results(outdir / "train_results.json", results)
    return results


def _export(run, model, stem: str, opset: int, dataset_info: dict, echo) -> dict:
    """Export the ONNX forms (verified against PyTorch); the names of the files written."""
    config, outdir = run.config, run.outdir
    if not hasattr(model, "window_forward"):
        exported = export_onnx(model, outdir, stem, opset,
                               metadata={"categories": run.categories, **{k: str(v) for k, v in dataset_info.items()},
                                         # `kwsc test --modes vad` warns when a model was not trained for VAD resets
                                         "vad_training": str(config["training"]["vad_training"]),
                                         # trained on continuous sequences (which include zero-state restarts)
                                         "stream_training": str(config["training"].get("stream_training", 0))})
        echo(f"Exported {exported['onnx'].name} and {exported['stateful_onnx'].name} "
             f"(onnxruntime = PyTorch within {exported['max_difference']:.2g})")
        return {"onnx": exported["onnx"].name, "stateful_onnx": exported["stateful_onnx"].name}
    # a window model (DSCNN, TCResNet, BCResNet, CRNN): one call reads one window
    from kwsc.train.export_window import export_window_onnx
    exported = export_window_onnx(model, outdir, stem, opset,
                                  metadata={"categories": run.categories,
                                            **{k: str(v) for k, v in dataset_info.items()}})
    echo(f"Exported {exported['onnx'].name}: input {model.input_shape} (one window) "
         f"(onnxruntime = PyTorch within {exported['max_difference']:.2g})")
    return {"onnx": exported["onnx"].name}
