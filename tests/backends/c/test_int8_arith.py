"""int8 arithmetic (issue 18): the C kernels of every target equal the reference interpreter — bit for bit where the
arithmetic is integer (QDense without an activation: the int32 products and their float32 dequantization), within
float rounding of the gate functions for the recurrent cells (GRU with both reset forms, LSTM, RNN, with resets).
Each target's kernel variant runs: AVX2 on the host, plain C (host-ref), NEON vmlal.s8 (armv7), smlal (aarch64),
sdot (aarch64-dotprod), SMLAD (Cortex-M4), the last four under qemu."""

from __future__ import annotations

import platform
import shutil
import subprocess

import numpy as np
import pytest

from kwsc.backends.c import emit_c, run_harness
from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify
from kwsc.ir.op_quant import to_int8
from tests.backends.c.conftest import skip_without_toolchain

ARCHES = ("host", "host-ref", "armv7", "aarch64", "aarch64-dotprod", "cortex-m4")


def dense_graph(rows: int = 13, cols: int = 83, input_scale: float = 0.0, equalize: bool = True) -> Graph:
    """Input[cols] → QDense(rows) (odd sizes: every kernel's row and column tails run)."""
    rng = np.random.default_rng(7)
    g = Graph("qdense")
    x = g.add_input([cols])
    w = g.add_constant(rng.normal(0, 0.2, (rows, cols)).astype(np.float32), name="w")
    w_small = g.add_constant(rng.normal(0, 0.2, (rows, rows)).astype(np.float32), name="w_small")
    b = g.add_constant(rng.normal(0, 0.1, rows).astype(np.float32), name="b")
    y = g.add("QDense", [x, w, b], {"input_scale": input_scale, "equalize": equalize}, name="dense").output
    g.add_output(y, name="y")
    g.add_output(g.add("QDense", [y, w_small], {}, name="dense2").output, name="y2")  # no bias, 13 columns
    return verify(g)


def dense_chain_graph() -> Graph:
    """Input[211] → a chain of QDense whose column counts walk every shape of the ARM kernels' row loops: 211 and
    200 (loops of 64 columns, a 16-column half, column tails), 144 (two turns and a half), 128, 100 (two halves and
    a tail), 112 and 96 (three and two halves), 80, 64, 48 (no full AArch64 turn); row counts with and without
    leftovers past groups of 8 and 4; with and without bias, equalized and not."""
    rng = np.random.default_rng(5)
    g = Graph("qdense_chain")
    y = g.add_input([211])
    size = 211
    for k, rows in enumerate((200, 144, 128, 100, 112, 96, 80, 64, 48, 17)):
        w = g.add_constant(rng.normal(0, 0.2, (rows, size)).astype(np.float32), name=f"w{k}")
        inputs = [y, w] + ([g.add_constant(rng.normal(0, 0.1, rows).astype(np.float32), name=f"b{k}")]
                           if k % 2 == 0 else [])
        y = g.add("QDense", inputs, {"equalize": k % 3 != 1}, name=f"dense{k}").output
        size = rows
    g.add_output(y, name="y")
    return verify(g)


def cells_graph() -> Graph:
    """Input[37] → QGRU(64) → QGRU(20) → QGRU(21, linear_before_reset=0) → QLSTM(12) → QRNN(9): odd sizes,
    both GRU forms (the third GRU's candidate rows start at row 42, inside a group of four of the Cortex-M4's row
    pairs); the first GRU's 64 columns of R, and the second's of W, take AArch64's fused row loop (accumulating
    and not)."""
    rng = np.random.default_rng(11)
    g = Graph("qcells")
    x = g.add_input([37])
    size = 37
    for k, (op, hidden, attrs) in enumerate((("GRU", 64, {}), ("GRU", 20, {}),
                                            ("GRU", 21, {"linear_before_reset": False}),
                                            ("LSTM", 12, {}), ("RNN", 9, {}))):
        gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
        params = [g.add_constant(rng.uniform(-0.4, 0.4, shape).astype(np.float32), name=f"{name}{k}")
                  for name, shape in (("w", (gates * hidden, size)), ("r", (gates * hidden, hidden)),
                                      ("bi", (gates * hidden,)), ("bh", (gates * hidden,)))]
        node = g.add(op, [x, None] + params, {"hidden_size": hidden, **attrs}, name=f"{op.lower()}{k}")
        x, size = node.outputs[0], hidden
    g.add_output(x, name="h")
    to_int8(g)
    return verify(g)


def frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, size)).astype(np.float32)
    x[3] = 0.0  # an all-zero step: scale 0
    x[4, :5] = [2.5, -2.5, 0.5, -0.5, 1e-3]  # ties at the rounding boundary after scaling
    x[5] *= np.float32(1e-39)  # all denormal: ARMv7 NEON flushes them, its vector paths must step aside
    x[6, :8] = np.float32(1e-41)  # denormal elements among normal ones
    return x


def reference(graph: Graph, x: np.ndarray, resets=()) -> np.ndarray:
    interp = Interpreter(graph)
    rows = []
    for t, f in enumerate(x):
        if t in resets:
            interp.reset()
        out = interp.step(f)
        out = out if isinstance(out, dict) else {"y": out}
        rows.append(np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in out.values()]))
    return np.stack(rows)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    cache = {}

    def get(name: str, arch: str):
        skip_without_toolchain(arch.removesuffix("-dotprod").removesuffix("-ref"))
        if (name, arch) not in cache:
            graph = {"dense": dense_graph, "dense_calibrated": lambda: dense_graph(input_scale=0.011),
                     "dense_plain": lambda: dense_graph(equalize=False), "dense_chain": dense_chain_graph,
                     "cells": cells_graph}[name]()
            emit_c(graph, root / f"{name}-{arch}", arch=arch, build=True)
            cache[name, arch] = (graph, root / f"{name}-{arch}")
        return cache[name, arch]
    return get


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", ["dense", "dense_calibrated", "dense_plain", "dense_chain"])
def test_qdense_equals_reference_bit_for_bit(builds, name, arch):
    graph, outdir = builds(name, arch)
    x = frames(8, graph.inputs[0].shape[-1])
    if name == "dense_plain":  # without column equalization the kernels see the rows as they are
        assert "_col" not in (outdir / "model.c").read_text().split("kwsc_qdense_params")[1].split(";")[0]
    if name == "dense_calibrated":
        x[7] *= 4  # beyond the calibrated range: clipped to ±127 on both sides
    got = run_harness(outdir, arch, x)
    want = reference(graph, x)
    # as bits: a -0.0 where the reference has +0.0 (or the reverse) is a difference too
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32),
                                  err_msg=f"{arch}: int8 Dense differs from the reference")


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ["host", "host-ref"])
def test_qdense_wide_rows_equal_reference(tmp_path, arch):
    """611 columns: more than the 512 the host's layout-2 kernel prepares per block of x (NOTE [Row octets]); 70
    rows: eight passes of eight row groups and a cut last group."""
    skip_without_toolchain(arch.removesuffix("-ref"))
    graph, outdir = dense_graph(rows=70, cols=611), tmp_path / arch
    emit_c(graph, outdir, arch=arch, build=True)
    assert "kwsc_qdense" in (outdir / "model.c").read_text()
    x = frames(8, 611)
    np.testing.assert_array_equal(run_harness(outdir, arch, x), reference(graph, x), err_msg=f"{arch}: wide Dense")


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ARCHES)
def test_qcells_equal_reference(builds, arch):
    graph, outdir = builds("cells", arch)
    x = frames(12, 37)
    got = run_harness(outdir, arch, x, [7])
    want = reference(graph, x, resets=(7,))
    # float gates (exp/tanh) round differently in C; a flipped rounding of a quantized step moves h by a step
    np.testing.assert_allclose(got, want, atol=2e-3, rtol=0, err_msg=f"{arch}: int8 cells differ")
    assert np.abs(got - want).mean() < 1e-4
    assert "kwsc_qgru_step" in (outdir / "model.c").read_text()


def test_row_pairs_layout_holds_every_weight_once():
    """``pack_row_pairs`` (the Cortex-M4's layout 1) read back as documented: per group of four rows and four
    columns, words (rows 0,1 | cols c,c+1), (rows 0,1 | c+2,c+3), (rows 2,3 | c,c+1), (rows 2,3 | c+2,c+3); each
    int16 lane w[r0] + 256 w[r1]; zero padding to multiples of four."""
    from kwsc.backends.c.quantize import pack_row_pairs

    rng = np.random.default_rng(3)
    q = rng.integers(-127, 128, (13, 83)).astype(np.int8)
    q[0, :4] = [-127, 127, -1, 0]  # extremes: the high byte w[r1] - (w[r0] < 0) stays within int8
    q[1, :4] = [-127, 127, 127, -127]
    words = pack_row_pairs(q)
    assert words.dtype == np.int32 and words.size == 16 * 21 * 4 // 4  # 4 row groups × 21 column groups × 4 words
    lanes = words.astype("<i4").view("<i2").astype(np.int32).reshape(4, 21, 2, 2, 2)  # group, cgroup, pair, cpair, lane
    low = ((lanes + 128) % 256) - 128  # the low byte, signed: w[r0]
    high = (lanes - low) // 256  # w[r1]
    back = np.zeros((16, 84), np.int32)
    for pair, (r0, r1) in enumerate(((0, 1), (2, 3))):
        back[r0::4] = low[:, :, pair].reshape(4, 84)  # column pair, lane → four columns in order
        back[r1::4] = high[:, :, pair].reshape(4, 84)
    np.testing.assert_array_equal(back[:13, :83], q)
    assert not back[13:].any() and not back[:, 83:].any()
    assert np.abs(lanes).max() <= 127 + 256 * 127


@pytest.mark.toolchain
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the host's layout 2 is x86's")
def test_host_layout_without_avx2_equals_reference(builds, tmp_path):
    """The host's row octets compiled without -march=native (SSE2 only: the Makefile's portable build) give the
    same results as the AVX2 kernel: bit for bit for Dense, and for the cells whose GRU candidate rows start at
    row 42, inside a group of eight."""
    for name, size, resets, exact in (("dense", 83, [], True), ("cells", 37, [7], False)):
        graph, built = builds(name, "host")
        outdir = tmp_path / name
        shutil.copytree(built, outdir)
        subprocess.run(["make", "-B", "-s", "KERNEL_CFLAGS=$(CFLAGS) -march=x86-64 -DKWSC_VEC=8", "harness"],
                       cwd=outdir, check=True, capture_output=True)
        x = frames(12, size)
        got, want = run_harness(outdir, "host", x, resets), reference(graph, x, resets=resets)
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=f"{name}: SSE2 layout 2")
        else:  # as test_qcells_equal_reference: the gate functions round differently in C
            np.testing.assert_allclose(got, want, atol=2e-3, rtol=0, err_msg=f"{name}: SSE2 layout 2")
            assert np.abs(got - want).mean() < 1e-4


def test_row_octets_layout_holds_every_weight_once():
    """``pack_row_octets`` (the host's layout 2) read back as documented: per group of eight rows, one 32-byte block
    per four columns, byte 4 r + c = w[8 g + r, 4 k + c]; zero padding to multiples of eight rows, four columns."""
    from kwsc.backends.c.quantize import pack_row_octets

    rng = np.random.default_rng(5)
    q = rng.integers(-127, 128, (13, 83)).astype(np.int8)
    packed = pack_row_octets(q)
    assert packed.dtype == np.int8 and packed.size == 2 * 21 * 32  # 2 row groups × 21 column groups × 32 bytes
    back = np.zeros((16, 84), np.int8)
    for index, value in enumerate(packed):
        g, k, byte = index // (21 * 32), index // 32 % 21, index % 32
        back[8 * g + byte // 4, 4 * k + byte % 4] = value
    np.testing.assert_array_equal(back[:13, :83], q)
    assert not back[13:].any() and not back[:, 83:].any()
