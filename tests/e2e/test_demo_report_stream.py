"""make demo's REPORT.md shows the streaming benchmark: what the stream held, the DET curve, the operating points."""

from __future__ import annotations

from kwsc import demo
from kwsc.evaluate.streaming import StreamReport, operating_points


def test_report_shows_the_det_curve_and_operating_points(tmp_path):
    curve = [{"smoothing": s, "threshold": t, "false_alarms_per_hour": fa, "hit_rate": h, "miss_rate": 1 - h,
              "latency_median_s": 0.2, "latency_p95_s": 0.45, "hits": round(h * 200), "misses": 200 - round(h * 200),
              "false_alarms": fa / 6}
             for s, t, fa, h in ((1, 0.5, 60.0, 0.93), (3, 0.8, 6.0, 0.71), (3, 0.95, 0.0, 0.42), (5, 0.9, 0.0, 0.5))]
    at = StreamReport(600.0, 200, 142, 58, 1, 0.21, 0.4, settings={"threshold": 0.8, "smoothing": 3},
                      latency_p95_s=0.5)
    stream = {"kind": "kwsc streaming benchmark", "resolution_fa_per_hour": 6.0, "operating_points": operating_points(curve),
              "at_threshold": at.to_dict(), "files": {"det_png": "results_stream_det.png",
                                                      "timeline_png": "results_stream_timeline.png"},
              "stream": {"duration_s": 600.0, "keywords": 200, "unknown": 14, "silence": 20, "distinct_clips": 100,
                         "max_placements_of_a_clip": 3,
                         "max_uses": 8, "background": "noise", "thresholds": [0.5, 0.8, 0.9, 0.95],
                         "smoothings": [1, 3, 5]}}
    ctx = demo.DemoContext(outdir=tmp_path, data=None)
    ctx.summary["test"] = {"modes": {"reset": {"accuracy": 0.75, "passed": 3, "failed": 1, "frames_per_second": 1e4}},
                           "order": {"order": "shuffled", "seed": 0}, "stream": stream}
    demo.step_report(ctx)
    report = (tmp_path / "REPORT.md").read_text()
    assert "the files in a shuffled order (seed 0" in report
    assert "A 10-minute stream of the testing list's clips" in report and "200 keywords, 14 `_unknown_`" in report
    assert "(100 distinct clips, placed up to 3 times, each time at a new gain)" in report
    assert "one false alarm in this stream is 6.0 per hour" in report
    assert "![DET curve](results/results_stream_det.png)" in report
    assert "| the given detector | 71.0% | 6.0 | 0.8 | 3 | 210 / 500 |" in report
    assert "| best hit rate at ≤ 1 false alarm / hour | 50.0% | 0.0 | 0.9 | 5 | 200 / 450 |" in report
    assert "| best hit rate at ≤ 2 false alarms / hour | 50.0% |" in report
    assert "| best hit rate at ≤ 5 false alarms / hour | 50.0% |" in report
    assert "| fewest false alarms at ≥ 90 % hits | 93.0% | 60.0 | 0.5 | 1 |" in report
