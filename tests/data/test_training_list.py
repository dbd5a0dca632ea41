"""make_training_list: ELL's rules (§5.1), seeded, losing none of the user's files."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.audio.wav import write_wav
from kwsc.cli import main
from kwsc.data.training_list import make_training_list, read_lines
from kwsc.errors import InputError


@pytest.fixture()
def corpus(tmp_path):
    """yes/ (6 files), no/ (4 files), _background_noise_/ (1), held-out lists naming some of them."""
    root = tmp_path / "data"
    for word, n in (("yes", 6), ("no", 4), ("_background_noise_", 1)):
        (root / word).mkdir(parents=True)
        for i in range(n):
            write_wav(root / word / f"s{i}_nohash_0.wav", np.zeros(160, np.float32), 16000)
    (root / "validation_list.txt").write_text("yes/s0_nohash_0.wav\nno/s0_nohash_0.wav\nno/gone.wav\n")
    (root / "testing_list.txt").write_text("yes/s1_nohash_0.wav\n")
    (root / "notes.txt").write_text("not a category\n")
    return root


def test_ell_rules(corpus, tmp_path):
    out = tmp_path / "lists"
    result = make_training_list(corpus, out, max_files_per_directory=3, seed=1)
    assert read_lines(out / "categories.txt") == ["no", "yes"] == result.categories
    training = read_lines(out / "training_list.txt")
    # capped at 3 per category, grouped by category in sorted order, none held out
    assert [e.split("/")[0] for e in training] == ["no"] * 3 + ["yes"] * 3
    assert len(set(training)) == 6
    assert not {"yes/s0_nohash_0.wav", "yes/s1_nohash_0.wav", "no/s0_nohash_0.wav"} & set(training)
    assert result.candidates == {"no": 3, "yes": 4}
    # cleaned copies: the missing entry is left out and reported
    assert sorted(read_lines(out / "validation_list.txt")) == ["no/s0_nohash_0.wav", "yes/s0_nohash_0.wav"]
    assert read_lines(out / "testing_list.txt") == ["yes/s1_nohash_0.wav"]
    assert result.missing_listed == ["no/gone.wav"]


def test_seeded_and_the_data_folder_untouched(corpus, tmp_path):
    before = {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()}
    a = make_training_list(corpus, tmp_path / "a", max_files_per_directory=2, seed=5)
    b = make_training_list(corpus, tmp_path / "b", max_files_per_directory=2, seed=5)
    assert (tmp_path / "a" / "training_list.txt").read_bytes() == (tmp_path / "b" / "training_list.txt").read_bytes()
    others = {tuple(make_training_list(corpus, tmp_path / f"s{s}", 2, seed=s).training) for s in range(8)}
    assert len(others) > 1  # the seed matters
    assert a.training == b.training
    assert {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()} == before


def test_bad_list_is_removed_everywhere_and_missing_entries_reported(corpus, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("yes/s0_nohash_0.wav\nyes/s2_nohash_0.wav\nyes/not_there.wav\n")
    result = make_training_list(corpus, tmp_path / "out", bad_list=bad)
    assert "yes/s2_nohash_0.wav" not in result.training
    assert "yes/s0_nohash_0.wav" not in result.validation
    assert result.missing_bad == ["yes/not_there.wav"]
    # ELL also looks for the bad list inside the wav folder
    (corpus / "bad_in_data.txt").write_text("no/s3_nohash_0.wav\n")
    result = make_training_list(corpus, tmp_path / "out2", bad_list="bad_in_data.txt")
    assert "no/s3_nohash_0.wav" not in result.training
    with pytest.raises(InputError, match="no such bad list"):
        make_training_list(corpus, tmp_path / "out3", bad_list="nope.txt")


def test_in_place_output_cleans_the_held_out_lists_and_keeps_the_originals(corpus):
    before = {p.name: p.read_bytes() for p in corpus.glob("*_list.txt")}
    result = make_training_list(corpus)  # default: into the wav folder, as ELL and the tutorial
    assert (corpus / "training_list.txt").exists() and read_lines(corpus / "categories.txt") == ["no", "yes"]
    # the missing entry is cleaned out of validation_list.txt, in list order; the original is kept beside it
    assert read_lines(corpus / "validation_list.txt") == ["yes/s0_nohash_0.wav", "no/s0_nohash_0.wav"]
    assert (corpus / "validation_list.orig.txt").read_bytes() == before["validation_list.txt"]
    assert result.rewritten == {"validation_list.txt": "validation_list.orig.txt"}
    # an unchanged list is left alone (no backup), and a second run changes nothing and keeps the first original
    assert (corpus / "testing_list.txt").read_bytes() == before["testing_list.txt"]
    assert not (corpus / "testing_list.orig.txt").exists()
    (corpus / "bad.txt").write_text("yes/s1_nohash_0.wav\n")
    result = make_training_list(corpus, bad_list="bad.txt")
    assert read_lines(corpus / "testing_list.txt") == [] and result.rewritten == {"testing_list.txt": "testing_list.orig.txt"}
    assert (corpus / "validation_list.orig.txt").read_bytes() == before["validation_list.txt"]
    assert (corpus / "testing_list.orig.txt").read_bytes() == before["testing_list.txt"]


def test_read_only_data_folder_is_one_line_before_any_work(corpus, tmp_path):
    corpus.chmod(0o555)
    try:
        with pytest.raises(InputError, match="cannot write the lists there.*--outdir"):
            make_training_list(corpus)
        assert make_training_list(corpus, tmp_path / "lists").training  # elsewhere it works
    finally:
        corpus.chmod(0o755)


def test_cli_on_the_real_subset(speech_dir, tmp_path, capsys):
    assert main(["make-training-list", "--wav_files", str(speech_dir), "--outdir", str(tmp_path)]) == 0
    training = read_lines(tmp_path / "training_list.txt")
    validation = read_lines(tmp_path / "validation_list.txt")
    testing = read_lines(tmp_path / "testing_list.txt")
    assert read_lines(tmp_path / "categories.txt") == sorted(
        d.name for d in speech_dir.iterdir() if d.is_dir() and d.name != "_background_noise_")
    assert len(validation) == len(read_lines(speech_dir / "validation_list.txt"))
    assert len(testing) == len(read_lines(speech_dir / "testing_list.txt"))
    total = sum(1 for p in speech_dir.glob("*/*.wav") if p.parent.name != "_background_noise_")
    assert len(training) + len(validation) + len(testing) == total
    assert not set(training) & (set(validation) | set(testing))
    assert "training_list.txt" in capsys.readouterr().out
    assert main(["make-training-list", "--wav_files", str(tmp_path / "missing")]) == 2
