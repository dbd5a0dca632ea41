"""Static memory plan of the generated C: every activation gets a fixed offset in one arena, reused by liveness.

A value lives from the step that produces it to the last step that reads it (graph outputs live to the end, where
they are copied out). Blocks are placed first-fit at multiples of the target's alignment; a block whose value is dead
is free for the next ones. A step may hand its input block to its output (``reuse``) when the input dies there and
the kernel allows in-place work (elementwise ops, the FFT's work area): that is how the featurizer fits in a few KiB.
Placement is deterministic: same steps, same offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Alloc", "ArenaPlan", "plan_arena"]


@dataclass(frozen=True)
class Alloc:
    """A request for arena space made at one step.

    Attributes:
        key: what the space is for (a value name, or ``<node>#scratch``).
        size: floats (all C element types used are 4 bytes).
        reuse: a key whose block this one may take over when that key's last use is this step and it is big enough.
    """

    key: str
    size: int
    reuse: str | None = None


@dataclass
class _Block:
    offset: int
    size: int
    release_after: int  # the last step index that reads it
    keys: list[str] = field(default_factory=list)


@dataclass
class ArenaPlan:
    """Offsets (in floats) of every key and the arena size (floats)."""

    offsets: dict[str, int]
    size: int
    peak_step: int


def _round_up(x: int, align: int) -> int:
    return (x + align - 1) // align * align


def plan_arena(steps: list[list[Alloc]], last_use: dict[str, int], align: int = 1) -> ArenaPlan:
    """Place the allocations of each step (in order) in one arena.

    Args:
        steps: per step, the allocations it makes (its outputs, then its scratch).
        last_use: per key, the index of the last step that reads it (a step past the end for graph outputs); keys
            absent are read only by the step that makes them.
        align: block start alignment in floats.

    Returns:
        The plan. Blocks never overlap while both are live.
    """
    live: list[_Block] = []
    by_key: dict[str, _Block] = {}
    offsets: dict[str, int] = {}
    size = peak_step = 0
    for index, allocs in enumerate(steps):
        live = [b for b in live if b.release_after >= index]
        for alloc in allocs:
            until = max(last_use.get(alloc.key, index), index)
            donor = by_key.get(alloc.reuse) if alloc.reuse else None
            if donor is not None and donor in live and donor.release_after == index and donor.size >= alloc.size:
                donor.release_after = until
                donor.keys.append(alloc.key)
                by_key[alloc.key] = donor
                offsets[alloc.key] = donor.offset
                continue
            offset = 0
            for block in sorted(live, key=lambda b: b.offset):
                if offset + alloc.size <= block.offset:
                    break
                offset = max(offset, _round_up(block.offset + block.size, align))
            block = _Block(offset, alloc.size, until, [alloc.key])
            live.append(block)
            by_key[alloc.key] = block
            offsets[alloc.key] = offset
            if offset + alloc.size > size:
                size, peak_step = offset + alloc.size, index
    return ArenaPlan(offsets, _round_up(size, align) if size else 0, peak_step)
