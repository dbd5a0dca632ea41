"""`kwsc listen --wav` and `kwsc vad-tune` as a user runs them, on audio whose right answer is known.

The classifier is built by hand: it says "tone" when the 1 kHz mel band (28) is loud, "_silence_" otherwise,
so a 1 kHz tone between silences must give exactly one detection, at the tone.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from kwsc.audio.wav import write_wav
from kwsc.ir import Graph, save, verify

SR = 16000


def kwsc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("listen")
    proc = kwsc("make-featurizer", "--sample_rate", SR, "--window_size", 512, "--input_buffer_size", 512,
                "--hamming_window", "--filterbank_type", "mel", "--filterbank_size", 80, "--filterbank_nfft", 512,
                "--nfft", 512, "--log", "--auto_scale", "-o", d / "featurizer.kwsc")
    assert proc.returncode == 0, proc.stderr
    g = Graph("tone_detector")
    x = g.add_input([80])
    w = np.zeros((2, 80), np.float32)
    w[1, 28] = 4.0  # "tone" grows with the 1 kHz band's log energy
    b = np.array([4.0, 0.0], np.float32)  # "_silence_" wins until that band's log energy passes 1
    g.add_output(g.op1("Softmax", g.op1("Dense", x, g.add_constant(w), g.add_constant(b))))
    save(verify(g), d / "classifier.kwsc")
    (d / "categories.txt").write_text("_silence_\ntone\n")
    t = np.arange(SR) / SR
    quiet = np.random.default_rng(0).normal(0, 1e-4, SR).astype(np.float32)
    tone = quiet.copy()
    tone[int(0.25 * SR): int(0.75 * SR)] += 0.3 * np.sin(2 * np.pi * 1000 * t[: int(0.5 * SR)])
    for name, audio in (("quiet.wav", quiet), ("tone.wav", tone)):
        write_wav(d / name, audio, SR)
    return d


def test_listen_detects_the_tone_once_at_the_right_time(models):
    d = models
    proc = kwsc("listen", "--featurizer", d / "featurizer.kwsc", "--classifier", d / "classifier.kwsc",
                "--categories", d / "categories.txt", "--wav", d / "quiet.wav", d / "tone.wav", d / "quiet.wav",
                "--fast", "--threshold", "0.8", "--smoothing", "1")
    assert proc.returncode == 0, proc.stderr
    found = re.findall(r"^DETECTED (\S+) p=([\d.]+) at t=([\d.]+)s$", proc.stdout, re.M)
    assert len(found) == 1, proc.stdout
    label, p, t = found[0][0], float(found[0][1]), float(found[0][2])
    # the stream is quiet (1 s) + 0.5 s gap, then the tone file: the tone spans 1.75 s – 2.25 s
    assert label == "tone" and p > 0.8
    assert 1.75 <= t <= 1.75 + 0.1


def test_listen_without_an_audio_device_is_one_clear_line(models):
    d = models
    proc = kwsc("listen", "--featurizer", d / "featurizer.kwsc", "--classifier", d / "classifier.kwsc",
                "--categories", d / "categories.txt", "--seconds", "0.1")
    if proc.returncode == 0:
        pytest.skip("this machine has an audio input device")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "audio" in proc.stderr


def test_vad_tune_frames_the_tone_and_draws_it(models):
    d = models
    out = d / "vad.png"
    proc = kwsc("vad-tune", "--featurizer", d / "featurizer.kwsc", d / "tone.wav", "-o", out)
    assert proc.returncode == 0, proc.stderr
    segments = re.findall(r"^\s+([\d.]+)s – \s*([\d.]+)s", proc.stdout, re.M)
    assert len(segments) == 1, proc.stdout
    start, end = map(float, segments[0])
    assert start == pytest.approx(0.25, abs=0.07) and end == pytest.approx(0.75, abs=0.1)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
