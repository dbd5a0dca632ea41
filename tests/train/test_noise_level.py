"""``kwsc train --wav_files`` says how loud the background noise it mixes is against the speech (the streaming
benchmark's word level and dB), warns when even the loudest mixing is inaudible, and records it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.audio.level import speech_level, word_bounds  # noqa: E402
from kwsc.audio.wav import write_wav  # noqa: E402
from kwsc.cli import main  # noqa: E402
from kwsc.evaluate import streaming  # noqa: E402
from kwsc.train.waveform import (WaveformTrainingSet, load_waveform_training_set, noise_snr_db,  # noqa: E402
                                 noise_snr_line)

PARAMS = [16000, 512, 80, 40, 40]
CATEGORIES = ["_silence_", "no", "yes"]
TINY = ["--hidden_units", "8", "--batch_size", "4", "--threads", "1", "--no_progress", "--epochs", "1",
        "--stream_training", "0", "--seed", "3"]


def _word(rng, level):
    """A 1 s clip: 0.4 s of a sine at RMS ``level`` in the middle, exact silence around it."""
    clip = np.zeros(16000, np.float32)
    t = np.arange(6400) / 16000
    clip[4800:11200] = level * math.sqrt(2) * np.sin(2 * np.pi * 440 * t + rng.uniform(0, 6))
    return clip


def _square(n, level):
    """Noise of RMS exactly ``level``: ±level."""
    return (level * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)).astype(np.float32)


def _folder(root, word_levels=(0.08, 0.1, 0.12), noise_levels=(0.002, 0.005), silence=0.3):
    rng = np.random.default_rng(0)
    entries = []
    for word, lab in enumerate(("yes", "no")):
        (root / lab).mkdir(parents=True)
        for i, level in enumerate(word_levels):
            write_wav(root / lab / f"{i}.wav", _word(rng, level), 16000)
            entries.append(f"{lab}/{i}.wav")
    (root / "_silence_").mkdir()
    for i in range(2):  # loud, but no word: not counted (counted, they would lift the median to 0.11)
        write_wav(root / "_silence_" / f"{i}.wav", _square(16000, silence), 16000)
        entries.append(f"_silence_/{i}.wav")
    if noise_levels:
        (root / "_background_noise_").mkdir()
        for i, level in enumerate(noise_levels):
            write_wav(root / "_background_noise_" / f"n{i}.wav", _square(40000, level), 16000)
    (root / "list.txt").write_text("".join(e + "\n" for e in entries))
    return root


def test_the_speech_level_is_the_benchmarks_median_word_rms():
    rng = np.random.default_rng(0)
    clips = [_word(rng, level) for level in (0.05, 0.1, 0.2)]
    start, end = word_bounds(clips[0], 16000)
    assert (start, end) == (0.3, 0.7)  # the sine's 0.4 s, silence excluded
    assert speech_level(clips, 16000) == pytest.approx(0.1, rel=2e-3)
    assert streaming.word_bounds is word_bounds and streaming.SNR_DB == (30.0, 20.0, 10.0)


def test_snr_is_the_hand_computed_one_and_the_warning_comes_only_when_inaudible():
    quiet = noise_snr_db(0.1, {"a.wav": 0.002, "b.wav": 0.006}, 0.1)
    assert quiet["loudest"] == pytest.approx(20 * math.log10(0.1 / 0.0006), abs=0.01)  # 44.4 dB
    assert quiet["recordings"]["a.wav"]["snr_db"] == pytest.approx(20 * math.log10(0.1 / 0.0002), abs=0.01)  # 54
    assert quiet["inaudible"] and quiet["suggested_wave_noise_max"] == pytest.approx(5.3)  # 0.1·10^-0.5 / 0.006
    line = noise_snr_line(quiet)
    assert line.startswith("kwsc train: background noise mixed at >= 44 dB below the speech")
    assert "0.002-0.006 x <= 0.1" in line and "30/20/10 dB" in line
    assert "inaudible" in line and "--wave_noise_max 5.3" in line
    # the suggestion does what it says: the loudest recording at 10 dB, audible
    fixed = noise_snr_db(0.1, {"a.wav": 0.002, "b.wav": 0.006}, quiet["suggested_wave_noise_max"])
    assert fixed["loudest"] == pytest.approx(10.0, abs=0.1) and not fixed["inaudible"]
    assert "inaudible" not in noise_snr_line(fixed) and "--wave_noise_max" not in noise_snr_line(fixed)
    loud = noise_snr_db(0.1, {"a.wav": 0.1}, 0.1)
    assert loud["loudest"] == pytest.approx(20.0) and not loud["inaudible"]
    off = noise_snr_db(0.1, {"a.wav": 0.1}, 0.0)  # --wave_noise_max 0: nothing mixed
    assert off["loudest"] is None and off["inaudible"] and "inaudible" in noise_snr_line(off)
    json.dumps(quiet, allow_nan=False)


def test_the_loader_measures_words_and_recordings(tmp_path):
    folder = _folder(tmp_path / "w")
    options = {"wave_noise_prob": 0.5, "wave_noise_max": 0.1}
    data = load_waveform_training_set(folder, folder / "list.txt", CATEGORIES, PARAMS, options, torch.device("cpu"))
    report = data.noise_snr
    assert report["speech_rms"] == pytest.approx(0.1, rel=2e-3)  # median of the words; _silence_ left out
    assert report["recordings"]["n0.wav"]["rms"] == pytest.approx(0.002, rel=1e-2)  # 16-bit wav: 66/32768
    assert report["recordings"]["n1.wav"]["rms"] == pytest.approx(0.005, rel=1e-2)
    assert report["loudest"] == pytest.approx(20 * math.log10(0.1 / 0.0005), abs=0.1)  # 46 dB
    assert report["inaudible"]
    for off in ({"wave_noise_prob": 0.0, "wave_noise_max": 0.1}, {}):
        assert load_waveform_training_set(folder, folder / "list.txt", CATEGORIES, PARAMS, off,
                                          torch.device("cpu")).noise_snr is None
    bare = _folder(tmp_path / "bare", noise_levels=())
    assert load_waveform_training_set(bare, bare / "list.txt", CATEGORIES, PARAMS, options,
                                      torch.device("cpu")).noise_snr is None


def _dataset(folder, out):
    """npz lists whose features are the wavs' (load_waveform_training_set checks that they match)."""
    from kwsc.audio.wav import load_audio

    out.mkdir()
    entries = (folder / "list.txt").read_text().split()
    clips = np.stack([load_audio(folder / e, 16000) for e in entries])
    rows = WaveformTrainingSet(torch.from_numpy(clips), torch.zeros(len(clips), dtype=torch.long), None, PARAMS,
                               {}).featurize(torch.from_numpy(clips), None).numpy()
    labels = np.array([e.split("/")[0] for e in entries])
    for name in ("training_list", "validation_list", "testing_list"):
        np.savez(out / f"{name}.npz", features=rows.reshape(len(rows), -1), labels=labels,
                 valid_classes=np.array(CATEGORIES), parameters=np.array(PARAMS))
    (out / "training_list.txt").write_text((folder / "list.txt").read_text())
    return out


@pytest.mark.parametrize("noise", [True, False])
def test_train_says_it_once_and_records_it(tmp_path, capsys, noise):
    folder = _folder(tmp_path / "w", noise_levels=(0.002, 0.005) if noise else ())
    dataset = _dataset(folder, tmp_path / "ds")
    args = ["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "m"), "--wav_files", str(folder),
            "--wave_noise_prob", "0.8", "--wave_noise_max", "0.1", *TINY]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "background noise mixed" in line]
    results = json.loads((tmp_path / "m" / "train_results.json").read_text())
    if noise:
        assert len(lines) == 1 and "inaudible" in lines[0] and ">= 46 dB below the speech" in lines[0]
        assert results["noise_snr_db"]["loudest"] == pytest.approx(46.0, abs=0.1)
        assert set(results["noise_snr_db"]["recordings"]) == {"n0.wav", "n1.wav"}
    else:
        assert lines == [] and "noise_snr_db" not in results


def test_train_without_wav_files_says_nothing(tmp_path, capsys):
    from tests.train._synthetic import write_dataset

    dataset = write_dataset(tmp_path / "ds")
    assert main(["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "m"), *TINY]) == 0
    assert "background noise mixed" not in capsys.readouterr().out
    assert "noise_snr_db" not in json.loads((tmp_path / "m" / "train_results.json").read_text())
