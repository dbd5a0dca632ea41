"""--stream_training: the sequence builder puts clips, gaps and frame targets where it says, the loss is the
weighted frame cross entropy, and training with it makes a GRU let go of a word in a continuous stream (a
reset-trained one keeps claiming it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.cli import main  # noqa: E402
from kwsc.train.models import KeywordSpotter  # noqa: E402
from kwsc.train.stream_training import BACKGROUND, IGNORE, WORD, StreamTraining, word_bounds  # noqa: E402
from kwsc.train.vad_training import padding_bank  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

PARAMETERS = [16000, 512, 80, 40, 40]  # the tutorial featurizer: 32 ms frames, 31 real frames per 1 s clip


def _clips(n: int, generator: torch.Generator):
    """Clips of 31 frames: a quiet floor with a loud "word" over frames [first, last] (known), labels 1..3, and
    background clips (label 0, no word)."""
    first = torch.randint(0, 12, (n,), generator=generator)
    last = first + torch.randint(3, 15, (n,), generator=generator)
    frames = torch.arange(31)[None, :]
    speech = (frames >= first[:, None]) & (frames <= last[:, None])
    x = torch.full((n, 40, 80), 0.05) + 0.01 * torch.rand(n, 40, 80, generator=generator)
    x[:, :31] += 3.0 * speech[..., None]
    labels = torch.randint(1, 4, (n,), generator=generator)
    labels[::5] = 0
    x[::5, :31] = 0.05 + 0.01 * torch.rand(len(x[::5]), 31, 80, generator=generator)
    return x, labels, first, last


def test_word_bounds_find_the_loud_frames():
    x, _, first, last = _clips(20, torch.Generator().manual_seed(0))
    found_first, found_last = word_bounds(x[1::5, :31])
    assert torch.equal(found_first, first[1::5]) and torch.equal(found_last, last[1::5])


def test_sequences_hold_the_clips_the_gaps_and_the_targets_where_they_belong():
    generator = torch.Generator().manual_seed(3)
    x, labels, first, last = _clips(40, generator)
    st = StreamTraining(PARAMETERS, 4, 0, torch.device("cpu"), seconds=8.0, gap=(0.3, 1.5), target_frames=10,
                        sequences=6)
    assert st.length == 250 and st.gap_frames == (9, 47) and st.real == 31
    batch = st.build(x, labels, torch.Generator().manual_seed(4))
    assert batch.features.shape == (6, 250, 80) and batch.kind.shape == (6, 250)
    pad = padding_bank(16000, 512, 80, torch.device("cpu"))
    placed_words = 0
    for b in range(6):
        starts, clip, placed = batch.starts[b].tolist(), batch.clip[b].tolist(), batch.placed[b].tolist()
        gaps = np.diff([0] + [s for s in starts])
        gaps[1:] -= 31
        assert (gaps >= 9).all() and (gaps <= 47).all()
        assert placed == [s + 31 + 10 <= 250 for s in starts] and any(placed)
        expected_kind = np.full(250, BACKGROUND)
        expected_features = np.full(250, -1)  # which clip frame each sequence frame is (-1: padding)
        for k, (s, c) in enumerate(zip(starts, clip)):
            if not placed[k]:
                continue
            end = starts[k + 1] if k + 1 < len(starts) else 250
            expected_features[s:s + 31] = c * 31 + np.arange(31)
            if labels[c] != 0:
                placed_words += 1
                word_start, word_end = s + int(first[c]), s + int(last[c])
                expected_kind[word_start:word_end] = IGNORE
                expected_kind[word_end:min(word_end + 10, end)] = WORD
                assert (batch.label[b, word_end:min(word_end + 10, end)] == labels[c]).all()
                assert int(batch.word_end[b, k]) == int(last[c])
        np.testing.assert_array_equal(batch.kind[b].numpy(), expected_kind)
        in_clip = expected_features >= 0
        source = x[:, :31].reshape(-1, 80)[expected_features[in_clip]]
        assert torch.equal(batch.features[b, torch.from_numpy(in_clip)], source)
        gap_frames = batch.features[b, torch.from_numpy(~in_clip)]
        # every gap frame is one of the bank's featurized padding frames (kwsc test's N(0, 8/32767) noise)
        assert bool((gap_frames[:, None, :] == pad[None]).all(dim=2).any(dim=1).all())
    assert placed_words >= 6


def test_noise_is_power_summed_over_the_whole_sequence():
    generator = torch.Generator().manual_seed(3)
    x, labels, _, _ = _clips(40, generator)
    bank = torch.full((500, 80), float(np.log1p(2.0)))  # a loud constant noise: linear magnitude 2
    quiet = StreamTraining(PARAMETERS, 4, 0, torch.device("cpu"), sequences=64)
    noisy = StreamTraining(PARAMETERS, 4, 0, torch.device("cpu"), sequences=64, noise_bank=bank, noise_max_gain=1.0)
    a = quiet.build(x, labels, torch.Generator().manual_seed(9))
    b = noisy.build(x, labels, torch.Generator().manual_seed(9))
    assert torch.equal(a.kind, b.kind)  # targets come from the clean clips' word bounds
    raised = (b.features - a.features).mean(dim=(1, 2))
    assert 0.3 < float((raised > 1e-3).float().mean()) < 0.9  # about 60 % of the sequences carry noise
    assert float(raised.max()) > 0.3 and float((b.features >= a.features - 1e-6).float().mean()) == 1.0


def test_loss_is_the_weighted_frame_cross_entropy():
    generator = torch.Generator().manual_seed(5)
    x, labels, _, _ = _clips(30, generator)
    st = StreamTraining(PARAMETERS, 4, 0, torch.device("cpu"), sequences=3, background_weight=0.25, confidence=0.4,
                        label_smoothing=0.1)
    np.testing.assert_allclose(st.target.numpy(), [0.4, 0.2, 0.2, 0.2], rtol=1e-6)
    batch = st.build(x, labels, torch.Generator().manual_seed(6))
    log_probs = torch.log_softmax(torch.randn(3, st.length, 4, generator=generator), dim=2)
    loss = float(st.frame_losses(log_probs, batch))
    lp, kind, label = log_probs.numpy(), batch.kind.numpy(), batch.label.numpy()
    total = weight = 0.0
    for b in range(3):
        for t in range(st.length):
            if kind[b, t] == WORD:
                q = np.full(4, 0.1 / 4)
                q[label[b, t]] += 0.9
                total, weight = total - (q * lp[b, t]).sum(), weight + 1
            elif kind[b, t] == BACKGROUND:
                total, weight = total - 0.25 * (np.array([0.4, 0.2, 0.2, 0.2]) * lp[b, t]).sum(), weight + 0.25
    assert (kind == WORD).sum() > 0 and (kind == IGNORE).sum() > 0
    assert loss == pytest.approx(total / weight, rel=1e-5)


def test_state_is_carried_to_the_next_batch_except_for_restarts():
    generator = torch.Generator().manual_seed(5)
    x, labels, _, _ = _clips(30, generator)
    st = StreamTraining(PARAMETERS, 4, 0, torch.device("cpu"), sequences=400, seconds=1.5, restart=0.25)
    model = KeywordSpotter("LSTM", 80, 4, 4, 2)
    st.loss(model, x, labels, generator)
    h, c = st.states[0]
    assert h.shape == (1, 400, 4) and not h.requires_grad
    start = st._start_states(torch.Generator().manual_seed(1))
    zeroed = (start[0][0].abs().sum(dim=(0, 2)) == 0) & (start[0][1].abs().sum(dim=(0, 2)) == 0)
    assert 0.18 < float(zeroed.float().mean()) < 0.32
    kept = ~zeroed
    assert torch.equal(start[1][0][:, kept], st.states[1][0][:, kept])


def _write_early_word_dataset(folder, rows: int = 96, window: int = 20, features: int = 8, seed: int = 0):
    """Rows of 20 frames whose word (a raised band, "yes" low, "no" high) ends by frame 13: a model read at the
    row's last frame learns to hold the word ~10 frames after it is spoken, as real clips teach (README)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("training_list", rows), ("validation_list", rows // 2), ("testing_list", rows // 2)):
        labels = np.array([CLASSES[i % len(CLASSES)] for i in range(n)])
        x = rng.normal(0.5, 0.1, size=(n, window, features)).astype(np.float32)
        for i, lab in enumerate(labels):
            s = int(rng.integers(2, 8))
            if lab != "_silence_":
                band = slice(0, features // 2) if lab == "yes" else slice(features // 2, features)
                x[i, s:s + 6, band] += 2.0
        np.savez(folder / f"{name}.npz", features=x.reshape(n, -1), labels=labels, valid_classes=np.array(CLASSES),
                 parameters=np.array([16000, 512, features, window, window]))
    return folder


def _posteriors_after_a_word(out, word: str, generator: torch.Generator, architecture: str = "GRU") -> np.ndarray:
    """Frame-by-frame probabilities of the word (as the streaming model runs, from zero state): the word over
    frames 4–9, then a second of background noise (frames like the _silence_ rows')."""
    net = KeywordSpotter(architecture, 8, 16, 3, 2)
    net.load_state_dict(torch.load(out / f"{architecture}16KeywordSpotter.pt"))
    x = torch.normal(0.5, 0.1, (10 + 31, 8), generator=generator)
    x[4:10, slice(0, 4) if word == "yes" else slice(4, 8)] += 2.0
    with torch.no_grad():
        log_probs, _ = net.eval()(x[None], None, len(x))
    return log_probs.exp()[0].numpy()


@pytest.mark.parametrize("architecture", ["GRU", "LSTM"])
def test_training_with_it_lets_go_of_a_word_in_the_stream(tmp_path, architecture):
    data = _write_early_word_dataset(tmp_path / "ds")
    common = ["--dataset", str(data), "--epochs", "15", "--hidden_units", "16", "--batch_size", "8", "--threads",
              "1", "--no_progress", "--no_export", "--no_augment", "--seed", "1", "--architecture", architecture]
    # plain: the per-row recipe (the GRU/LSTM default is stream training since issue 13), the contrast this is about
    assert main(["train", *common, "--outdir", str(tmp_path / "plain"), "--stream_training", "0"]) == 0
    assert main(["train", *common, "--outdir", str(tmp_path / "stream"), "--stream_training", "1",
                 "--stream_seconds", "3", "--stream_gap_min", "0.3", "--stream_gap_max", "1.5",
                 "--stream_target", "4", "--stream_sequences", "4"]) == 0
    results = {name: json.loads((tmp_path / name / "train_results.json").read_text()) for name in ("plain", "stream")}
    assert results["stream"]["training"]["stream_training"] == 1 and results["stream"]["training"]["stream_target"] == 4
    # both tell the words apart (the stream-trained one by kwsc test's rule: padded file, most confident frame)
    assert results["plain"]["accuracy_test"] > 0.95 and results["stream"]["accuracy_test"] > 0.95
    silence = CLASSES.index("_silence_")
    generator = torch.Generator().manual_seed(0)
    report = {}
    for name in ("plain", "stream"):
        for word in ("yes", "no"):
            probs = _posteriors_after_a_word(tmp_path / name, word, generator, architecture)
            k = CLASSES.index(word)
            # the word at its end (frames 10–12), and 0.5 s (frames 25–29) after it
            report[name, word] = (float(probs[10:13, k].max()), float(probs[25:30, k].mean()),
                                  float(probs[25:30, silence].mean()))
    for word in ("yes", "no"):
        assert report["stream", word][0] > 0.8, report  # named when it ends
        # half a second later: back to the background target (0.5 silence, 0.25 each word), the word let go
        assert report["stream", word][1] < 0.35 and report["stream", word][2] > 0.4, report
        assert report["plain", word][0] > 0.8 and report["plain", word][1] > 0.8, report  # still claimed


def test_an_lstm_resumes_with_its_carried_state_bit_identical(tmp_path):
    from kwsc.train.config import recipe_config
    from kwsc.train.pipeline import train

    data = write_dataset(tmp_path / "ds", rows=32)

    def config():
        c = recipe_config("kwsc")
        c["model"].update(architecture="LSTM", hidden_units=8)
        c["training"].update(max_epochs=3, batch_size=8, threads=1, warmup_epochs=1, stream_training=1.0,
                             stream_seconds=1.5, stream_sequences=3, stream_target=3)
        return c

    quiet = {"progress": False, "echo": lambda *a: None, "export": False}
    whole = train(config(), data, tmp_path / "whole", **quiet)
    assert train(config(), data, tmp_path / "split", stop_after=2, **quiet) == {}
    resumed = train(config(), data, tmp_path / "split", resume=True, **quiet)
    a = torch.load(tmp_path / "whole" / "LSTM8KeywordSpotter.pt")
    b = torch.load(tmp_path / "split" / "LSTM8KeywordSpotter.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [e["loss"] for e in whole["log"]] == [e["loss"] for e in resumed["log"]]


def test_bad_stream_settings_are_one_line_errors(tmp_path, capsys):
    data = write_dataset(tmp_path / "ds")
    for option, value, said in (("--stream_gap_max", "0.1", "stream_gap_min 0.3 and stream_gap_max 0.1"),
                                ("--stream_training", "-1", "stream_training -1.0"),
                                ("--stream_restart", "2", "stream_restart in [0, 1]")):
        assert main(["train", "--dataset", str(data), "--outdir", str(tmp_path / "o"), "--stream_training", "1",
                     option, value]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_stream_trained_model_counts_as_trained_for_vad_resets(tmp_path):
    from kwsc.evaluate.session import trained_for_vad, vad_training_note

    model = tmp_path / "m.onnx"
    model.write_bytes(b"")  # only its folder is read (train_results.json beside it)
    assert trained_for_vad({"vad_training": "0.0", "stream_training": "1.0"}, model) is True
    assert vad_training_note({"vad_training": "0.0", "stream_training": "1.0"}, model, "the vad mode") is None
    assert trained_for_vad({"vad_training": "0.0", "stream_training": "0.0"}, model) is False
    assert trained_for_vad({"vad_training": "0.0"}, model) is False
    (tmp_path / "train_results.json").write_text(json.dumps({"training": {"vad_training": 0, "stream_training": 1}}))
    assert trained_for_vad({}, model) is True
