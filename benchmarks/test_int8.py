"""Issue 18's goals, checked from one `kwsc bench --int8` run per model (ratios within the same run, never against
numbers from another run): GRU 2×128 + Dense 12 on host, armv7, aarch64, aarch64-dotprod and Cortex-M4; the fused
featurizer + VAD + GRU model on the Cortex-M4. The reproducing command line is printed with each table.

Goals: host int8 ≤ 2.0 µs/frame and ≥ 10× faster than onnxruntime's stateful per-step call; host float ≤ 1.5× the
FLOP limit; Cortex-M4 int8 ≤ 300,000 instructions/frame (fused model ≤ 450,000); weights ÷3.7 or better; armv7 and
aarch64 int8 ≤ 40 % of the float build's instructions. Every build is first checked against the reference
interpreter of its own arithmetic (the max |Δ| column). All goals are evaluated and printed before any assert.
"""

from __future__ import annotations

import pytest

from benchmarks.models import gru_classifier
from kwsc.evaluate.bench_run import bench_model, format_report

GOALS: list[tuple[str, bool, str]] = []


def _goal(name: str, met: bool, detail: str) -> None:
    GOALS.append((name, met, detail))
    print(f"  {'met    ' if met else 'NOT MET'}  {name}: {detail}")


def _fused_vad_model():
    from tests.backends.c.conftest import fused_model

    return fused_model(with_vad=True)


@pytest.fixture(scope="module")
def gru_report(tmp_path_factory):
    report = bench_model(gru_classifier(), targets=("host", "armv7", "aarch64", "aarch64-dotprod", "cortex-m4"),
                         frames=200, rounds=15, workdir=tmp_path_factory.mktemp("int8"), model_name="GRU 2×128 + Dense 12",
                         progress=False, int8=True)
    print("\n$ kwsc bench gru.kwsc --int8 --targets host,armv7,aarch64,aarch64-dotprod,cortex-m4 --rounds 15\n"
          + format_report(report))
    return report


# The float instructions per frame when issue 18 was filed ("today's float"; untiled NEON kernels, README history).
# Instruction counts under qemu are exact and repeatable, so the goal is checked against them; the ratio to the
# tiled float of the same run (issue 18 item 3, which landed later and moved the baseline) is printed beside it.
ISSUE_FLOAT_INSTRUCTIONS = {"armv7": 196_393, "aarch64": 143_544, "aarch64-dotprod": 143_544}


def test_gru_goals(gru_report):
    r = gru_report
    row = {x.name: x for x in r.rows}
    c8, c32, ort = row["generated C int8 (host)"], row["generated C (host)"], row["onnxruntime"]
    for x in r.rows:
        assert x.kind != "skipped", f"{x.name}: {x.note}"
        assert x.max_abs_diff is None or x.max_abs_diff < 5e-3, f"{x.name} differs from its reference"
    print("\nissue 18 goals (one run):")
    _goal("host int8 ≤ 2.0 µs/frame", c8.median_us <= 2.0, f"{c8.median_us:.2f} µs (load {r.load:.1f})")
    _goal("host int8 ≥ 10× onnxruntime", ort.median_us / c8.median_us >= 10,
          f"×{ort.median_us / c8.median_us:.1f} ({ort.median_us:.1f} / {c8.median_us:.2f} µs)")
    _goal("host float ≤ 1.5× the FLOP limit", c32.median_us <= 1.5 * r.limit_us,
          f"{c32.median_us / r.limit_us:.1f}× ({c32.median_us:.2f} / {r.limit_us:.2f} µs; bandwidth limit "
          f"{r.bandwidth_limit_us('float32'):.2f} µs)")
    m4, m4f = row["generated C int8 (cortex-m4, qemu-system-arm)"], row["generated C (cortex-m4, qemu-system-arm)"]
    _goal("Cortex-M4 int8 ≤ 300,000 instructions/frame", m4.instructions <= 300_000,
          f"{m4.instructions:,.0f} (float {m4f.instructions:,.0f})")
    ratio = r.weight_bytes["float32"] / r.weight_bytes["int8"]
    _goal("weights ÷3.7 or better", ratio >= 3.7, f"÷{ratio:.2f}")
    for arch, runner in (("armv7", "qemu-arm"), ("aarch64", "qemu-aarch64"), ("aarch64-dotprod", "qemu-aarch64")):
        i8, f32 = row[f"generated C int8 ({arch}, {runner})"], row[f"generated C ({arch}, {runner})"]
        base = ISSUE_FLOAT_INSTRUCTIONS[arch]
        _goal(f"{arch} int8 ≤ 40 % of the issue's float", i8.instructions <= 0.4 * base,
              f"{i8.instructions / base:.1%} ({i8.instructions:,.0f} / {base:,}); against this run's tiled float "
              f"{i8.instructions / f32.instructions:.0%} ({f32.instructions:,.0f})")
    missed = [name for name, met, _ in GOALS if not met]
    assert not missed, f"goals not met: {'; '.join(missed)}"


def test_fused_vad_goal(tmp_path_factory):
    report = bench_model(_fused_vad_model(), targets=("cortex-m4",), frames=20, rounds=1,
                         workdir=tmp_path_factory.mktemp("fused"), model_name="featurizer + VAD + GRU 2×128 + Dense",
                         progress=False, int8=True)
    print("\n$ kwsc bench fused_vad.kwsc --int8 --targets cortex-m4\n" + format_report(report))
    m4 = report.row("generated C int8 (cortex-m4, qemu-system-arm)")
    assert m4 is not None and m4.kind == "emulated", m4
    met = m4.instructions <= 450_000
    print(f"  {'met    ' if met else 'NOT MET'}  Cortex-M4 fused featurizer + GRU + VAD int8 ≤ 450,000: "
          f"{m4.instructions:,.0f}")
    assert met
