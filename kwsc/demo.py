"""``make demo``: kwsc end to end, step by step, with every result written to ``--outdir``.

Run with ``python -m kwsc.demo --outdir demo-out [--data DIR]``. Each step runs the ``kwsc`` commands a user would
type (printed as it goes, and listed in the report so anyone can re-run them), then checks what they made:

 1. featurizer      ``kwsc make-featurizer`` with the seed's tutorial options; a 1 kHz tone and a sweep must land
                    in the right mel bands, batch == streaming.
 2. data            ``kwsc synth-dataset`` (the 30 Speech Commands v0.01 words, spoken by espeak-ng), or ``--data``.
 3. lists           ``kwsc make-training-list`` (split by speaker, as the folder's lists say).
 4. datasets        ``kwsc make-dataset`` × 3 (training / validation / testing ``.npz``).
 5. train           ``kwsc train`` on the CPU (sized to a few minutes on 2 cores), ONNX export.
 6. compile         ``kwsc import`` the ONNX, ``kwsc transform`` (clean-up, ``add_vad`` with the tutorial's numbers,
                    ``fuse_featurizer``), ``kwsc emit --target c --build`` for the host, the Cortex-M4 size report,
                    ``kwsc print`` of the VAD-added model.
 7. test            ``kwsc test`` in the three modes (reset / stream / VAD) *with the compiled C models*, files
                    shuffled, plus the streaming benchmark (10 minutes; 1 with ``--quick``): DET curve and operating
                    points.
 8. report          ``REPORT.md`` with the numbers, the plots and the graph picture.

``--quick`` shrinks data and training for a smoke run (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwsc.errors import KwscError
from kwsc.evaluate import vad_tune

__all__ = ["DemoContext", "STEPS", "main", "TUTORIAL_FEATURIZER"]


# The featurizer of ELL's keyword-spotter tutorial (ell-behaviour.md §1.2).
TUTORIAL_FEATURIZER = dict(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                           filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True,
                           auto_scale=True)


@dataclass
class DemoContext:
    """What the steps share: options, the output folder and the artefacts made so far (by name)."""

    outdir: Path
    data: Path | None
    seed: int = 0
    epochs: int = 20
    quick: bool = False
    arch: str = "GRU"  # kwsc train --architecture: GRU/LSTM, or a window model (DSCNN, TCResNet, …) streamed
    artefacts: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def write(self, name: str, data: bytes | str) -> Path:
        from kwsc.fileio import atomic_write

        path = self.outdir / name
        atomic_write(path, data)
        return path


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------- steps
def step_featurizer(ctx: DemoContext) -> dict:
    """Build the tutorial featurizer with kwsc make-featurizer, save it as .kwsc and .ell, print its graph."""
    from kwsc.models import load_model

    options = []
    for key, value in TUTORIAL_FEATURIZER.items():
        options += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    for name in ("featurizer.kwsc", "featurizer.ell"):
        kwsc(ctx, "make-featurizer", *options, "-o", ctx.outdir / name)
    graph = load_model(ctx.outdir / "featurizer.kwsc")
    ctx.artefacts["featurizer"] = graph
    text = graph_text(graph)
    ctx.write("featurizer.txt", text)
    meta = graph.metadata
    say(f"  {meta['input_size']} samples in → {meta['output_size']} features out per call, {len(graph)} nodes")
    say("  " + text.rstrip().replace("\n", "\n  "))
    return {"saved": ["featurizer.kwsc", "featurizer.ell"], "nodes": len(graph), "metadata": meta}


def graph_text(graph) -> str:
    """The graph as text: kwsc's printer (ELL's print conventions), or a plain listing without it."""
    try:
        from kwsc.backends.viz import format_graph

        return format_graph(graph, "text").decode("utf-8")
    except ImportError:
        return "".join(f"{n.name}: {n.op}({', '.join(v.name for v in n.inputs if v is not None)}) -> "
                       f"{', '.join(str(v.type) for v in n.outputs)}\n" for n in graph.nodes)


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * freq_hz * t)).astype(np.float32)


def sweep(f0: float, f1: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A linear chirp from f0 to f1 Hz."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (amplitude * np.sin(phase)).astype(np.float32)


def nearest_mel_band(freq_hz: float, meta: dict) -> int:
    """The mel filter whose centre bin is closest to ``freq_hz`` (from the ELL bin edges)."""
    from kwsc.ir import tables

    bins = tables.mel_bins(meta["filterbank_size"], float(meta["sample_rate"]), meta["filterbank_nfft"])
    target = freq_hz * meta["nfft"] / meta["sample_rate"]
    centres = np.array(bins[1:-1], dtype=np.float64)
    return int(np.argmin(np.abs(centres - target)))


def featurize_streaming(graph, audio: np.ndarray) -> np.ndarray:
    """The reference path: the interpreter tick by tick with ELL's framing (zero-padded end, dropped start)."""
    from kwsc.backends.framing import frames_of
    from kwsc.backends.reference import Interpreter
    from kwsc.ir.metadata import FeaturizerRecord

    record = FeaturizerRecord.of_featurizer(graph)
    interpreter = Interpreter(graph)
    return np.array([interpreter.step(chunk) for chunk in frames_of(audio, record.input_size, record.drop_frames)])


def step_tone_features(ctx: DemoContext) -> dict:
    """A 1 kHz tone and a sweep, streaming and batched; the tone must peak in the band nearest 1 kHz."""
    from kwsc.backends.batch import BatchFeaturizer

    graph = ctx.artefacts["featurizer"]
    meta = graph.metadata
    rate = meta["sample_rate"]
    signals = {"tone_1khz": tone(1000.0, 1.0, rate), "sweep_100_7000": sweep(100.0, 7000.0, 1.0, rate)}
    batch = BatchFeaturizer(graph)
    batched = dict(zip(signals, batch.featurize_clips(list(signals.values()))))
    result: dict[str, Any] = {}
    for name, audio in signals.items():
        streamed = featurize_streaming(graph, audio)
        diff = float(np.abs(streamed - batched[name]).max())
        np.save(ctx.outdir / f"{name}_features.npy", batched[name])
        result[name] = {"frames": len(streamed), "min": float(streamed.min()), "max": float(streamed.max()),
                        "batch_vs_streaming_max_abs_diff": diff}
        say(f"  {name}: {len(streamed)} frames × {streamed.shape[1]} features, range [{streamed.min():.3f}, "
            f"{streamed.max():.3f}], batch vs streaming max |diff| {diff:.2e}")
        if diff > 1e-5 * max(1.0, float(np.abs(streamed).max())):
            raise KwscError(f"demo: batch and streaming features of {name} differ by {diff:.3g}")
    tone_features = batched["tone_1khz"]
    peak = int(np.bincount(tone_features.argmax(axis=1)).argmax())
    expected = nearest_mel_band(1000.0, meta)
    say(f"  1 kHz tone peaks in mel band {peak} (expected {expected}, the band centred nearest 1 kHz): "
        f"{'ok' if peak == expected else 'WRONG'}")
    if peak != expected:
        raise KwscError(f"demo: the 1 kHz tone peaks in mel band {peak}, expected {expected}")
    sweep_peaks = batched["sweep_100_7000"].argmax(axis=1)
    rising = bool(np.all(np.diff(sweep_peaks) >= -1)) and sweep_peaks[-1] > sweep_peaks[0] + 40
    say(f"  sweep: peak band goes {sweep_peaks[0]} → {sweep_peaks[-1]} ({'rising' if rising else 'NOT rising'})")
    if not rising:
        raise KwscError(f"demo: the sweep's peak band does not rise steadily: {sweep_peaks.tolist()}")
    result.update({"tone_peak_band": peak, "tone_expected_band": expected, "sweep_peak_bands": sweep_peaks.tolist()})
    plot_features(ctx, {k: batched[k] for k in signals})
    return result


def read_clip(path: Path, rate: int) -> np.ndarray:
    """A wav file as float32 at ``rate``: kwsc's reader, or the standard library for 16-bit mono without it."""
    try:
        from kwsc.audio.wav import load_audio
    except ImportError:
        import wave

        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != rate:
                raise KwscError(f"{path}: demo needs 16-bit mono {rate} Hz audio") from None
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return load_audio(path, sample_rate=rate)


def step_real_clip(ctx: DemoContext) -> dict:
    """Features of a real recording from the data folder (skipped when there is none)."""
    from kwsc.backends.batch import BatchFeaturizer

    if ctx.data is None or not ctx.data.is_dir():
        say(f"  no data folder ({ctx.data}); skipped")
        return {"skipped": True}
    files = sorted(ctx.data.glob("yes/*.wav")) or sorted(ctx.data.glob("*/*.wav"))
    if not files:
        say(f"  no wav files under {ctx.data}; skipped")
        return {"skipped": True}
    graph = ctx.artefacts["featurizer"]
    clip = read_clip(files[0], graph.metadata["sample_rate"])
    started = time.perf_counter()
    features = BatchFeaturizer(graph).featurize_clips([clip])[0]
    elapsed = time.perf_counter() - started
    np.save(ctx.outdir / "real_clip_features.npy", features)
    energy = features.sum(axis=1)
    loudest = int(energy.argmax())
    say(f"  {files[0].relative_to(ctx.data)}: {len(clip)} samples → {len(features)} frames, range "
        f"[{features.min():.3f}, {features.max():.3f}], loudest frame {loudest} "
        f"({loudest * graph.metadata['input_size'] / graph.metadata['sample_rate']:.2f} s after the dropped chunk), "
        f"feature 2 (ELL's all-zero mel band) max {features[:, 2].max():.1f}; {elapsed * 1e3:.1f} ms")
    plot_features(ctx, {"real_clip": features}, name="real_clip_features.png")
    return {"file": str(files[0]), "frames": len(features), "min": float(features.min()),
            "max": float(features.max()), "loudest_frame": loudest}


def plot_features(ctx: DemoContext, features: dict[str, np.ndarray], name: str = "tone_features.png") -> None:
    """Log-mel images (time → right, band ↑), one panel per signal."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(features), figsize=(5 * len(features), 3.5), squeeze=False)
    for ax, (title, values) in zip(axes[0], features.items()):
        ax.imshow(values.T, origin="lower", aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel="frame", ylabel="mel band")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    ctx.write(name, buf.getvalue())


# ---------------------------------------------------------------------------------------------- the pipeline
# The tutorial's add_vad line (ell-behaviour.md §2.1, "tutorial command line" column). Its --sample_rate 16000
# --window_size 512 are left out: add_vad reads them from the classifier (the featurizer it was trained on).
TUTORIAL_VAD = [arg for name, value in vad_tune.TUTORIAL_VAD.items() for arg in (f"--{name}", f"{value:g}")]


def kwsc(ctx: DemoContext, *args: str, log: str | None = None) -> str:
    """Run one ``kwsc`` command as a user would (printed, recorded for the report); its output goes to a log."""
    import shlex
    import subprocess

    shown = "kwsc " + " ".join(shlex.quote(str(a)) for a in args)
    ctx.commands.append(shown)
    say(f"  $ {shown}")
    proc = subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True)
    name = log or f"log_{len(ctx.commands):02d}_{args[0]}.txt"
    ctx.write(f"logs/{name}", f"$ {shown}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise KwscError(f"demo: `{shown}` failed ({proc.returncode}): {tail}")
    for line in proc.stdout.strip().splitlines()[-6:]:
        say(f"    {line}")
    return proc.stdout


def step_data(ctx: DemoContext) -> dict:
    """A Speech-Commands-style folder: the given --data, or a synthetic corpus spoken by espeak-ng."""
    if ctx.data is not None:
        if not ctx.data.is_dir():
            raise KwscError(f"demo: --data {ctx.data}: no such folder")
        say(f"  using {ctx.data}")
        return {"data": str(ctx.data), "synthetic": False}
    out = ctx.outdir / "data"
    args = ["synth-dataset", out, "--seed", ctx.seed, "--quiet"]
    if ctx.quick:
        args += ["--words", "yes,no,up,down,left,right", "--variants", "12"]
    kwsc(ctx, *args)
    ctx.data = out
    clips = sum(1 for _ in out.glob("*/*.wav"))
    return {"data": str(out), "synthetic": True, "clips": clips}


def step_lists(ctx: DemoContext) -> dict:
    """Training / validation / testing lists and categories.txt (kwsc make-training-list)."""
    out = ctx.outdir / "lists"
    kwsc(ctx, "make-training-list", "--wav_files", ctx.data, "--outdir", out, "--seed", ctx.seed)
    counts = {name: len((out / f"{name}_list.txt").read_text().split()) for name in ("training", "validation",
                                                                                   "testing")}
    categories = (out / "categories.txt").read_text().split()
    say(f"  {len(categories)} categories; {counts}")
    return {"categories": categories, "files": counts}


def step_datasets(ctx: DemoContext) -> dict:
    """Featurize every list into an .npz (kwsc make-dataset × 3)."""
    lists, out = ctx.outdir / "lists", ctx.outdir / "dataset"
    shapes = {}
    for name in ("training", "validation", "testing"):
        kwsc(ctx, "make-dataset", "--list_file", lists / f"{name}_list.txt", "--wav_files", ctx.data,
             "--featurizer", ctx.outdir / "featurizer.kwsc", "--categories", lists / "categories.txt",
             "--outdir", out, "--seed", ctx.seed, "--quiet")
        with np.load(out / f"{name}_list.npz") as d:
            shapes[name] = list(d["features"].shape)
    say(f"  feature rows: {shapes}")
    return {"shapes": shapes}


def recurrent_arch(ctx: DemoContext) -> bool:
    """GRU/LSTM stream by themselves (and get the VAD); the others are window models for the stream pass."""
    return ctx.arch in ("GRU", "LSTM")


def step_train(ctx: DemoContext) -> dict:
    """Train a keyword spotter (GRU by default, --arch) on the CPU and export it to ONNX (kwsc train)."""
    out = ctx.outdir / "model"
    epochs, hidden = ("4", "32") if ctx.quick else (str(ctx.epochs), "128")
    if recurrent_arch(ctx):
        arch = ["--hidden_units", hidden, "--num_layers", "2",
                # trained on continuous sequences: what the stream, the VAD mode and the streaming benchmark feed
                # it (README "Training for the stream"; it measured better than --vad_training 1 --loss_frames 10
                # in every mode and on the stream, issue 13)
                "--stream_training", "1"]
    else:  # a window model: the stream pass makes it per-tick; it has no recurrent state for VAD training
        arch = []
    if ctx.arch != "GRU":
        arch = ["--architecture", ctx.arch, *arch]
    kwsc(ctx, "train", "--dataset", ctx.outdir / "dataset", "--outdir", out, "--categories",
         ctx.outdir / "lists" / "categories.txt", "--epochs", epochs, *arch,
         "--seed", ctx.seed, "--no_progress", "--filename", f"{ctx.arch}KeywordSpotter")
    results = json.loads((out / "train_results.json").read_text())
    onnx = out / f"{ctx.arch}KeywordSpotter.onnx"
    if not onnx.exists():
        raise KwscError(f"demo: training wrote no {onnx}")
    say(f"  validation accuracy {results.get('accuracy_val', 0):.2%}, test accuracy "
        f"{results.get('accuracy_test', 0):.2%}, {results.get('training_time', 0):.0f} s")
    return {k: results.get(k) for k in ("accuracy_val", "accuracy_test", "training_time")} | {"onnx": str(onnx)}


def step_compile(ctx: DemoContext) -> dict:
    """Import the ONNX, add the VAD, fuse the featurizer, emit C for the host and the Cortex-M4 size report."""
    import shutil

    o = ctx.outdir
    onnx = o / "model" / f"{ctx.arch}KeywordSpotter.onnx"
    if not recurrent_arch(ctx):
        return _compile_window_model(ctx, onnx)
    kwsc(ctx, "import", onnx, "-o", o / "classifier_imported.kwsc")
    kwsc(ctx, "transform", o / "classifier_imported.kwsc", "--passes", "shapes,fold,dce,fuse_dense",
         "-o", o / "classifier.kwsc")
    kwsc(ctx, "transform", o / "classifier.kwsc", "--passes", "add_vad", *TUTORIAL_VAD, "-o",
         o / "classifier_vad.kwsc")
    for name in ("classifier", "classifier_vad"):
        kwsc(ctx, "transform", o / f"{name}.kwsc", "--passes", "fuse_featurizer,fold,dce", "--featurizer",
             o / "featurizer.kwsc", "-o", o / f"fused{name[10:]}.kwsc")
        kwsc(ctx, "emit", o / f"fused{name[10:]}.kwsc", "--target", "c", "--arch", "host", "--build",
             "--name", "kws", "-o", o / "c" / f"fused{name[10:]}")
    kwsc(ctx, "print", o / "classifier_vad.kwsc", "-o", o / "classifier_vad.png")
    result: dict[str, Any] = {}
    if shutil.which("arm-none-eabi-gcc"):
        text = kwsc(ctx, "emit", o / "fused_vad.kwsc", "--target", "c", "--arch", "cortex-m4", "--build",
                    "--size-report", "--name", "kws", "-o", o / "c" / "cortex-m4")
        ctx.write("size_report.txt", text)
        result["size_report"] = text.strip()
    else:
        say("  arm-none-eabi-gcc not installed: no Cortex-M4 size report (make demo installs it as root)")
    return result


# Minutes of stream for the streaming benchmark: a stream of N minutes resolves false alarms to 60/N per hour.
STREAM_MINUTES, QUICK_STREAM_MINUTES = 10, 1


def _compile_window_model(ctx: DemoContext, onnx: Path) -> dict:
    """A window model (--arch DSCNN …): clean-up and the stream pass (one frame per tick, ring buffers), then
    the featurizer fused in front; ``kwsc wrap`` keeps the model beside the C module (kwsc test reads it)."""
    import shutil

    o = ctx.outdir
    kwsc(ctx, "import", onnx, "-o", o / "classifier_imported.kwsc")
    text = kwsc(ctx, "transform", o / "classifier_imported.kwsc", "--passes",
                "shapes,fold,dce,fold_batchnorm,fold,dce,stream", "-o", o / "classifier.kwsc")
    ctx.write("stream_pass.txt", text)
    kwsc(ctx, "transform", o / "classifier.kwsc", "--passes", "fuse_featurizer,fold,dce", "--featurizer",
         o / "featurizer.kwsc", "-o", o / "fused.kwsc")
    kwsc(ctx, "wrap", "--model_file", o / "fused.kwsc", "--outdir", o / "c" / "fused", "--module_name", "kws")
    kwsc(ctx, "print", o / "classifier.kwsc", "-o", o / "classifier_vad.png")
    result: dict[str, Any] = {"stream_pass": text.strip()}
    if shutil.which("arm-none-eabi-gcc"):
        text = kwsc(ctx, "emit", o / "fused.kwsc", "--target", "c", "--arch", "cortex-m4", "--build",
                    "--size-report", "--name", "kws", "-o", o / "c" / "cortex-m4")
        ctx.write("size_report.txt", text)
        result["size_report"] = text.strip()
    return result


def step_test(ctx: DemoContext) -> dict:
    """kwsc test in the three modes with the compiled models (files shuffled), plus the streaming benchmark."""
    o = ctx.outdir
    minutes = QUICK_STREAM_MINUTES if ctx.quick else STREAM_MINUTES
    # a window model has no VAD-added twin: its vad mode is its stream mode (kwsc test says so)
    vad = ["--vad_classifier", o / "c" / "fused_vad"] if recurrent_arch(ctx) else []
    kwsc(ctx, "test", "--classifier", o / "c" / "fused", *vad,
         "--modes", "reset,stream,vad", "--list_file", o / "lists" / "testing_list.txt", "--wav_files", ctx.data,
         "--categories", o / "lists" / "categories.txt", "--stream-minutes", minutes, "--seed", ctx.seed,
         "-o", o / "results" / "results.json")
    doc = json.loads((o / "results" / "results.json").read_text())
    stream = json.loads((o / "results" / "results_stream.json").read_text())
    stream.pop("curve", None)  # the points are in results/results_stream.json; the summary keeps what it reports
    modes = {m: {k: v for k, v in r.items() if k != "files"} for m, r in doc["modes"].items()}
    return {"modes": modes, "order": doc.get("order"), "stream": stream}


def step_report(ctx: DemoContext) -> dict:
    """Write REPORT.md: what was made, the numbers, the pictures, the commands."""
    s = ctx.summary
    lines = ["# kwsc demo report", ""]
    if ctx.quick:
        lines += ["**A `--quick` run**: tiny data, a small GRU trained for a few epochs and a 1-minute stream — a "
                  "smoke test of every step; its numbers say nothing about accuracy. `make demo` (without `--quick`) "
                  "gives the real ones.", ""]
    data = s.get("data", {})
    lines += [f"Data: `{data.get('data')}` ({'synthetic, espeak-ng' if data.get('synthetic') else 'recordings'}); "
              f"{len(s.get('lists', {}).get('categories', []))} categories; files per list "
              f"{s.get('lists', {}).get('files')}.", ""]
    pictures = [(name, text) for name, text in (
        ("tone_features", "A 1 kHz tone and a 100 Hz → 7 kHz sweep through the featurizer: the tone must light the "
                          "mel band nearest 1 kHz, the sweep a rising band."),
        ("real_clip_features", "The first clip of the data folder through the featurizer."))
        if (ctx.outdir / f"{name}.png").is_file()]
    if pictures:
        lines += ["## Features", ""]
        for name, text in pictures:
            lines += [text, "", f"![{name}]({name}.png)", ""]
    tr = s.get("train", {})
    if tr:
        lines += ["## Training", "",
                  f"PyTorch validation accuracy {tr.get('accuracy_val', 0):.2%}, test accuracy "
                  f"{tr.get('accuracy_test', 0):.2%}, {tr.get('training_time', 0):.0f} s on the CPU.", ""]
        for png in sorted((ctx.outdir / "model").glob("*.png")):
            lines.append(f"![{png.stem}]({png.relative_to(ctx.outdir)})")
        lines.append("")
    te = s.get("test", {})
    if te:
        lines += ["## Keyword test with the compiled C models", "",
                  "Per-file accuracy with the seed's test rules (threshold 0.01, noise padding after each file), "
                  f"the files {order_words(te.get('order'))}:", "",
                  "| mode | accuracy | passed | failed | frames/s |", "|---|---|---|---|---|"]
        for mode, r in te["modes"].items():
            lines.append(f"| {mode} | {r['accuracy']:.2%} | {r['passed']} | {r['failed']} | "
                         f"{r['frames_per_second']:,.0f} |")
        lines.append("")
        for png in sorted((ctx.outdir / "results").glob("*_confusion.png")):
            lines.append(f"![{png.stem}]({png.relative_to(ctx.outdir)})")
        lines += report_stream(te, ctx.outdir)
    comp = s.get("compile", {})
    if comp.get("size_report"):
        what = "GRU + VAD" if recurrent_arch(ctx) else f"{ctx.arch}, streamed"
        lines += [f"## Cortex-M4 build (featurizer + {what})", "", "```", comp["size_report"], "```", ""]
    lines += ["## The VAD-added classifier" if recurrent_arch(ctx) else f"## The streamed {ctx.arch} classifier", "",
              "![classifier_vad](classifier_vad.png)", "",
              "## Commands", "", "```sh", *ctx.commands, "```", ""]
    ctx.write("REPORT.md", "\n".join(lines))
    say(f"  wrote {ctx.outdir / 'REPORT.md'}")
    return {"report": str(ctx.outdir / "REPORT.md")}


def order_words(order: dict | None) -> str:
    if not order or order.get("order") == "shuffled":
        return f"in a shuffled order (seed {(order or {}).get('seed', 0)}; `--order list` keeps the list's)"
    return "in the list's order"


def placed(times: int) -> str:
    return "each placed once" if times <= 1 else f"placed up to {times} times, each time at a new gain"


def report_stream(test: dict, outdir: Path) -> list[str]:
    """REPORT.md's streaming benchmark: what the stream held, the DET curve, the operating points."""
    from kwsc.evaluate.streaming import operating_points_table

    st = test["stream"]
    stream, at = st["stream"], st["at_threshold"]
    files = st.get("files", {})
    lines = ["", "### Streaming benchmark", "",
             f"A {stream['duration_s'] / 60:.0f}-minute stream of the testing list's clips (speakers training never "
             f"heard): {stream['keywords']} keywords, {stream['unknown']} `_unknown_` words and {stream['silence']} "
             f"silence clips in a shuffled order ({stream['distinct_clips']} distinct clips, "
             f"{placed(stream.get('max_placements_of_a_clip', 1))}), gaps of 0.3–3 s, background "
             f"{stream['background']}. "
             "The detector (causal moving average, threshold, 1 s refractory time, `_silence_`/`_unknown_` never "
             "fire) is swept over "
             f"{len(stream['thresholds'])} thresholds × smoothing {', '.join(map(str, stream['smoothings']))} frames "
             "on the same model outputs; MLPerf-Tiny scoring (a hit is the right word from its start to 0.5 s after "
             f"it ends). **Resolution**: one false alarm in this stream is {st['resolution_fa_per_hour']:.1f} per "
             "hour, so the rates below are multiples of that.", ""]
    if files.get("det_png"):
        lines += [f"![DET curve](results/{files['det_png']})", ""]
    lines += operating_points_table(st) + [""]
    if files.get("timeline_png"):
        lines += ["The stream's first 30 s at the given detector (threshold "
                  f"{at['settings']['threshold']:g}, smoothing {at['settings']['smoothing']}):", "",
                  f"![stream timeline](results/{files['timeline_png']})", ""]
    return lines


STEPS: list[tuple[str, Callable[[DemoContext], dict]]] = [
    ("featurizer", step_featurizer),
    ("tone_features", step_tone_features),
    ("data", step_data),
    ("real_clip", step_real_clip),
    ("lists", step_lists),
    ("datasets", step_datasets),
    ("train", step_train),
    ("compile", step_compile),
    ("test", step_test),
    ("report", step_report),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwsc.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", default="demo-out", help="folder for every result (default demo-out)")
    parser.add_argument("--data", default=None,
                        help="a Speech-Commands-style folder (default: a synthetic corpus made by synth-dataset)")
    parser.add_argument("--seed", type=int, default=0, help="seed for everything random")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--quick", action="store_true", help="tiny data and model: a smoke run of every step")
    parser.add_argument("--arch", default="GRU",
                        help="kwsc train --architecture (default GRU; DSCNN, TCResNet, BCResNet, CRNN are window "
                             "models, compiled through the stream pass)")
    args = parser.parse_args(argv)
    ctx = DemoContext(outdir=Path(args.outdir), data=Path(args.data) if args.data else None, seed=args.seed,
                      epochs=args.epochs, quick=args.quick, arch=args.arch)
    ctx.outdir.mkdir(parents=True, exist_ok=True)
    started_all = time.perf_counter()
    try:
        for number, (name, step) in enumerate(STEPS, 1):
            say(f"[{number}/{len(STEPS)}] {name}: {(step.__doc__ or '').strip().splitlines()[0]}")
            started = time.perf_counter()
            ctx.summary[name] = step(ctx)
            ctx.summary[name]["seconds"] = round(time.perf_counter() - started, 3)
    except KwscError as exc:
        print(f"kwsc demo: error: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.write("summary.json", json.dumps(ctx.summary, indent=1, default=str) + "\n")
    say(f"demo finished in {time.perf_counter() - started_all:.0f} s; results in {ctx.outdir}/ (REPORT.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
