"""Feature-space augmentation: each transform does what it says, on whole batches, repeatably."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from kwsc.train.data import Augmenter  # noqa: E402


def _gen(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_time_shift_rolls_each_row_by_at_most_n_frames():
    x = torch.arange(6 * 10, dtype=torch.float32).reshape(6, 10, 1).expand(6, 10, 3).contiguous()
    y = Augmenter({"time_shift": 2}, torch.zeros(3))(x, _gen())
    for row_in, row_out in zip(x, y):
        shifts = [s for s in range(-2, 3) if torch.equal(torch.roll(row_in, s, dims=0), row_out)]
        assert shifts, "each row is its input rolled by -2..2 frames"


def test_masks_fill_with_the_mean_and_noise_only_adds_energy():
    x = torch.rand(64, 20, 16) * 4 + 1
    mean = torch.full((16,), 0.25)
    y = Augmenter({"freq_masks": 1, "freq_mask_width": 4, "time_masks": 1, "time_mask_width": 3}, mean)(x, _gen())
    changed = y != x
    assert torch.all(y[changed] == 0.25) and changed.any()
    assert changed.float().mean() < 0.5
    noise = torch.rand(5, 20, 16)
    z = Augmenter({"noise_prob": 1.0, "noise_max_gain": 1.0}, mean, noise)(x, _gen())
    assert torch.all(z >= x - 1e-5) and (z > x + 1e-3).any()  # power sum: never quieter than the speech


def test_gain_and_warp_change_levels_and_bands_and_repeat_with_the_seed():
    x = torch.rand(8, 12, 20) * 3
    aug = Augmenter({"gain_db": 6.0, "freq_warp": 0.1, "time_shift": 1}, torch.zeros(20))
    a, b, c = aug(x, _gen(3)), aug(x, _gen(3)), aug(x, _gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not Augmenter({}, torch.zeros(20)).active
