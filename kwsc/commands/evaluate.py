"""Commands that judge models: `kwsc test`, `kwsc listen`, `kwsc vad-tune`."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from kwsc.commands._util import add_command, existing_file, option
from kwsc.errors import InputError

ORDER = 60


def _add_vad_options(p, defaults: bool = False, help_default: str = "ELL") -> None:
    from kwsc.evaluate.vad_tune import TUTORIAL_VAD
    from kwsc.evaluate.vad_tune import defaults as vad_defaults
    from kwsc.evaluate.vad_tune import parameter_docs

    d = TUTORIAL_VAD if help_default == "the tutorial's" else vad_defaults()
    for name, text in parameter_docs().items():  # the VAD's parameter record (kwsc.ir.op_dsp.VadParams)
        option(p, f"--{name}", type=float, default=d[name] if defaults else None,
               help=f"{text} (default: {help_default} {d[name]:g})")


def _vad_options(args) -> dict:
    from kwsc.evaluate.vad_tune import VAD_PARAMETERS

    return {k: getattr(args, k) for k in VAD_PARAMETERS if getattr(args, k, None) is not None}


def register(sub) -> None:
    p = add_command(sub, "test", cmd_test, help="accuracy per file (reset / stream / VAD) and streaming detection",
                    description=(
                        "Test a featurizer + classifier on a list of wavs, with the seed's test_ell_model rules.\n"
                        "Modes: reset (state reset before each file), stream (one continuous stream), vad\n"
                        "(continuous, the classifier with a VAD resetting the GRUs: its own VAD, else add_vad with\n"
                        "the ELL tutorial's numbers, which --tau_up etc. override). Files are tested in a shuffled\n"
                        "order drawn from --seed (ELL's test_ell_model; --order list keeps the list's).\n"
                        "--stream-minutes N adds the streaming benchmark: an N-minute stream of the list's clips\n"
                        "over background noise, the detector swept over thresholds and smoothing: a DET curve\n"
                        "(<output>_stream_det.png), hit rate at 1/2/5 false alarms per hour, false alarms at 90 %\n"
                        "hits, latency, all in <output>_stream.json.\n"
                        "Models are files (.kwsc/.ell/.onnx) or compiled modules (DIR/MODULE from kwsc wrap, or DIR);\n"
                        "which implementation runs is printed. Sizes, sample rates and categories are checked first.\n"
                        "results.json is written atomically; replacing an earlier run's file is said (-o keeps runs\n"
                        "apart).\n\n"
                        "examples:\n"
                        "  kwsc test --featurizer featurizer.kwsc --classifier model.kwsc \\\n"
                        "      --list_file data/testing_list.txt --categories categories.txt --modes reset,stream,vad\n"
                        "  kwsc test --classifier demo-out/c/fused --vad_classifier demo-out/c/fused_vad --modes vad \\\n"
                        "      --list_file data/testing_list.txt --categories categories.txt --stream-minutes 60\n"
                        "  kwsc test_ell_model --classifier KeywordSpotter/model --featurizer compiled_featurizer/mfcc \\\n"
                        "      --sample_rate 16000 --list_file audio/testing_list.txt --categories categories.txt \\\n"
                        "      --reset --auto_scale                                    # the ELL tutorial's line"),
                    aliases=("test_ell_model",))
    option(p, "--featurizer", "-f", help="featurizer model (.kwsc/.ell), compiled module DIR/MODULE or DIR; omit it "
                                        "when the classifier is a fused model that takes audio")
    option(p, "--classifier", "-c", required=True, help="classifier (.kwsc/.onnx/.ell), DIR/MODULE or DIR")
    src = p.add_mutually_exclusive_group(required=True)
    option(src, "--list_file", "-l", help="list of wavs (paths relative to --wav_files)")
    option(src, "--dataset", "-d", help=".npz dataset: each row's frames are fed to the classifier in order")
    option(p, "--wav_files", help="folder the list's paths are relative to (default: the list's folder)")
    option(p, "--categories", "-cat", help="categories.txt (default: beside the list/dataset, or the model's)")
    option(p, "--reset", "-r", action="store_true", help="reset state before each file (seed's --reset)")
    option(p, "--modes", help="comma list of reset,stream,vad (default: reset with --reset, else stream)")
    option(p, "--sample_rate", "-s", type=int,
           help="the featurizer's sample rate, checked (audio of any rate is resampled to it)")
    option(p, "--auto_scale", action="store_true",
           help="accepted for ELL's lines: kwsc always reads integer audio scaled to [-1, 1)")
    option(p, "--window_size", "-ws", type=int, default=0,
           help="pad each file with noise frames to a multiple of this (ELL; default 0: the classifier input size)")
    option(p, "--threshold", type=float, default=0.01, help="a frame counts when its top probability exceeds this")
    option(p, "--prediction_algorithm", "-pa", choices=("max", "mean"), default="max")
    option(p, "--max_tests", type=int, help="test a random subset of this many files")
    option(p, "--order", choices=("shuffled", "list"), default="shuffled",
           help="file order: shuffled with --seed (default; ELL's test_ell_model), or the list's order; a list "
                "sorted by word lets the stream and vad modes' carried-over state answer for the next file")
    option(p, "--output", "-o", default="results.json", help="results file; confusion PNGs are written beside it")
    option(p, "--verbose", "-v", dest="per_file", action="store_true",
           help="a line per file: PASSED/FAILED, running pass rate, confidence (as test_ell_model)")
    option(p, "--vad_classifier", help="an explicit VAD-added classifier for the vad mode")
    option(p, "--stream-minutes", type=float, default=0.0,
           help="also run the streaming benchmark on a stream of this many minutes built from the list's wavs "
                "(keywords, _unknown_, silence, shuffled, over _background_noise_ at 30/20/10 dB SNR; clips reused "
                "up to 8 times): detections at --stream_threshold, and the DET curve swept over thresholds and "
                "--sweep_smoothing (<output>_stream.json, _stream_det.png)")
    option(p, "--stream_threshold", type=float, default=0.8,
           help="streaming: the detector's threshold for the single-setting report, in (0, 1) (default 0.8)")
    option(p, "--smoothing", type=int, default=3, help="streaming: moving-average window (frames) of that report")
    option(p, "--sweep_smoothing", default="1,3,5",
           help="streaming: the moving-average windows (frames) the DET sweep tries (default 1,3,5)")
    option(p, "--refractory", type=float, default=1.0, help="streaming: seconds without a new detection")
    option(p, "--detector_curve", metavar="JSON",
           help="streaming: also score the detectors chosen on ANOTHER stream's benchmark (the _stream.json of a "
                "validation list's run) at --detector_fa_per_hour, one threshold for all keywords and one per "
                "keyword: the held-out operating points ('held_out' in the JSON)")
    option(p, "--detector_fa_per_hour", type=float, default=2.0,
           help="streaming, with --detector_curve: the false-alarm budget the detectors are chosen at (default 2)")
    option(p, "--stream_snr", default="30,20,10",
           help="streaming: the background noise's SNRs in dB against the median word level, comma-separated "
                "(default 30,20,10; 20 dB is about the dataset's own _silence_ clips), or 'clean' for none")
    option(p, "--seed", type=int, default=0)
    _add_vad_options(p, help_default="the tutorial's")

    p = add_command(sub, "listen", cmd_listen, help="detect keywords live from a microphone or a wav stream",
                    description="Run featurizer + classifier on live audio and print DETECTED lines: the microphone,\n"
                                "or wav files played one after another as a stream (in real time unless --fast).\n"
                                "ELL's view_audio.py options work (a console tool here, no window).\n\n"
                                "examples:\n"
                                "  kwsc listen --featurizer f.kwsc --classifier model.kwsc --wav a.wav b.wav --fast\n"
                                "  kwsc view_audio --classifier KeywordSpotter/model --featurizer compiled_featurizer/mfcc "
                                "\\\n      --categories categories.txt --sample_rate 16000 --threshold 0.8 --auto_scale"
                                "   # the ELL tutorial's line",
                    aliases=("view_audio",))
    option(p, "--featurizer", "-f", "-m", help="featurizer (.kwsc/.ell), DIR/MODULE or DIR (required unless "
                                              "--list_devices)")
    option(p, "--classifier", "-c", help="classifier (.kwsc/.ell/.onnx), DIR/MODULE or DIR")
    option(p, "--categories", "-cat", help="categories.txt (default: beside the classifier, or ./categories.txt)")
    option(p, "--wav", "--wav_file", nargs="+", help="wav file(s) played as one stream instead of the microphone")
    option(p, "--device", "--input_device", "-d", help="audio input device (index or name; see --list_devices)")
    option(p, "--list_devices", action="store_true", help="list the audio input devices and exit")
    option(p, "--fast", action="store_true", help="with --wav: as fast as possible instead of real time")
    option(p, "--seconds", type=float, help="microphone: stop after this long")
    option(p, "--sample_rate", "-s", type=int, help="the featurizer's sample rate, checked")
    option(p, "--auto_scale", action="store_true", help="accepted for ELL's lines: audio is always scaled to [-1, 1)")
    option(p, "--threshold", type=float, default=0.8, help="detection threshold on the probability (default 0.8)")
    option(p, "--smoothing", type=int, default=3, help="moving-average window over outputs, in frames (default 3)")
    option(p, "--refractory", type=float, default=1.0, help="seconds without a new detection (default 1)")

    p = add_command(sub, "vad-tune", cmd_vad_tune, help="run the VAD over wavs, print segments, draw vad.png",
                    description="Tune the VAD (ELL's vad_test.py, as a console tool): featurize wav files (or a few\n"
                                "seconds from the microphone), run ELL's VAD with the given parameters, print the\n"
                                "voice segments and write a picture (spectrogram, level, VAD signal). Defaults are\n"
                                "ELL's make_vad defaults; the featurizer defaults to ./featurizer.ell.\n\n"
                                "examples:\n"
                                "  kwsc vad-tune --featurizer f.kwsc a.wav b.wav --tau_up 1.5 -o vad.png\n"
                                "  kwsc vad_test --wav_file speech.wav     # featurizer.ell, ELL's default parameters",
                    aliases=("vad_test",))
    option(p, "--featurizer", "-f", "-m", default="featurizer.ell",
           help="featurizer (.ell/.kwsc) or DIR/MODULE (default: featurizer.ell, as the tutorial)")
    p.add_argument("wavs", nargs="*", help="wav files (processed as one stream each); none: the microphone")
    option(p, "--wav_file", action="append", default=[], help="a wav file (ELL's spelling; may repeat)")
    option(p, "--device", "--input_device", "-d", help="microphone: audio input device (index or name)")
    option(p, "--list_devices", action="store_true", help="list the audio input devices and exit")
    option(p, "--seconds", type=float, default=5.0, help="microphone: seconds to record (default 5)")
    option(p, "--sample_rate", type=int, help="the featurizer's sample rate, checked")
    option(p, "--auto_scale", action="store_true", help="accepted for ELL's lines: audio is always scaled to [-1, 1)")
    option(p, "--output", "-o", default="vad.png", help="picture (one per wav: vad.png, vad_2.png, …)")
    _add_vad_options(p, defaults=True)


def _categories(args, near: Path | None, last: Path | None = None) -> list[str]:
    from kwsc.evaluate.session import read_categories

    if args.categories:
        return read_categories(args.categories)
    for folder in [near, Path(args.classifier).parent if args.classifier else None, last]:
        if folder is not None and (folder / "categories.txt").is_file():
            return read_categories(folder / "categories.txt")
    raise InputError("no categories: pass --categories categories.txt")


def cmd_test(args) -> int:
    from tqdm import tqdm

    from kwsc.evaluate import session
    from kwsc.evaluate.runners import PassThroughRunner, open_runner

    modes = [m.strip() for m in (args.modes or ("reset" if args.reset else "stream")).split(",") if m.strip()]
    bad = [m for m in modes if m not in ("reset", "stream", "vad")]
    if bad:
        raise InputError(f"unknown mode(s) {', '.join(bad)}; expected reset, stream, vad")
    sweep_smoothings = _check_stream_options(args)
    from kwsc.fileio import refuse_overwriting

    refuse_overwriting(args.output, [(role, getattr(args, key, None)) for role, key in (
        ("classifier", "classifier"), ("featurizer", "featurizer"), ("VAD classifier", "vad_classifier"),
        ("list file", "list_file"), ("categories file", "categories"), ("dataset", "dataset"))], "test")
    classifier = open_runner(args.classifier, "classifier")
    featurizer = open_runner(args.featurizer, "featurizer") if args.featurizer else None
    _check_models(args, featurizer, classifier)
    print(f"classifier: {classifier.description}", file=sys.stderr)
    if featurizer is None:  # a fused model: it takes audio chunks itself and carries the featurizer's metadata
        featurizer = PassThroughRunner(classifier.input_size, classifier.metadata)
    else:
        print(f"featurizer: {featurizer.description}", file=sys.stderr)
    classifiers = {m: classifier for m in modes if m != "vad"}
    sample_rate, audio_chunk = session.featurizer_sample_rate(featurizer), featurizer.input_size
    if args.dataset:
        items, (sample_rate, audio_chunk) = _dataset_items(args, classifier, None if isinstance(
            featurizer, PassThroughRunner) else featurizer)
        near = Path(args.dataset).parent
        featurizer = PassThroughRunner(classifier.input_size, drop_chunks=False)
    else:
        near = Path(args.list_file).parent
    labels = _categories(args, near)
    from kwsc.compat import check_categories

    check_categories(classifier.output_size, args.classifier, labels, args.categories or "the categories")
    args.held_out = _held_out_detectors(args, labels)
    if "vad" in modes:  # the VAD's frame duration is one featurizer call: audio chunk / sample rate
        classifiers["vad"], how = session.vad_runner(args.classifier, args.vad_classifier, _vad_options(args),
                                                     sample_rate, audio_chunk)
        print(f"vad mode: {how}", file=sys.stderr)
    own_vad = any(m != "vad" for m in modes) and session.has_own_vad(classifier, args.classifier)
    with_vad = [m for m in modes if m == "vad" or own_vad]
    if "vad" in modes and how.startswith("none"):  # no recurrent state: no VAD resets to be trained for
        with_vad = [m for m in with_vad if m != "vad"]
    if with_vad:  # a model not trained for VAD resets loses much with them: say so before the numbers come
        runner, path = ((classifiers["vad"], args.vad_classifier or args.classifier) if "vad" in modes
                        else (classifier, args.classifier))
        note = session.vad_training_note(runner.metadata, path,
                                         f"the {', '.join(with_vad)} mode{'s' if len(with_vad) > 1 else ''}")
        if note:
            print(note, file=sys.stderr)
    if not args.dataset:
        skipped: list = []
        items = session.load_list_items(args.list_file, args.wav_files, session.featurizer_sample_rate(featurizer),
                                        args.max_tests, args.seed, skipped)
        for path, reason in skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
    stream = None
    if args.stream_minutes:  # built before the modes run: a list that cannot fill it is one line, before any work
        stream, noise = _build_stream(args, items, session.featurizer_sample_rate(featurizer), near)

    def progress_factory(mode, total):
        bar = tqdm(total=total, desc=f"test {mode}", unit="file", file=sys.stderr, leave=False)
        tag = f"[{mode}] " if len(modes) > 1 else ""

        def update(done, passed, result=None):
            bar.update(done - bar.n)
            bar.set_postfix_str(f"pass rate {passed / done:.2%}")
            if (args.per_file or args.verbose) and result is not None:  # test_ell_model's line per file
                rate = 100.0 * passed / done
                line = (f"PASSED {rate:.2f}%: {result.expected} in {result.path} with confidence "
                        f"{100.0 * result.confidence:.2f}%" if result.passed else
                        f"FAILED {rate:.2f}%: expected {result.expected}, got {result.predicted} in {result.path}")
                bar.write(tag + line, file=sys.stdout)
            if done == total:
                bar.close()
        return update

    from kwsc.evaluate.keyword_test import order_items

    items = order_items(items, args.order, args.seed)
    how = f"shuffled with --seed {args.seed} (--order list keeps the list's)" if args.order == "shuffled" else \
        "the list's (--order list)"
    print(f"order: {how}, {len(items)} files", file=sys.stderr)
    results = session.run_modes(modes, items, featurizer, classifiers, labels, args.threshold,
                                args.prediction_algorithm, args.seed, progress_factory,
                                pad_window=_pad_window(args, classifier))
    for r in results.values():
        r.settings["order"] = args.order
    replaced = _earlier_results(args.output)
    written = session.write_results(results, args.output, labels, {"order": args.order, "seed": args.seed})
    for mode, r in results.items():
        print(f"{mode}: passed {r.passed}, failed {r.failed}, pass rate {r.accuracy:.2%}, "
              f"time {r.seconds:.1f}s, {r.frames_per_second:,.0f} frames/s")
    if len(results) > 1:
        print("\n| mode | accuracy | passed | failed |\n|---|---|---|---|")
        for mode, r in results.items():
            print(f"| {mode} | {r.accuracy:.2%} | {r.passed} | {r.failed} |")
    if stream is not None:
        _stream(args, items, featurizer, classifiers.get("vad") or classifier, labels, stream, noise,
                sweep_smoothings)
    print(f"wrote {', '.join(str(w) for w in written)}" + (f" (replacing {replaced})" if replaced else ""))
    return 0


def _check_models(args, featurizer, classifier) -> None:
    """One line, before any audio is read, when the models do not go together or the sample rate differs."""
    from kwsc.compat import check_frames, model_kind, require_classifier, require_featurizer
    from kwsc.evaluate.runners import sample_rate_of

    require_classifier(classifier.graph, classifier.metadata, args.classifier, classifier.input_size,
                       classifier.output_size)
    if featurizer is not None:
        require_featurizer(featurizer.graph, featurizer.metadata, args.featurizer, featurizer.input_size,
                           featurizer.output_size)
        if model_kind(classifier.graph, classifier.metadata) == "fused":
            raise InputError(f"--classifier {args.classifier} is a fused model (audio in, scores out): it has its "
                             f"featurizer built in; leave out --featurizer {args.featurizer}")
        check_frames(featurizer.output_size, args.featurizer, classifier.input_size, args.classifier)
    audio = featurizer if featurizer is not None else classifier
    if args.sample_rate and not args.dataset and "sample_rate" in audio.metadata \
            and sample_rate_of(audio) != args.sample_rate:
        raise InputError(f"--sample_rate {args.sample_rate}: {args.featurizer or args.classifier} was made for "
                         f"{sample_rate_of(audio)} Hz audio (wavs of any rate are resampled to it); leave the option "
                         "out or give that rate")


def _earlier_results(output: str) -> str | None:
    """What an existing results file holds, to say so when this run replaces it; None when there is none."""
    path = Path(output)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        modes = ", ".join(f"{m} {r['accuracy']:.2%}" for m, r in doc["modes"].items())
        return f"{path} of an earlier run: {modes}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"the earlier {path}"


def _pad_window(args, classifier) -> int | None:
    """ELL's end-of-file noise padding counts feature frames up to a multiple of the classifier input size."""
    if args.dataset:
        return 0  # rows are fed as they are
    if args.window_size:
        return args.window_size
    if args.featurizer:
        return None  # the classifier's input size
    features = classifier.metadata.get("output_size")  # a fused model: the featurizer's output size
    if features is None:
        raise InputError(f"{args.classifier}: a model without --featurizer must be a fused audio model carrying the "
                         "featurizer's metadata (output_size); pass --featurizer otherwise")
    return int(float(features))


def _dataset_items(args, classifier, featurizer):
    import numpy as np

    from kwsc.compat import check_dataset
    from kwsc.evaluate.keyword_test import LabeledAudio
    from kwsc.evaluate.runners import sample_rate_of

    path = existing_file(args.dataset, "dataset")
    with np.load(path, allow_pickle=False) as data:
        features, labels = data["features"], data["labels"]
        params = data["parameters"] if "parameters" in data else None
    if params is not None:
        check_dataset(params, str(path), featurizer=None if featurizer is None else (
            sample_rate_of(featurizer), featurizer.input_size, featurizer.output_size), featurizer_name=args.featurizer,
            classifier_input=classifier.input_size, classifier=args.classifier, row_size=features.shape[1])
    else:
        params = np.array([16000, 512])
        if features.shape[1] % classifier.input_size:
            raise InputError(f"dataset {path} rows hold {features.shape[1]} values, not a whole number of "
                             f"{classifier.input_size}-value frames for classifier {args.classifier}")
    frames = features.reshape(len(features), -1, classifier.input_size)
    items = [LabeledAudio(f"{path.name}[{i}]", str(lab), frames[i].reshape(-1)) for i, lab in enumerate(labels)]
    if args.max_tests and args.max_tests < len(items):
        rng = np.random.default_rng(args.seed)
        items = [items[i] for i in sorted(rng.choice(len(items), args.max_tests, replace=False))]
    return items, (int(params[0]), int(params[1]))  # (sample_rate, featurizer input size)


def _check_stream_options(args) -> list[int]:
    """The streaming options, checked before any model is opened: one line each (exit 2). Returns the sweep's
    smoothing windows."""
    from kwsc.evaluate.keyword_test import read_list
    from kwsc.evaluate.streaming import BACKGROUND_LABELS, check_threshold

    check_threshold(args.stream_threshold, "--stream_threshold")
    if not args.stream_minutes >= 0:  # NaN too
        raise InputError(f"--stream-minutes {args.stream_minutes:g}: give a positive number of minutes (0: none)")
    from kwsc.ir.op_detect import MAX_SMOOTHING

    if not 1 <= args.smoothing <= MAX_SMOOTHING:
        raise InputError(f"--smoothing {args.smoothing}: the moving average takes 1 to {MAX_SMOOTHING} frames")
    if not args.refractory >= 0:
        raise InputError(f"--refractory {args.refractory:g}: give 0 or more seconds")
    try:
        smoothings = [int(v) for v in args.sweep_smoothing.split(",") if v.strip()]
    except ValueError:
        smoothings = []
    if not smoothings or min(smoothings) < 1 or max(smoothings) > MAX_SMOOTHING:
        raise InputError(f"--sweep_smoothing {args.sweep_smoothing!r}: give frame counts from 1 to {MAX_SMOOTHING}, "
                         "comma-separated (e.g. 1,3,5)")
    snr = args.stream_snr.strip().lower()
    try:
        args.stream_snr_db = None if snr == "clean" else [float(v) for v in snr.split(",") if v.strip()]
    except ValueError:
        args.stream_snr_db = []
    if args.stream_snr_db is not None and (not args.stream_snr_db or not all(
            math.isfinite(v) for v in args.stream_snr_db)):
        raise InputError(f"--stream_snr {args.stream_snr!r}: give dB values, comma-separated (e.g. 30,20,10), or "
                         "'clean'")
    if args.stream_minutes and args.dataset:
        raise InputError("--stream-minutes builds its stream from wavs: give --list_file, not --dataset")
    if args.detector_curve and not args.stream_minutes:
        raise InputError("--detector_curve scores detectors on the streaming benchmark: give --stream-minutes too")
    if not (math.isfinite(args.detector_fa_per_hour) and args.detector_fa_per_hour >= 0):
        raise InputError(f"--detector_fa_per_hour {args.detector_fa_per_hour:g}: give a finite rate >= 0")
    if args.detector_curve:
        try:
            args.detector_doc = json.loads(Path(args.detector_curve).read_text())
        except OSError as exc:
            raise InputError(f"--detector_curve {args.detector_curve}: cannot read it: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"--detector_curve {args.detector_curve}: not JSON: {exc}") from None
        if not isinstance(args.detector_doc, dict) or args.detector_doc.get("kind") != "kwsc streaming benchmark":
            raise InputError(f"--detector_curve {args.detector_curve}: not a streaming benchmark JSON (kwsc test "
                             "--stream-minutes writes <output>_stream.json)")
    if args.stream_minutes and Path(args.list_file).is_file():
        labels = {label for _, label in read_list(Path(args.list_file))}
        if not labels - BACKGROUND_LABELS:
            raise InputError(f"--stream-minutes: {args.list_file} has no keywords (only "
                             f"{', '.join(sorted(labels)) or 'no files'}); the streaming benchmark counts "
                             "detected keywords")
    return smoothings


def _held_out_detectors(args, labels) -> list[dict]:
    """The detectors chosen on --detector_curve's stream: one threshold for every keyword, and one per keyword when
    the curve has per-keyword counts (one line, exit 2, when none can be chosen); [] without --detector_curve."""
    if not getattr(args, "detector_curve", None):
        return []
    from kwsc.evaluate.streaming import choose_detector

    doc = args.detector_doc
    where = f"--detector_curve {args.detector_curve}"
    curve_labels = (doc.get("stream") or {}).get("labels")
    if curve_labels is not None and list(curve_labels) != list(labels):
        raise InputError(f"{where}: made with categories {curve_labels}, not these")
    stream = doc.get("stream") or {}
    source = {"file": str(args.detector_curve), "model": doc.get("model", ""), "minutes": stream.get("minutes"),
              "list_clips": stream.get("list_clips"), "keywords": stream.get("keywords"), "seed": stream.get("seed")}
    chosen = []
    try:
        for per_class in (False, True):
            if per_class and any("per_label" not in p for p in doc.get("curve", [])):
                print(f"note: {args.detector_curve} has no per-keyword counts (an older kwsc): one threshold only",
                      file=sys.stderr)
                break
            chosen.append({**choose_detector(doc, list(labels), args.detector_fa_per_hour, per_class, where=where),
                           "source": source})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed benchmark JSON ({exc})") from None
    return chosen


def _build_stream(args, items, sample_rate: int, near: Path):
    from kwsc.audio.wav import load_audio
    from kwsc.evaluate import session

    root = Path(args.wav_files) if args.wav_files else near
    noise = [load_audio(p, sample_rate) for p in sorted((root / "_background_noise_").glob("*.wav"))]
    if not noise:
        print(f"note: no {root / '_background_noise_'}/*.wav: the stream's background is white noise",
              file=sys.stderr)
    started = time.perf_counter()
    try:
        stream = session.build_test_stream(items, noise, sample_rate, args.stream_minutes, args.seed,
                                           args.stream_snr_db)
    except InputError as exc:
        raise InputError(f"--stream-minutes {args.stream_minutes:g} with {args.list_file}: {exc}") from None
    args.stream_build_seconds = round(time.perf_counter() - started, 3)
    return stream, noise


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _stream(args, items, featurizer, classifier, labels, stream, noise, smoothings):
    from tqdm import tqdm

    from kwsc.evaluate import session
    from kwsc.evaluate.plots import plot_det, plot_timeline
    from kwsc.fileio import atomic_write

    sr = session.featurizer_sample_rate(featurizer)
    unknown = sorted({e.label for e in stream[1] if e.is_keyword} - set(labels))
    if unknown:
        print(f"note: the stream's words {', '.join(unknown)} are not among the model's categories: they can only be "
              "missed", file=sys.stderr)
    bar = tqdm(total=len(stream[0]) // featurizer.input_size, desc="stream", unit="frame", file=sys.stderr,
               leave=False)

    def progress(done, total):
        bar.update(done - bar.n)

    run = session.stream_test(items, noise, featurizer, classifier, labels, args.stream_minutes,
                              args.stream_threshold, args.smoothing, args.refractory, args.seed,
                              smoothings=smoothings, stream=stream, progress=progress, snr_db=args.stream_snr_db,
                              held_out=getattr(args, "held_out", None))
    bar.close()
    run.seconds = {"build": getattr(args, "stream_build_seconds", None), **run.seconds}
    r, doc = run.report, run.to_dict()
    out = Path(args.output)
    report_path = out.with_name(f"{out.stem}_stream.json")
    det_png = out.with_name(f"{out.stem}_stream_det.png")
    png = out.with_name(f"{out.stem}_stream_timeline.png")
    doc["files"] = {"det_png": det_png.name, "timeline_png": png.name}
    atomic_write(report_path, json.dumps(doc, indent=1) + "\n")
    resolution = doc["resolution_fa_per_hour"]
    plot_det(run.curve, run.points, det_png, resolution,
             title=f"DET: {r.duration_s / 60:.0f}-min stream, {r.keywords} keywords ({classifier.description})")
    plot_timeline(run.audio, sr, run.scores, labels, run.frame_seconds, run.events, run.detections, png,
                  start_s=0.0, length_s=min(30.0, len(run.audio) / sr), threshold=args.stream_threshold)
    st = run.stream
    print(f"stream ({r.duration_s / 60:.1f} min: {r.keywords} keywords, {st['unknown']} _unknown_, {st['silence']} "
          f"silence, {st['distinct_clips']} distinct clips; {classifier.description}; models "
          f"{run.seconds['models']:.0f} s, sweep {run.seconds['sweep']:.0f} s)")
    print(f"  at threshold {args.stream_threshold:g}, smoothing {args.smoothing}: hits {r.hits} ({r.hit_rate:.1%}), "
          f"misses {r.misses}, false alarms {r.false_alarms} ({r.false_alarms_per_hour:.1f}/hour; during "
          f"{', '.join(f'{k} {v}' for k, v in r.false_alarms_on.items())}), latency after the word end median "
          f"{_ms(r.latency_median_s)}, 95th percentile {_ms(r.latency_p95_s)}")
    print(f"  DET sweep ({len(st['thresholds'])} thresholds × smoothing {','.join(map(str, st['smoothings']))}; "
          f"false-alarm resolution {resolution:.2g}/hour):")
    for line in operating_point_lines(run.points):
        print(f"    {line}")
    for h in run.held_out:
        m, e = h["measured"], h["expected"]
        kind = "per-keyword thresholds" if h["per_class"] else f"threshold {h['thresholds'][0]:g}"
        print(f"  held out ({kind}, smoothing {h['smoothing']}, chosen on {h['source']['file']} at ≤ "
              f"{h['fa_per_hour_budget']:g} false alarms/hour, where it gave {e['hit_rate']:.1%} at "
              f"{e['false_alarms_per_hour']:.1f}/h): here hits {m['hits']} ({m['hit_rate']:.1%}), false alarms "
              f"{m['false_alarms']} ({m['false_alarms_per_hour']:.1f}/hour), latency median "
              f"{_ms(m['latency_median_s'])}")
    print(f"wrote {report_path}, {det_png}, {png}")


def operating_point_lines(points: dict) -> list[str]:
    """The DET operating points in words, one line each (the CLI and the demo report say the same)."""
    def setting(p):
        return (f"threshold {p['threshold']:g}, smoothing {p['smoothing']}; latency median "
                f"{_ms(p['latency_median_s'])}, p95 {_ms(p['latency_p95_s'])}")

    lines = []
    for rate in (1, 2, 5):
        p = points.get(f"hit_rate_at_{rate}_fa_per_hour")
        lines.append(f"hit rate at ≤ {rate} false alarm{'s' if rate > 1 else ''}/hour: " + (
            f"{p['hit_rate']:.1%} ({p['false_alarms_per_hour']:.1f}/hour; {setting(p)})" if p else
            "none of the swept settings stays this low"))
    p = points.get("fa_per_hour_at_90_percent_hits")
    best = points.get("best_hit_rate")
    lines.append("false alarms/hour at ≥ 90 % hits: " + (
        f"{p['false_alarms_per_hour']:.1f} ({p['hit_rate']:.1%} hits; {setting(p)})" if p else
        "not reached" + (f" (best: {best['hit_rate']:.1%} hits at {best['false_alarms_per_hour']:.1f}/hour; "
                         f"{setting(best)})" if best else "")))
    return lines


def _check_sample_rate(args, featurizer, name: str) -> None:
    from kwsc.evaluate.runners import sample_rate_of

    if args.sample_rate and "sample_rate" in featurizer.metadata and sample_rate_of(featurizer) != args.sample_rate:
        raise InputError(f"--sample_rate {args.sample_rate}: {name} was made for {sample_rate_of(featurizer)} Hz audio "
                         "(audio of any rate is resampled to it); leave the option out or give that rate")


def _input_device(args):
    return int(args.device) if args.device and args.device.isdigit() else args.device


def cmd_listen(args) -> int:
    from kwsc.compat import check_categories, check_frames, require_classifier, require_featurizer
    from kwsc.evaluate.listen import list_devices, listen, microphone_chunks, wav_chunks
    from kwsc.evaluate.runners import open_runner, sample_rate_of

    if args.list_devices:
        print(list_devices())
        return 0
    if not args.featurizer or not args.classifier:
        raise InputError("listen: --featurizer and --classifier are required (or --list_devices)")
    from kwsc.evaluate.streaming import check_threshold

    from kwsc.ir.op_detect import MAX_SMOOTHING

    check_threshold(args.threshold, "--threshold")
    if not 1 <= args.smoothing <= MAX_SMOOTHING:
        raise InputError(f"--smoothing {args.smoothing}: the moving average takes 1 to {MAX_SMOOTHING} frames")
    featurizer = open_runner(args.featurizer, "featurizer")
    classifier = open_runner(args.classifier, "classifier")
    require_featurizer(featurizer.graph, featurizer.metadata, args.featurizer, featurizer.input_size,
                       featurizer.output_size)
    require_classifier(classifier.graph, classifier.metadata, args.classifier, classifier.input_size,
                       classifier.output_size)
    check_frames(featurizer.output_size, args.featurizer, classifier.input_size, args.classifier)
    _check_sample_rate(args, featurizer, args.featurizer)
    labels = _categories(args, None, Path("."))
    check_categories(classifier.output_size, args.classifier, labels, args.categories or "categories.txt")
    sr = sample_rate_of(featurizer)
    if args.wav:
        for wav in args.wav:
            existing_file(wav, "wav file")
        chunks = wav_chunks(args.wav, featurizer.input_size, sr, realtime=not args.fast)
        source = f"{', '.join(args.wav)} {'as fast as the models run' if args.fast else 'in real time (--fast: at once)'}"
    else:  # the device is opened here: no device is one line, before anything else is printed
        chunks = microphone_chunks(_input_device(args), featurizer.input_size, sr, args.seconds)
        source = f"the microphone at {sr} Hz" + (f" for {args.seconds:g} s" if args.seconds else "") + " (Ctrl-C stops)"
    print(f"featurizer: {featurizer.description}; classifier: {classifier.description}", file=sys.stderr)
    print(f"listening to {source}, threshold {args.threshold:g}…", file=sys.stderr, flush=True)

    def report(det):
        print(f"DETECTED {det.label} p={det.p:.2f} at t={det.t:.2f}s", flush=True)

    found = listen(featurizer, classifier, chunks, labels, args.threshold, args.smoothing, args.refractory, report)
    print(f"{len(found)} detection(s)", file=sys.stderr)
    return 0


# A voice segment longer than this probably holds more than one word (Speech Commands words are < 1 s).
_LONG_SEGMENT_S = 1.5


def cmd_vad_tune(args) -> int:
    from kwsc.audio.wav import load_audio
    from kwsc.backends.framing import frames_of
    from kwsc.compat import require_featurizer
    from kwsc.evaluate.listen import list_devices, microphone_chunks
    from kwsc.evaluate.plots import plot_vad
    from kwsc.evaluate.runners import drop_chunks, open_runner, sample_rate_of
    from kwsc.evaluate.vad_tune import run_vad

    if args.list_devices:
        print(list_devices())
        return 0
    default = " (the default; pass --featurizer)" if args.featurizer == "featurizer.ell" else ""
    featurizer = open_runner(args.featurizer, f"featurizer{default}")
    require_featurizer(featurizer.graph, featurizer.metadata, args.featurizer, featurizer.input_size,
                       featurizer.output_size)
    _check_sample_rate(args, featurizer, args.featurizer)
    sr, size, drop = sample_rate_of(featurizer), featurizer.input_size, drop_chunks(featurizer)
    wavs = [*args.wavs, *args.wav_file]
    sources = [(wav, None) for wav in wavs]
    if not wavs:
        chunks = microphone_chunks(_input_device(args), size, sr, args.seconds)
        print(f"recording {args.seconds:g} s from the microphone: say a few words, with pauses…", file=sys.stderr,
              flush=True)
        sources = [("microphone", np.concatenate(list(chunks)))]
    out = Path(args.output)
    for i, (wav, audio) in enumerate(sources):
        if audio is None:
            audio = load_audio(existing_file(wav, "wav file"), sr)
        featurizer.reset()
        features = featurizer.run(frames_of(audio, size, drop))
        trace = run_vad(features, size / sr, sr, **_vad_options(args))
        offset = drop * size / sr
        segs = [(s + offset, e + offset) for s, e in trace.segments]
        print(f"{wav}: {len(segs)} voice segment(s)")
        for s, e in segs:
            long = (f"  longer than a word: words run together when the level stays above threshold_down × the "
                    f"noise floor between them; try a higher --threshold_down (now {args.threshold_down:g})"
                    if e - s > _LONG_SEGMENT_S else "")
            print(f"  {s:7.2f}s – {e:7.2f}s  ({e - s:.2f}s){long}")
        png = out if i == 0 else out.with_name(f"{out.stem}_{i + 1}{out.suffix}")
        plot_vad(features, size / sr, trace.level, trace.signal, png, [(s - offset, e - offset) for s, e in segs],
                 title=f"VAD on {Path(wav).name}")
        print(f"  wrote {png}")
    return 0
