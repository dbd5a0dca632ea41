"""``--extra_wavs``: more training clips from Speech-Commands-style folders (e.g. ``kwsc synth-dataset``'s espeak-ng
speakers) join the wavs ``--wav_files`` trains from, labelled by folder; other words become ``_unknown_``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.audio.wav import write_wav  # noqa: E402
from kwsc.cli import main  # noqa: E402
from kwsc.errors import InputError  # noqa: E402
from kwsc.train.waveform import extra_clip_entries, load_waveform_training_set  # noqa: E402

PARAMS = [16000, 512, 80, 40, 40]
CATEGORIES = ["_silence_", "_unknown_", "no", "yes"]


def _folder(root, words, clips=2, seed=0, noise=True):
    rng = np.random.default_rng(seed)
    for word in words:
        (root / word).mkdir(parents=True)
        for i in range(clips):
            write_wav(root / word / f"{i}.wav", rng.normal(0, 0.05, 16000).astype(np.float32), 16000)
    if noise:
        (root / "_background_noise_").mkdir()
        write_wav(root / "_background_noise_" / "n.wav", rng.normal(0, 0.1, 40000).astype(np.float32), 16000)
    return root


def test_extra_clips_join_the_listed_ones_with_their_folders_labels(tmp_path):
    real = _folder(tmp_path / "real", ("yes", "no"))
    (real / "list.txt").write_text("yes/0.wav\nno/1.wav\n")
    synth = _folder(tmp_path / "synth", ("yes", "cat", "dog"), clips=3, seed=1)
    entries = extra_clip_entries(synth, CATEGORIES)
    assert [(p.parent.name, label) for p, label in entries] == (
        [("cat", "_unknown_")] * 3 + [("dog", "_unknown_")] * 3 + [("yes", "yes")] * 3)  # no _background_noise_
    assert extra_clip_entries(synth, ["no", "yes"]) == [e for e in entries if e[1] == "yes"]  # no _unknown_ class
    data = load_waveform_training_set(real, real / "list.txt", CATEGORIES, PARAMS, {}, torch.device("cpu"),
                                      extra=(synth,))
    assert data.labels.tolist() == [3, 2] + [1] * 6 + [3] * 3
    from kwsc.audio.wav import load_audio
    assert np.array_equal(data.clips[-1].numpy(), load_audio(synth / "yes" / "2.wav", 16000))
    with pytest.raises(InputError, match="no such folder"):
        extra_clip_entries(tmp_path / "none", CATEGORIES)
    with pytest.raises(InputError, match="no <word>/\\*.wav clips"):
        extra_clip_entries(_folder(tmp_path / "other", ("cat",), noise=False), ["no", "yes"])


def test_extra_wavs_without_wav_files_is_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path), "--outdir", str(tmp_path / "o"), "--extra_wavs",
                 str(tmp_path), "--no_progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "extra_wavs" in err[0] and "--wav_files" in err[0]
    assert not (tmp_path / "o").exists()
