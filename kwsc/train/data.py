"""Datasets for training: ELL-layout ``.npz`` files, normalization statistics, on-device augmentation.

An ELL dataset file (ell-behaviour.md §5.3, §5.5) holds ``features`` (N, window·F) float, ``labels`` (N,) str,
``valid_classes`` and ``parameters`` = [sample_rate, input_size, F, window, shift]. Rows are reshaped to
(N, window, F). Augmentation works on whole batches of tensors on the training device (no per-sample Python), so
it costs next to nothing on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kwsc.errors import FormatError, InputError

__all__ = [
    "NpzDataset", "load_npz_dataset", "load_splits", "read_categories", "normalization_stats", "Augmenter",
    "SPLITS",
]

SPLITS = ("training_list", "validation_list", "testing_list")


@dataclass
class NpzDataset:
    """One split: features (N, window, F) float32, label indices (N,) int64, and the file's metadata."""

    features: np.ndarray
    labels: np.ndarray
    classes: list[str]
    parameters: list[int]
    path: Path

    def __len__(self) -> int:
        return int(self.features.shape[0])


def read_categories(path: str | Path) -> list[str]:
    """Category names, one per line (blank lines ignored), as the seed's categories.txt."""
    p = Path(path)
    try:
        names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise InputError(f"{p}: no such categories file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{p}: cannot read categories ({exc})") from None
    if not names:
        raise FormatError(f"{p}: no categories in file")
    return names


def load_npz_dataset(path: str | Path, categories: list[str] | None = None) -> NpzDataset:
    """Load one ELL-layout ``.npz``; label indices follow ``categories`` (default: the file's valid_classes)."""
    from kwsc.data.dataset import Dataset

    p = Path(path)
    data = Dataset.load(p)  # missing file, missing keys, unreadable archive: one clear error each
    features = data.features
    labels = [str(s) for s in data.labels]
    classes = [str(s) for s in data.valid_classes]
    params = [int(v) for v in data.parameters.reshape(-1)]
    if len(params) < 5:
        raise FormatError(f"{p}: parameters must be [sample_rate, input_size, F, window, shift], got {params}")
    num_features, window = params[2], params[3]
    if features.ndim != 2 or features.shape[1] != num_features * window:
        raise FormatError(f"{p}: features shape {features.shape} does not match window {window} × F {num_features}")
    if len(labels) != features.shape[0]:
        raise FormatError(f"{p}: {features.shape[0]} feature rows but {len(labels)} labels")
    categories = list(categories or classes)
    index = {name: i for i, name in enumerate(categories)}
    index.setdefault("<null>", 0)  # the seed maps ELL's "<null>" label to class 0
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise FormatError(f"{p}: labels not in the categories: {', '.join(unknown[:5])}")
    finite = np.isfinite(features).all(axis=1)  # the seed's Dataset drops non-finite rows
    y = np.array([index[lab] for lab in labels], dtype=np.int64)[finite]
    x = features[finite].reshape(-1, window, num_features)
    return NpzDataset(np.ascontiguousarray(x), y, categories, params[:5], p)


def load_splits(dataset_dir: str | Path, categories: list[str] | None = None) -> dict[str, NpzDataset]:
    """The three splits of a dataset folder (training/validation/testing_list.npz), checked for consistency."""
    d = Path(dataset_dir)
    if not d.is_dir():
        raise InputError(f"{d}: no such dataset folder")
    splits = {name: load_npz_dataset(d / f"{name}.npz", categories) for name in SPLITS}
    first = splits["training_list"]
    for name, split in splits.items():
        if split.features.shape[1:] != first.features.shape[1:]:
            raise FormatError(f"{split.path}: frames {split.features.shape[1:]} differ from the training set's "
                              f"{first.features.shape[1:]}")
        if split.classes != first.classes:
            raise FormatError(f"{split.path}: valid_classes differ from the training set's")
    if len(first) == 0:
        raise FormatError(f"{first.path}: no training rows")
    return splits


def normalization_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's mean/std (shape F): mean over rows and frames; std per (frame, feature) averaged over frames."""
    x = features.astype(np.float64)
    mean = x.mean(axis=(0, 1))
    std = x.std(axis=0).mean(axis=0)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class Augmenter:
    """Batch augmentation on raw (un-normalized) log-mel features, on the batch's device.

    * time shift: each row rolled by a random number of frames in [-time_shift, time_shift] (a clip is one word
      in silence, so rolling moves the word within the window);
    * noise: with probability ``noise_prob`` a random noise row (from the training rows of ``noise_class``, rolled
      randomly) is mixed in the linear mel domain as the power sum sqrt(s² + (g·n)²) with g ~ U(0, noise_max_gain) —
      what adding an independent noise waveform does to expected magnitudes;
    * gain: the linear mel energies scaled by a random gain of ±``gain_db`` dB (loudness varies by speaker and
      microphone; normalization is global, so the network must not key on level);
    * frequency warp: the mel axis resampled by a random factor in [1−freq_warp, 1+freq_warp] (linear
      interpolation) — vocal-tract-length perturbation, which helps most with speakers never seen in training;
    * time stretch: the frame axis resampled by a random factor in [1−time_stretch, 1+time_stretch] (speaking
      rate; with the frequency warp it approximates speed perturbation);
    * SpecAugment: ``freq_masks`` bands of up to ``freq_mask_width`` features and ``time_masks`` spans of up to
      ``time_mask_width`` frames set to the feature means (0 after normalization).

    All randomness comes from ``generator`` (a torch.Generator on the batch's device), so runs repeat and resume.
    """

    def __init__(self, options: dict, mean: torch.Tensor, noise_rows: torch.Tensor | None = None):
        self.options = dict(options)
        self.mean = mean
        self.noise_linear = None
        if noise_rows is not None and len(noise_rows) and float(options.get("noise_prob", 0)) > 0:
            self.noise_linear = torch.expm1(noise_rows.float()).clamp_min(0)

    @property
    def active(self) -> bool:
        o = self.options
        return bool(o.get("time_shift") or (o.get("freq_masks") and o.get("freq_mask_width"))
                    or (o.get("time_masks") and o.get("time_mask_width")) or self.noise_linear is not None
                    or o.get("gain_db") or o.get("freq_warp") or o.get("time_stretch"))

    @staticmethod
    def _roll(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        index = (torch.arange(frames, device=x.device)[None, :] - shifts[:, None]) % frames
        return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))

    @staticmethod
    def _resample(x: torch.Tensor, axis: int, alpha: torch.Tensor) -> torch.Tensor:
        """Each row read at positions j·alpha[row] along ``axis`` (1 frames, 2 features), linearly interpolated."""
        size = x.shape[axis]
        source = (torch.arange(size, device=x.device)[None, :] * alpha[:, None]).clamp(0, size - 1)
        low = source.floor().long().clamp(max=max(size - 2, 0))
        high = (low + 1).clamp(max=size - 1)
        frac = source - low
        if axis == 2:
            expand = (-1, x.shape[1], -1)
            pick = lambda idx: torch.gather(x, 2, idx[:, None, :].expand(*expand))  # noqa: E731
            frac = frac[:, None, :]
        else:
            expand = (-1, -1, x.shape[2])
            pick = lambda idx: torch.gather(x, 1, idx[:, :, None].expand(*expand))  # noqa: E731
            frac = frac[:, :, None]
        return pick(low) * (1 - frac) + pick(high) * frac

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        o, n, frames, feats = self.options, x.shape[0], x.shape[1], x.shape[2]
        dev = x.device

        def uniform(*shape):
            return torch.rand(*shape, generator=generator, device=dev)

        shift = int(o.get("time_shift") or 0)
        if shift:
            x = self._roll(x, torch.randint(-shift, shift + 1, (n,), generator=generator, device=dev))
        gain_db = float(o.get("gain_db") or 0)
        if gain_db:
            gain = 10 ** ((uniform(n, 1, 1) * 2 - 1) * gain_db / 20)
            x = torch.log1p(torch.expm1(x).clamp_min(0) * gain)
        warp = float(o.get("freq_warp") or 0)
        if warp:
            x = self._resample(x, 2, 1 + (uniform(n) * 2 - 1) * warp)
        stretch = float(o.get("time_stretch") or 0)
        if stretch:
            x = self._resample(x, 1, 1 + (uniform(n) * 2 - 1) * stretch)
        if self.noise_linear is not None:
            pick = torch.randint(0, len(self.noise_linear), (n,), generator=generator, device=dev)
            noise = self._roll(self.noise_linear[pick],
                               torch.randint(0, frames, (n,), generator=generator, device=dev))
            gain = uniform(n, 1, 1) * float(o.get("noise_max_gain", 0))
            gain = gain * (uniform(n, 1, 1) < float(o.get("noise_prob", 0)))
            speech = torch.expm1(x).clamp_min(0)
            x = torch.log1p(torch.sqrt(speech * speech + (gain * noise) ** 2))
        for axis, count, width, size in ((2, o.get("freq_masks"), o.get("freq_mask_width"), feats),
                                         (1, o.get("time_masks"), o.get("time_mask_width"), frames)):
            count, width = int(count or 0), int(width or 0)
            if not count or not width:
                continue
            positions = torch.arange(size, device=dev)[None, :]
            keep = torch.ones(n, size, dtype=torch.bool, device=dev)
            for _ in range(count):
                w = (uniform(n) * (width + 1)).long()
                start = (uniform(n) * (size - w + 1).float()).long()
                keep &= ~((positions >= start[:, None]) & (positions < (start + w)[:, None]))
            mask = keep[:, None, :] if axis == 2 else keep[:, :, None]
            x = torch.where(mask, x, self.mean.to(x.dtype).expand_as(x))
        return x
