"""Background-noise mixing for dataset augmentation (ELL's ``AudioNoiseMixer``, ell-behaviour.md §5.4, fixed).

ELL meant to mix noise into a fraction ``noise_selection`` of the files, at gain ``max_noise_ratio``; because its
noise reader is never closed, every file after the first selected one gets noise. Here exactly
``round(noise_selection · N)`` files are chosen (a seeded permutation), each gets noise from a randomly chosen
background file at a random offset, scaled by a random gain drawn uniformly from (0, max_noise_ratio].
The same seed gives the same choices whatever the number of worker processes.

Example::

    mixer = NoiseMixer.from_folder("data/_background_noise_", sample_rate=16000, max_ratio=0.1, selection=0.1)
    plan = mixer.plan(num_files=len(files), seed=0)          # who gets which noise, at which gain
    noisy = mixer.mix(samples, plan[i]) if plan[i] else samples
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwsc.audio.wav import load_audio
from kwsc.errors import InputError

__all__ = ["NoiseMixer", "MixChoice"]

_FULL_SCALE = np.float32(32767.0 / 32768.0)


@dataclass(frozen=True)
class MixChoice:
    """How one selected file is mixed: which noise, from where, how loud."""

    noise_index: int
    offset: float   # fraction of the noise file's length where the noise starts
    gain: float


class NoiseMixer:
    """Mixes background noise into clips.

    Args:
        noises: noise recordings as float32 arrays at the clips' sample rate.
        names: their names (for messages).
        max_ratio: largest gain applied to the noise (ELL's ``--max_noise_ratio``).
        selection: fraction of files that get noise (ELL's ``--noise_selection``).
    """

    def __init__(self, noises: list[np.ndarray], names: list[str], max_ratio: float = 0.1,
                 selection: float = 0.1) -> None:
        if not noises:
            raise InputError("no noise recordings given")
        if not 0.0 <= selection <= 1.0:
            raise InputError(f"--noise_selection must be within [0, 1], got {selection}")
        if max_ratio < 0:
            raise InputError(f"--max_noise_ratio must be ≥ 0, got {max_ratio}")
        self.noises = [np.asarray(n, np.float32) for n in noises]
        self.names = list(names)
        self.max_ratio = float(max_ratio)
        self.selection = float(selection)

    @classmethod
    def from_folder(cls, folder: str | Path, sample_rate: int, max_ratio: float = 0.1,
                    selection: float = 0.1) -> "NoiseMixer":
        """Load every ``*.wav`` in ``folder`` (sorted by name), resampled to ``sample_rate``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such noise folder")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
        if not files:
            raise InputError(f"{folder}: no .wav files to use as noise")
        noises = [load_audio(p, sample_rate) for p in files]
        return cls(noises, [p.name for p in files], max_ratio, selection)

    def plan(self, num_files: int, seed: int = 0) -> list[MixChoice | None]:
        """Choose exactly ``round(selection · num_files)`` files and how each is mixed (None: not mixed)."""
        rng = np.random.default_rng([int(seed), 0x6E6F6973])  # a stream of its own, apart from other uses of seed
        chosen = rng.permutation(num_files)[: int(round(self.selection * num_files))]
        noise_index = rng.integers(0, len(self.noises), size=len(chosen))
        offsets = rng.random(len(chosen))
        gains = self.max_ratio * (1.0 - rng.random(len(chosen)))  # (0, max_ratio]
        plan: list[MixChoice | None] = [None] * num_files
        for k, i in enumerate(chosen):
            plan[int(i)] = MixChoice(int(noise_index[k]), float(offsets[k]), float(gains[k]))
        return plan

    def noise(self, choice: MixChoice, length: int, skip: int = 0) -> np.ndarray:
        """``length`` samples of the chosen noise, scaled by its gain, starting ``skip`` samples after its offset
        (the recording repeats when it is too short)."""
        source = self.noises[choice.noise_index]
        start = int(choice.offset * len(source)) + skip
        idx = (start + np.arange(length)) % len(source)
        return (source[idx] * np.float32(choice.gain)).astype(np.float32)

    def mix(self, samples: np.ndarray, choice: MixChoice) -> np.ndarray:
        """``samples + gain·noise``, clipped to the 16-bit range [-1, 32767/32768] as ELL's saturating add."""
        mixed = samples + self.noise(choice, len(samples))
        return np.clip(mixed, -1.0, _FULL_SCALE).astype(np.float32)
