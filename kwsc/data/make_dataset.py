"""Building a ``.npz`` dataset from a list of wav files with a featurizer (ELL's ``make_dataset.py``, §5.3).

Each clip is read (any wav encoding, resampled to the featurizer's rate), optionally mixed with noise, framed
and featurized exactly as ELL's ``AudioTransform`` streams it, and cut into rows of ``window_size`` frames:

* a window is emitted whenever ``window_size`` frames are buffered, then ``shift`` frames are dropped;
* after the last frame, a partial window holding more than ``window_size/4`` frames (or the clip's only window)
  is padded up to ``window_size``: with featurized noise chunks for a clip that was mixed with noise, else with
  copies of the last real frame plus Gaussian noise of std ``0.5·std(last frame)``, fresh per padded row.

A one-second 16 kHz clip with the tutorial featurizer (512/512) gives 31 frames + 9 padded = one 40×80 row.

Speed: files are processed in chunks of ``CHUNK_FILES`` by ``jobs`` worker threads (or processes); each chunk
is featurized as one batch by ``kwsc.backends.batch.BatchFeaturizer``. Randomness (noise choices, padding noise)
depends only on the seed and the list, never on ``jobs``. Unreadable files are skipped and reported; see
``make_dataset``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from kwsc.audio.noise import MixChoice, NoiseMixer
from kwsc.audio.wav import load_audio
from kwsc.backends.batch import BatchFeaturizer
from kwsc.backends.framing import fed_chunk_count
from kwsc.compat import require_featurizer
from kwsc.data.dataset import Dataset
from kwsc.data.training_list import read_lines
from kwsc.errors import InputError, KwscError
from kwsc.fileio import refuse_overwriting, remove_stale_temps

__all__ = ["make_dataset", "DatasetResult", "TooManyBadFiles", "padding_rows", "clip_rows", "CHUNK_FILES"]

CHUNK_FILES = 128  # files per work item: a fast batch whose arrays (~10 MB) a fresh worker faults in quickly


class TooManyBadFiles(InputError):
    """More files failed than ``max_bad`` allows; ``failures`` lists them (path, reason)."""

    def __init__(self, message: str, failures: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass
class DatasetResult:
    """What ``make_dataset`` did."""

    path: Path
    rows: int
    files: int
    labels: dict[str, int] = field(default_factory=dict)   # rows per label
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of skipped files
    mixed: int = 0   # files mixed with noise


@lru_cache(maxsize=1024)
def _window_starts(frames: int, window_size: int, shift: int) -> tuple[tuple[int, ...], int]:
    """Start frames of the windows emitted while streaming, and how many frames stay buffered at the end.

    ELL drops ``shift`` rows from a buffer of ``window_size`` rows, so a shift larger than the window acts as
    a shift of exactly the window (nothing beyond the buffer is skipped).
    """
    hop = min(shift, window_size)
    starts = tuple(range(0, frames - window_size + 1, hop)) if frames >= window_size else ()
    return starts, frames - len(starts) * hop


def padding_rows(frames: int, window_size: int, shift: int) -> int:
    """How many padded rows ELL's rule adds after a clip of ``frames`` feature frames (0 or enough for one row)."""
    starts, buffered = _window_starts(frames, window_size, shift)
    if buffered > window_size / 4 or not starts:
        return window_size - buffered
    return 0


def clip_rows(frames: np.ndarray, pad: np.ndarray, window_size: int, shift: int) -> np.ndarray:
    """The dataset rows of one clip: sliding windows over ``frames``, then one over the padded tail.

    Args:
        frames: (T, F) real feature frames.
        pad: (padding_rows(T), F) rows appended after the last frame.

    Returns:
        (rows, window_size·F) float32, row-major frames.
    """
    starts, buffered = _window_starts(len(frames), window_size, shift)
    starts = list(starts)
    if len(pad):
        starts.append(len(frames) - buffered)
        frames = np.concatenate([frames, pad])
    if not starts:
        return np.zeros((0, window_size * frames.shape[1]), np.float32)
    return np.stack([frames[s:s + window_size].reshape(-1) for s in starts]).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------- workers
_WORKER: dict = {}  # the context of a worker process (set by its initializer)


def _init_worker(context: dict) -> None:
    """Worker-process initializer: the shared context, one FFT/BLAS thread, allocator tuned for big batches."""
    _WORKER.update(context)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # the processes already use every core
    except ImportError:
        pass
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """Let glibc reuse freed big arrays instead of returning them to the kernel: a fresh worker otherwise
    page-faults and zeroes every batch's tens of megabytes anew (measured: ~20% of a worker's CPU time)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):  # not glibc: keep the default allocator behaviour
        pass


def _process_chunk(task: tuple[int, list[str], list[MixChoice | None]], context: dict | None = None):
    """Featurize one chunk of files → (rows, row count per file, failures).

    ``context`` holds the featurizer, the noise mixer, window_size, shift and seed (a worker process's own
    ``_WORKER`` when not given). Threads share one context: everything in it is only read.
    """
    context = context if context is not None else _WORKER
    chunk_no, paths, choices = task
    feat: BatchFeaturizer = context["featurizer"]
    mixer: NoiseMixer | None = context["mixer"]
    window, shift, hop = context["window_size"], context["shift"], feat.input_size
    clips, layout, failures = [], [], []
    for i, (path, choice) in enumerate(zip(paths, choices)):
        try:
            samples = load_audio(path, feat.sample_rate)
        except KwscError as exc:
            failures.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        frames = fed_chunk_count(len(samples), hop, feat.drop_frames)
        if frames == 0:
            failures.append((path, f"too short: {len(samples)} samples give no feature frame"))
            continue
        n_pad = padding_rows(frames, window, shift)
        noisy = choice is not None and n_pad > 0
        if choice is not None:
            samples = mixer.mix(samples, choice)
        if noisy:  # ELL pads a mixed clip with featurized noise chunks that continue its input stream
            padded = np.zeros((frames + feat.drop_frames + n_pad) * hop, np.float32)
            padded[:len(samples)] = samples
            padded[-n_pad * hop:] = mixer.noise(choice, n_pad * hop, skip=len(samples))
            samples = padded
        clips.append(samples)
        layout.append((i, frames, n_pad, noisy))
    rows, counts = _rows(feat, clips, layout, len(paths), window, shift,
                         np.random.default_rng([context["seed"], chunk_no]))
    return rows, counts, failures


def _rows(feat: BatchFeaturizer, clips: list[np.ndarray], layout: list[tuple[int, int, int, bool]], files: int,
          window: int, shift: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Featurize a chunk's clips as one batch and cut every clip's rows (ELL's windows and tail padding).

    ``layout`` has one ``(file index, real frames, padded rows, padded with noise chunks)`` per clip; returns the
    rows and the row count of every file of the chunk (0 for skipped files).
    """
    width = window * feat.output_size
    counts = np.zeros(files, np.int64)
    if not clips:
        return np.zeros((0, width), np.float32), counts
    per_clip = feat.featurize_clips(clips)
    features = np.concatenate(per_clip)
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in per_clip])[:-1]])
    # Gaussian tail rows (clips not mixed with noise): last real frame + N(0, (0.5·std(last frame))²), all at once.
    gauss = [(k, n_pad) for k, (_, frames, n_pad, noisy) in enumerate(layout) if n_pad and not noisy]
    pad_at = {}
    if gauss:
        last = features[[offsets[k] + layout[k][1] - 1 for k, _ in gauss]]
        repeats = np.array([n for _, n in gauss])
        scale = np.repeat(0.5 * last.std(axis=1), repeats)[:, None]
        padded = np.repeat(last, repeats, axis=0) + scale * rng.standard_normal((int(repeats.sum()), last.shape[1]))
        base = len(features)
        for (k, n), start in zip(gauss, np.concatenate([[0], np.cumsum(repeats)[:-1]])):
            pad_at[k] = base + int(start)
        features = np.concatenate([features, padded.astype(np.float32)])
    index = []
    for k, (i, frames, n_pad, noisy) in enumerate(layout):
        o = int(offsets[k])
        starts, buffered = _window_starts(frames, window, shift)
        index.extend(range(o + s, o + s + window) for s in starts)
        if n_pad:
            pad_start = o + frames if noisy else pad_at[k]
            tail = o + frames - buffered
            index.append([*range(tail, o + frames), *range(pad_start, pad_start + n_pad)])
        counts[i] = len(starts) + (1 if n_pad else 0)
    flat_index = np.fromiter(itertools.chain.from_iterable(index), dtype=np.int64, count=len(index) * window)
    return features[flat_index].reshape(-1, width), counts


def _run_chunks(tasks: list, context: dict, jobs: int, processes: bool):
    """Results of ``_process_chunk`` for every task, in task order.

    Threads by default: reading, decoding, the FFT and numpy's array work release the GIL, threads share the
    warm heap, and nothing is pickled. On the shared 2-core machine worker processes cost twice the CPU per clip
    (a fresh process page-faults its batch arrays in; results travel back pickled) and finished no sooner.
    ``processes=True`` uses forked workers (a ``ProcessPoolExecutor``: a worker that dies raises, never hangs).
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from functools import partial

    if jobs == 1:
        yield from (_process_chunk(task, context) for task in tasks)
        return
    if not processes:
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="kwsc-dataset")
        work = partial(_process_chunk, context=context)
    else:
        import scipy.fft  # noqa: F401  (imported once here, inherited by the forked workers)

        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(context,))
        work = _process_chunk
    try:
        yield from pool.map(work, tasks)
    except BrokenProcessPool as exc:
        raise KwscError(f"a dataset worker process died ({exc}); try fewer --jobs or without --processes") from None
    finally:  # on an error or Ctrl-C, drop the chunks not started yet instead of finishing them
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- driver
def _entries(list_file: Path, categories: list[str], root: Path) -> list[tuple[str, str]]:
    """(label, path) per list entry, grouped by label in order of first appearance, list order within."""
    groups: dict[str, list[str]] = {}
    known = set(categories)
    prefix = str(root) + os.sep
    for entry in read_lines(list_file):
        parts = entry.rsplit("/", 2)
        label = parts[-2] if len(parts) > 1 else ""
        if label not in known:
            raise InputError(f"{list_file}: entry {entry!r} has label {label!r}, not among the categories "
                             f"({', '.join(categories[:12])}{', …' if len(categories) > 12 else ''})")
        groups.setdefault(label, []).append(entry if os.path.isabs(entry) else prefix + entry)
    return [(label, p) for label, paths in groups.items() for p in paths]


def make_dataset(list_file: str | Path, featurizer, *, outdir: str | Path | None = None,
                 categories: str | Path | list[str] | None = None, wav_root: str | Path | None = None,
                 window_size: int = 40, shift: int = 40, noise_path: str | Path | None = None,
                 max_noise_ratio: float = 0.1, noise_selection: float = 0.1, seed: int = 0,
                 jobs: int | None = None, processes: bool = False, max_bad: float = 0.01,
                 progress: bool = True) -> DatasetResult:
    """Featurize every file of a list into ``<outdir>/<list name>.npz``.

    Args:
        list_file: text file, one wav path per line relative to ``wav_root`` (label = the file's folder name).
        featurizer: a featurizer graph (``kwsc.models.load_model``) or a path to one.
        outdir: where the ``.npz`` goes (default: the list's folder).
        categories: ``categories.txt`` path or a list of names (default: ``categories.txt`` beside the list).
        wav_root: the folder list entries are relative to (default: the list's folder, ELL's convention).
        window_size, shift: frames per row and the hop between rows (ELL tutorial: 40/40).
        noise_path: folder of background-noise wavs; enables mixing.
        max_noise_ratio, noise_selection: largest noise gain; fraction of files mixed.
        seed: seeds noise choices and the padding noise.
        jobs: parallel workers (default: all cores).
        processes: workers are processes instead of threads (see ``_run_chunks``).
        max_bad: largest tolerated fraction of unreadable files.
        progress: show a tqdm bar on stderr.

    Returns:
        A ``DatasetResult`` (the ``.npz`` path, row counts, skipped files with reasons).

    Raises:
        TooManyBadFiles: more than ``max_bad`` of the files failed (nothing is written).
        InputError: missing list/categories, a label not among the categories, bad options, an empty list, more
            than ``max_bad`` of the entries missing (checked before any work), a featurizer that is a classifier.
    """
    from tqdm import tqdm

    from kwsc.models import load_model

    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputError(f"{list_file}: no such list file")
    if window_size < 1 or shift < 1:
        raise InputError(f"window_size and shift must be ≥ 1 (got {window_size}, {shift})")
    if not 0.0 <= max_bad <= 1.0:
        raise InputError(f"--max_bad is a fraction within [0, 1], got {max_bad}")
    name = str(featurizer) if isinstance(featurizer, (str, Path)) else featurizer.name
    graph = load_model(featurizer) if isinstance(featurizer, (str, Path)) else featurizer
    require_featurizer(graph, graph.metadata, name, graph.inputs[0].type.size if graph.inputs else 0,
                       graph.outputs[0].type.size if graph.outputs else 0)
    if categories is None:
        categories = list_file.parent / "categories.txt"
    categories_file = categories if isinstance(categories, (str, Path)) else None
    if isinstance(categories, (str, Path)):
        if not Path(categories).is_file():
            raise InputError(f"{categories}: no such categories file (pass --categories)")
        categories = read_lines(categories)
    categories = list(categories)
    root = Path(wav_root) if wav_root is not None else list_file.parent
    out_path = (Path(outdir) if outdir is not None else list_file.parent) / f"{list_file.stem}.npz"
    refuse_overwriting(out_path, [("list file", list_file), ("categories file", categories_file),
                                  ("featurizer", name if isinstance(featurizer, (str, Path)) else None)],
                       "make-dataset")
    entries = _entries(list_file, categories, root)
    if not entries:
        raise InputError(f"{list_file}: the list names no files; nothing written")
    missing = [p for _, p in entries if not os.path.isfile(p)]
    if missing and len(missing) > max_bad * len(entries):  # one line, before any work, instead of a line per file
        base = f"{root}" if wav_root is not None else f"{root}, the list's folder"
        raise InputError(f"{len(missing)} of {len(entries)} list entries are not files (first: {missing[0]}); "
                         f"entries are read relative to {base} (set it with --wav_files); nothing written")
    chunks = -(-len(entries) // CHUNK_FILES)
    jobs = max(1, min(jobs or os.cpu_count() or 1, chunks or 1))
    # several workers: one FFT thread each; a single worker: FFT threads on every core
    feat = BatchFeaturizer(graph, workers=1 if jobs > 1 else None)
    if feat.sample_rate is None:
        raise InputError(f"featurizer {graph.name!r} does not say its sample rate (no sample_rate metadata)")
    mixer = plan = None
    if noise_path is not None:
        mixer = NoiseMixer.from_folder(noise_path, feat.sample_rate, max_noise_ratio, noise_selection)
        plan = mixer.plan(len(entries), seed)
    choices = plan or [None] * len(entries)
    paths = [p for _, p in entries]
    tasks = [(k // CHUNK_FILES, paths[k:k + CHUNK_FILES], choices[k:k + CHUNK_FILES])
             for k in range(0, len(entries), CHUNK_FILES)]
    context = {"featurizer": feat, "mixer": mixer, "window_size": window_size, "shift": shift, "seed": seed}
    results = []
    with tqdm(total=len(entries), unit="clip", desc=list_file.name, disable=not progress, leave=False) as bar:
        for task, result in zip(tasks, _run_chunks(tasks, context, jobs, processes)):
            results.append(result)
            bar.update(len(task[1]))
    failures = [f for _, _, fails in results for f in fails]
    if failures and len(failures) > max_bad * len(entries):
        raise TooManyBadFiles(f"{len(failures)} of {len(entries)} files could not be used "
                              f"({100.0 * len(failures) / max(len(entries), 1):.1f}% > --max_bad "
                              f"{100.0 * max_bad:g}%); nothing written", failures)
    width = window_size * feat.output_size
    features = np.concatenate([r for r, _, _ in results]) if results else np.zeros((0, width), np.float32)
    counts = np.concatenate([c for _, c, _ in results]) if results else np.zeros(0, np.int64)
    labels = np.repeat(np.array([label for label, _ in entries] or [""], dtype=str)[: len(entries)], counts)
    dataset = Dataset(features, labels, categories,
                      [feat.sample_rate, feat.input_size, feat.output_size, window_size, shift])
    remove_stale_temps(out_path)  # what an earlier run killed with SIGKILL left (SIGTERM cleans up itself)
    path = dataset.save(out_path)
    per_label = {c: int((dataset.labels == c).sum()) for c in categories}
    return DatasetResult(path, len(dataset), len(entries), per_label, failures,
                         sum(c is not None for c in choices))
