"""Shared fixtures for the benchmark suites (run with `make bench`, not by `make test`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kwsc.evaluate.bench import fma_peak_flops  # noqa: E402


@pytest.fixture(scope="session")
def peak_flops() -> float:
    """This CPU's single-core float32 FMA peak (FLOP/s), measured in this run."""
    return fma_peak_flops()


@pytest.fixture(scope="session")
def frames80() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (1000, 80)).astype(np.float32)


@pytest.fixture(scope="session")
def audio_frames() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 0.1, (1000, 512)).astype(np.float32)


def record(benchmark, **info) -> None:
    """Attach numbers to the benchmark's JSON/table output."""
    for k, v in info.items():
        benchmark.extra_info[k] = v
