"""Reading and writing wav files as real folders contain them, and resampling.

``read_wav`` parses the RIFF container itself (one ``read()``, ``np.frombuffer``): it is faster than a general
audio library for one-second clips and it can tell *why* a file is unusable — empty, not a wav, truncated, an
unsupported encoding — which the dataset builder reports per file. Supported encodings: 8-bit unsigned, 16-, 24-
and 32-bit signed integer PCM, 32- and 64-bit IEEE float, plain or ``WAVE_FORMAT_EXTENSIBLE``, 1 to
``MAX_CHANNELS`` channels (mixed down to mono by averaging), sample rates from ``MIN_SAMPLE_RATE`` to
``MAX_SAMPLE_RATE`` (``load_audio`` resamples with a polyphase filter). A header outside those limits, or float
samples that are NaN or infinite, make the file unreadable (FormatError), like a truncated one: a 2^31−1 Hz header
would otherwise ask the resampler for hundreds of GiB, a 1 Hz header would turn one second into hours of audio.

Integer samples are scaled to [-1, 1) by ÷2^(bits−1), as ELL's ``WavReader`` with ``auto_scale`` does
(ell-behaviour.md §1.8, §5.2); float samples are taken as they are.

Example::

    samples = load_audio("yes/0a7c2a8d_nohash_0.wav", sample_rate=16000)   # float32, mono, 16 kHz
    write_wav("out.wav", samples, 16000)                                     # 16-bit PCM, atomic
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np

from kwsc.fileio import atomic_output
from kwsc.errors import FormatError, InputError

__all__ = ["WavInfo", "read_wav", "load_audio", "resample", "write_wav", "wav_bytes", "MIN_SAMPLE_RATE",
           "MAX_SAMPLE_RATE", "MAX_CHANNELS"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000  # what real recorders write (8 kHz phones … 384 kHz studio)
MAX_CHANNELS = 64  # the generated C example program refuses more, too


@dataclass(frozen=True)
class WavInfo:
    """What the header of a wav file says."""

    sample_rate: int
    channels: int
    bits: int
    is_float: bool
    frames: int


def _fail(path, reason: str) -> FormatError:
    return FormatError(f"{path}: {reason}")


def _parse_header(data: bytes, path) -> tuple[WavInfo, int, int]:
    """Find the fmt and data chunks; returns (info, data offset, data length in bytes)."""
    if len(data) == 0:
        raise _fail(path, "empty file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] == b"RIFX":
            raise _fail(path, "big-endian RIFX wav files are not supported")
        raise _fail(path, "not a wav file (no RIFF/WAVE header)")
    pos, fmt, data_at, data_len = 12, None, None, 0
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise _fail(path, "truncated fmt chunk")
            fmt = struct.unpack_from("<HHIIHH", data, body)
            if fmt[0] == _EXTENSIBLE:
                if size < 40 or body + 40 > len(data):
                    raise _fail(path, "truncated WAVE_FORMAT_EXTENSIBLE fmt chunk")
                (sub_format,) = struct.unpack_from("<H", data, body + 24)
                fmt = (sub_format,) + fmt[1:]
        elif chunk_id == b"data":
            available = len(data) - body
            if size == 0xFFFFFFFF or (size == 0 and available > 0):  # streaming writers leave the size open
                size = available
            if size > available:
                raise _fail(path, f"truncated: the header announces {size} bytes of audio, the file holds {available}")
            data_at, data_len = body, size
            break
        pos = body + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise _fail(path, "no fmt chunk (corrupt or truncated header)")
    if data_at is None:
        raise _fail(path, "no data chunk (corrupt or truncated file)")
    tag, channels, rate, _, block_align, bits = fmt
    if tag not in (_PCM, _FLOAT):
        raise _fail(path, f"unsupported wav encoding (format tag {tag:#x}); only PCM and IEEE float are read")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _fail(path, f"bad header: {channels} channels (1 to {MAX_CHANNELS} are read)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise _fail(path, f"bad header: sample rate {rate} Hz (outside {MIN_SAMPLE_RATE} Hz to "
                          f"{MAX_SAMPLE_RATE // 1000} kHz)")
    if (tag == _PCM and bits not in (8, 16, 24, 32)) or (tag == _FLOAT and bits not in (32, 64)):
        raise _fail(path, f"unsupported sample format: {bits}-bit {'float' if tag == _FLOAT else 'integer'}")
    frame_bytes = channels * bits // 8
    frames = data_len // frame_bytes  # a trailing partial frame (writer cut off mid-sample) is ignored
    return WavInfo(rate, channels, bits, tag == _FLOAT, frames), data_at, frames * frame_bytes


def _decode(raw: bytes, info: WavInfo) -> np.ndarray:
    """Interleaved samples → float32 (frames, channels), integers scaled by 1/2^(bits-1)."""
    if info.is_float:
        x = np.frombuffer(raw, dtype="<f4" if info.bits == 32 else "<f8").astype(np.float32)
    elif info.bits == 8:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) * (1.0 / 128.0)
    elif info.bits == 16:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
    elif info.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) * (1.0 / (1 << 23))
    else:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) * (1.0 / (1 << 31))).astype(np.float32)
    return x.reshape(-1, info.channels)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a wav file as mono float32 samples.

    Args:
        path: the file.

    Returns:
        ``(samples, sample_rate)``: float32 in [-1, 1) for integer files; channels averaged to mono.

    Raises:
        InputError: the file does not exist or cannot be opened.
        FormatError: empty, not a wav, truncated, an unsupported encoding, a sample rate or channel count outside
            the limits, non-finite float samples (the message says which).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    info, start, length = _parse_header(data, path)
    if info.frames == 0:
        raise _fail(path, "no audio samples")
    if info.bits == 16 and info.channels == 1 and not info.is_float:  # the common case, without copies
        x = np.frombuffer(data, dtype="<i2", count=info.frames, offset=start).astype(np.float32)
        x *= np.float32(1.0 / 32768.0)
        return x, info.sample_rate
    x = _decode(data[start:start + length], info)
    if info.is_float and not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise _fail(path, f"{bad} of {x.size} float samples are NaN or infinite")
    mono = x[:, 0] if info.channels == 1 else x.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32), info.sample_rate


@lru_cache(maxsize=32)
def _polyphase_filter(src: int, dst: int) -> tuple[int, int, np.ndarray]:
    """(up, down, FIR taps): resample_poly's own default Kaiser(5.0) low-pass, designed once per rate pair."""
    from scipy.signal import firwin

    g = gcd(int(src), int(dst))
    up, down = int(dst) // g, int(src) // g
    half_len = 10 * max(up, down)
    taps = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))  # resample_poly scales by up
    return up, down, taps


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser-windowed FIR) from ``src_rate`` to ``dst_rate``.

    The output has ``ceil(len·dst/src)`` samples, float32. Equal rates return the input unchanged.
    """
    if int(src_rate) == int(dst_rate):
        return samples
    from scipy.signal import resample_poly

    up, down, taps = _polyphase_filter(int(src_rate), int(dst_rate))
    return resample_poly(samples, up, down, window=taps).astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int | None = None) -> np.ndarray:
    """``read_wav`` then resample to ``sample_rate`` (if given and different): float32 mono samples."""
    samples, rate = read_wav(path)
    if sample_rate is not None:
        samples = resample(samples, rate, sample_rate)
    return samples


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A complete 16-bit PCM mono wav file (bytes) for float samples in [-1, 1) (clipped, rounded)."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")
    body = pcm.tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16, _PCM, 1,
                         int(sample_rate), int(sample_rate) * 2, 2, 16, b"data", len(body))
    return header + body


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples as a 16-bit PCM wav, atomically (temp file in the same folder + rename)."""
    data = wav_bytes(samples, sample_rate)
    atomic_output(path, lambda f: f.write(data))
