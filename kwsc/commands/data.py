"""Data commands: ``make-training-list``, ``make-dataset``, ``synth-dataset``."""

from __future__ import annotations

import sys

from kwsc.commands._util import add_command, existing_dir, existing_file, option

ORDER = 20
_DEFAULT_FEATURIZER = "featurizer/mfcc"  # ELL's make_dataset.py default

__all__ = ["register"]


def _make_training_list(args) -> int:
    from kwsc.data.training_list import make_training_list

    existing_dir(args.wav_files, "wav folder")
    result = make_training_list(args.wav_files, args.outdir, args.max_files_per_directory, args.bad_list, args.seed)
    for name in result.absent_lists:
        print(f"note: {args.wav_files}/{name} not found: that list is empty", file=sys.stderr)
    for entry in result.missing_bad:
        print(f"note: bad list names a missing file: {entry}", file=sys.stderr)
    if result.missing_listed:
        print(f"note: {len(result.missing_listed)} validation/testing entries name missing files and were left out "
              f"(first: {result.missing_listed[0]})", file=sys.stderr)
    for name, backup in result.rewritten.items():
        print(f"note: {result.outdir / name} cleaned in place (bad-list entries and missing files removed); the "
              f"original is kept as {result.outdir / backup}", file=sys.stderr)
    for category in result.categories:
        print(f"{category}: {result.candidates[category]} candidate files")
    print(f"wrote {result.outdir}/training_list.txt ({len(result.training)} files), validation "
          f"{len(result.validation)}, testing {len(result.testing)}, {len(result.categories)} categories")
    return 0


def _print_failures(failures, limit: int = 50) -> None:
    print(f"skipped {len(failures)} file(s):", file=sys.stderr)
    for path, reason in failures[:limit]:
        print(f"  {path}: {reason}", file=sys.stderr)
    if len(failures) > limit:
        print(f"  … and {len(failures) - limit} more", file=sys.stderr)


def _make_dataset(args) -> int:
    from kwsc.data.make_dataset import TooManyBadFiles, make_dataset
    from kwsc.models import load_model_arg

    existing_file(args.list_file, "list file")
    default = " (the default; pass --featurizer)" if args.featurizer == _DEFAULT_FEATURIZER else ""
    graph, ref = load_model_arg(args.featurizer, f"featurizer{default}")
    graph.name = args.featurizer
    try:
        result = make_dataset(
            args.list_file, graph, outdir=args.outdir, categories=args.categories,
            wav_root=args.wav_files, window_size=args.window_size, shift=args.shift, noise_path=args.noise_path,
            max_noise_ratio=args.max_noise_ratio, noise_selection=args.noise_selection, seed=args.seed,
            jobs=args.jobs, processes=args.processes, max_bad=args.max_bad, progress=not args.quiet)
    except TooManyBadFiles as exc:
        _print_failures(exc.failures)
        raise
    if result.failures:
        _print_failures(result.failures)
    mixed = f", {result.mixed} mixed with noise" if args.noise_path else ""
    # a compiled module's rows come from the model it was built from, many clips at a time: the same numbers
    used = f"; featurized with {ref.file}, the model of module {args.featurizer}" if ref.module else ""
    print(f"wrote {result.path}: {result.rows} rows from {result.files - len(result.failures)} of {result.files} "
          f"files{mixed}{used}")
    return 0


def _synth_dataset(args) -> int:
    from kwsc.data.synth import DEFAULT_WORDS, synth_dataset

    words = [w.strip() for w in args.words.split(",") if w.strip()] if args.words else list(DEFAULT_WORDS)
    result = synth_dataset(args.out, words=words, variants=args.variants, repeats=args.repeats, seed=args.seed,
                           jobs=args.jobs, progress=not args.quiet, silence=args.silence)
    print(f"wrote {result.clips} clips of {len(words)} words by {result.speakers} speakers "
          f"(+ {args.silence} _silence_ clips) to {args.out} "
          f"(validation {result.validation}, testing {result.testing}, {result.noise_files} noise files)")
    return 0


def register(sub) -> None:
    p = add_command(sub, "make-training-list", _make_training_list,
                    help="training/validation/testing lists and categories.txt of a Speech-Commands-style folder",
                    description="Lists a Speech-Commands-style folder as ELL does: categories = sub-folders (not\n"
                                "_background_noise_), training = every wav not in validation_list.txt /\n"
                                "testing_list.txt / the bad list, at most N per category, chosen with a seed.\n"
                                "Writes training_list.txt and categories.txt into the wav folder, as ELL (the tutorial's\n"
                                "next steps read audio/training_list.txt), or into --outdir with cleaned copies of the\n"
                                "held-out lists. In the wav folder a held-out list that the bad list or missing files\n"
                                "change is rewritten, its original kept as <name>_list.orig.txt.\n\n"
                                "example (the ELL tutorial's line):\n"
                                "  kwsc make_training_list --wav_files audio --max_files_per_directory 1600",
                    aliases=("make_training_list",))
    option(p, "--wav_files", "-w", required=True, help="the dataset folder")
    option(p, "--max_files_per_directory", "-max", type=int, default=5000, help="training files per category cap")
    option(p, "--bad_list", "-b", help="file listing entries to leave out (relative to the wav folder)")
    option(p, "--seed", type=int, default=0, help="random seed (default 0)")
    option(p, "--outdir", "-o", help="output folder (default: the wav folder, as ELL)")

    p = add_command(sub, "make-dataset", _make_dataset,
                    help="featurize the wavs of a list into an ELL-compatible .npz dataset",
                    description="Featurizes every wav of a list with a featurizer model into <list name>.npz (keys\n"
                                "features, labels, valid_classes, parameters; ELL's rows and padding) in the current\n"
                                "folder, where the tutorial's train step reads it. Unreadable files are skipped and\n"
                                "listed; the command fails when more than --max_bad of them fail, and before any work\n"
                                "when more than --max_bad of the entries are missing or the list is empty.\n\n"
                                "example (the ELL tutorial's line; compiled_featurizer/mfcc made by kwsc wrap):\n"
                                "  kwsc make_dataset --list_file audio/training_list.txt --featurizer "
                                "compiled_featurizer/mfcc --window_size 40 --shift 40",
                    aliases=("make_dataset",))
    option(p, "--list_file", "-l", required=True, help="list of wav paths (e.g. training_list.txt)")
    option(p, "--featurizer", "-f", default=_DEFAULT_FEATURIZER,
           help="featurizer model (.ell/.kwsc) or compiled module DIR/MODULE (ELL's default featurizer/mfcc)")
    option(p, "--wav_files", "-w", help="folder the list entries are relative to (default: the list's folder)")
    option(p, "--outdir", "-o", default=".",
           help="output folder (default: the current folder, as the tutorial says; ELL's script: the list's)")
    option(p, "--categories", "-c", help="categories file (default: categories.txt beside the list)")
    option(p, "--window_size", "-ws", type=int, default=40, help="feature frames per row (default 40)")
    option(p, "--shift", "-s", type=int, default=40, help="frames between rows (default 40)")
    option(p, "--noise_path", help="folder of background-noise wavs to mix in")
    option(p, "--max_noise_ratio", type=float, default=0.1, help="largest noise gain (default 0.1)")
    option(p, "--noise_selection", type=float, default=0.1, help="fraction of files mixed with noise (default 0.1)")
    option(p, "--jobs", "-j", type=int, help="parallel workers (default: all cores)")
    option(p, "--processes", action="store_true",
           help="worker processes instead of threads (may pay off for very large lists on idle cores)")
    option(p, "--seed", type=int, default=0, help="random seed for noise and padding (default 0)")
    option(p, "--max_bad", type=float, default=0.01, help="tolerated fraction of unreadable files (default 0.01)")
    option(p, "--quiet", "-q", action="store_true", help="no progress bar")

    p = add_command(sub, "synth-dataset", _synth_dataset,
                    help="a synthetic Speech-Commands-style corpus spoken by espeak-ng",
                    description="Speaks each word with many espeak-ng voices (voice × variant × pitch × speed), "
                                "writes one-second 16 kHz 16-bit clips in <word>/ folders, generated background "
                                "noise in _background_noise_/, and validation/testing lists split by speaker. "
                                "The same seed gives byte-identical files.")
    p.add_argument("out", help="output folder")
    option(p, "--words", help="comma-separated words (default: the 30 of Speech Commands v0.01)")
    option(p, "--variants", type=int, default=40, help="speakers (voice+variant) per word (default 40)")
    option(p, "--repeats", type=int, default=1, help="utterances per speaker and word (default 1)")
    option(p, "--seed", type=int, default=0, help="random seed (default 0)")
    option(p, "--silence", type=int, default=0, help="_silence_ clips cut from the generated noise (default 0)")
    option(p, "--jobs", "-j", type=int, help="worker processes (default: all cores)")
    option(p, "--quiet", "-q", action="store_true", help="no progress bar")
