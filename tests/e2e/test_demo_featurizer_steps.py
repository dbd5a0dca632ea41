"""The demo's featurizer steps run for real and check what they claim (the 1 kHz tone's mel band, the sweep)."""

from __future__ import annotations

import json

import numpy as np

from kwsc import demo


def test_featurizer_steps_write_results_and_find_the_1khz_band(tmp_path, speech_dir):
    ctx = demo.DemoContext(outdir=tmp_path, data=speech_dir)
    built = demo.step_featurizer(ctx)
    assert "featurizer.kwsc" in built["saved"] and built["metadata"]["output_size"] == 80
    tones = demo.step_tone_features(ctx)
    # 1 kHz = FFT bin 32; the 80-filter mel bank's filter 28 has edges (31, 32, 34), so it peaks there
    assert tones["tone_peak_band"] == tones["tone_expected_band"] == 28
    assert tones["tone_1khz"]["frames"] == 31
    assert tones["sweep_peak_bands"][0] < 20 < 70 < tones["sweep_peak_bands"][-1]
    real = demo.step_real_clip(ctx)
    assert real["frames"] == 31 and real["max"] > 1.0
    assert np.load(tmp_path / "real_clip_features.npy").shape == (31, 80)
    assert "mel_filterbank: MelFilterBank" in (tmp_path / "featurizer.txt").read_text()


def test_demo_main_writes_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "STEPS", demo.STEPS[:2])
    assert demo.main(["--outdir", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["tone_features"]["tone_peak_band"] == 28


def test_report_says_quick_and_shows_the_feature_pictures(tmp_path, speech_dir):
    ctx = demo.DemoContext(outdir=tmp_path, data=speech_dir, quick=True)
    for name, step in demo.STEPS[:2] + [("real_clip", demo.step_real_clip)]:
        ctx.summary[name] = step(ctx)
    demo.step_report(ctx)
    report = (tmp_path / "REPORT.md").read_text()
    assert "**A `--quick` run**" in report
    for name in ("tone_features", "real_clip_features"):
        assert f"![{name}]({name}.png)" in report and (tmp_path / f"{name}.png").stat().st_size > 1000
    ctx.quick = False
    demo.step_report(ctx)
    assert "--quick" not in (tmp_path / "REPORT.md").read_text()
