"""make_dataset: ELL's .npz layout and rows, equal to the streaming featurizer; bad files; resampling; noise."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

import kwsc.data.make_dataset as md
from kwsc.audio.wav import load_audio, write_wav
from kwsc.cli import main
from kwsc.data.make_dataset import clip_rows, make_dataset, padding_rows
from kwsc.data.training_list import read_lines
from kwsc.ir import save
from tests._graphs import gru_vad_graph
from tests.data.conftest import streamed_frames, tutorial_featurizer


def _ell_rows(frames: int, window: int, shift: int) -> list[list[int]]:
    """ELL's make_dataset loop, literally: frame indices of each row (-1 marks a padded row)."""
    buffer, rows, emitted = [], [], False
    for t in range(frames):
        buffer.append(t)
        while len(buffer) >= window:
            rows.append(buffer[:window])
            emitted = True
            buffer = buffer[shift:]
    while len(buffer) < window and (len(buffer) > window / 4 or not emitted):
        buffer.append(-1)
    if len(buffer) == window:
        rows.append(buffer)
    return rows


@pytest.mark.parametrize("window,shift", [(40, 40), (40, 10), (10, 3), (4, 1), (8, 20)])
def test_rows_follow_ells_sliding_and_padding_rule(window, shift):
    for frames in range(1, 130):
        expected = _ell_rows(frames, window, shift)
        pads = padding_rows(frames, window, shift)
        assert pads == sum(r.count(-1) for r in expected)
        real = np.arange(frames, dtype=np.float32)[:, None]
        got = clip_rows(real, np.full((pads, 1), -1, np.float32), window, shift)
        assert got.astype(int).tolist() == expected, (frames, window, shift)


def test_real_subset_three_lists(speech_dir, featurizer_path, tmp_path):
    lists = tmp_path / "lists"
    assert main(["make-training-list", "--wav_files", str(speech_dir), "--outdir", str(lists),
                 "--max_files_per_directory", "8"]) == 0
    categories = read_lines(lists / "categories.txt")
    for name, jobs in (("training", "2"), ("validation", "1"), ("testing", "2")):
        list_file = lists / f"{name}_list.txt"
        assert main(["make-dataset", "--list_file", str(list_file), "--wav_files", str(speech_dir),
                     "--featurizer", str(featurizer_path), "--window_size", "40", "--shift", "40",
                     "--jobs", jobs, "-q", "-o", str(lists)]) == 0
        entries = read_lines(list_file)
        with np.load(lists / f"{name}_list.npz") as data:  # numpy alone, no pickle
            assert sorted(data.files) == ["features", "labels", "parameters", "valid_classes"]
            assert data["features"].shape == (len(entries), 3200) and data["features"].dtype == np.float32
            assert np.isfinite(data["features"]).all()
            assert data["parameters"].tolist() == [16000, 512, 80, 40, 40]
            assert data["valid_classes"].tolist() == categories
            # rows grouped by label in order of first appearance (ELL), one row per one-second clip
            order = list(dict.fromkeys(e.split("/")[0] for e in entries))
            expected = [label for label in order for e in entries if e.split("/")[0] == label]
            assert data["labels"].tolist() == expected


def test_rows_equal_the_streaming_featurizer(speech_dir, featurizer_path, tmp_path):
    entries = [f"{w}/{sorted(p.name for p in (speech_dir / w).glob('*.wav'))[3]}" for w in ("yes", "left", "_unknown_")]
    (tmp_path / "list.txt").write_text("\n".join(entries) + "\n")
    (tmp_path / "categories.txt").write_text("yes\nleft\n_unknown_\n")
    result = make_dataset(tmp_path / "list.txt", featurizer_path, wav_root=speech_dir, jobs=1, progress=False)
    data = np.load(result.path)
    graph = tutorial_featurizer()
    for row, entry in zip(data["features"], entries):
        frames = streamed_frames(graph, load_audio(speech_dir / entry, 16000))
        assert frames.shape == (31, 80)
        row = row.reshape(40, 80)
        # the fast path rounds the FFT in float32, the reference interpreter in float64: ~1e-6 apart
        np.testing.assert_allclose(row[:31], frames, rtol=1e-5, atol=1e-5)
        # 9 padded rows: last real frame + N(0, (0.5·std(last))²), fresh noise per row
        noise = row[31:] - frames[-1]
        sigma = 0.5 * frames[-1].std()
        assert 0.85 * sigma < noise.std() < 1.15 * sigma  # 720 samples: the estimate is within ±3%·3
        assert abs(noise.mean()) < 0.15 * sigma
        assert not np.allclose(row[31], row[32])
    assert data["labels"].tolist() == ["yes", "left", "_unknown_"]


def _signal(rate: int, seconds: float = 1.0) -> np.ndarray:
    """The same band-limited sound at any rate: 12 tones under 3.4 kHz under a Gaussian envelope."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    tones = zip(rng.uniform(0.02, 0.1, 12), rng.uniform(80, 3400, 12), rng.uniform(0, 6, 12))
    return (sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in tones) * np.exp(-((t - 0.5) / 0.25) ** 2)).astype(
        np.float32)


@pytest.fixture()
def mixed_folder(tmp_path):
    """yes/: the sound at 16 kHz mono, at 44.1 kHz stereo 24-bit, at 8 kHz; a truncated wav; a text file."""
    root = tmp_path / "mixed"
    (root / "yes").mkdir(parents=True)
    write_wav(root / "yes" / "ref16k.wav", _signal(16000), 16000)
    side = 0.05 * np.sin(2 * np.pi * 300 * np.arange(44100) / 44100)  # cancels in the mix-down
    soundfile.write(root / "yes" / "stereo44k.wav", np.stack([_signal(44100) + side, _signal(44100) - side], 1),
                    44100, subtype="PCM_24")
    soundfile.write(root / "yes" / "narrow8k.wav", _signal(8000), 8000, subtype="PCM_16")
    good = (root / "yes" / "ref16k.wav").read_bytes()
    (root / "yes" / "truncated.wav").write_bytes(good[:20000])
    (root / "yes" / "text.wav").write_text("hello, I am not audio\n")
    names = ["ref16k", "stereo44k", "narrow8k", "truncated", "text"]
    (root / "list.txt").write_text("".join(f"yes/{n}.wav\n" for n in names))
    (root / "categories.txt").write_text("yes\n")
    return root


def test_bad_files_skipped_and_other_rates_resampled(mixed_folder, featurizer_path, capsys):
    args = ["make-dataset", "--list_file", str(mixed_folder / "list.txt"), "--featurizer", str(featurizer_path),
            "--max_bad", "0.5", "--jobs", "1", "-q", "-o", str(mixed_folder)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 2 file(s)" in err
    assert f"{mixed_folder / 'yes' / 'truncated.wav'}: truncated: the header announces 32000 bytes" in err
    assert f"{mixed_folder / 'yes' / 'text.wav'}: not a wav file" in err
    data = np.load(mixed_folder / "list.npz")
    assert data["features"].shape == (3, 3200)
    ref, stereo, narrow = (r.reshape(40, 80)[:31] for r in data["features"])
    # Resampling (polyphase Kaiser FIR) reproduces the in-band sound to ~1e-3 with transients at the clip ends;
    # in ln(1 + mel) that is < 0.005 below 4 kHz (bands < 60). Above 4 kHz the 8 kHz clip has nothing while the
    # 16-bit reference holds quantisation noise: < 0.05 there.
    assert np.abs(stereo - ref).max() < 0.005
    assert np.abs(narrow[:, :60] - ref[:, :60]).max() < 0.01
    assert np.abs(narrow - ref).max() < 0.05 and np.abs(narrow - ref).mean() < 0.002
    assert np.abs(ref).max() > 1.0  # the comparison is about real content


def test_too_many_bad_files_fail_with_exit_2(mixed_folder, featurizer_path, capsys):
    args = ["make-dataset", "--list_file", str(mixed_folder / "list.txt"), "--featurizer", str(featurizer_path),
            "--max_bad", "0.1", "--jobs", "1", "-q", "-o", str(mixed_folder)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "text.wav: not a wav file" in err
    assert "kwsc: error: 2 of 5 files could not be used (40.0% > --max_bad 10%); nothing written" in err
    assert not (mixed_folder / "list.npz").exists()


def test_entries_not_found_hint_at_wav_files_first_and_once(speech_dir, featurizer_path, tmp_path, capsys):
    # a list written outside the wav folder (make-training-list -o lists) read without --wav_files
    entries = [f"yes/{p.name}" for p in sorted((speech_dir / "yes").glob("*.wav"))[:60]]
    (tmp_path / "list.txt").write_text("\n".join(entries) + "\n")
    (tmp_path / "categories.txt").write_text("yes\n")
    args = ["make-dataset", "-l", str(tmp_path / "list.txt"), "-f", str(featurizer_path), "-q", "-o", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (f"kwsc: error: 60 of 60 list entries are not files (first: {tmp_path / entries[0]}); entries are "
                   f"read relative to {tmp_path}, the list's folder (set it with --wav_files); nothing written\n")
    assert not (tmp_path / "list.npz").exists()
    assert main([*args, "--wav_files", str(speech_dir)]) == 0 and (tmp_path / "list.npz").is_file()


def test_empty_list_is_an_error_and_writes_nothing(featurizer_path, tmp_path, capsys):
    (tmp_path / "list.txt").write_text("\n")
    (tmp_path / "categories.txt").write_text("yes\n")
    assert main(["make-dataset", "-l", str(tmp_path / "list.txt"), "-f", str(featurizer_path), "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"kwsc: error: {tmp_path / 'list.txt'}: the list names no files; nothing written\n"
    assert not (tmp_path / "list.npz").exists()


def test_classifier_given_as_featurizer_is_one_line_before_any_work(speech_dir, tmp_path, capsys):
    (tmp_path / "list.txt").write_text("yes/missing.wav\n")
    (tmp_path / "categories.txt").write_text("yes\n")
    save(gru_vad_graph(features=80), tmp_path / "classifier.kwsc")
    assert main(["make-dataset", "-l", str(tmp_path / "list.txt"), "-f", str(tmp_path / "classifier.kwsc"),
                 "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kwsc: error: --featurizer {tmp_path / 'classifier.kwsc'} is a classifier (GRU(")
    assert err.endswith("not a featurizer; give the audio featurizer (make_featurizer's featurizer.ell, or its "
                        "wrapped module)\n") and err.count("\n") == 1


def test_unknown_label_and_missing_categories(mixed_folder, featurizer_path, capsys):
    (mixed_folder / "categories.txt").write_text("no\n")
    assert main(["make-dataset", "-l", str(mixed_folder / "list.txt"), "-f", str(featurizer_path), "-q"]) == 2
    assert "has label 'yes', not among the categories (no)" in capsys.readouterr().err
    (mixed_folder / "categories.txt").unlink()
    assert main(["make-dataset", "-l", str(mixed_folder / "list.txt"), "-f", str(featurizer_path), "-q"]) == 2
    assert "no such categories file" in capsys.readouterr().err


@pytest.fixture()
def twenty(speech_dir, tmp_path):
    entries = [f"yes/{p.name}" for p in sorted((speech_dir / "yes").glob("*.wav"))[:20]]
    (tmp_path / "list.txt").write_text("\n".join(entries) + "\n")
    (tmp_path / "categories.txt").write_text("yes\n")
    return tmp_path / "list.txt"


def test_noise_mixing_picks_the_stated_fraction(twenty, speech_dir, featurizer_path, tmp_path):
    common = dict(wav_root=speech_dir, progress=False, jobs=1)
    plain = make_dataset(twenty, featurizer_path, outdir=tmp_path / "plain", **common)
    noisy = make_dataset(twenty, featurizer_path, outdir=tmp_path / "noisy", noise_path=speech_dir /
                         "_background_noise_", noise_selection=0.25, max_noise_ratio=0.3, seed=3, **common)
    assert noisy.mixed == 5
    a = np.load(plain.path)["features"].reshape(20, 40, 80)
    b = np.load(noisy.path)["features"].reshape(20, 40, 80)
    changed = ~np.isclose(a[:, :31], b[:, :31], atol=1e-6).all(axis=(1, 2))
    assert changed.sum() == 5  # ELL's bug would mix every file after the first selected one
    again = make_dataset(twenty, featurizer_path, outdir=tmp_path / "again", noise_path=speech_dir /
                         "_background_noise_", noise_selection=0.25, max_noise_ratio=0.3, seed=3, **common)
    assert again.path.read_bytes() == noisy.path.read_bytes()
    other = make_dataset(twenty, featurizer_path, outdir=tmp_path / "other", noise_path=speech_dir /
                         "_background_noise_", noise_selection=0.25, max_noise_ratio=0.3, seed=4, **common)
    c = np.load(other.path)["features"].reshape(20, 40, 80)
    assert (~np.isclose(a[:, :31], c[:, :31], atol=1e-6).all(axis=(1, 2)) != changed).any()


def test_same_bytes_whatever_the_number_of_jobs(twenty, speech_dir, featurizer_path, tmp_path, monkeypatch):
    monkeypatch.setattr(md, "CHUNK_FILES", 3)  # several chunks, spread over the workers
    kwargs = dict(wav_root=speech_dir, progress=False, noise_path=speech_dir / "_background_noise_",
                  noise_selection=0.5, seed=9)
    one = make_dataset(twenty, featurizer_path, outdir=tmp_path / "one", jobs=1, **kwargs)
    threads = make_dataset(twenty, featurizer_path, outdir=tmp_path / "threads", jobs=3, **kwargs)
    processes = make_dataset(twenty, featurizer_path, outdir=tmp_path / "processes", jobs=2, processes=True, **kwargs)
    assert one.path.read_bytes() == threads.path.read_bytes() == processes.path.read_bytes()
    assert one.rows == 20


def test_mixed_clips_are_padded_with_featurized_noise(twenty, speech_dir, featurizer_path, tmp_path):
    from kwsc.audio.noise import NoiseMixer

    noise_dir = speech_dir / "_background_noise_"
    result = make_dataset(twenty, featurizer_path, outdir=tmp_path, wav_root=speech_dir, noise_path=noise_dir,
                          noise_selection=1.0, max_noise_ratio=0.3, seed=11, jobs=1, progress=False)
    assert result.mixed == 20
    rows = np.load(result.path)["features"].reshape(20, 40, 80)
    mixer = NoiseMixer.from_folder(noise_dir, 16000, max_ratio=0.3, selection=1.0)
    plan = mixer.plan(20, seed=11)
    graph = tutorial_featurizer()
    for k, entry in enumerate(read_lines(twenty)[:2]):
        samples = load_audio(speech_dir / entry, 16000)
        assert len(samples) == 16000 and 0 < plan[k].gain <= 0.3
        # the stream ELL feeds: the mixed clip (last chunk zero-padded), then 9 noise chunks continuing the noise
        stream = np.zeros(32 * 512 + 9 * 512, np.float32)
        stream[:16000] = mixer.mix(samples, plan[k])
        stream[32 * 512:] = mixer.noise(plan[k], 9 * 512, skip=16000)
        np.testing.assert_allclose(rows[k], streamed_frames(graph, stream), rtol=1e-5, atol=1e-5)


def test_long_file_slides_like_ell(speech_dir, featurizer_path, tmp_path):
    """3.2 s of background noise, window 40 / shift 20: every row equals ELL's loop over the streamed frames."""
    noise = load_audio(speech_dir / "_background_noise_" / "running_tap.wav", 16000)[:51200]
    (tmp_path / "tap").mkdir()
    write_wav(tmp_path / "tap" / "long.wav", noise, 16000)
    (tmp_path / "list.txt").write_text("tap/long.wav\n")
    (tmp_path / "categories.txt").write_text("tap\n")
    result = make_dataset(tmp_path / "list.txt", featurizer_path, window_size=40, shift=20, jobs=1, progress=False)
    rows = np.load(result.path)["features"].reshape(-1, 40, 80)
    frames = streamed_frames(tutorial_featurizer(), load_audio(tmp_path / "tap" / "long.wav", 16000))
    assert len(frames) == 99
    expected = _ell_rows(99, 40, 20)  # starts 0, 20, 40 (full), then 60..98 = 39 frames + 1 padded row
    assert len(rows) == len(expected) == 4
    for row, indices in zip(rows, expected):
        real = [i for i in indices if i >= 0]
        np.testing.assert_allclose(row[:len(real)], frames[real], rtol=1e-5, atol=1e-5)


def test_hostile_wav_headers_are_skipped_and_reported(featurizer_path, tmp_path, capsys):
    """A 2^31−1 Hz header (was: internal error MemoryError), a 1 Hz one (was: 12,500 rows from 32 KB), an all-NaN
    float wav (was: counted as used with 0 rows) and 100 channels are skipped like any unreadable file."""
    from tests.audio.test_wav import _header

    root = tmp_path / "hostile"
    (root / "yes").mkdir(parents=True)
    write_wav(root / "yes" / "good.wav", _signal(16000), 16000)
    pcm = (_signal(16000) * 32767).astype("<i2").tobytes()
    (root / "yes" / "huge_rate.wav").write_bytes(_header(rate=2**31 - 1, data=pcm))
    (root / "yes" / "one_hz.wav").write_bytes(_header(rate=1, data=pcm))
    (root / "yes" / "nan.wav").write_bytes(_header(bits=32, tag=3, data=np.full(16000, np.nan, "<f4").tobytes()))
    (root / "yes" / "channels.wav").write_bytes(_header(channels=100, data=pcm))
    names = ["good", "huge_rate", "one_hz", "nan", "channels"]
    (root / "list.txt").write_text("".join(f"yes/{n}.wav\n" for n in names))
    (root / "categories.txt").write_text("yes\n")
    args = ["make-dataset", "--list_file", str(root / "list.txt"), "--featurizer", str(featurizer_path), "--jobs",
            "1", "-q", "-o", str(root)]
    assert main([*args, "--max_bad", "0.8"]) == 0
    out, err = capsys.readouterr()
    assert "skipped 4 file(s)" in err and "internal error" not in err
    yes = root / "yes"
    assert f"{yes / 'huge_rate.wav'}: bad header: sample rate 2147483647 Hz (outside 1000 Hz to 384 kHz)" in err
    assert f"{yes / 'one_hz.wav'}: bad header: sample rate 1 Hz" in err
    assert f"{yes / 'nan.wav'}: 16000 of 16000 float samples are NaN or infinite" in err
    assert f"{yes / 'channels.wav'}: bad header: 100 channels (1 to 64 are read)" in err
    assert "1 rows from 1 of 5 files" in out
    assert np.load(root / "list.npz")["features"].shape == (1, 3200)
    # with the default --max_bad the same list fails, one line, and nothing is written
    (root / "list.npz").unlink()
    assert main(args) == 2
    assert "kwsc: error: 4 of 5 files could not be used" in capsys.readouterr().err
    assert not (root / "list.npz").exists()
