"""Timing host builds in C, and exact instruction counts of emulated builds (qemu-user and qemu-system-arm)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kwsc.errors import ToolchainError
from kwsc.ir import Graph, verify

pytestmark = pytest.mark.toolchain


def dense_model(inputs: int = 32, outputs: int = 16) -> Graph:
    """Input → Dense (no activation): the same instructions for every frame, whatever the data."""
    rng = np.random.default_rng(0)
    g = Graph("dense")
    x = g.add_input([inputs])
    w = g.add_constant(rng.normal(0, 0.3, (outputs, inputs)).astype(np.float32))
    b = g.add_constant(rng.normal(0, 0.1, outputs).astype(np.float32))
    g.add_output(g.op1("Dense", x, w, b))
    return verify(g)


def _build(tmp_path, arch: str):
    c = pytest.importorskip("kwsc.backends.c")
    if c.toolchain_missing(arch):
        pytest.skip(f"{arch}: missing {', '.join(c.toolchain_missing(arch))}")
    out = tmp_path / arch
    c.emit_c(dense_model(), out, name="dense", arch=arch, build=True)
    return out


def test_time_compiled_host(tmp_path):
    from kwsc.evaluate.bench_native import time_compiled

    out = _build(tmp_path, "host")
    frames = np.random.default_rng(1).normal(size=(10, 32)).astype(np.float32)
    stats = time_compiled(out, frames, calls_per_round=500, rounds=4, warmup=1)
    assert stats.calls == 2000
    # a 16×32 matvec: well under 10 µs on any host, and not zero (the driver really calls Predict)
    assert 0 < stats.min_us <= stats.median_us <= stats.max_us < 10


def test_time_compiled_needs_a_host_build(tmp_path):
    from kwsc.evaluate.bench_native import time_compiled

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    with pytest.raises(ToolchainError, match="lib<name>.so"):
        time_compiled(tmp_path, np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("arch", ["cortex-m4", "aarch64"])
def test_instructions_per_frame_are_exact(tmp_path, arch):
    """A data-independent model costs the same instructions every frame: differences over 1→2 and 2→4 frames
    agree exactly, and a second run gives the same count (qemu-system-arm's -kernel and qemu-user alike)."""
    from kwsc.evaluate.bench_native import emulated_instructions_per_frame

    out = _build(tmp_path, arch)
    frames = np.random.default_rng(2).normal(size=(4, 32)).astype(np.float32)
    per_2 = emulated_instructions_per_frame(out, arch, frames, count=2)
    per_1 = emulated_instructions_per_frame(out, arch, frames, count=1)
    assert per_1 == per_2 == int(per_2)
    # 512 multiply-adds: at least one instruction per 4 of them (4-wide SIMD), at most 16 each (-Os scalar
    # kernels on the Cortex-M4 take ~10: loads, pairwise-summation bookkeeping, loop) — the harness is not counted
    assert 512 / 4 <= per_2 <= 512 * 16
    assert emulated_instructions_per_frame(out, arch, frames, count=2) == per_2


def test_emulated_needs_enough_frames(tmp_path):
    from kwsc.evaluate.bench_native import emulated_instructions_per_frame

    out = _build(tmp_path, "armv7")
    with pytest.raises(ToolchainError, match="4 frames needed"):
        emulated_instructions_per_frame(out, "armv7", np.zeros((3, 32), np.float32), count=2)
