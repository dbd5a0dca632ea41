"""``add_detector``: a keyword Detector after the classifier, so the model itself reports "keyword k, score s".

The thresholds are given (one for every keyword, or per class), or chosen from the streaming benchmark's curve at a
requested false-alarm rate. The curve is the JSON ``kwsc test --stream-minutes`` writes; this pass reads from it
only a list of operating points::

    {"curve": [{"threshold": 0.8, "smoothing": 3, "fa_per_hour": 1.2, "hit_rate": 0.71}, ...]}

(``points`` or a ``det`` object holding ``curve``/``points`` are read too; ``smoothing`` and ``refractory_s`` per
point are optional, a top-level ``scoring.refractory_s`` applies to every point; ``hit_rate`` may be a fraction or a
percentage, ``false_alarms_per_hour`` names FA/h too). The chosen point's smoothing and refractory time go into the
Detector with its threshold, since the false-alarm rate was measured with them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.metadata import FeaturizerRecord
from kwsc.ir.op_detect import BACKGROUND_LABELS, MAX_SMOOTHING, suppression_frames
from kwsc.passes.manager import PassResult, register_pass

__all__ = ["DetectorOptions", "add_detector", "choose_operating_point", "read_curve", "read_curve_document",
           "per_keyword_thresholds", "BACKGROUND_LABELS", "DETECTION_OUTPUT"]

DETECTION_OUTPUT = "detection"
_DEFAULT_RATE, _DEFAULT_HOP = 16000.0, 512  # ELL's tutorial: 32 ms per tick


def _in_unit_interval(value: float, what: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{what} {value!r} is outside (0, 1)")


@dataclass(frozen=True)
class DetectorOptions:
    """Options of ``add_detector``.

    Attributes:
        threshold: one threshold for every keyword: the smoothed posterior must exceed it, in (0, 1).
        thresholds: per class, ``yes=0.7,no=0.9`` (labels; classes not named get --threshold, else 0.8) or one
            number per class in output order.
        curve: the streaming benchmark's JSON (kwsc test --stream-minutes): the threshold (and smoothing) of the
            best hit rate at no more than --fa_per_hour false alarms per hour.
        fa_per_hour: the false-alarm rate to pick from --curve.
        per_class: with --curve: one threshold per keyword, the most hits of all keywords together within the
            false-alarm budget on the curve's stream (from its per-keyword counts).
        smoothing: frames in the moving average of the posteriors (default: the curve point's, else 1).
        refractory: seconds after a detection during which no detection fires (default 1.0; suppression in ticks
            from the model's tick duration).
        ignore: classes that never fire, labels or indices, comma separated (default: _silence_, _unknown_ and
            the other background labels in the model's labels; ``none`` for no class).
        categories: a categories file (one label per line) naming the classes; stored as the model's labels.
        sample_rate: audio sample rate (Hz) for the tick duration; default the model's own, else 16000.
        window_size: audio samples per tick; default the model's own (``input_size``), else 512.
    """

    threshold: float | None = None
    thresholds: str | None = None
    curve: str | None = None
    fa_per_hour: float | None = None
    per_class: bool = False
    smoothing: int | None = None
    refractory: float = 1.0
    ignore: str | None = None
    categories: str | None = None
    sample_rate: float | None = None
    window_size: int | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None:
            _in_unit_interval(self.threshold, "--threshold")
        if self.thresholds is not None:
            for item in self.thresholds.split(","):
                text = item.partition("=")[2] if "=" in item else item
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"--thresholds item {item.strip()!r} is not LABEL=NUMBER or NUMBER") from None
                _in_unit_interval(value, f"--thresholds {item.strip()}:")
        if (self.curve is None) != (self.fa_per_hour is None):
            raise ValueError("--curve and --fa_per_hour go together (the curve's threshold at that false-alarm rate)")
        if self.per_class and self.curve is None:
            raise ValueError("--per_class chooses per-keyword thresholds from a curve: give --curve and --fa_per_hour")
        if self.curve is not None and (self.threshold is not None or self.thresholds is not None):
            raise ValueError("give thresholds (--threshold/--thresholds) or --curve with --fa_per_hour, not both")
        if self.fa_per_hour is not None and not (math.isfinite(self.fa_per_hour) and self.fa_per_hour >= 0):
            raise ValueError(f"--fa_per_hour {self.fa_per_hour!r} must be a finite number >= 0")
        if self.smoothing is not None and not 1 <= self.smoothing <= MAX_SMOOTHING:
            raise ValueError(f"--smoothing {self.smoothing} is not in 1..{MAX_SMOOTHING} frames")
        if not (math.isfinite(self.refractory) and self.refractory >= 0):
            raise ValueError(f"--refractory {self.refractory!r} must be a finite number of seconds >= 0")
        for name in ("sample_rate", "window_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name} {value} must be > 0")


# ------------------------------------------------------------------------------------------------ the curve
def _number(point: dict, *keys: str) -> float | None:
    for key in keys:
        if isinstance(point.get(key), (int, float)) and not isinstance(point.get(key), bool):
            return float(point[key])
    return None


def _load_json(p: Path) -> Any:
    """A curve file's JSON; PassError (one line) when it cannot be read or parsed."""
    try:
        return json.loads(p.read_text())
    except OSError as exc:
        raise PassError(f"add_detector: cannot read the curve {p}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PassError(f"add_detector: {p} is not JSON: {exc}") from None


def read_curve(path: str | Path) -> list[dict[str, float]]:
    """The operating points of a streaming-benchmark JSON: ``threshold``, ``fa_per_hour``, ``hit_rate`` (a
    fraction) and, when present, ``smoothing`` and ``refractory_s``. PassError (one line) on anything else."""
    p = Path(path)
    doc = _load_json(p)
    points: Any = None
    for holder in (doc, doc.get("det") if isinstance(doc, dict) else None,
                   doc.get("stream") if isinstance(doc, dict) else None):
        if isinstance(holder, dict):
            points = holder.get("curve", holder.get("points"))
            if isinstance(points, dict):
                points = points.get("points", points.get("curve"))
            if points is not None:
                break
    if not isinstance(points, list) or not points:
        raise PassError(f"add_detector: {p} has no operating points (expected {{\"curve\": [{{\"threshold\": …, "
                        f"\"fa_per_hour\": …, \"hit_rate\": …}}, …]}})")
    scoring = doc.get("scoring") if isinstance(doc, dict) else None
    measured_refractory = _number(scoring, "refractory_s") if isinstance(scoring, dict) else None
    out = []
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            raise PassError(f"add_detector: {p}: curve point {i} is not an object")
        threshold = _number(point, "threshold")
        fa = _number(point, "fa_per_hour", "false_alarms_per_hour")
        hit = _number(point, "hit_rate", "hits_rate", "recall")
        if threshold is None or fa is None or hit is None:
            raise PassError(f"add_detector: {p}: curve point {i} lacks threshold, fa_per_hour or hit_rate: "
                            f"{json.dumps(point)[:120]}")
        row = {"threshold": threshold, "fa_per_hour": fa, "hit_rate": hit / 100.0 if hit > 1.0 else hit}
        for key in ("smoothing", "refractory_s"):
            if _number(point, key) is not None:
                row[key] = _number(point, key)
        if "refractory_s" not in row and measured_refractory is not None:
            row["refractory_s"] = measured_refractory  # the curve holds only with the refractory it was swept with
        out.append(row)
    return out


def choose_operating_point(points: list[dict[str, float]], fa_per_hour: float, smoothing: int | None = None,
                           where: str = "the curve") -> dict[str, float]:
    """The point with the best hit rate at no more than ``fa_per_hour`` (ties: the higher threshold), among the
    points with this smoothing when one is given; PassError naming the lowest rate on offer when none qualifies."""
    pool = [p for p in points if smoothing is None or int(p.get("smoothing", smoothing)) == smoothing]
    if not pool:
        have = sorted({int(p["smoothing"]) for p in points if "smoothing" in p})
        raise PassError(f"add_detector: {where} has no point with smoothing {smoothing} (it has {have})")
    usable = [p for p in pool if p["fa_per_hour"] <= fa_per_hour and 0.0 < p["threshold"] < 1.0]
    if not usable:
        lowest = min(p["fa_per_hour"] for p in pool)
        raise PassError(f"add_detector: no point of {where} reaches {fa_per_hour:g} false alarms per hour "
                        f"(the lowest is {lowest:g}/h)")
    return max(usable, key=lambda p: (p["hit_rate"], p["threshold"]))


def per_keyword_thresholds(points: list[dict], keywords: list[str], budget: int):
    """One threshold per keyword from one smoothing's curve points (each with ``threshold`` and ``per_label`` =
    {label: [hits, false alarms]} at that threshold): the combination with the most hits of all keywords together
    and at most ``budget`` false alarms in all (ties: fewer false alarms, then higher thresholds) — an exact
    multiple-choice knapsack over the false-alarm count. Returns (hits, false alarms, {label: threshold}), or None
    when no combination fits. The counts are the single-threshold sweep's, so with other keywords at other
    thresholds (the suppression after a detection) the real detector's counts may differ a little."""
    ordered = sorted(points, key=lambda p: -float(p["threshold"]))  # high thresholds first: ties keep them
    dp: dict[int, tuple[int, list[float]]] = {0: (0, [])}
    for label in keywords:
        options = [(float(p["threshold"]), *(int(v) for v in p["per_label"].get(label, (0, 0)))) for p in ordered]
        nxt: dict[int, tuple[int, list[float]]] = {}
        for fa, (hits, chosen) in dp.items():
            for threshold, h, f in options:
                total = fa + f
                if total <= budget and (total not in nxt or hits + h > nxt[total][0]):
                    nxt[total] = (hits + h, chosen + [threshold])
        dp = nxt
        if not dp:
            return None
    fa, (hits, chosen) = max(dp.items(), key=lambda kv: (kv[1][0], -kv[0]))
    return hits, fa, dict(zip(keywords, chosen))


def read_curve_document(path: str | Path) -> dict:
    """The whole streaming-benchmark JSON (for per-keyword counts); PassError (one line) when unreadable."""
    doc = _load_json(Path(path))
    return doc if isinstance(doc, dict) else {}


def _per_class_point(options: "DetectorOptions", labels: list[str] | None, classes: int,
                     smoothing: int | None) -> dict:
    """--per_class: the per-keyword thresholds with the most hits within --fa_per_hour on the curve's stream."""
    where = str(options.curve)
    if labels is None:
        raise PassError("add_detector: --per_class needs the model's labels to read the curve's per-keyword counts "
                        "(give --categories)")
    doc = read_curve_document(options.curve)
    curve, at = doc.get("curve"), doc.get("at_threshold")
    if not isinstance(curve, list) or not curve or not isinstance(at, dict) or not all(
            isinstance(p, dict) and isinstance(p.get("per_label"), dict) for p in curve):
        raise PassError(f"add_detector: {where} has no per-keyword counts (`kwsc test --stream-minutes` writes them "
                        "in its _stream.json); --per_class needs them")
    try:
        hours = float(at["duration_s"]) / 3600.0
        budget = int(math.floor(float(options.fa_per_hour) * hours + 1e-9))
        keywords = [lab for i, lab in enumerate(labels) if i not in _ignore(options, labels, classes)]
        top = max(float(p["threshold"]) for p in curve)
        best = None
        for s in sorted({int(p.get("smoothing", 1)) for p in curve}):
            if smoothing is not None and s != smoothing:
                continue
            found = per_keyword_thresholds([p for p in curve if int(p.get("smoothing", 1)) == s], keywords, budget)
            if found is not None and (best is None or (found[0], -found[1]) > (best[0], -best[1])):
                best = (*found, s)
    except (KeyError, TypeError, ValueError) as exc:
        raise PassError(f"add_detector: {where}: malformed curve ({exc})") from None
    if best is None:
        raise PassError(f"add_detector: no per-keyword thresholds of {where} stay within {options.fa_per_hour:g} "
                        "false alarms per hour")
    hits, fa, chosen, s = best
    keywords_in_stream = int(at.get("keywords") or 0)
    refractory = _number(doc.get("scoring") or {}, "refractory_s")
    return {"thresholds": [chosen.get(lab, top) for lab in labels], "smoothing": s,
            "fa_per_hour": fa / hours if hours else 0.0,
            "hit_rate": hits / keywords_in_stream if keywords_in_stream else 0.0,
            **({"refractory_s": refractory} if refractory is not None else {})}


# ------------------------------------------------------------------------------------------------ the pass
def _labels(graph: Graph, options: DetectorOptions, classes: int) -> list[str] | None:
    if options.categories is not None:
        path = Path(options.categories)
        try:
            labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise PassError(f"add_detector: cannot read categories {path}: {exc.strerror or exc}") from None
        if len(labels) != classes:
            raise PassError(f"add_detector: {path} names {len(labels)} categories but the classifier has "
                            f"{classes} outputs")
        return labels
    meta = graph.metadata.get("labels", graph.metadata.get("categories"))
    if isinstance(meta, str):
        meta = [s.strip() for s in meta.replace("\n", ",").split(",") if s.strip()]
    if isinstance(meta, (list, tuple)) and len(meta) == classes:
        return [str(s) for s in meta]
    return None


def _class_index(text: str, labels: list[str] | None, classes: int, what: str) -> int:
    text = text.strip()
    if labels is not None and text in labels:
        return labels.index(text)
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < classes:
            return index
        raise PassError(f"add_detector: {what} class {index} is not in 0..{classes - 1}")
    known = f"labels: {', '.join(labels)}" if labels else "the model has no labels (give --categories)"
    raise PassError(f"add_detector: {what} {text!r} is not a class ({known})")


def _thresholds(options: DetectorOptions, labels: list[str] | None, classes: int,
                point: dict | None) -> list[float]:
    if point is not None:
        return [float(t) for t in point["thresholds"]] if "thresholds" in point else [float(point["threshold"])]
    if options.thresholds is None:
        if options.threshold is None:
            raise PassError("add_detector: give --threshold T, --thresholds LABEL=T,…, or --curve FILE with "
                            "--fa_per_hour N")
        return [float(options.threshold)]
    items = [s for s in options.thresholds.split(",") if s.strip()]
    if all("=" not in s for s in items):
        if len(items) != classes:
            raise PassError(f"add_detector: --thresholds gives {len(items)} numbers for {classes} classes")
        return [float(s) for s in items]
    out = [float(options.threshold if options.threshold is not None else 0.8)] * classes
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise PassError(f"add_detector: --thresholds mixes LABEL=T and plain numbers ({item.strip()!r})")
        out[_class_index(name, labels, classes, "--thresholds")] = float(value)
    return out


def _ignore(options: DetectorOptions, labels: list[str] | None, classes: int) -> list[int]:
    if options.ignore is None:
        if labels is None:  # silently ignoring nothing would let _silence_/_unknown_ fire on the device
            raise PassError(f"add_detector: the model's {classes} classes have no labels, so its background classes "
                            "(_silence_, _unknown_) are unknown: give --categories categories.txt, or --ignore "
                            "LABELS|INDICES, or --ignore none to let every class fire")
        return [i for i, lab in enumerate(labels) if lab in BACKGROUND_LABELS]
    if options.ignore.strip().lower() == "none":
        return []
    return sorted({_class_index(s, labels, classes, "--ignore") for s in options.ignore.split(",") if s.strip()})


def _posteriors(graph: Graph, scores: Value) -> tuple[Value, int]:
    """Probabilities from the classifier's output: a Softmax as it is, the Softmax of a LogSoftmax's input, else
    a Softmax of the scores (logits). Returns (value, softmax nodes added)."""
    producer = scores.producer
    if producer.op == "Softmax":
        return scores, 0
    if producer.op == "LogSoftmax":
        node = graph.add("Softmax", [producer.inputs[0]], {"axis": producer.attrs["axis"]},
                         name="detector_softmax", after=producer)
        return node.outputs[0], 1
    node = graph.add("Softmax", [scores], {"axis": -1}, name="detector_softmax", after=producer)
    return node.outputs[0], 1


def _existing(graph: Graph) -> Node | None:
    found = graph.find("Detector")
    if len(found) > 1:
        raise PassError(f"add_detector: graph {graph.name!r} has {len(found)} Detector nodes; expected at most one")
    return found[0] if found else None


@register_pass("add_detector", DetectorOptions)
def add_detector(graph: Graph, options: DetectorOptions) -> PassResult:
    """A keyword Detector on the classifier's posteriors, as a second graph output ``detection`` = [k or -1, s].

    Rules:
        1. The classifier output is the graph's first output; its posteriors are that output when a Softmax makes
           it, the Softmax of a LogSoftmax's input (added beside it), else a Softmax added after it (logits).
        2. Thresholds: --threshold for every class, --thresholds per class, or the curve point with the best hit
           rate at no more than --fa_per_hour (its smoothing too, unless --smoothing picks among the points).
        3. Ignored classes: --ignore, else the model's background labels (_silence_, _unknown_, …).
        4. Suppression: ceil(refractory / tick) − 1 ticks, the tick from --sample_rate/--window_size, else the
           model's featurizer record, else 512 samples at 16 kHz.
        5. A model that already has a Detector keeps it and gets the new attributes (re-tuning); the classifier
           output stays the first output, unchanged.
    The chosen attributes and, from a curve, the operating point are recorded in the Detector node's metadata.
    """
    if not graph.output_nodes:
        raise PassError(f"add_detector: graph {graph.name!r} has no output")
    existing = _existing(graph)
    scores = graph.output_nodes[0].inputs[0]
    if existing is not None and graph.output_nodes[0].inputs[0] is existing.outputs[0]:
        raise PassError("add_detector: the model's first output is its Detector; the classifier output must come "
                        "first")
    if scores.dtype != "float32":
        raise PassError(f"add_detector: the classifier output is {scores.dtype}; a Detector reads float32 scores")
    classes = scores.type.size
    labels = _labels(graph, options, classes)
    point = None
    # re-tuning keeps the existing detector's smoothing unless a new one is asked for
    smoothing = options.smoothing or (existing.attrs["smoothing"] if existing is not None and options.curve is None
                                      else None)
    if options.curve is not None and options.per_class:
        point = _per_class_point(options, labels, classes, smoothing)
        smoothing = int(point["smoothing"])
    elif options.curve is not None:
        point = choose_operating_point(read_curve(options.curve), float(options.fa_per_hour), smoothing,
                                       where=str(options.curve))
        smoothing = int(point.get("smoothing", smoothing or 1))
    refractory = float(point["refractory_s"]) if point is not None and "refractory_s" in point else options.refractory
    record = FeaturizerRecord.from_metadata(graph.metadata)
    rate = float(options.sample_rate or record.sample_rate or _DEFAULT_RATE)
    hop = int(options.window_size or record.input_size or _DEFAULT_HOP)
    attrs = {"smoothing": int(smoothing or 1), "thresholds": _thresholds(options, labels, classes, point),
             "suppression": suppression_frames(refractory, hop / rate), "ignore": _ignore(options, labels, classes)}
    if len(attrs["ignore"]) >= classes:
        raise PassError(f"add_detector: every one of the {classes} classes is ignored; nothing could fire")
    metadata = {"detector_refractory_s": f"{refractory:g}", "detector_tick_s": f"{hop / rate:g}"}
    if point is not None:
        metadata.update({"detector_curve": str(options.curve), "detector_fa_per_hour": f"{point['fa_per_hour']:g}",
                         "detector_hit_rate": f"{point['hit_rate']:g}",
                         "detector_requested_fa_per_hour": f"{options.fa_per_hour:g}"})
    counts = {"detector_added": 0, "detector_updated": 0, "softmax_added": 0, "labels_set": 0}
    if labels is not None and options.categories is not None:
        graph.metadata["labels"] = labels
        counts["labels_set"] = 1
    if existing is not None:
        existing.attrs = existing.opdef.complete_attrs(attrs, existing.name)
        existing.metadata.clear()
        existing.metadata.update(metadata)
        counts["detector_updated"] = 1
        return PassResult(counts)
    probs, counts["softmax_added"] = _posteriors(graph, scores)
    detector = graph.add("Detector", [probs], attrs, name="detector", metadata=metadata)
    graph.add_output(detector.outputs[0], DETECTION_OUTPUT)
    counts["detector_added"] = 1
    graph.toposort()
    return PassResult(counts)
