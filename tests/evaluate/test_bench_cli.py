"""``kwsc bench``: the table, JSON, --compare and errors through the real command line, on a tiny model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.evaluate.bench_run import (BenchReport, BenchRow, compare_reports, format_report, frame_seconds_of,
                                     load_report)
from kwsc.errors import FormatError
from kwsc.ir import Graph, save, verify

REPO = Path(__file__).resolve().parents[2]


def tiny_classifier(vad: bool = False) -> Graph:
    """Input[8] → (VAD →) GRU(16) → Dense(3) → LogSoftmax: small enough to build and emulate in seconds."""
    rng = np.random.default_rng(0)
    g = Graph("tiny")
    x = g.add_input([8])
    trigger = g.op1("VAD", x) if vad else None
    w, r = (g.add_constant(rng.normal(0, 0.3, shape).astype(np.float32)) for shape in ((48, 8), (48, 16)))
    bi, bh = (g.add_constant(rng.normal(0, 0.1, 48).astype(np.float32)) for _ in range(2))
    h = g.add("GRU", [x, trigger, w, r, bi, bh], {"hidden_size": 16}, name="gru").output
    y = g.op1("LogSoftmax", g.op1("Dense", h, g.add_constant(rng.normal(0, 0.5, (3, 16)).astype(np.float32))))
    g.add_output(y)
    return verify(g)


def kwsc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "tiny.kwsc"
    save(tiny_classifier(), path)
    return path


def _row(report: dict, prefix: str) -> dict:
    return next(r for r in report["rows"] if r["name"].startswith(prefix))


@pytest.mark.toolchain
def test_bench_host_table_and_json(tiny, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    out = tmp_path / "bench.json"
    proc = kwsc("bench", tiny, "--frames", 20, "--rounds", 3, "--json", out)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("reference interpreter (numpy)") for line in lines)
    assert any(line.startswith("generated C (host)") for line in lines)
    assert "limit" in lines[1] and "MFLOP/frame" in lines[1]
    report = json.loads(out.read_text())
    assert report["frames"] == 20 and report["rounds"] == 3 and report["frame_seconds"] == pytest.approx(0.032)
    # GRU(8→16) + Dense(3): 2·3·16·(8+16) MACs·… — the same count flops_per_frame gives, and a positive limit
    assert report["flops"] == pytest.approx(2 * 3 * 16 * 24 + 2 * 3 * 16 + 8 * 16 + 2 * 3 * 16 + 4 * 3)
    assert report["limit_us"] == pytest.approx(report["flops"] / report["peak_flops"] * 1e6)
    for prefix in ("reference", "onnxruntime", "generated C (host)"):
        row = _row(report, prefix)
        assert row["kind"] == "timed"
        assert 0 < row["min_us"] <= row["median_us"] <= row["max_us"]
        assert row["realtime"] == pytest.approx(32000 / row["median_us"])
    # every implementation computes the same outputs as the reference on the same frames
    assert _row(report, "onnxruntime")["max_abs_diff"] < 1e-5
    assert _row(report, "generated C (host)")["max_abs_diff"] < 1e-5
    # compiled C beats the interpreter on a model this small by a wide margin (interpreter overhead per node)
    assert _row(report, "generated C (host)")["median_us"] * 5 < _row(report, "reference")["median_us"]
    # the float host build against both limits of this run: FLOPs / FMA peak and parameter bytes / read bandwidth
    c = _row(report, "generated C (host)")["median_us"]
    assert report["weight_bytes"]["float32"] == 4 * (48 * 8 + 48 * 16 + 2 * 48 + 3 * 16) and report["bandwidth"]["float32"] > 0
    bw_limit = report["weight_bytes"]["float32"] / report["bandwidth"]["float32"] * 1e6
    line = next(line for line in lines if line.strip().startswith("host float:"))
    assert f"{c:.2f} µs = {c / report['limit_us']:.1f}× the FLOP limit" in line
    assert f"{c / bw_limit:.2f}× the bandwidth limit ({bw_limit:.2f} µs" in line


@pytest.mark.toolchain
def test_bench_emulated_target_counts_instructions(tiny, tmp_path):
    pytest.importorskip("kwsc.backends.c")
    from kwsc.backends.c import toolchain_missing

    if toolchain_missing("cortex-m4"):
        pytest.skip(f"missing {toolchain_missing('cortex-m4')}")
    runs = []
    for k in range(2):
        out = tmp_path / f"m4_{k}.json"
        proc = kwsc("bench", tiny, "--targets", "cortex-m4", "--frames", 8, "--rounds", 1, "--json", out)
        assert proc.returncode == 0, proc.stderr
        runs.append(_row(json.loads(out.read_text()), "generated C (cortex-m4"))
    row = runs[0]
    assert row["kind"] == "emulated" and row["median_us"] is None and row["max_abs_diff"] < 1e-5
    # 1,248 MACs a frame (GRU 8→16 and Dense 16→3) at -Os with scalar kernels, plus gates, exp and log-softmax
    assert 4_000 < row["instructions"] < 60_000
    assert runs[1]["instructions"] == row["instructions"]  # the same binary and frames: the same count


def test_onnxruntime_is_skipped_with_a_reason_for_vad(tmp_path):
    pytest.importorskip("kwsc.backends.onnx")
    path = tmp_path / "vad.kwsc"
    save(tiny_classifier(vad=True), path)
    proc = kwsc("bench", path, "--targets", "host", "--frames", 8, "--rounds", 1, "--json", tmp_path / "o.json")
    assert proc.returncode == 0, proc.stderr
    row = _row(json.loads((tmp_path / "o.json").read_text()), "onnxruntime")
    assert row["kind"] == "skipped" and "VAD" in row["note"]
    assert "onnxruntime" in proc.stdout and "skipped" in proc.stdout


def _report(**medians) -> BenchReport:
    rows = [BenchRow(name, "timed", us, us, us, 32000 / us) for name, us in medians.items()]
    rows.append(BenchRow("generated C (armv7, qemu-arm)", "emulated", instructions=1000.0))
    return BenchReport(model="m", frames=10, rounds=1, frame_seconds=0.032, flops=1e6, peak_flops=1e11,
                       cpu="cpu", load=1.0, rows=rows)


def test_compare_flags_slowdowns_over_ten_percent():
    old = _report(a=10.0, b=10.0, c=10.0)
    new = _report(a=10.5, b=11.5, c=5.0)
    new.rows[-1].instructions = 1200.0
    text, slower = compare_reports(new, old)
    assert slower == ["b", "generated C (armv7, qemu-arm)"]
    assert "+5.0%" in text and "+15.0%" in text and "-50.0%" in text and "+20.0%" in text
    assert text.count("SLOWER") == 2


def test_report_json_round_trip_and_bad_file(tmp_path):
    from kwsc.evaluate.bench_run import save_report

    report = _report(a=2.0)
    save_report(report, tmp_path / "r.json")
    again = load_report(tmp_path / "r.json")
    assert again == report and again.limit_us == pytest.approx(10.0)
    assert "limit 10.000 µs/frame" in format_report(again)
    (tmp_path / "bad.json").write_text('{"model": "m"}')
    with pytest.raises(FormatError, match="bad.json"):
        load_report(tmp_path / "bad.json")


def test_frame_seconds_from_metadata():
    g = tiny_classifier()
    assert frame_seconds_of(g) == pytest.approx(0.032)
    g.metadata.update({"input_size": 160, "sample_rate": 16000})
    assert frame_seconds_of(g) == pytest.approx(0.01)


def test_bad_arguments_are_one_line_errors(tiny, tmp_path):
    cases = [
        (["bench", tmp_path / "missing.kwsc"], "missing.kwsc"),
        (["bench", tiny, "--targets", "host,riscv"], "riscv"),
        (["bench", tiny, "--compare", tmp_path / "nope.json"], "nope.json"),
        (["bench", tiny, "--frames", "2"], "--frames"),
    ]
    (tmp_path / "corrupt.json").write_text("{not json")
    cases.append((["bench", tiny, "--compare", tmp_path / "corrupt.json"], "corrupt.json"))
    for args, needle in cases:
        proc = kwsc(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kwsc: error:") and needle in err[0], proc.stderr


@pytest.mark.toolchain
def test_bench_int8_rows_beside_float(tiny, tmp_path):
    """--int8: each C target twice (float, int8), each checked against its own reference, the ratios printed from the
    same run, and the parameter bytes of each build; onnxruntime runs the float model."""
    from kwsc.backends.c import toolchain_missing

    if toolchain_missing("host") or toolchain_missing("cortex-m4"):
        pytest.skip("gcc / arm-none-eabi-gcc / qemu-system-arm not installed")
    out = tmp_path / "bench.json"
    proc = kwsc("bench", tiny, "--int8", "--targets", "host,cortex-m4", "--frames", 20, "--rounds", 3, "--json", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["rows"]]
    assert names[2:] == ["generated C (host)", "generated C int8 (host)", "generated C (cortex-m4, qemu-system-arm)",
                         "generated C int8 (cortex-m4, qemu-system-arm)"]
    for row in report["rows"][2:]:
        assert row["max_abs_diff"] is not None and row["max_abs_diff"] < 1e-3, row  # vs the same arithmetic
    f32, i8 = report["weight_bytes"]["float32"], report["weight_bytes"]["int8"]
    assert f32 == 4 * (48 * 8 + 48 * 16 + 2 * 48 + 3 * 16) and i8 == 48 * 8 + 48 * 16 + 3 * 16 + 4 * (48 + 48 + 3) + 4 * 2 * 48
    assert report["bandwidth"]["int8"] > 0
    m4, m4_int8 = (_row(report, name)["instructions"] for name in ("generated C (cortex-m4", "generated C int8 (cortex-m4"))
    assert f"cortex-m4: int8 {m4_int8:,.0f} instructions/frame = {m4_int8 / m4:.0%} of float" in proc.stdout
    assert "host: int8 " in proc.stdout and "faster than onnxruntime" in proc.stdout
