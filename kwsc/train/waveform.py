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

from kwsc.audio.level import BACKGROUND_LABELS, STREAM_SNR_DB, rms, snr_db, speech_level
from kwsc.errors import FormatError, InputError
from kwsc.ir.tables import filterbank_matrix, window_table

__all__ = ["TutorialFeatures", "WaveformTrainingSet", "load_waveform_training_set", "extra_clip_entries",
           "noise_snr_db", "noise_snr_line"]

# Even the loudest mixed noise more than this far below the speech: inaudible, the line says so.
INAUDIBLE_DB = 40.0
# The SNR the suggested --wave_noise_max puts the loudest recording at (the benchmark's loudest background).
TARGET_DB = min(STREAM_SNR_DB)

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
        # how loud the mixed noise is against the speech (noise_snr_db); set by load_waveform_training_set
        self.noise_snr: dict | None = None

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


def noise_snr_db(speech_rms: float, recordings_rms: dict[str, float], max_gain: float) -> dict:
    """How far below the speech the noise ``batch`` mixes lies at its loudest (gain ``max_gain``), in the
    streaming benchmark's dB (its speech level: kwsc.audio.level.speech_level): per recording and the loudest.

    Returns {"speech_rms", "wave_noise_max", "loudest" (the smallest SNR, dB; None when nothing is audible at all),
    "recordings": {name: {"rms", "snr_db"}}, "inaudible" (loudest > INAUDIBLE_DB), "suggested_wave_noise_max" (the
    gain that puts the loudest recording at TARGET_DB), "benchmark_snr_db"}; a silent recording's snr_db is None.
    """
    def finite(x: float) -> float | None:
        return round(x, 2) if np.isfinite(x) else None

    snrs = {name: snr_db(speech_rms, max_gain * level) for name, level in recordings_rms.items()}
    loudest = min(snrs.values()) if snrs else float("inf")
    top = max(recordings_rms.values()) if recordings_rms else 0.0
    suggested = speech_rms * 10 ** (-TARGET_DB / 20) / top if top > 0 and speech_rms > 0 else None
    return {"speech_rms": round(speech_rms, 6), "wave_noise_max": max_gain, "loudest": finite(loudest),
            "recordings": {name: {"rms": round(recordings_rms[name], 6), "snr_db": finite(snrs[name])}
                           for name in sorted(recordings_rms)},
            "inaudible": bool(loudest > INAUDIBLE_DB),
            "suggested_wave_noise_max": float(f"{suggested:.2g}") if suggested is not None else None,
            "benchmark_snr_db": list(STREAM_SNR_DB)}


def noise_snr_line(report: dict) -> str:
    """The one line ``kwsc train`` says at start about ``noise_snr_db``'s report."""
    levels = [r["rms"] for r in report["recordings"].values()]
    gain = report["wave_noise_max"]
    bench = "/".join(f"{d:g}" for d in report["benchmark_snr_db"])
    loudest = report["loudest"]
    where = f">= {loudest:.0f} dB below the speech" if loudest is not None else "silent (nothing audible)"
    line = (f"kwsc train: background noise mixed at {where} (speech RMS {report['speech_rms']:.3g}, recordings RMS "
            f"{min(levels):.3g}-{max(levels):.3g} x <= {gain:g}; the streaming benchmark uses {bench} dB)")
    if report["inaudible"]:
        line += f"; that noise is inaudible (more than {INAUDIBLE_DB:g} dB below)"
        if report["suggested_wave_noise_max"] is not None:
            line += (f"; to train for noisy rooms, --wave_noise_max {report['suggested_wave_noise_max']:g} puts the "
                     f"loudest recording at {TARGET_DB:g} dB (README: fewer false alarms on noise, ~2-3 points "
                     "less per file on clean speech)")
    return line


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
    used: dict[str, np.ndarray] = {}
    if noise_files:
        recordings = [load_audio(p, sample_rate) for p in noise_files]
        used = {p.name: r for p, r in zip(noise_files, recordings) if len(r) > length}
        noise = torch.from_numpy(np.concatenate(list(used.values()))).to(device)
        if len(noise) <= length:
            noise = None
    result = WaveformTrainingSet(torch.from_numpy(audio).to(device), torch.tensor(labels, device=device), noise,
                                 parameters, options)
    if noise is not None and float(options.get("wave_noise_prob") or 0) > 0:
        words = [c for c, y in zip(clips, labels) if categories[y] not in BACKGROUND_LABELS]
        result.noise_snr = noise_snr_db(speech_level(words or clips, sample_rate),
                                        {name: rms(r) for name, r in used.items()},
                                        float(options.get("wave_noise_max") or 0))
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
