"""Per-batch learning-rate schedules: the seed's formulas, and PyTorch's schedulers where the seed used them."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from kwsc.train.schedulers import make_schedule  # noqa: E402


def _torch_lrs(make, steps: int, lr: float = 0.1) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("name,make", [
    ("CosineAnnealingLR", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40 / 3, eta_min=0.01)),
    ("ExponentialLR", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
    ("StepLR", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
])
def test_matches_pytorch_schedulers_stepped_per_batch(name, make):
    gamma = 0.5 if name == "StepLR" else 0.9
    schedule = make_schedule(name, 0.1, 0.01, epochs=4, ticks=10, peaks=1, gamma=gamma, step_size=3)
    expected = _torch_lrs(make, 40)
    assert [schedule(i) for i in range(40)] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_triangle_starts_at_the_peak_and_reaches_the_floor():
    schedule = make_schedule("TriangleLR", 1e-2, 1e-4, epochs=30, ticks=10, peaks=1)
    stepsize = 30 / 3 * 10
    assert schedule(0) == pytest.approx(1e-2)
    assert schedule(int(stepsize)) == pytest.approx(1e-4)
    assert schedule(int(2 * stepsize)) == pytest.approx(1e-2)


def test_warmup_cosine_rises_then_decays_to_the_floor_and_none_is_constant():
    schedule = make_schedule("WarmupCosineLR", 3e-3, 1e-5, epochs=10, ticks=10, warmup_epochs=2)
    lrs = [schedule(i) for i in range(100)]
    assert lrs[0] == pytest.approx(3e-3 / 20) and lrs[19] == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(lrs[19:], lrs[20:])) and lrs[-1] == pytest.approx(1e-5, rel=0.2)
    assert make_schedule(None, 0.5, 0, 3, 3)(7) == 0.5 and math.isclose(make_schedule("none", 0.5, 0, 3, 3)(0), 0.5)
