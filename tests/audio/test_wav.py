"""kwsc.audio.wav: every encoding real folders hold, clear errors for broken files, resampling, atomic writes."""

from __future__ import annotations

import os
import stat
import wave

import numpy as np
import pytest
import soundfile

from kwsc.audio.wav import load_audio, read_wav, resample, write_wav
from kwsc.errors import FormatError, InputError

RNG = np.random.default_rng(7)
INTS = RNG.integers(-(1 << 15), 1 << 15, size=(1000, 2))


@pytest.mark.parametrize("subtype,bits", [("PCM_U8", 8), ("PCM_16", 16), ("PCM_24", 24), ("PCM_32", 32)])
@pytest.mark.parametrize("channels", [1, 2])
def test_integer_wavs_scale_like_ell(tmp_path, subtype, bits, channels):
    # integer samples of the file's own width; expected = value / 2^(bits-1), channels averaged
    full = RNG.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(500, channels), dtype=np.int64)
    path = tmp_path / "x.wav"
    as_int32 = (full << (32 - bits)).astype(np.int32)  # soundfile scales int32 to the file's width
    soundfile.write(path, as_int32, 22050, subtype=subtype)
    samples, rate = read_wav(path)
    assert rate == 22050 and samples.dtype == np.float32 and samples.shape == (500,)
    expected = (full / float(1 << (bits - 1))).mean(axis=1)
    np.testing.assert_allclose(samples, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wavs_are_taken_as_they_are(tmp_path, subtype):
    x = RNG.uniform(-1, 1, size=(300, 2)).astype(np.float32)
    soundfile.write(tmp_path / "f.wav", x, 48000, subtype=subtype)
    samples, rate = read_wav(tmp_path / "f.wav")
    assert rate == 48000
    np.testing.assert_allclose(samples, x.mean(axis=1), atol=1e-7)


def test_16bit_matches_python_wave(speech_dir):
    path = sorted((speech_dir / "yes").glob("*.wav"))[0]
    with wave.open(str(path)) as w:
        ints = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    samples, rate = read_wav(path)
    assert rate == 16000
    np.testing.assert_array_equal(samples, ints.astype(np.float32) / 32768.0)


def _good_bytes(tmp_path) -> bytes:
    write_wav(tmp_path / "good.wav", np.zeros(1600, np.float32), 16000)
    return (tmp_path / "good.wav").read_bytes()


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is a text file, not audio\n" * 4, "not a wav file"),
    (b"RIFF\x10\x00\x00\x00WAVE", "no fmt chunk"),
])
def test_broken_files_say_why(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=reason) as info:
        read_wav(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_refused(tmp_path):
    data = _good_bytes(tmp_path)
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated: the header announces 3200 bytes of audio, the file holds 1578"):
        read_wav(tmp_path / "cut.wav")


def test_no_samples_and_missing_file_and_unsupported_encoding(tmp_path):
    write_wav(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(FormatError, match="no audio samples"):
        read_wav(tmp_path / "zero.wav")
    with pytest.raises(InputError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    soundfile.write(tmp_path / "ulaw.wav", np.zeros(100), 8000, subtype="ULAW")
    with pytest.raises(FormatError, match="unsupported wav encoding"):
        read_wav(tmp_path / "ulaw.wav")


def test_extra_chunks_before_data_are_skipped(tmp_path):
    data = _good_bytes(tmp_path)
    junk = b"LIST" + (5).to_bytes(4, "little") + b"abcde" + b"\x00"  # odd size → pad byte
    patched = data[:36] + junk + data[36:]
    patched = patched[:4] + (len(patched) - 8).to_bytes(4, "little") + patched[8:]
    (tmp_path / "list.wav").write_bytes(patched)
    samples, _ = read_wav(tmp_path / "list.wav")
    assert samples.shape == (1600,)


def test_write_wav_round_trip_is_16bit_and_atomic(tmp_path):
    x = np.array([0.0, 0.5, -0.5, 1.5, -2.0, 32767 / 32768], np.float32)
    write_wav(tmp_path / "out.wav", x, 16000)
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        ints = np.frombuffer(w.readframes(6), "<i2")
    np.testing.assert_array_equal(ints, [0, 16384, -16384, 32767, -32768, 32767])
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp file left behind
    assert stat.S_IMODE(os.stat(tmp_path / "out.wav").st_mode) & 0o044  # readable by others, as open() would


def test_resample_keeps_a_tone():
    t8 = np.arange(8000) / 8000.0
    t16 = np.arange(16000) / 16000.0
    up = resample(np.sin(2 * np.pi * 440 * t8).astype(np.float32), 8000, 16000)
    assert up.dtype == np.float32 and up.shape == (16000,)
    # away from the edges (filter transients) the tone is reproduced to within the filter's ripple
    np.testing.assert_allclose(up[400:-400], np.sin(2 * np.pi * 440 * t16)[400:-400], atol=2e-3)
    down = resample(np.sin(2 * np.pi * 440 * np.arange(44100) / 44100.0).astype(np.float32), 44100, 16000)
    assert down.shape == (16000,)
    np.testing.assert_allclose(down[400:-400], np.sin(2 * np.pi * 440 * t16)[400:-400], atol=2e-3)


def test_load_audio_resamples(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.zeros((4410, 2)), 44100, subtype="PCM_24")
    assert load_audio(tmp_path / "a.wav", 16000).shape == (1600,)
    assert load_audio(tmp_path / "a.wav").shape == (4410,)


# ---------------------------------------------------------------------------------------------- hostile headers
def _header(rate: int = 16000, channels: int = 1, bits: int = 16, tag: int = 1, data: bytes = b"\0" * 3200) -> bytes:
    """A canonical 44-byte wav header with the given fields (block align and byte rate follow them) + data."""
    import struct

    align = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("rate,message", [
    (2**31 - 1, "sample rate 2147483647 Hz (outside 1000 Hz to 384 kHz)"),  # was: MemoryError in the resampler
    (1, "sample rate 1 Hz"),          # was: 1 s of audio read as 16000 s (12,500 dataset rows)
    (999, "sample rate 999 Hz"),
    (384001, "sample rate 384001 Hz"),
    (0, "sample rate 0 Hz"),
])
def test_sample_rates_outside_the_limits_are_refused(tmp_path, rate, message):
    path = tmp_path / "r.wav"
    path.write_bytes(_header(rate=rate))
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_audio(path, 16000)
    assert str(info.value).startswith(f"{path}: bad header")


@pytest.mark.parametrize("rate", [1000, 8000, 384000])
def test_sample_rates_at_the_limits_are_read(tmp_path, rate):
    path = tmp_path / "r.wav"
    path.write_bytes(_header(rate=rate))
    samples, got = read_wav(path)
    assert got == rate and samples.shape == (1600,)


@pytest.mark.parametrize("channels", [0, 65, 100, 65535])
def test_channel_counts_outside_the_limits_are_refused(tmp_path, channels):
    path = tmp_path / "c.wav"
    path.write_bytes(_header(channels=channels, data=b"\0" * 65535 * 2))
    with pytest.raises(FormatError, match=f"bad header: {channels} channels \\(1 to 64 are read\\)"):
        read_wav(path)


def test_64_channels_are_mixed_down(tmp_path):
    x = np.zeros((50, 64), np.int16)
    x[:, 63] = 6400  # one loud channel among 64: the mean is 100
    path = tmp_path / "c64.wav"
    path.write_bytes(_header(channels=64, data=x.astype("<i2").tobytes()))
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, np.full(50, 100 / 32768), rtol=1e-6)


@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_non_finite_float_samples_are_refused(tmp_path, poison):
    x = np.zeros(1000, "<f4")
    x[10:20] = poison
    path = tmp_path / "f.wav"
    path.write_bytes(_header(bits=32, tag=3, data=x.tobytes()))
    with pytest.raises(FormatError, match="10 of 1000 float samples are NaN or infinite"):
        read_wav(path)
    everything = np.full(1000, np.nan, "<f8")
    path.write_bytes(_header(bits=64, tag=3, data=everything.tobytes()))
    with pytest.raises(FormatError, match="1000 of 1000 float samples are NaN or infinite"):
        read_wav(path)
