"""Size report and the memory goals on Cortex-M4 (featurizer + GRU 2×128 + VAD): RAM ≤ 8 KiB, code ≤ 12 KiB."""

from __future__ import annotations

import pytest

from kwsc.backends.c import format_size_report
from kwsc.backends.c.build import size_report
from kwsc.backends.c.targets import get_target

pytestmark = pytest.mark.toolchain


@pytest.fixture(scope="module")
def m4_reports(compiled):
    target = get_target("cortex-m4")
    return {dtype: size_report(compiled("vad", "cortex-m4", dtype), target, "model") for dtype in ("float32", "int8")}


def test_cortex_m4_memory_goals(m4_reports):
    report = m4_reports["float32"]
    print("\n" + format_size_report(report))
    # RAM: one instance = state (Buffer window, GRU h, VAD, triggers) + the activation arena
    assert report.ram <= 8 * 1024, report
    assert 3000 <= report.arena <= 3200  # featurizer peak: window frame/FFT work (512) + spectrum (257) floats
    # code without weights and tables: model + kernels, and even the linked firmware with libm
    assert report.code <= 12 * 1024, report
    assert report.linked_code is not None and report.linked_code <= 12 * 1024, report
    # GRU 2×128 (80 in) + dense 12: (3·128·(80+128) + 3·128·(128+128) + 4·3·128·2) floats + dense 12·128 + 12
    expected_weights = 4 * (3 * 128 * (80 + 128) + 3 * 128 * 256 + 2 * 2 * 3 * 128 + 12 * 128 + 12)
    assert report.weights == expected_weights
    assert 0 < report.stack < 4096


def test_int8_weights_shrink_flash_about_4x(m4_reports):
    float_report, int8_report = m4_reports["float32"], m4_reports["int8"]
    ratio = float_report.weights / int8_report.weights
    assert 3.5 <= ratio <= 4.0, ratio  # int8 plus a float scale per row; biases stay float
    # int8 keeps its quantized vectors and the GRU's R_n h + b_n apart in the arena: a little more RAM
    assert float_report.ram < int8_report.ram <= float_report.ram + 1024 and int8_report.ram <= 8 * 1024
    text = format_size_report(int8_report)
    assert "weights" in text and "KiB" in text
