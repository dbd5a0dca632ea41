"""Training rows made on the fly from the wavs: waveform augmentation, then the tutorial featurizer in torch.

Feature-space tricks cannot move a word by less than a frame, and with the tutorial featurizer (512-sample
frames, hop 512) the frame phase changes every feature. Here each batch takes the raw clips (kept on the training
device), shifts them by a random number of *samples*, changes their loudness, mixes in a random stretch of
``_background_noise_`` recordings, and featurizes them exactly as ELL's pipeline does (ell-behaviour.md §5.2–5.3):
512-sample chunks with the last one zero-padded, the first chunk dropped, Hamming window, |FFT|, mel filter bank,
ln(x + 1), rows padded to the window with the last frame plus noise of half its spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kwsc.errors import FormatError, InputError
from kwsc.ir.tables import filterbank_matrix, window_table

__all__ = ["TutorialFeatures", "WaveformTrainingSet", "load_waveform_training_set", "extra_clip_entries"]

UNKNOWN = "_unknown_"  # where --extra_wavs puts words that are not categories (when it is one)


class TutorialFeatures:
    """The tutorial featurizer in torch: (..., input_size) chunks → Hamming, |FFT|, mel filter bank, ln(1 + x)."""

    def __init__(self, sample_rate: int, input_size: int, num_features: int, device: torch.device):
        self.hamming = torch.from_numpy(window_table("hamming", input_size)).to(device)
        mel = filterbank_matrix("mel", input_size // 2 + 1, sample_rate, num_features, input_size)
        self.mel_t = torch.from_numpy(np.ascontiguousarray(mel.T)).to(device)

    def __call__(self, chunks: torch.Tensor) -> torch.Tensor:
        return torch.log1p(torch.fft.rfft(chunks * self.hamming, dim=-1).abs() @ self.mel_t)


class WaveformTrainingSet:
    """Clips (N, L) and labels on the device; ``batch(index, generator)`` → augmented feature rows."""

    def __init__(self, clips: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor | None, parameters: list[int],
                 options: dict):
        self.clips, self.labels, self.noise = clips, labels, noise
        sample_rate, self.input_size, self.num_features, self.window, _ = parameters
        self.features = TutorialFeatures(sample_rate, self.input_size, self.num_features, clips.device)
        self.options = dict(options)

    def __len__(self) -> int:
        return int(self.clips.shape[0])

    def featurize(self, audio: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, L) samples → (B, window, F) rows, ELL's framing and tail padding."""
        n, length = audio.shape
        chunks = -(-length // self.input_size)
        audio = torch.nn.functional.pad(audio, (0, chunks * self.input_size - length))
        frames = audio.reshape(n, chunks, self.input_size)[:, 1:]  # ELL's AudioTransform drops the first chunk
        features = self.features(frames)
        have = features.shape[1]
        if have >= self.window:
            return features[:, : self.window]
        last = features[:, -1:]
        spread = last.std(dim=2, keepdim=True) * 0.5
        noise = torch.randn(n, self.window - have, self.num_features, generator=generator, device=audio.device)
        return torch.cat([features, last + noise * spread], dim=1)

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented feature rows of the clips ``index``."""
        o, audio = self.options, self.clips[index]
        n, length = audio.shape
        dev = audio.device

        def uniform(*shape):
            return torch.rand(*shape, generator=generator, device=dev)

        shift = int(o.get("wave_shift") or 0)
        if shift:
            offsets = torch.randint(-shift, shift + 1, (n, 1), generator=generator, device=dev)
            source = torch.arange(length, device=dev)[None, :] - offsets
            valid = (source >= 0) & (source < length)
            audio = torch.gather(audio, 1, source.clamp(0, length - 1)) * valid
        gain_db = float(o.get("wave_gain_db") or 0)
        if gain_db:
            audio = audio * 10 ** ((uniform(n, 1) * 2 - 1) * gain_db / 20)
        if self.noise is not None and float(o.get("wave_noise_prob") or 0) > 0:
            starts = (uniform(n) * (len(self.noise) - length)).long()
            segments = self.noise[starts[:, None] + torch.arange(length, device=dev)[None, :]]
            gain = uniform(n, 1) * float(o.get("wave_noise_max") or 0)
            gain = gain * (uniform(n, 1) < float(o["wave_noise_prob"]))
            audio = audio + gain * segments
        return self.featurize(audio.clamp(-1.0, 1.0), generator)


def _read_list(list_file: Path) -> list[str]:
    try:
        return [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise InputError(f"{list_file}: no such list file") from None


def extra_clip_entries(folder: str | Path, categories: list[str]) -> list[tuple[Path, str]]:
    """``--extra_wavs``: (wav, label) of every ``<word>/*.wav`` in a Speech-Commands-style folder (``kwsc
    synth-dataset``'s output): a word that is a category keeps its name, another word becomes ``_unknown_`` when
    that is a category (else it is left out); ``_background_noise_`` is left out. All of its speakers are used
    (its validation and testing lists split its own speakers, not the dataset's)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (--extra_wavs)")
    entries = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "_background_noise_"):
        label = sub.name if sub.name in categories else UNKNOWN if UNKNOWN in categories else None
        if label is not None:
            entries += [(wav, label) for wav in sorted(sub.glob("*.wav"))]
    if not entries:
        raise InputError(f"{folder}: no <word>/*.wav clips of these categories ({', '.join(categories[:4])}, …) "
                         "(--extra_wavs)")
    return entries


def load_waveform_training_set(wav_dir: str | Path, list_file: str | Path, categories: list[str],
                               parameters: list[int], options: dict, device: torch.device,
                               reference: np.ndarray | None = None, extra: tuple = ()) -> WaveformTrainingSet:
    """The clips of ``list_file`` (paths relative to ``wav_dir``, label = first folder), those of the ``extra``
    folders (``extra_clip_entries``, after them) and the noise recordings.

    ``reference`` (the npz training features) guards against a different featurizer: the mean features of the
    un-augmented clips of ``list_file`` must match the dataset's.
    """
    from kwsc.audio.wav import load_audio

    wav_dir, list_file = Path(wav_dir), Path(list_file)
    if not wav_dir.is_dir():
        raise InputError(f"{wav_dir}: no such wav folder")
    sample_rate = parameters[0]
    entries = _read_list(list_file)
    index = {name: i for i, name in enumerate(categories)}
    clips, labels = [], []
    for entry in entries:
        label = entry.replace("\\", "/").split("/")[0]
        if label not in index:
            raise FormatError(f"{list_file}: {entry}: label {label!r} is not a category")
        clips.append(load_audio(wav_dir / entry, sample_rate))
        labels.append(index[label])
    if not clips:
        raise FormatError(f"{list_file}: no entries")
    listed = len(clips)
    for folder in extra:
        for wav, label in extra_clip_entries(folder, categories):
            clips.append(load_audio(wav, sample_rate))
            labels.append(index[label])
    length = max(len(c) for c in clips)
    audio = np.zeros((len(clips), length), dtype=np.float32)
    for i, c in enumerate(clips):
        audio[i, : len(c)] = c
    noise_files = sorted((wav_dir / "_background_noise_").glob("*.wav"))
    noise = None
    if noise_files:
        recordings = [load_audio(p, sample_rate) for p in noise_files]
        noise = torch.from_numpy(np.concatenate([r for r in recordings if len(r) > length])).to(device)
        if len(noise) <= length:
            noise = None
    result = WaveformTrainingSet(torch.from_numpy(audio).to(device), torch.tensor(labels, device=device), noise,
                                 parameters, options)
    if reference is not None:
        real = min(reference.shape[1], -(-length // parameters[1]) - 1)
        ours = float(np.mean([result.featurize(result.clips[i:min(i + 512, listed)], None)[:, :real].mean().item()
                              * len(result.clips[i:min(i + 512, listed)]) for i in range(0, listed, 512)]) * (
            -(-listed // 512)) / listed)
        theirs = float(reference[:, :real].mean())
        if abs(ours - theirs) > 0.05 * max(1.0, abs(theirs)):
            raise InputError(f"{wav_dir}: the wavs featurized with the tutorial featurizer (mean {ours:.3f}) do not "
                             f"match the dataset's features (mean {theirs:.3f}); waveform augmentation needs the "
                             "tutorial featurizer (hamming, mel, log)")
    return result
