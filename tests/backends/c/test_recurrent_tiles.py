"""Tiled recurrent weights (issue 18 item 3; NOTE [Tiled recurrent weights] in kwsc/backends/c/packing.py).

The packing is checked by reading it back in the order the C kernel reads it (every weight exactly once, zeros
elsewhere), and the cells built on it against the reference interpreter on every target: odd sizes (input 37,
hidden 21, 10 and 13: partial column pieces and partial unit blocks), a GRU with and without linear_before_reset,
an LSTM and an RNN, a live reset trigger and Reset() calls. host: AVX2/FMA tiles; host-ref and cortex-m4: plain C
(vfma on the M4); armv7 and aarch64: NEON, under qemu.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import emit_c, run_harness
from kwsc.backends.c.packing import TILE_COLS, TILE_ROWS, recurrent_tiles
from kwsc.ir import Graph, verify
from tests.backends.c.conftest import reference_outputs, skip_without_toolchain

ARCHES = ("host", "host-ref", "armv7", "aarch64", "cortex-m4")
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def read_tiles(tiles: np.ndarray, gates: int, hidden: int, inputs: int, split_last: bool):
    """W and R back from the packed array, walking it as runtime/src/ref/recurrent.c does (blocks of units, a W
    tile then an R tile per block, the split candidate rows after all blocks; inside a tile piece by piece)."""
    units = TILE_ROWS // gates
    w = np.full((gates * hidden, inputs), np.nan, np.float32)
    r = np.full((gates * hidden, hidden), np.nan, np.float32)
    pos = 0

    def tile(matrix, gate_list, j0, cols):
        nonlocal pos
        rows = len(gate_list) * units
        for k in range(0, cols, TILE_COLS):
            for i in range(rows):
                g, u = gate_list[i // units], i % units
                piece = tiles[pos + i * TILE_COLS: pos + (i + 1) * TILE_COLS]
                n = min(TILE_COLS, cols - k)
                if j0 + u < hidden:
                    assert np.isnan(matrix[g * hidden + j0 + u, k:k + n]).all(), "a weight is stored twice"
                    matrix[g * hidden + j0 + u, k:k + n] = piece[:n]
                else:
                    assert not piece.any(), "a padded unit's row is not zero"
                assert not piece[n:].any(), "padded columns are not zero"
            pos += rows * TILE_COLS

    r_gates = list(range(gates - 1 if split_last else gates))
    for j0 in range(0, hidden, units):
        tile(w, list(range(gates)), j0, inputs)
        tile(r, r_gates, j0, hidden)
    if split_last:
        for j0 in range(0, hidden, units):
            tile(r, [gates - 1], j0, hidden)
    assert pos == tiles.size, "the packed array has more than the tiles"
    return w, r


@pytest.mark.parametrize("gates,hidden,inputs,split_last", [(3, 21, 37, False), (3, 21, 37, True), (3, 128, 80, False),
                                                            (4, 10, 21, False), (1, 13, 10, False), (3, 4, 8, True)])
def test_tiles_hold_every_weight_once_in_the_kernels_order(gates, hidden, inputs, split_last):
    rng = np.random.default_rng(hidden)
    w = rng.standard_normal((gates * hidden, inputs)).astype(np.float32)
    r = rng.standard_normal((gates * hidden, hidden)).astype(np.float32)
    tiles = recurrent_tiles(w, r, gates, hidden, split_last=split_last)
    assert tiles.dtype == np.float32
    got_w, got_r = read_tiles(tiles, gates, hidden, inputs, split_last)
    np.testing.assert_array_equal(got_w, w)
    np.testing.assert_array_equal(got_r, r)
    if hidden % (TILE_ROWS // gates) == 0 and inputs % TILE_COLS == 0 and hidden % TILE_COLS == 0:
        assert tiles.size == w.size + r.size  # no padding: as small as the two matrices


def cells_graph() -> Graph:
    """Input[37] → GRU(21) → GRU(21, linear_before_reset=0) → LSTM(10) → RNN(13); every cell's output is a graph
    output, and a trigger computed from the input (relu(x[0] - 0.5)) resets the first GRU and the LSTM."""
    rng = np.random.default_rng(5)
    g = Graph("tiled_cells")
    x = g.add_input([37])
    first = g.op1("Dense", x, g.add_constant(np.eye(1, 37, dtype=np.float32)))
    trigger = g.op1("Relu", g.op1("Sub", first, g.add_constant(np.array([0.5], np.float32))))
    h, size = x, 37
    layers = (("GRU", 21, {}, trigger), ("GRU", 21, {"linear_before_reset": False}, None),
              ("LSTM", 10, {}, trigger), ("RNN", 13, {"activation": "tanh"}, None))
    for k, (op, hidden, attrs, trig) in enumerate(layers):
        gates = GATES[op]
        params = [g.add_constant(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name=f"{name}{k}")
                  for name, shape in (("w", (gates * hidden, size)), ("r", (gates * hidden, hidden)),
                                      ("bi", (gates * hidden,)), ("bh", (gates * hidden,)))]
        h = g.add(op, [h, trig] + params, {"hidden_size": hidden, **attrs}, name=f"{op.lower()}{k}").outputs[0]
        g.add_output(h, name=f"{op.lower()}{k}")
        size = hidden
    g.add_output(trigger, name="trigger")
    return verify(g)


@pytest.fixture(scope="module")
def graph():
    return cells_graph()


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ARCHES)
def test_tiled_cells_equal_reference(graph, arch, tmp_path):
    skip_without_toolchain(arch.removesuffix("-ref"))
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((24, 37)).astype(np.float32)
    resets = [9, 17]
    ref = reference_outputs(graph, frames, resets)
    trigger = ref[:, -1]
    assert ((trigger[:-1] != 0) & (trigger[1:] == 0)).any(), "the reset trigger never fired"
    emit_c(graph, tmp_path / arch, arch=arch, build=True)
    out = run_harness(tmp_path / arch, arch, frames, resets)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=2e-5, err_msg=f"{arch}: the tiled cells differ")
