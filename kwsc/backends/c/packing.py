"""Emit-time weight layouts of the C runtime: recurrent cells' weights tiled so that one pass reads every row once.

# NOTE: [Tiled recurrent weights]
# A GRU/LSTM/RNN step multiplies x by the input weights W [G·H, I] and h by the hidden weights R [G·H, H] (G
# gates). Row by row (one matrix-vector product per matrix), each gate's products are separate passes over x and h
# and the gate pre-activations go through memory between them. Tiled, the hidden units go in blocks of
# U = TILE_ROWS / G, and a block's G·U rows of W (gate by gate, then unit) form one tile, followed by the tile of its
# rows of R: one pass over the packed array reads each weight once and yields all gates of U units. Inside a tile the
# rows are interleaved TILE_COLS columns at a time (the first TILE_COLS columns of every row, then the next …), so
# the kernel reads one sequential stream and loads each TILE_COLS piece of x or h once for all the tile's rows.
# Columns are zero-padded to a multiple of TILE_COLS and a last partial block of units to U units with zero rows
# (the kernel reads x only up to its length; the padded units' sums are computed and dropped).
# A GRU without linear_before_reset multiplies its candidate's hidden weights by r ⊙ h, which needs every unit's r
# first: there the blocks hold W (3 gates) and R's z, r rows, and the candidate rows of R follow all blocks as a
# second region of tiles (U units, TILE_ROWS / 3 rows each), read in a second pass. Each weight is still read once.
# The runtime side is kwsc_tile_dot (runtime/src/{ref,opt}/tile.c) and the cells in runtime/src/ref/recurrent.c.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TILE_ROWS", "TILE_COLS", "tile_rows", "recurrent_tiles", "units_per_block"]

TILE_ROWS = 12  # rows of a tile: 12 vector accumulators, x and a weight fit AVX2's and armv7 NEON's 16 registers
TILE_COLS = 8  # columns per interleaved piece (one AVX vector, two NEON vectors)


def units_per_block(gates: int) -> int:
    """Hidden units per tile: GRU 4, LSTM 3, RNN 12."""
    return TILE_ROWS // gates


def tile_rows(rows: np.ndarray) -> np.ndarray:
    """Rows [..., n, cols] → their tiles [..., ceil(cols / TILE_COLS), n, TILE_COLS] (zero-padded columns)."""
    rows = np.asarray(rows, np.float32)
    *lead, n, cols = rows.shape
    padded_cols = -(-cols // TILE_COLS) * TILE_COLS
    padded = np.zeros((*lead, n, padded_cols), np.float32)
    padded[..., :cols] = rows
    pieces = padded.reshape(*lead, n, padded_cols // TILE_COLS, TILE_COLS)
    return np.swapaxes(pieces, -3, -2)


def _blocks(matrix: np.ndarray, gates: int, hidden: int, units: int) -> np.ndarray:
    """[gates·hidden, cols] → [blocks, gates·units, cols]: per block its units' rows, gate by gate (zero rows pad
    the last block)."""
    cols = matrix.shape[-1]
    blocks = -(-hidden // units)
    padded = np.zeros((gates, blocks * units, cols), np.float32)
    padded[:, :hidden] = np.asarray(matrix, np.float32).reshape(gates, hidden, cols)
    return padded.reshape(gates, blocks, units, cols).transpose(1, 0, 2, 3).reshape(blocks, gates * units, cols)


def recurrent_tiles(w: np.ndarray, r: np.ndarray, gates: int, hidden: int, split_last: bool = False) -> np.ndarray:
    """The tiled weights of a recurrent cell (see NOTE [Tiled recurrent weights]) as one flat float32 array.

    Args:
        w, r: input weights [gates·hidden, I] and hidden weights [gates·hidden, hidden], gate blocks in the
            runtime's order (GRU z, r, n; LSTM i, f, g, o).
        split_last: the last gate's hidden rows go to a second region (a GRU without linear_before_reset).
    """
    units = units_per_block(gates)
    wb = _blocks(w, gates, hidden, units)
    rb = _blocks(r, gates, hidden, units)
    blocks = wb.shape[0]
    if split_last:
        rb, last = rb[:, :(gates - 1) * units], rb[:, (gates - 1) * units:]
    parts = np.concatenate([tile_rows(wb).reshape(blocks, -1), tile_rows(rb).reshape(blocks, -1)], axis=1)
    flat = [parts.reshape(-1)]
    if split_last:
        flat.append(tile_rows(last).reshape(-1))
    return np.concatenate(flat)
