"""`kwsc test`: the file order (shuffled with the seed unless --order list), the streaming benchmark's JSON and
pictures, and its bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from kwsc.cli import main
from kwsc.evaluate.keyword_test import order_items
from kwsc.evaluate.streaming import SMOOTHINGS, THRESHOLDS
from kwsc.frontends.featurizer import make_featurizer
from kwsc.ir import save
from tests._graphs import gru_vad_graph

TUTORIAL = dict(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True, auto_scale=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, speech_dir):
    from kwsc.passes import run_passes

    path = tmp_path_factory.mktemp("bench")
    save(make_featurizer(**TUTORIAL), path / "featurizer.kwsc")
    graph, _ = run_passes(gru_vad_graph(features=80, classes=3), ["reset_triggers", "dce"],
                          {"reset_triggers": {"source": "none"}})
    save(graph, path / "classifier.kwsc")
    words = {w: sorted((speech_dir / w).glob("*.wav")) for w in ("yes", "no", "_unknown_", "_silence_")}
    entries = [f"{w}/{p.name}" for w in ("yes", "no") for p in words[w][:4]]  # sorted by word, as the dataset's
    (path / "list.txt").write_text("\n".join(entries) + "\n")
    mixed = entries + [f"{w}/{p.name}" for w in ("_unknown_", "_silence_") for p in words[w][:2]]
    (path / "mixed.txt").write_text("\n".join(mixed) + "\n")
    background = [f"{w}/{p.name}" for w in ("_unknown_", "_silence_") for p in words[w][:3]]
    (path / "background.txt").write_text("\n".join(background) + "\n")
    (path / "categories.txt").write_text("_silence_\nno\nyes\n")
    return path


def _test(folder, out, *extra, list_file="list.txt"):
    from tests.conftest import SPEECH

    return main(["test", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier",
                 str(folder / "classifier.kwsc"), "--list_file", str(folder / list_file), "--wav_files", str(SPEECH),
                 "--categories", str(folder / "categories.txt"), "-o", str(out), *extra])


def test_order_items_shuffles_reproducibly_and_keeps_the_list_on_request():
    items = list(range(30))
    shuffled = order_items(items, "shuffled", seed=4)
    assert shuffled != items and sorted(shuffled) == items
    assert order_items(items, "shuffled", seed=4) == shuffled
    assert order_items(items, "shuffled", seed=5) != shuffled
    assert order_items(items, "list", seed=4) == items


def test_files_are_tested_shuffled_by_seed_and_results_say_so(folder, tmp_path, capsys):
    listed = (folder / "list.txt").read_text().split()
    orders = {}
    for name, extra in (("a", ["--seed", "1"]), ("b", ["--seed", "1"]), ("list", ["--seed", "1", "--order", "list"])):
        modes = "reset,stream" if name == "a" else "stream"
        assert _test(folder, tmp_path / f"{name}.json", "--modes", modes, *extra) == 0
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        for mode in modes.split(","):
            assert [f["path"] for f in doc["modes"][mode]["files"]] == [f["path"] for f in doc["modes"]["stream"]["files"]]
            assert doc["modes"][mode]["settings"]["order"] == ("list" if name == "list" else "shuffled")
        orders[name] = [f["path"] for f in doc["modes"]["stream"]["files"]]
        assert doc["order"] == {"order": "list" if name == "list" else "shuffled", "seed": int(extra[1])}
    assert orders["list"] == listed
    assert orders["a"] == orders["b"] != listed and sorted(orders["a"]) == sorted(listed)
    # the permutation is order_items' (whose seeds differ: tested above)
    assert orders["a"] == order_items(listed, "shuffled", 1)
    assert "order: shuffled with --seed 1" in capsys.readouterr().err


def test_bad_stream_inputs_are_one_line_and_write_nothing(folder, tmp_path, capsys):
    out = tmp_path / "results.json"
    cases = [
        (["--stream-minutes", "1"], "background.txt",
         f"--stream-minutes: {folder / 'background.txt'} has no keywords (only _silence_, _unknown_); the streaming "
         "benchmark counts detected keywords"),
        (["--stream-minutes", "5"], "list.txt",
         f"--stream-minutes 5 with {folder / 'list.txt'}: stream: 8 clips fill only "),
        (["--stream-minutes", "1", "--stream_threshold", "0"], "list.txt",
         "--stream_threshold 0: a detection threshold must lie strictly between 0 and 1"),
        (["--stream-minutes", "1", "--stream_threshold", "1"], "list.txt",
         "--stream_threshold 1: a detection threshold must lie strictly between 0 and 1"),
        (["--stream_threshold", "1.5"], "list.txt",
         "--stream_threshold 1.5: a detection threshold must lie strictly between 0 and 1"),
        (["--stream-minutes", "-1"], "list.txt", "--stream-minutes -1: give a positive number of minutes"),
        (["--stream-minutes", "1", "--sweep_smoothing", "0,3"], "list.txt", "--sweep_smoothing '0,3': give frame"),
        (["--stream-minutes", "1", "--smoothing", "2000"], "list.txt", "--smoothing 2000: the moving average takes 1"),
        (["--stream-minutes", "1", "--stream_snr", "loud"], "list.txt", "--stream_snr 'loud': give dB values"),
    ]
    for extra, list_file, said in cases:
        assert _test(folder, out, *extra, list_file=list_file) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"kwsc: error: {said}"), (extra, err)
        assert not any(line.startswith("kwsc: error") for line in err[:-1])
        assert not out.exists()
    assert main(["listen", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier",
                 str(folder / "classifier.kwsc"), "--wav", str(folder / "list.txt"), "--threshold", "1.2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "kwsc: error: --threshold 1.2: a detection threshold must lie strictly between 0 and 1")
    assert main(["listen", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier",
                 str(folder / "classifier.kwsc"), "--wav", str(folder / "list.txt"), "--smoothing", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "kwsc: error: --smoothing 0: the moving average takes 1 to 1024 frames")


def test_the_streaming_benchmark_writes_its_curve_and_operating_points(folder, tmp_path, capsys):
    out = tmp_path / "results.json"
    assert _test(folder, out, "--stream-minutes", "0.5", "--list_file", str(folder / "mixed.txt"), "--seed", "3",
                 "--stream_threshold", "0.6", list_file="mixed.txt") == 0
    doc = json.loads((tmp_path / "results_stream.json").read_text())
    assert doc["kind"] == "kwsc streaming benchmark"
    st = doc["stream"]
    assert st["duration_s"] == 30.0 and st["seed"] == 3 and st["noise_recordings"] == 6
    assert st["keywords"] + st["unknown"] + st["silence"] == st["events"] and st["unknown"] and st["silence"]
    assert doc["resolution_fa_per_hour"] == pytest.approx(120.0)
    assert doc["scoring"]["refractory_s"] == 1.0 and doc["scoring"]["suppression_ticks"] == 31  # 1 s of 32 ms ticks
    thresholds = sorted({*THRESHOLDS, 0.6})
    assert len(doc["curve"]) == len(thresholds) * len(SMOOTHINGS)
    assert [p["threshold"] for p in doc["curve"][: len(thresholds)]] == thresholds
    for p in doc["curve"]:
        assert p["hits"] + p["misses"] == st["keywords"]
        assert p["false_alarms_per_hour"] == pytest.approx(p["false_alarms"] * 120.0)
    # the single-setting report is the curve's point at the same setting
    at = doc["at_threshold"]
    (same,) = [p for p in doc["curve"] if p["threshold"] == 0.6 and p["smoothing"] == 3]
    assert (at["hits"], at["false_alarms"]) == (same["hits"], same["false_alarms"])
    points = doc["operating_points"]
    assert set(points) == {"hit_rate_at_1_fa_per_hour", "hit_rate_at_2_fa_per_hour", "hit_rate_at_5_fa_per_hour",
                           "fa_per_hour_at_90_percent_hits", "best_hit_rate"}
    best = points["best_hit_rate"]
    assert best["hit_rate"] == max(p["hit_rate"] for p in doc["curve"])
    for name in (doc["files"]["det_png"], doc["files"]["timeline_png"]):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    stdout, stderr = capsys.readouterr()
    assert "at threshold 0.6, smoothing 3: hits" in stdout and "hit rate at ≤ 1 false alarm/hour" in stdout
    assert "can only be missed" not in stderr  # yes/no are categories; _unknown_/_silence_ are not keywords


def test_a_clean_stream_has_no_background_noise():
    import numpy as np

    from kwsc.evaluate.keyword_test import LabeledAudio
    from kwsc.evaluate.session import build_test_stream

    rng = np.random.default_rng(0)
    items = [LabeledAudio(f"w/{i}.wav", "yes", np.zeros(16000, np.float32)) for i in range(20)]
    for item in items:
        item.audio[4000:8000] = 0.3 * rng.standard_normal(4000)
    noise = [rng.standard_normal(16000 * 30).astype(np.float32)]
    levels = {}
    for name, snr in (("clean", None), ("noisy", [10.0])):
        audio, events = build_test_stream(items, noise, 16000, 0.5, seed=1, snr_db=snr)
        gaps = np.concatenate([audio[int(a.end * 16000) + 800: int(b.start * 16000) - 800]
                               for a, b in zip(events, events[1:])])
        levels[name] = float(np.sqrt(np.mean(gaps.astype(np.float64) ** 2)))
    assert levels["clean"] < 3e-4  # near-silence only
    assert levels["noisy"] > 100 * levels["clean"]


def test_detectors_chosen_on_another_stream_are_scored_held_out(folder, tmp_path, capsys):
    """--detector_curve: thresholds (one for all keywords, and one per keyword) come from one run's curve and are
    measured on this run's stream with the Detector op; on the same stream (same seed) the single-threshold choice
    measures exactly what the curve said."""
    val = tmp_path / "val.json"
    common = ["--stream-minutes", "0.5", "--modes", "reset", "--sweep_smoothing", "1,3"]
    assert _test(folder, val, *common, "--seed", "3", list_file="mixed.txt") == 0
    doc = json.loads((tmp_path / "val_stream.json").read_text())
    assert doc["stream"]["labels"] == ["_silence_", "no", "yes"]
    assert all(set(p["per_label"]) <= {"no", "yes"} for p in doc["curve"])
    for p in doc["curve"]:
        assert sum(c[0] for c in p["per_label"].values()) == p["hits"]
        assert sum(c[1] for c in p["per_label"].values()) == p["false_alarms"]
    same = tmp_path / "same.json"
    assert _test(folder, same, *common, "--seed", "3", "--detector_curve", str(tmp_path / "val_stream.json"),
                 "--detector_fa_per_hour", "500", list_file="mixed.txt") == 0
    one, per = json.loads((tmp_path / "same_stream.json").read_text())["held_out"]
    assert not one["per_class"] and per["per_class"] and len(per["thresholds"]) == 3
    assert one["fa_per_hour_budget"] == 500 and one["source"]["file"] == str(tmp_path / "val_stream.json")
    assert (one["measured"]["hits"], one["measured"]["false_alarms"]) == (
        one["expected"]["hits"], one["expected"]["false_alarms"])
    assert one["expected"]["false_alarms"] <= 4  # 500/h of a 30-s stream
    assert per["expected"]["hits"] >= one["expected"]["hits"]  # the per-keyword choice includes the global one
    assert capsys.readouterr().out.count("held out (") == 2
    other = tmp_path / "other.json"
    assert _test(folder, other, *common, "--seed", "4", "--detector_curve", str(tmp_path / "val_stream.json"),
                 list_file="mixed.txt") == 0
    held = json.loads((tmp_path / "other_stream.json").read_text())["held_out"]
    assert [h["per_class"] for h in held] == [False, True] and held[0]["fa_per_hour_budget"] == 2.0
    # bad input: one line, exit 2, nothing written
    out = tmp_path / "bad.json"
    (tmp_path / "notabench.json").write_text('{"curve": []}')
    for extra, said in [
        (["--detector_curve", str(tmp_path / "val_stream.json")], "--detector_curve scores detectors"),
        (["--stream-minutes", "0.5", "--detector_curve", str(tmp_path / "missing.json")],
         f"--detector_curve {tmp_path / 'missing.json'}: cannot read it"),
        (["--stream-minutes", "0.5", "--detector_curve", str(tmp_path / "notabench.json")],
         f"--detector_curve {tmp_path / 'notabench.json'}: not a streaming benchmark JSON"),
        (["--stream-minutes", "0.5", "--detector_curve", str(tmp_path / "val_stream.json"),
          "--detector_fa_per_hour", "-1"], "--detector_fa_per_hour -1: give a finite rate >= 0"),
    ]:
        assert _test(folder, out, *extra, list_file="mixed.txt") == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"kwsc: error: {said}"), (extra, err)
        assert not out.exists()
