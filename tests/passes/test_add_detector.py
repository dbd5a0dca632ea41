"""add_detector: a keyword Detector after the classifier, thresholds given or chosen from the streaming benchmark's
curve at a requested false-alarm rate; the classifier's output is untouched; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import PassError
from kwsc.evaluate.streaming import StreamingDetector
from kwsc.ir import Graph, load, save, verify
from kwsc.passes import run_passes
from kwsc.passes.add_detector import choose_operating_point, read_curve
from tests.backends.c.conftest import recurrent_classifier
from tests.passes.test_insert_vad import SEED_LINE, speech_like

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def classifier(hidden: int = 32) -> Graph:
    return recurrent_classifier("GRU", layers=1, hidden=hidden, seed=4)


def features(steps: int = 120, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 2.0, (steps, 80)).astype(np.float32)


def add(graph: Graph, **options) -> tuple[Graph, dict]:
    result, report = run_passes(graph, ["add_detector"], {"add_detector": options})
    return result, report[0][1].changed


def test_appends_a_detector_on_softmax_posteriors_and_keeps_the_classifier_output():
    graph = classifier()
    result, changed = add(graph, threshold=0.12, smoothing=3)
    assert changed == {"detector_added": 1, "detector_updated": 0, "softmax_added": 1, "labels_set": 0}
    detector = result.find("Detector")[0]
    softmax = detector.inputs[0].producer
    assert softmax.op == "Softmax" and softmax.inputs[0] is result.find("LogSoftmax")[0].inputs[0]
    assert detector.attrs == {"smoothing": 3, "thresholds": [0.12], "suppression": 31, "ignore": [0, 1]}
    assert [n.attrs["name"] for n in result.output_nodes] == ["output", "detection"]
    frames = features()
    out = Interpreter(result).run(frames)
    np.testing.assert_array_equal(out["output"], Interpreter(graph).run(frames))
    # the model's detections are the StreamingDetector's (the op's reference) on the same posteriors
    probe = result.copy()
    probe.add_output(probe.find("Detector")[0].inputs[0], "probs")
    probs = Interpreter(verify(probe)).run(frames)["probs"]
    wrapper = StreamingDetector(LABELS, 0.032, 0.12, 3, 1.0)
    fired = [(t, int(k)) for t, (k, _) in enumerate(out["detection"]) if k >= 0]
    assert len(fired) >= 2, "the random classifier should fire at 0.12"
    assert [(round(d.t / 0.032) - 1, LABELS.index(d.label)) for d in
            (wrapper.push(p) for p in probs) if d is not None] == fired


def test_softmax_output_is_used_as_it_is_and_logits_get_one():
    graph = classifier()
    log_softmax = graph.find("LogSoftmax")[0]
    log_softmax.op = "Softmax"  # same attributes
    _, changed = add(verify(graph), threshold=0.5)
    assert changed["softmax_added"] == 0
    logits = classifier()
    out = logits.output_nodes[0]
    dense = logits.find("Dense")[0].outputs[0]
    logits.remove_node(out)
    logits.remove_node(logits.find("LogSoftmax")[0])
    logits.add_output(dense)
    result, changed = add(verify(logits), threshold=0.5)
    assert changed["softmax_added"] == 1 and result.find("Detector")[0].inputs[0].producer.op == "Softmax"


def test_per_class_thresholds_ignore_and_retuning():
    result, _ = add(classifier(), thresholds="yes=0.7,no=0.9", threshold=0.6, ignore="_silence_,go", smoothing=2)
    a = result.find("Detector")[0].attrs
    assert a["thresholds"] == pytest.approx([0.6, 0.6, 0.7, 0.9] + [0.6] * 8) and a["ignore"] == [0, 11]
    again, changed = add(result, threshold=0.4, refractory=0.5)
    assert changed["detector_updated"] == 1 and changed["detector_added"] == 0
    assert len(again.find("Detector")) == 1 and len(again.output_nodes) == 2
    b = again.find("Detector")[0].attrs
    assert b["thresholds"] == [0.4] and b["smoothing"] == 2 and b["suppression"] == 15 and b["ignore"] == [0, 1]


@pytest.mark.parametrize("options,message", [
    ({"thresholds": "maybe=0.5"}, "'maybe' is not a class"),
    ({"thresholds": "0.5,0.5"}, "gives 2 numbers for 12 classes"),
    ({"threshold": 0.5, "ignore": "12"}, "class 12 is not in 0..11"),
    ({"threshold": 0.5, "ignore": ",".join(LABELS)}, "every one of the 12 classes is ignored"),
    ({}, "give --threshold T"),
    ({"threshold": 1.0}, "--threshold 1.0 is outside (0, 1)"),
    ({"threshold": -0.2}, "--threshold -0.2 is outside (0, 1)"),
    ({"thresholds": "yes=1.5"}, "outside (0, 1)"),
    ({"curve": "x.json"}, "--curve and --fa_per_hour go together"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(PassError) as info:
        add(classifier(), **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_model_without_labels_needs_categories_or_an_explicit_ignore():
    """Without labels the background classes cannot be found; ignoring nothing silently would let _silence_ and
    _unknown_ fire on the device, so the pass asks (one line) unless --ignore says what to do."""
    graph = classifier()
    for key in ("labels", "categories"):
        graph.metadata.pop(key, None)
    with pytest.raises(PassError, match=r"have no labels.*--categories.*--ignore none") as info:
        add(graph, threshold=0.5)
    assert "\n" not in str(info.value)
    assert add(graph, threshold=0.5, ignore="none")[0].find("Detector")[0].attrs["ignore"] == []
    assert add(graph, threshold=0.5, ignore="0,1")[0].find("Detector")[0].attrs["ignore"] == [0, 1]


def curve_file(tmp_path, points, key="curve"):
    path = tmp_path / "stream.json"
    path.write_text(json.dumps({"hit_rate_at_1_fa_per_hour": 0.5, key: points}))
    return path


POINTS = [{"threshold": 0.5, "smoothing": 3, "fa_per_hour": 8.0, "hit_rate": 0.9},
          {"threshold": 0.7, "smoothing": 3, "fa_per_hour": 1.9, "hit_rate": 0.8},
          {"threshold": 0.8, "smoothing": 3, "fa_per_hour": 1.0, "hit_rate": 0.8},
          {"threshold": 0.6, "smoothing": 1, "fa_per_hour": 1.5, "hit_rate": 0.85},
          {"threshold": 0.95, "smoothing": 1, "fa_per_hour": 0.2, "hit_rate": 0.3}]


def test_threshold_from_the_curve_at_a_false_alarm_rate(tmp_path):
    path = curve_file(tmp_path, POINTS)
    result, _ = add(classifier(), curve=str(path), fa_per_hour=2.0)
    detector = result.find("Detector")[0]
    assert detector.attrs["thresholds"] == [0.6] and detector.attrs["smoothing"] == 1
    assert detector.metadata["detector_fa_per_hour"] == "1.5" and detector.metadata["detector_hit_rate"] == "0.85"
    # among the smoothing-3 points: best hit rate 0.8 at ≤ 2/h, the tie goes to the higher threshold
    result, _ = add(classifier(), curve=str(path), fa_per_hour=2.0, smoothing=3)
    assert result.find("Detector")[0].attrs["thresholds"] == [0.8]
    assert choose_operating_point(read_curve(path), 100.0)["threshold"] == 0.5
    with pytest.raises(PassError, match="no point of .* reaches 0.1 false alarms per hour \\(the lowest is 0.2/h\\)"):
        add(classifier(), curve=str(path), fa_per_hour=0.1)
    # the refractory time the benchmark swept with (its "scoring" record) comes with the threshold
    scored = tmp_path / "scored.json"
    scored.write_text(json.dumps({"scoring": {"refractory_s": 0.5}, "curve": POINTS}))
    result, _ = add(classifier(), curve=str(scored), fa_per_hour=2.0)
    assert result.find("Detector")[0].attrs["suppression"] == 15
    # percentages and a nested "det" object are read too
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"det": {"points": [{"threshold": 0.7, "false_alarms_per_hour": 1, "hit_rate": 64}]}}))
    assert read_curve(nested) == [{"threshold": 0.7, "fa_per_hour": 1.0, "hit_rate": 0.64}]


@pytest.mark.parametrize("content,message", [
    (None, "cannot read the curve"), ("{", "is not JSON"), ('{"curve": []}', "has no operating points"),
    ('{"curve": [{"threshold": 0.5}]}', "curve point 0 lacks threshold, fa_per_hour or hit_rate")])
def test_bad_curve_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PassError, match=message):
        add(classifier(), curve=str(path), fa_per_hour=1.0)


def test_a_vad_reset_does_not_clear_the_detector():
    """NOTE [Detector and resets]: the VAD zeroes the GRU when it falls; the detector's window and hold go on."""
    graph, _ = run_passes(classifier(), ["add_vad", "add_detector"],
                          {"add_vad": SEED_LINE,
                           "add_detector": {"threshold": 0.05, "smoothing": 4}})
    interp = Interpreter(graph)
    frames = speech_like(80)
    vad = graph.find("VAD")[0]
    signal, rings = [], []
    for frame in frames:
        interp.step(frame)
        signal.append(int(interp.state[vad.name]["signal"]))
        rings.append(interp.state["detector"]["ring"].copy())
    falls = [t for t in range(1, len(signal)) if signal[t - 1] == 1 and signal[t] == 0]
    assert falls
    for t in falls:
        assert np.abs(rings[t]).sum() > 0 and int(interp.state["detector"]["filled"]) == 4


# ------------------------------------------------------------------------------------------------ command line
def kwsc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli_add_detector_and_transform(tmp_path):
    model = tmp_path / "m.kwsc"
    save(classifier(), model)
    run = kwsc("add-detector", model, "--threshold", "0.75", "--smoothing", "3", "--refractory", "0.5")
    assert run.returncode == 0, run.stderr
    assert "detector: threshold 0.75, smoothing 3 frames, suppression 15 ticks (0.5 s), ignoring _silence_, " \
           "_unknown_" in run.stdout
    assert load(model).find("Detector")[0].attrs["thresholds"] == [0.75]  # edited in place
    out = tmp_path / "t.kwsc"
    run = kwsc("transform", tmp_path / "m.kwsc", "--passes", "add_detector", "--threshold", "0.6", "-o", out)
    assert run.returncode == 0 and "add_detector: detector_updated=1" in run.stdout, run.stderr
    path = curve_file(tmp_path, POINTS)
    run = kwsc("add-detector", model, "--curve", path, "--fa-per-hour", "1", "-o", tmp_path / "c.kwsc")
    assert run.returncode == 0 and "threshold 0.8 (from" in run.stdout and "hit rate 80.0%" in run.stdout


@pytest.mark.parametrize("args", [["--threshold", "1.5"], ["--threshold", "0"], ["--thresholds", "yes=2"]])
def test_cli_threshold_outside_the_unit_interval_is_one_line_exit_2(tmp_path, args):
    model = tmp_path / "m.kwsc"
    save(classifier(), model)
    before = model.read_bytes()
    for command in (["add-detector", model, "-o", tmp_path / "o.kwsc"],
                    ["transform", model, "--passes", "add_detector", "-o", tmp_path / "o.kwsc"]):
        run = kwsc(*command, *args)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert "outside (0, 1)" in run.stderr
    assert model.read_bytes() == before and not (tmp_path / "o.kwsc").exists()


def test_ell_output_refuses_a_model_with_a_detector(tmp_path):
    model = tmp_path / "m.kwsc"
    graph, _ = add(classifier(), threshold=0.5)
    save(graph, model)
    run = kwsc("emit", model, "-o", tmp_path / "m.ell")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "ELL has no detector node" in run.stderr and not (tmp_path / "m.ell").exists()


def test_per_keyword_thresholds_from_the_curves_counts(tmp_path):
    """--per_class: one threshold per keyword, the most hits of all keywords within the false-alarm budget on the
    curve's stream (an hour here: 2/h = 2 false alarms), from the benchmark JSON's per-keyword counts."""
    categories = tmp_path / "categories.txt"
    categories.write_text("\n".join(LABELS) + "\n")
    counts = {0.5: {"yes": [9, 3], "no": [8, 1], "up": [7, 2]}, 0.8: {"yes": [8, 1], "no": [6, 0], "up": [3, 1]},
              0.95: {"yes": [4, 0], "no": [3, 0], "up": [2, 0]}}
    curve = [{"threshold": t, "smoothing": 3, "hits": sum(c[0] for c in per.values()),
              "false_alarms": sum(c[1] for c in per.values()), "false_alarms_per_hour": 0.0, "hit_rate": 0.0,
              "per_label": per} for t, per in counts.items()]
    path = tmp_path / "val_stream.json"
    path.write_text(json.dumps({"kind": "kwsc streaming benchmark", "scoring": {"refractory_s": 1.0}, "curve": curve,
                                "at_threshold": {"duration_s": 3600.0, "keywords": 40}}))
    result, _ = add(classifier(), curve=str(path), fa_per_hour=2.0, per_class=True, categories=str(categories))
    detector = result.find("Detector")[0]
    thresholds = dict(zip(LABELS, detector.attrs["thresholds"]))
    # yes 0.8 (8, 1) + no 0.5 (8, 1) + up 0.95 (2, 0) = 18 hits, 2 false alarms: the best within 2
    assert [thresholds[w] for w in ("yes", "no", "up")] == [0.8, 0.5, 0.95]
    assert thresholds["down"] == 0.95  # no counts at all: never fires, the highest threshold keeps it quiet
    assert detector.attrs["smoothing"] == 3 and detector.attrs["suppression"] == 31
    assert detector.metadata["detector_hit_rate"] == "0.45" and detector.metadata["detector_fa_per_hour"] == "2"
    with pytest.raises(PassError, match="--per_class chooses per-keyword thresholds from a curve"):
        add(classifier(), per_class=True, threshold=0.5)
    path.write_text(json.dumps({"curve": POINTS}))
    with pytest.raises(PassError, match="has no per-keyword counts"):
        add(classifier(), curve=str(path), fa_per_hour=2.0, per_class=True, categories=str(categories))
