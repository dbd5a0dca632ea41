"""Training/validation/testing lists of a Speech-Commands-style folder (ELL's ``make_training_list.py``, §5.1).

The folder holds one sub-folder per category (``yes/``, ``no/``, …, ``_background_noise_/`` is not a category)
and ``validation_list.txt`` / ``testing_list.txt`` naming held-out files relative to it. The training list is
every other wav, at most ``max_files_per_directory`` per category, chosen at random.

Outputs go into the data folder by default, as ELL's (the tutorial's next steps read ``audio/training_list.txt``),
or into ``outdir``. Unlike ELL: the choice is seeded (same seed → same lists); held-out lists are not shuffled in
place; when cleaning (bad-list entries, missing files) changes a held-out list in the data folder, the original
is kept as ``<name>_list.orig.txt`` before the cleaned list replaces it (atomically); in another ``outdir``
cleaned copies are written and the data folder is not touched; bad-list entries naming missing files are
reported.

Example::

    result = make_training_list("speech_commands", outdir="lists", max_files_per_directory=1600, seed=0)
    # lists/training_list.txt, lists/validation_list.txt, lists/testing_list.txt, lists/categories.txt
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kwsc.fileio import atomic_output
from kwsc.errors import InputError

__all__ = ["make_training_list", "TrainingLists", "read_lines", "write_lines", "NOISE_FOLDER"]

NOISE_FOLDER = "_background_noise_"


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines of a text file, stripped, with ``\\`` turned into ``/``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return [line.strip().replace("\\", "/") for line in text.splitlines() if line.strip()]


def write_lines(path: str | Path, lines: list[str]) -> None:
    """Write one entry per line (UTF-8, ``\\n``), atomically (temp file + rename)."""
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    atomic_output(path, lambda f: f.write(data))


@dataclass
class TrainingLists:
    """What ``make_training_list`` wrote and found."""

    outdir: Path
    categories: list[str]
    training: list[str]
    validation: list[str]
    testing: list[str]
    candidates: dict[str, int] = field(default_factory=dict)       # training candidates per category
    missing_bad: list[str] = field(default_factory=list)           # bad-list entries naming missing files
    missing_listed: list[str] = field(default_factory=list)        # validation/testing entries naming missing files
    absent_lists: list[str] = field(default_factory=list)          # validation/testing list files not found
    rewritten: dict[str, str] = field(default_factory=dict)        # held-out list cleaned in place → its backup


def _resolve_bad_list(bad_list: str | Path, wav_dir: Path) -> Path:
    p = Path(bad_list)
    if p.is_file():
        return p
    if (wav_dir / p).is_file():  # ELL resolves it relative to the wav folder when not found as given
        return wav_dir / p
    raise InputError(f"{bad_list}: no such bad list (also looked in {wav_dir})")


def _check_writable(folder: Path, wav_dir: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    # a folder marked read-only (no write bit for anyone) is read-only for root too, whom os.access lets write
    if not os.access(probe, os.W_OK) or not probe.stat().st_mode & 0o222:
        hint = (f"; pass --outdir DIR (then give make_dataset --wav_files {wav_dir})"
                if folder.resolve() == wav_dir.resolve() else "")
        raise InputError(f"{folder}: cannot write the lists there (a read-only folder){hint}")


def make_training_list(wav_dir: str | Path, outdir: str | Path | None = None, max_files_per_directory: int = 5000,
                       bad_list: str | Path | None = None, seed: int = 0) -> TrainingLists:
    """Write ``training_list.txt``, ``validation_list.txt``, ``testing_list.txt`` and ``categories.txt``.

    Args:
        wav_dir: the dataset folder (category sub-folders, optional validation/testing lists).
        outdir: where the files go (created if needed); default ``wav_dir``, as ELL (then a held-out list that
            cleaning changes is replaced, its original kept as ``<name>_list.orig.txt``).
        max_files_per_directory: cap on training files per category.
        bad_list: file of entries (relative to ``wav_dir``) to leave out everywhere.
        seed: seeds the random choice and order of training files and the shuffling of the held-out lists.

    Returns:
        A ``TrainingLists`` with the lists and what was reported (missing files, absent list files).
    """
    wav_dir = Path(wav_dir)
    if not wav_dir.is_dir():
        raise InputError(f"{wav_dir}: no such folder")
    if max_files_per_directory < 1:
        raise InputError(f"--max_files_per_directory must be ≥ 1, got {max_files_per_directory}")
    outdir = wav_dir if outdir is None else Path(outdir)
    in_place = outdir.resolve() == wav_dir.resolve()
    _check_writable(outdir, wav_dir)
    rng = np.random.default_rng(int(seed))
    originals: dict[str, list[str]] = {}
    result = TrainingLists(outdir, [], [], [], [])
    bad: set[str] = set()
    if bad_list is not None:
        entries = read_lines(_resolve_bad_list(bad_list, wav_dir))
        bad = set(entries)
        result.missing_bad = [e for e in entries if not (wav_dir / e).is_file()]
    held_out: set[str] = set()
    for name in ("validation", "testing"):
        list_path = wav_dir / f"{name}_list.txt"
        if not list_path.is_file():
            result.absent_lists.append(list_path.name)
            continue
        entries = read_lines(list_path)
        originals[name] = entries
        held_out.update(entries)
        kept = [e for e in entries if e not in bad]
        missing = [e for e in kept if not (wav_dir / e).is_file()]
        result.missing_listed += missing
        missing_set = set(missing)
        kept = [e for e in kept if e not in missing_set]
        setattr(result, name, kept if in_place else [kept[i] for i in rng.permutation(len(kept))])
    result.categories = sorted(d.name for d in wav_dir.iterdir()
                               if d.is_dir() and NOISE_FOLDER not in d.name and not d.name.startswith("."))
    if not result.categories:
        raise InputError(f"{wav_dir}: no category sub-folders")
    for category in result.categories:
        files = sorted(f"{category}/{p.name}" for p in (wav_dir / category).iterdir()
                       if p.suffix.lower() == ".wav" and p.is_file())
        candidates = [f for f in files if f not in bad and f not in held_out]
        result.candidates[category] = len(candidates)
        take = min(max_files_per_directory, len(candidates))
        result.training += [candidates[i] for i in rng.permutation(len(candidates))[:take]]
    outdir.mkdir(parents=True, exist_ok=True)
    for name, entries in originals.items():
        kept = getattr(result, name)
        if not in_place:
            write_lines(outdir / f"{name}_list.txt", kept)
        elif kept != entries:  # cleaned in the data folder (ELL rewrites it); the first original is kept
            backup = wav_dir / f"{name}_list.orig.txt"
            if not backup.exists():
                write_lines(backup, entries)
            write_lines(wav_dir / f"{name}_list.txt", kept)
            result.rewritten[f"{name}_list.txt"] = backup.name
    write_lines(outdir / "training_list.txt", result.training)
    write_lines(outdir / "categories.txt", result.categories)
    return result
