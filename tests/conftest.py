"""Shared fixtures: where ../shared is, the ELL reference vectors, real speech clips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KWSC_SHARED", REPO.parent / "shared"))
TESTDATA = SHARED / "reference" / "ell-testdata"
SPEECH = SHARED / "data" / "speech_commands_subset"


def ell_vectors(name: str) -> dict:
    """One of ELL's reference-vector JSON files from ../shared/reference/ell-testdata."""
    path = TESTDATA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    if not SPEECH.exists():
        pytest.skip(f"{SPEECH} not present")
    return SPEECH


def read_wav_float(path: Path) -> np.ndarray:
    """A 16-bit wav as float32 in [-1, 1) (÷32768, as ELL's WavReader with auto_scale); independent of kwsc."""
    import wave

    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def real_speech(speech_dir) -> np.ndarray:
    """About 5 s of real speech: five one-second keyword clips back to back (float32, 16 kHz)."""
    clips = []
    for word in ("yes", "no", "up", "down", "stop"):
        files = sorted((speech_dir / word).glob("*.wav"))
        clips.append(read_wav_float(files[0]))
    return np.concatenate(clips)
