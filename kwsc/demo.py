"""``make demo``: kwsc end to end, step by step, with every result written to ``--outdir``.

Run with ``python -m kwsc.demo --outdir demo-out [--data DIR]``. Each step is a function taking the shared
``DemoContext`` and returning a dict of what it found (collected into ``<outdir>/summary.json``); the pipeline
is the ``STEPS`` list, so later steps (dataset, training, import, VAD, C) are appended there.

Steps so far:

1. ``featurizer``: the ELL tutorial featurizer (80 log-mel energies per 512 samples), saved as ``.kwsc``
   (and ``.ell`` when the ELL writer is available), printed as text.
2. ``tone_features``: a 1 kHz tone and a 1 s 100 Hz → 7 kHz sweep through the featurizer, streaming
   (reference interpreter, tick by tick) and batched; checks the two agree, that the 1 kHz tone peaks in the mel
   band whose centre is nearest 1 kHz, and that the sweep's peak band rises with time.
3. ``real_clip``: a real recording from ``--data`` (default ``../shared/data/speech_commands_subset``), when present.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwsc.errors import KwscError

__all__ = ["DemoContext", "STEPS", "main", "TUTORIAL_FEATURIZER"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("KWSC_SHARED", REPO.parent / "shared")) / "data" / "speech_commands_subset"

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
    artefacts: dict[str, Any] = field(default_factory=dict)

    def write(self, name: str, data: bytes | str) -> Path:
        from kwsc.ir import atomic_write

        path = self.outdir / name
        atomic_write(path, data)
        return path


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------- steps
def step_featurizer(ctx: DemoContext) -> dict:
    """Build the tutorial featurizer, save it, print its graph."""
    from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer
    from kwsc.models import save_model

    graph = make_featurizer(FeaturizerOptions(**TUTORIAL_FEATURIZER))
    ctx.artefacts["featurizer"] = graph
    save_model(graph, ctx.outdir / "featurizer.kwsc")
    saved = ["featurizer.kwsc"]
    try:
        save_model(graph, ctx.outdir / "featurizer.ell")
        saved.append("featurizer.ell")
    except (ImportError, KwscError) as exc:  # the ELL writer is built in parallel; say so, keep going
        say(f"  (featurizer.ell not written: {exc})")
    text = graph_text(graph)
    ctx.write("featurizer.txt", text)
    meta = graph.metadata
    say(f"  {meta['input_size']} samples in → {meta['output_size']} features out per call, "
        f"{len(graph)} nodes; wrote {', '.join(saved)}, featurizer.txt")
    say("  " + text.rstrip().replace("\n", "\n  "))
    return {"saved": saved, "nodes": len(graph), "metadata": meta}


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
    from kwsc.backends import tables

    bins = tables.mel_bins(meta["filterbank_size"], float(meta["sample_rate"]), meta["filterbank_nfft"])
    target = freq_hz * meta["nfft"] / meta["sample_rate"]
    centres = np.array(bins[1:-1], dtype=np.float64)
    return int(np.argmin(np.abs(centres - target)))


def featurize_streaming(graph, audio: np.ndarray) -> np.ndarray:
    """The reference path: the interpreter tick by tick with ELL's framing (zero-padded end, dropped start)."""
    from kwsc.backends.framing import frames_of
    from kwsc.backends.reference import Interpreter
    from kwsc.frontends.featurizer import featurizer_info

    info = featurizer_info(graph)
    interpreter = Interpreter(graph)
    return np.array([interpreter.step(chunk) for chunk in frames_of(audio, info["input_size"], info["drop_frames"])])


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


STEPS: list[tuple[str, Callable[[DemoContext], dict]]] = [
    ("featurizer", step_featurizer),
    ("tone_features", step_tone_features),
    ("real_clip", step_real_clip),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwsc.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", default="demo-out", help="folder for every result (default demo-out)")
    parser.add_argument("--data", default=None,
                        help=f"Speech-Commands-style folder (default {DEFAULT_DATA} when present)")
    parser.add_argument("--seed", type=int, default=0, help="seed for everything random")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    ctx = DemoContext(outdir=Path(args.outdir), data=data, seed=args.seed)
    ctx.outdir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    try:
        for number, (name, step) in enumerate(STEPS, 1):
            say(f"[{number}/{len(STEPS)}] {name}: {(step.__doc__ or '').strip().splitlines()[0]}")
            started = time.perf_counter()
            summary[name] = step(ctx)
            summary[name]["seconds"] = round(time.perf_counter() - started, 3)
    except KwscError as exc:
        print(f"kwsc demo: error: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.write("summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    say(f"demo finished; results in {ctx.outdir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
