"""Evaluation sessions behind `kwsc test`: load models and test data, run the modes, write results and plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kwsc.errors import InputError
from kwsc.evaluate.keyword_test import LabeledAudio, ModeResult, read_list, run_mode, to_probabilities
from kwsc.evaluate.runners import GraphRunner, ModelRunner, drop_chunks, load_graph, open_runner
from kwsc.evaluate.runners import sample_rate_of as featurizer_sample_rate
from kwsc.evaluate.streaming import (BACKGROUND_LABELS, GAIN_DB, GAP_S, MAX_USES, QUIET_FRACTION, SMOOTHINGS, SNR_DB,
                                     THRESHOLDS, StreamReport, build_stream,
                                     StreamingDetector, det_curve, detect, operating_points, score_detections,
                                     stream_summary)
from kwsc.fileio import atomic_write

__all__ = ["read_categories", "load_list_items", "vad_runner", "trained_for_vad", "vad_training_note", "has_own_vad", "run_modes", "write_results", "stream_test",
           "StreamRun", "featurizer_sample_rate", "build_test_stream", "stream_scores"]


def read_categories(path: str | Path) -> list[str]:
    """Category names, one per line (blank lines ignored)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such categories file")
    labels = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not labels:
        raise InputError(f"{p}: no categories in the file")
    return labels


def load_list_items(list_file: str | Path, wav_root: str | Path | None, sample_rate: int,
                    max_tests: int | None = None, seed: int = 0,
                    skipped: list[tuple[str, str]] | None = None) -> list[LabeledAudio]:
    """The list's wavs (relative to ``wav_root``, default the list's folder) read at ``sample_rate``.

    Unreadable files are skipped and recorded in ``skipped`` as (path, reason).
    """
    from kwsc.audio.wav import load_audio
    from kwsc.errors import KwscError

    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputError(f"{list_file}: no such list file")
    root = Path(wav_root) if wav_root else list_file.parent
    entries = read_list(list_file)
    if max_tests and max_tests < len(entries):
        rng = np.random.default_rng(seed)
        entries = [entries[i] for i in sorted(rng.choice(len(entries), max_tests, replace=False))]
    items = []
    for rel, label in entries:
        try:
            items.append(LabeledAudio(rel, label, load_audio(root / rel, sample_rate)))
        except KwscError as exc:
            if skipped is None:
                raise
            skipped.append((rel, str(exc)))
    if not items:
        raise InputError(f"{list_file}: no readable wav files (looked under {root})")
    return items


def vad_runner(classifier_path: str | Path, vad_classifier: str | Path | None, vad_options: dict,
               sample_rate: float, window_size: int) -> tuple[ModelRunner, str]:
    """The classifier with VAD-driven resets, and which VAD it is, in words.

    An explicit ``vad_classifier``; else the classifier's own VAD (a compiled module's: seen in the model it was
    built from); else ``add_vad`` on the classifier's graph with the ELL tutorial's numbers (``TUTORIAL_VAD``),
    ``vad_options`` overriding them. A compiled module without a VAD runs its model in the reference interpreter.
    """
    from kwsc.evaluate.vad_tune import TUTORIAL_VAD
    from kwsc.models import load_model, resolve_model_path

    if vad_classifier:
        return open_runner(vad_classifier), f"the VAD of --vad_classifier {vad_classifier}"
    runner = open_runner(classifier_path, "classifier")
    graph = runner.graph
    if not isinstance(runner, GraphRunner):
        source = resolve_model_path(classifier_path).file
        if source is None:
            raise InputError(f"{classifier_path}: a compiled model without its model beside it cannot get a VAD "
                             "added here; build the VAD-added model with `kwsc add_vad` and `kwsc wrap`, or pass it "
                             "with --vad_classifier")
        graph = load_graph(source)
        if graph.find("VAD"):
            return runner, f"the classifier's own VAD ({runner.description})"
    elif graph.find("VAD"):
        return runner, "the classifier's own VAD"
    if not any("recurrent" in node.opdef.traits for node in graph.nodes):
        return runner, ("none: the classifier keeps no recurrent state for a VAD to reset (a streamed window model "
                        "forgets by construction), so the vad mode is the stream mode")
    from kwsc.passes import run_passes

    given = {k: v for k, v in vad_options.items() if v is not None}
    options = {**TUTORIAL_VAD, **given, "sample_rate": sample_rate, "window_size": window_size}
    with_vad, _ = run_passes(graph, ["add_vad"], {"add_vad": options})
    changed = ", ".join(f"--{k} {v:g}" for k, v in given.items() if TUTORIAL_VAD.get(k) != v)
    how = "add_vad with the ELL tutorial's numbers" + (f" and {changed}" if changed else "")
    if not isinstance(runner, GraphRunner):
        how += f", on {source} in the reference interpreter (the compiled module has no VAD)"
    return GraphRunner(with_vad, description=f"{runner.description} + add_vad"), how


def trained_for_vad(metadata: dict, model_path: str | Path) -> bool | None:
    """Whether a classifier was trained with ``kwsc train --vad_training`` or ``--stream_training`` (> 0): from its
    metadata, else from train_results.json beside its model file; None when neither says."""
    from kwsc.models import resolve_model_path

    # --stream_training also counts: its sequences restart from zero state over the quiet between words
    values = [metadata.get("vad_training"), metadata.get("stream_training")]
    if values[0] is None:
        source = resolve_model_path(model_path).file
        results = source.parent / "train_results.json" if source is not None else None
        if results is not None and results.is_file():
            try:
                training = json.loads(results.read_text()).get("training", {})
                values = [training.get("vad_training"), training.get("stream_training")]
            except (OSError, ValueError, AttributeError):
                pass
    flags = []
    for value in values:
        try:
            flags.append(None if value is None else float(value) > 0)
        except (TypeError, ValueError):
            flags.append(None)
    if any(flags):
        return True
    return None if flags[0] is None else False


def vad_training_note(metadata: dict, model_path: str | Path, where: str) -> str | None:
    """The line to print when a classifier runs with VAD resets (``where``: e.g. "the vad mode") but was not
    trained for them, or does not say; None when it was."""
    trained = trained_for_vad(metadata, model_path)
    if trained:
        return None
    if trained is None:
        return (f"note: {model_path} does not say whether it was trained for VAD resets (kwsc train --vad_training "
                "records it); a model trained without them does much worse with them")
    return (f"warning: {model_path} was trained without --vad_training or --stream_training: after each VAD reset its "
            f"GRUs start from zero state over the quiet that follows a word, so expect {where} well below a model "
            "trained for it (README: \"Training for the stream\"; kwsc train's default for GRU/LSTM, unless "
            "--stream_training 0)")


def has_own_vad(runner: ModelRunner, model_path: str | Path) -> bool:
    """Whether the classifier resets itself with a VAD (a compiled module: seen in the model beside it)."""
    from kwsc.models import resolve_model_path

    if runner.graph is not None:
        return bool(runner.graph.find("VAD"))
    source = resolve_model_path(model_path).file
    return source is not None and bool(load_graph(source).find("VAD"))


def run_modes(modes: Sequence[str], items: Sequence[LabeledAudio], featurizer: ModelRunner,
              classifiers: dict[str, ModelRunner], labels: Sequence[str], threshold: float, algorithm: str,
              seed: int, progress_factory: Callable[[str, int], Callable] | None = None,
              pad_window: int | None = None) -> dict[str, ModeResult]:
    """Run each mode with its classifier (``classifiers[mode]``)."""
    results = {}
    for mode in modes:
        progress = progress_factory(mode, len(items)) if progress_factory else None
        results[mode] = run_mode(mode, items, featurizer, classifiers[mode], labels, threshold, algorithm, seed,
                                 progress=progress, pad_window=pad_window)
    return results


def write_results(results: dict[str, ModeResult], output: str | Path, labels: Sequence[str],
                  order: dict | None = None) -> list[Path]:
    """results.json (per mode: summary + per file expected/predicted/confidence/decision frame, files in the
    order they were tested; ``order``: how that order was made, e.g. {"order": "shuffled", "seed": 0}) and one
    confusion-matrix PNG per mode beside it. Returns the files written."""
    from kwsc.evaluate.plots import confusion_matrix, plot_confusion

    output = Path(output)
    doc = {"labels": list(labels), **({"order": dict(order)} if order else {}),
           "modes": {m: r.to_dict() for m, r in results.items()}}
    atomic_write(output, json.dumps(doc, indent=1) + "\n")
    written = [output]
    for mode, r in results.items():
        m = confusion_matrix([f.expected for f in r.files], [f.predicted for f in r.files], labels)
        png = output.with_name(f"{output.stem}_{mode}_confusion.png")
        plot_confusion(m, labels, png, title=f"kwsc test — {mode}")
        written.append(png)
    return written


@dataclass
class StreamRun:
    """A streaming-detection run: the stream, per-frame probabilities, the detections and report at the given
    detector settings, and the DET sweep (``curve``: one point per smoothing × threshold; ``points``: the
    operating points read from it)."""

    audio: np.ndarray
    events: list
    scores: np.ndarray
    detections: list
    report: StreamReport
    frame_seconds: float
    curve: list = field(default_factory=list)
    points: dict = field(default_factory=dict)
    stream: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    # a detector chosen on another stream (``choose_detector``) and what it does on this one (see ``stream_test``)
    held_out: list = field(default_factory=list)

    def _suppression(self) -> int | None:
        from kwsc.ir.op_detect import suppression_frames

        refractory = self.report.settings.get("refractory_s")
        return None if refractory is None else suppression_frames(refractory, self.frame_seconds)

    def to_dict(self) -> dict:
        """The streaming benchmark as one JSON document (see README "kwsc test", streaming benchmark)."""
        duration = self.report.duration_s
        return {"kind": "kwsc streaming benchmark", "version": 1,
                "model": self.report.settings.get("model", ""),
                "stream": self.stream,
                "scoring": {"rule": "MLPerf Tiny streaming: right label, after the word starts and at most "
                                    "tolerance_after_s after it ends; one hit per word; anything else a false alarm",
                            "tolerance_after_s": 0.5,
                            "refractory_s": self.report.settings.get("refractory_s"),
                            "suppression_ticks": self._suppression(),
                            "ignore": sorted(BACKGROUND_LABELS)},
                "resolution_fa_per_hour": 3600.0 / duration if duration else None,
                "operating_points": self.points,
                "at_threshold": self.report.to_dict(),
                "curve": self.curve,
                **({"held_out": self.held_out} if self.held_out else {}),
                "seconds": self.seconds}


def build_test_stream(items: Sequence[LabeledAudio], noise: list[np.ndarray], sample_rate: int, minutes: float,
                      seed: int = 0, snr_db: Sequence[float] | None = SNR_DB) -> tuple[np.ndarray, list]:
    """The benchmark's stream from the test items (see ``build_stream``); ``snr_db`` None: a clean stream (no
    background noise, only near-silence). An InputError when the items cannot fill it."""
    clips = [(it.audio, it.expected, it.path) for it in items]
    if snr_db is None:
        return build_stream(clips, noise, sample_rate, minutes, seed=seed, quiet_fraction=1.0)
    return build_stream(clips, noise, sample_rate, minutes, seed=seed, snr_db=tuple(snr_db))


def stream_scores(audio: np.ndarray, featurizer: ModelRunner, classifier: ModelRunner,
                  progress: Callable[[int, int], None] | None = None, block: int = 8192) -> tuple[np.ndarray, float]:
    """Per-chunk probabilities (T, K) of the models run continuously over ``audio`` (state carried throughout), and
    the seconds per chunk. The featurizer's dropped leading chunks score zero, so row i is chunk i.

    Runs in blocks of ``block`` chunks: the reference interpreter batches every stateless op over a block (only
    stateful ops step frame by frame), a compiled model runs its C per frame; ``progress(done, total)`` after each.
    """
    sample_rate = featurizer_sample_rate(featurizer)
    size = featurizer.input_size
    drop = drop_chunks(featurizer)
    chunks = audio[: len(audio) // size * size].reshape(-1, size)
    featurizer.reset()
    classifier.reset()
    parts = [np.zeros((min(drop, len(chunks)), classifier.output_size))]
    for lo in range(drop, len(chunks), block):
        frames = featurizer.run(chunks[lo: lo + block])
        parts.append(to_probabilities(classifier.run(frames)))
        if progress:
            progress(min(lo + block, len(chunks)), len(chunks))
    return np.vstack(parts), size / sample_rate


def stream_test(items: Sequence[LabeledAudio], noise: list[np.ndarray], featurizer: ModelRunner,
                classifier: ModelRunner, labels: Sequence[str], minutes: float, threshold: float = 0.8,
                smoothing: int = 3, refractory_s: float = 1.0, seed: int = 0,
                thresholds: Sequence[float] = THRESHOLDS, smoothings: Sequence[int] = SMOOTHINGS,
                stream: tuple[np.ndarray, list] | None = None,
                progress: Callable[[int, int], None] | None = None,
                snr_db: Sequence[float] | None = SNR_DB, held_out: Sequence[dict] = ()) -> StreamRun:
    """Build a ``minutes`` stream from the items and noise (or take ``stream``), run the models continuously,
    detect and score at (``threshold``, ``smoothing``), and sweep the detector over ``thresholds`` × ``smoothings``
    (with ``threshold`` and ``smoothing`` added) for the DET curve and its operating points.

    ``held_out``: detectors chosen on another stream (``streaming.choose_detector`` on a validation list's
    benchmark): each one's (per-class) thresholds, smoothing and refractory time run here through the Detector op
    (StreamingDetector) and are scored on this stream — the honest operating point, where the curve's own points
    are chosen on the stream they are read from."""
    import time

    sample_rate = featurizer_sample_rate(featurizer)
    started = time.perf_counter()
    audio, events = stream if stream is not None else build_test_stream(items, noise, sample_rate, minutes, seed,
                                                                        snr_db)
    built = time.perf_counter()
    scores, frame_seconds = stream_scores(audio, featurizer, classifier, progress)
    ran = time.perf_counter()
    duration = len(audio) / sample_rate
    dets = detect(scores, list(labels), frame_seconds, threshold, smoothing, refractory_s, probabilities=True)
    report = score_detections(dets, events, duration,
                              settings={"threshold": threshold, "smoothing": smoothing, "refractory_s": refractory_s,
                                        "minutes": minutes, "seed": seed, "model": classifier.description})
    all_thresholds = sorted({*map(float, thresholds), float(threshold)})
    all_smoothings = sorted({*map(int, smoothings), int(smoothing)})
    curve = det_curve(scores, list(labels), events, duration, frame_seconds, all_thresholds, all_smoothings,
                      refractory_s)
    swept = time.perf_counter()
    summary = {"minutes": minutes, "duration_s": duration, "seed": seed, "sample_rate": sample_rate,
               "frame_seconds": frame_seconds, "frames": len(scores), **stream_summary(events),
               "list_clips": len(items), "noise_recordings": len(noise),
               "background": "near-silence only (clean)" if snr_db is None else (
                   ("_background_noise_ recordings" if noise else "white noise (no _background_noise_ recordings "
                    "found)") + f" at SNR {'/'.join(f'{v:g}' for v in snr_db)} dB against the median word level, "
                   f"{QUIET_FRACTION:.0%} of the time near-silence; segments of 10-30 s cross-faded over 0.5 s"),
               "snr_db": None if snr_db is None else list(snr_db), "gap_s": list(GAP_S), "gain_db": list(GAIN_DB), "max_uses": MAX_USES,
               "thresholds": all_thresholds, "smoothings": all_smoothings, "labels": list(labels)}
    seconds = {"models": round(ran - built, 3), "sweep": round(swept - ran, 3)}
    if stream is None:  # a stream given was built (and timed) by the caller
        seconds = {"build": round(built - started, 3), **seconds}
    held = []
    for chosen in held_out:
        detector = StreamingDetector(list(labels), frame_seconds, list(chosen["thresholds"]), int(chosen["smoothing"]),
                                     float(chosen.get("refractory_s") or refractory_s))
        r = score_detections(detector.push_many(scores), events, duration)
        held.append({**chosen, "measured": {
            "hits": r.hits, "misses": r.misses, "false_alarms": r.false_alarms, "hit_rate": r.hit_rate,
            "false_alarms_per_hour": r.false_alarms_per_hour, "latency_median_s": r.latency_median_s,
            "latency_p95_s": r.latency_p95_s, "false_alarms_on": r.false_alarms_on, "per_label": r.per_label}})
    return StreamRun(audio, events, scores, dets, report, frame_seconds, curve, operating_points(curve), summary,
                     seconds, held)
