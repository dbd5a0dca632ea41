"""Learning-rate schedules as pure functions of the batch iteration (the seed steps schedulers per batch).

A schedule is ``lr(iteration) -> float``; the trainer sets each parameter group's lr before every optimizer step.
Being stateless, a schedule resumes exactly from a checkpoint's iteration count. The seed's formulas
(ell-behaviour.md §5.7): TriangleLR, CosineAnnealingLR (T_max = total/(2·peaks+1)), ExponentialLR, StepLR,
ExponentialResettingLR. kwsc adds WarmupCosineLR (linear warm-up, one cosine decay to lr_min) and OneCycleLR.
"""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["make_schedule"]


def make_schedule(name: str | None, lr_max: float, lr_min: float, epochs: int, ticks: int, peaks: float = 1,
                  gamma: float = 1.0, step_size: int = 1, warmup_epochs: float = 0.0) -> Callable[[int], float]:
    """The schedule ``name`` (None/"none" = constant lr_max) over ``epochs`` × ``ticks`` iterations.

    Args:
        lr_min: the floor; falsy means lr_max, as in the seed.
        peaks: lr_peaks (TriangleLR / CosineAnnealingLR cycles).
        gamma, step_size: ExponentialLR / StepLR / ExponentialResettingLR factors, per iteration.
        warmup_epochs: linear warm-up length (WarmupCosineLR, OneCycleLR's rising part).
    """
    lr_min = lr_min or lr_max
    total = max(1, epochs * ticks)
    name = name or "none"
    if name == "none":
        return lambda it: lr_max
    if name == "TriangleLR":
        stepsize = max(epochs / (2 * peaks + 1) * ticks, 1e-9)

        def triangle(it: int) -> float:
            cycle = math.floor(1 + it / (2 * stepsize))
            x = abs(it / stepsize - 2 * cycle + 1)
            return lr_min + (lr_max - lr_min) * gamma ** (it / 3) * x
        return triangle
    if name == "CosineAnnealingLR":
        t_max = max(total / (2 * peaks + 1), 1e-9)
        return lambda it: lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * it / t_max)) / 2
    if name == "ExponentialLR":
        return lambda it: lr_max * gamma ** it
    if name == "StepLR":
        return lambda it: lr_max * gamma ** (it // max(1, int(step_size)))
    if name == "ExponentialResettingLR":
        reset = epochs * ticks / 3
        return lambda it: lr_max * gamma ** (it - reset if it > reset else it)
    if name in ("WarmupCosineLR", "OneCycleLR"):
        warm = warmup_epochs * ticks if name == "WarmupCosineLR" else max(warmup_epochs * ticks, 0.3 * total)
        start = lr_max / 25 if name == "OneCycleLR" else 0.0

        def warm_cosine(it: int) -> float:
            if it < warm:
                return start + (lr_max - start) * (it + 1) / warm
            progress = min(1.0, (it - warm) / max(1.0, total - warm))
            return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * progress)) / 2
        return warm_cosine
    raise ValueError(f"unknown lr_scheduler {name!r}")
