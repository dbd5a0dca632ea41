"""synth-dataset: a Speech-Commands-style corpus from espeak-ng: layout, determinism, speaker-disjoint splits,
and the rest of the pipeline accepting it."""

from __future__ import annotations

import subprocess
import sys
import wave

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from kwsc.cli import main  # noqa: E402
from kwsc.data.synth import speaker_id, speaker_pool, synth_dataset  # noqa: E402
from kwsc.data.training_list import read_lines  # noqa: E402
from kwsc.errors import InputError  # noqa: E402

WORDS = ["yes", "no", "marvin"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    result = synth_dataset(out, words=WORDS, variants=10, seed=3, jobs=2, progress=False, silence=10)
    return out, result


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout(corpus):
    out, result = corpus
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["_background_noise_", "_silence_", "marvin",
                                                                   "no", "yes"]
    assert result.clips == 30 and result.speakers == 10
    for word in WORDS:
        clips = sorted((out / word).glob("*.wav"))
        assert len(clips) == 10
        for clip in clips:
            assert clip.name.endswith("_nohash_0.wav") and len(clip.name.split("_")[0]) == 8
            with wave.open(str(clip)) as w:
                assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 16000)
                x = np.frombuffer(w.readframes(16000), "<i2") / 32768.0
            loud = np.flatnonzero(np.abs(x) > 0.1 * np.abs(x).max())
            assert np.abs(x).max() > 0.1 and 0.1 < (loud[-1] - loud[0]) / 16000 < 0.95  # a word, not silence
    # _silence_: one clip per speaker, one second of generated noise, from near-silence to loud, never a word
    silence = sorted((out / "_silence_").glob("*.wav"))
    assert len(silence) == 10
    levels = []
    for clip in silence:
        with wave.open(str(clip)) as w:
            assert w.getnframes() == 16000
            x = np.frombuffer(w.readframes(16000), "<i2") / 32768.0
        levels.append(np.sqrt(np.mean(x ** 2)))
        assert np.abs(x).max() < 1.0
    assert min(levels) < 1e-3 < max(levels)
    noise = sorted(p.name for p in (out / "_background_noise_").glob("*.wav"))
    assert noise == ["babble.wav", "brown_noise.wav", "mains_hum.wav", "pink_noise.wav", "white_noise.wav"]
    for p in (out / "_background_noise_").glob("*.wav"):
        with wave.open(str(p)) as w:
            assert 10 * 16000 <= w.getnframes() <= 60 * 16000


def test_splits_are_disjoint_by_speaker(corpus):
    out, result = corpus
    validation = read_lines(out / "validation_list.txt")
    testing = read_lines(out / "testing_list.txt")
    assert len(validation) == result.validation == 4 and len(testing) == result.testing == 4
    # one _silence_ clip in each held-out list (every tenth clip, as the speakers), the rest for training
    assert [e for e in testing if e.startswith("_silence_/")] == ["_silence_/noise0000_nohash_0.wav"]
    assert [e for e in validation if e.startswith("_silence_/")] == ["_silence_/noise0001_nohash_0.wav"]
    validation = [e for e in validation if not e.startswith("_silence_/")]
    testing = [e for e in testing if not e.startswith("_silence_/")]
    speakers = {split: {e.split("/")[1].split("_")[0] for e in entries}
                for split, entries in (("validation", validation), ("testing", testing))}
    every = {p.name.split("_")[0] for p in out.glob("*/*_nohash_0.wav") if p.parent.name != "_silence_"}
    training = every - speakers["validation"] - speakers["testing"]
    assert len(every) == 10 and len(training) == 8
    assert not speakers["validation"] & speakers["testing"]
    # a held-out speaker's every word is held out with it
    assert sorted(validation) == sorted(f"{w}/{s}_nohash_0.wav" for w in WORDS for s in speakers["validation"])
    assert every <= {speaker_id(s) for s in speaker_pool()}


def test_same_seed_same_bytes_any_jobs_other_seed_differs(corpus, tmp_path):
    out, _ = corpus
    synth_dataset(tmp_path / "again", words=WORDS, variants=10, seed=3, jobs=1, progress=False, silence=10)
    assert _files(tmp_path / "again") == _files(out)
    synth_dataset(tmp_path / "other", words=WORDS[:1], variants=4, seed=4, jobs=1, progress=False)
    first = _files(out)
    assert not any(first.get(k) == v for k, v in _files(tmp_path / "other").items() if k.endswith(".wav"))


def test_the_pipeline_accepts_it(corpus, featurizer_path, tmp_path):
    out, _ = corpus
    assert main(["make-training-list", "-w", str(out), "-o", str(tmp_path)]) == 0
    assert read_lines(tmp_path / "categories.txt") == sorted(WORDS + ["_silence_"])
    for name in ("training", "validation", "testing"):
        assert main(["make-dataset", "-l", str(tmp_path / f"{name}_list.txt"), "-w", str(out),
                     "-f", str(featurizer_path), "--noise_path", str(out / "_background_noise_"), "-j", "1",
                     "-q", "-o", str(tmp_path)]) == 0
    with np.load(tmp_path / "training_list.npz") as data:
        assert data["features"].shape == (24 + 8, 3200) and data["parameters"].tolist() == [16000, 512, 80, 40, 40]


def test_repeats_are_different_utterances(tmp_path):
    result = synth_dataset(tmp_path, words=["go"], variants=2, repeats=3, seed=0, jobs=1, progress=False)
    assert result.clips == 6
    assert not (tmp_path / "_silence_").exists()  # v0.01's layout by default
    for speaker in {p.name.split("_")[0] for p in (tmp_path / "go").glob("*.wav")}:
        takes = [(tmp_path / "go" / f"{speaker}_nohash_{r}.wav").read_bytes() for r in range(3)]
        assert len(set(takes)) == 3


def test_a_failing_or_dying_worker_is_one_clear_error(tmp_path, monkeypatch):
    import os

    import kwsc.data.synth as synth
    from kwsc.errors import ToolchainError

    def broken(*args):
        raise InputError("espeak said no")

    monkeypatch.setattr(synth, "_speak", broken)  # forked workers inherit the patch
    with pytest.raises(ToolchainError, match="speech synthesis for .* failed: espeak said no"):
        synth_dataset(tmp_path / "a", words=["yes"], variants=2, jobs=1, progress=False)
    monkeypatch.setattr(synth, "_speak", lambda *args: os._exit(3))
    with pytest.raises(ToolchainError, match="the worker process died"):
        synth_dataset(tmp_path / "b", words=["yes"], variants=2, jobs=2, progress=False)


def test_bad_arguments():
    with pytest.raises(InputError, match="variants"):
        synth_dataset("unused", words=["yes"], variants=0)
    with pytest.raises(InputError, match="repeats"):
        synth_dataset("unused", words=["yes"], variants=2, repeats=0)
    with pytest.raises(InputError, match="folder name"):
        synth_dataset("unused", words=["../evil"], variants=2)


def test_espeak_is_reproducible_per_call_sequence():
    # in a subprocess: loading espeak-ng here would make later synth runs fall back to a fork server
    code = ("from kwsc.audio.espeak import Espeak; import hashlib; e = Espeak(); "
            "print(e.sample_rate, hashlib.md5(e.say('seven', 'en-us+whisper', seed=5).tobytes()).hexdigest())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1 and runs.pop().startswith("22050 ")


def test_cli(tmp_path, capsys):
    assert main(["synth-dataset", str(tmp_path / "c"), "--words", "up,down", "--variants", "3", "--repeats", "2",
                 "--seed", "1", "--jobs", "1", "-q"]) == 0
    assert "wrote 12 clips of 2 words by 3 speakers" in capsys.readouterr().out
    assert len(list((tmp_path / "c").glob("*/*_nohash_1.wav"))) == 6
    assert main(["synth-dataset", str(tmp_path / "d"), "--variants", "0"]) == 2
    assert "--variants must be within 1..464" in capsys.readouterr().err
