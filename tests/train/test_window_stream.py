"""Window models as `kwsc test --reset` streams them: per-tick outputs, the per-file rule, ``--window_stream``.

Tiny widths and the synthetic 40-frame dataset: a few seconds on one core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.cli import main  # noqa: E402
from kwsc.train.config import WINDOW_ARCHITECTURES, recipe_config  # noqa: E402
from kwsc.train.models_conv import build_window_model  # noqa: E402
from kwsc.train.pipeline import train  # noqa: E402
from kwsc.train.window_stream import FULL, PARTIAL, WindowStream  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

WINDOW, FEATURES = 40, 16
TINY_WIDTH = {"DSCNN": 8, "TCResNet": 4, "BCResNet": 4, "CRNN": 8}
PARAMETERS = [16000, 512, FEATURES, WINDOW, WINDOW]


def _model(architecture: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_window_model(architecture, FEATURES, len(CLASSES), WINDOW, TINY_WIDTH[architecture])
    model.set_normalization(np.linspace(0.5, 1.5, FEATURES), np.linspace(0.5, 2.0, FEATURES))
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_tick_outputs_equal_the_window_model_on_each_window(architecture):
    model = _model(architecture)
    rows = torch.randn(3, WINDOW + 17, FEATURES) * 2 + 1
    with torch.no_grad():
        ticks = model.tick_log_probs(rows)
        want = torch.stack([model(rows[:, i:i + WINDOW])[0] for i in range(18)], dim=1)
    assert ticks.shape == (3, 18, len(CLASSES))
    torch.testing.assert_close(ticks, want, atol=1e-5, rtol=0)


def test_the_streamed_sequence_is_zeros_the_clip_and_padding():
    stream = WindowStream(PARAMETERS, len(CLASSES), 0, torch.device("cpu"))
    rows = torch.rand(2, WINDOW, FEATURES) + 3.0
    seq = stream.sequences(rows, torch.Generator().manual_seed(0))
    assert stream.real == 31 and seq.shape == (2, WINDOW - 1 + stream.file_frames, FEATURES)
    assert torch.equal(seq[:, : WINDOW - 1], torch.zeros(2, WINDOW - 1, FEATURES))
    assert torch.equal(seq[:, WINDOW - 1:WINDOW - 1 + 31], rows[:, :31])
    pad = seq[:, WINDOW - 1 + 31:]
    assert pad.shape[1] == stream.file_frames - 31 and float(pad.abs().max()) < 0.5  # quiet noise, not the row


def test_file_predictions_take_the_class_of_the_most_confident_tick():
    model = _model("TCResNet")
    stream = WindowStream(PARAMETERS, len(CLASSES), 0, torch.device("cpu"))
    rows = torch.randn(6, WINDOW, FEATURES) + 1
    got = stream.file_predictions(model, rows)
    seq = stream.sequences(rows, torch.Generator().manual_seed(0))  # the same padding (seed 0, one batch)
    with torch.no_grad():
        probs = torch.stack([model(seq[:, i:i + WINDOW])[0] for i in range(seq.shape[1] - WINDOW + 1)], 1).exp()
    flat = probs.reshape(6, -1).argmax(dim=1)
    assert torch.equal(got, flat % len(CLASSES))


def test_coverage_and_tick_targets_follow_the_word():
    stream = WindowStream([16000, 512, 80, WINDOW, WINDOW], len(CLASSES), 0, torch.device("cpu"))
    rows = torch.full((1, WINDOW, FEATURES), 0.1)
    rows[0, 10:20] = 3.0  # the word: frames 10..19 of the clip
    share = stream.coverage(rows)[0]
    assert share.shape == (80,)  # 80-feature ticks: `kwsc test` pads a 1 s file to 80 frames
    ends = torch.arange(stream.file_frames)
    # a window ending at file frame e holds frames e-39..e: the whole word for 19 <= e <= 49
    assert torch.all(share[(ends >= 19) & (ends <= 49)] == 1.0)
    assert share[14] == 0.5 and share[9] == 0.0 and share[54] == 0.5 and share[59] == 0.0
    assert FULL > PARTIAL


def test_the_tick_loss_teaches_a_word_where_it_is_and_nothing_where_it_is_not(tmp_path):
    """Trained on ticks only, the model names the word at the ticks that hold it and is unsure on the zeros."""
    torch.manual_seed(0)
    model = build_window_model("TCResNet", FEATURES, len(CLASSES), WINDOW, 4)
    stream = WindowStream(PARAMETERS, len(CLASSES), 0, torch.device("cpu"))
    rows = torch.full((24, WINDOW, FEATURES), 0.2) + 0.05 * torch.randn(24, WINDOW, FEATURES)
    labels = torch.arange(24) % 3
    rows[labels == 1, 10:20, : FEATURES // 2] += 2.5
    rows[labels == 2, 10:20, FEATURES // 2:] += 2.5
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        loss = stream.loss(model, rows, labels, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        probs = model.tick_log_probs(stream.sequences(rows, g)).exp()
    words = labels > 0
    at_word = probs[words, 30]  # the window ending at file frame 30 holds the whole word
    assert float((at_word.argmax(dim=1) == labels[words]).float().mean()) == 1.0
    assert float(at_word.max(dim=1).values.min()) > 0.6
    first = probs[words, 0]  # 39 zeros and one frame of the clip: no word to name
    assert float(first.max(dim=1).values.max()) < 0.6
    assert torch.equal(stream.file_predictions(model, rows), labels)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ws40"), rows=48, window=WINDOW, features=FEATURES, event=(12, 20))


def test_window_stream_training_reports_window_and_streamed_accuracies(dataset, tmp_path):
    config = recipe_config("kwsc")
    config["model"].update(architecture="TCResNet", hidden_units=4)
    config["training"].update(max_epochs=8, batch_size=8, threads=1, warmup_epochs=1, learning_rate=1e-2,
                              window_stream=1.0)
    config["augment"].update(time_shift=0, freq_masks=0, time_masks=0, noise_prob=0.0, gain_db=0.0, freq_warp=0.0)
    lines = []
    results = train(config, dataset, tmp_path, progress=False, echo=lines.append, export=False)
    assert results["accuracy_test"] == results["accuracy_test_streamed"] >= 0.75  # chance is 1/3
    # (the window score is not asserted: with 16 features a "file" is 32 frames, so no tick sees the row's 40)
    assert 0 <= results["accuracy_test_window"] <= 1
    assert {"accuracy_validation_window", "accuracy_validation_streamed"} <= set(results)
    assert any(line.startswith("Per file, window / streamed") for line in lines)
    saved = json.loads((tmp_path / "train_results.json").read_text())
    assert saved["training"]["window_stream"] == 1.0


def test_window_stream_is_refused_for_a_gru_in_one_line(dataset, tmp_path, capsys):
    assert main(["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "o"), "--window_stream", "1",
                 "--no_progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "window_stream" in err[0] and "window models" in err[0]
    assert not (tmp_path / "o").exists()


def test_init_weights_starts_from_a_saved_model_and_refuses_another(dataset, tmp_path, capsys):
    from kwsc.train.trainer import prepare

    model = build_window_model("TCResNet", FEATURES, len(CLASSES), WINDOW, 4)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    config = recipe_config("kwsc")
    config["model"].update(architecture="TCResNet", hidden_units=4)
    config["training"].update(threads=1, init_weights=str(tmp_path / "w.pt"))
    run = prepare(config, dataset, tmp_path / "o")
    for name, value in model.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], value), name
    args = ["train", "--dataset", str(dataset), "--architecture", "TCResNet", "--no_progress", "--threads", "1"]
    assert main([*args, "--outdir", str(tmp_path / "o2"), "--hidden_units", "6",
                 "--init_weights", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another model than this run builds" in err[0] and "--hidden_units" in err[0]
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    assert main([*args, "--outdir", str(tmp_path / "o3"), "--hidden_units", "4",
                 "--init_weights", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a state_dict of tensors" in err[0]


@pytest.mark.parametrize("features, bins", [(80, 5), (16, 2)])
def test_bcresnet_classifier_weights_each_frequency_bin_as_the_paper(features, bins):
    """The paper's classifier: an unpadded depthwise convolution over all the frequency bins left (80 mel → the
    paper's 5 after a stem of stride 4), so the head sees where in frequency a pattern is."""
    model = build_window_model("BCResNet", features, 3, WINDOW, 4).eval()
    x = model.to_layout(torch.randn(2, WINDOW, features))
    body = model.blocks(model.stem(x))
    assert body.shape[3] == bins and model.tail[0].kernel_size == (1, bins) and model.tail[0].padding == (0, 0)
    assert model.tail(body).shape[2:] == (WINDOW - model.receptive_field + 1, 1)


def test_prune_tcresnet_narrows_a_trained_model_consistently():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("prune_tcresnet",
                                                  Path(__file__).parents[2] / "tools" / "prune_tcresnet.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    wide = _model("TCResNet")  # width 4: channels 4, 6, 8, 12
    rows = torch.randn(3, WINDOW, FEATURES)
    same = build_window_model("TCResNet", FEATURES, len(CLASSES), WINDOW, 4).eval()
    same.load_state_dict(tool.prune(wide.state_dict(), 4))  # every channel kept: the same function
    with torch.no_grad():
        torch.testing.assert_close(same(rows)[0], wide(rows)[0], atol=1e-6, rtol=0)
    narrow = build_window_model("TCResNet", FEATURES, len(CLASSES), WINDOW, 3).eval()
    state = tool.prune(wide.state_dict(), 3)
    narrow.load_state_dict(state)  # strict: every shape matches width 3
    # the block output channels kept are those with the largest |BN scale| of conv2 + shortcut
    scores = wide.state_dict()["blocks.2.bn2.weight"].abs() + wide.state_dict()["blocks.2.shortcut.1.weight"].abs()
    kept = torch.sort(torch.argsort(scores, descending=True)[:9]).values
    assert torch.equal(state["head.weight"], wide.state_dict()["head.weight"][:, kept])


# --stream_training for window models: the continuous sequences' every tick from one pass, the stream's targets


def _stream(**kw):
    from kwsc.train.stream_training import StreamTraining

    return StreamTraining(PARAMETERS, len(CLASSES), 0, torch.device("cpu"), window=WINDOW, seconds=3.0,
                          gap=(0.3, 1.0), target_frames=5, sequences=3, **kw)


def _word_rows(n: int, generator: torch.Generator):
    """Rows whose word (a raised band: "yes" low, "no" high) lies over frames 8..15; every third row _silence_."""
    labels = torch.arange(n) % 3
    rows = 0.3 + 0.05 * torch.rand(n, WINDOW, FEATURES, generator=generator)
    rows[labels == 1, 8:16, : FEATURES // 2] += 2.5
    rows[labels == 2, 8:16, FEATURES // 2:] += 2.5
    return rows, labels


@pytest.mark.parametrize("architecture", ["TCResNet", "DSCNN"])
def test_stream_training_ticks_equal_the_window_model_on_the_last_window(architecture):
    """Frame f of a continuous training sequence is scored with the window model's output on frames f-T+1..f
    (what the streamed model on the device says at that tick); the first T-1 frames are context only."""
    from kwsc.train.stream_training import BACKGROUND, WORD

    model = _model(architecture)
    st = _stream()
    rows, labels = _word_rows(12, torch.Generator().manual_seed(1))
    assert st.context == WINDOW - 1 and st.length == round(3.0 * 16000 / 512) + WINDOW - 1
    from kwsc.train.stream_training import StreamTraining

    gru = StreamTraining(PARAMETERS, len(CLASSES), 0, torch.device("cpu"), seconds=3.0)  # no window: no context
    assert gru.context == 0 and gru.length == round(3.0 * 16000 / 512)
    batch = st.build(rows, labels, torch.Generator().manual_seed(2))
    with torch.no_grad():
        ticks = st.frame_log_probs(model, batch.features)
        assert ticks.shape == (3, st.length - st.context, len(CLASSES))
        for f in (st.context, st.context + 23, st.length - 1):
            want = model(batch.features[:, f - WINDOW + 1:f + 1])[0]
            torch.testing.assert_close(ticks[:, f - st.context], want, atol=1e-5, rtol=0)
        # the loss: the stream's weighted frame cross entropy over exactly those frames and their targets
        kind, label = batch.kind[:, st.context:], batch.label[:, st.context:]
        assert bool((kind == WORD).any()) and bool((kind == BACKGROUND).any())
        got = st.loss(model, rows, labels, torch.Generator().manual_seed(2))
        word = -torch.gather(ticks, 2, label[..., None])[..., 0]
        background = -(ticks * st.target).sum(dim=2)
        weight = (kind == WORD).float() + st.background_weight * (kind == BACKGROUND).float()
        manual = (torch.where(kind == WORD, word, background) * weight).sum() / weight.sum()
    torch.testing.assert_close(got, manual, atol=1e-5, rtol=1e-5)
    assert st.states is None  # a window model carries nothing from batch to batch


def test_a_window_rows_ticks_name_the_word_just_after_it_ends_and_background_elsewhere():
    from kwsc.train.stream_training import BACKGROUND, IGNORE, WORD

    st = _stream()
    rows, labels = _word_rows(3, torch.Generator().manual_seed(0))  # _silence_, yes, no; word frames 8..15
    kind, label = st.window_row_targets(rows, labels, 32)
    assert torch.equal(label, labels[:, None].expand(3, 32))
    assert bool((kind[0] == BACKGROUND).all())
    for i in (1, 2):
        assert bool((kind[i, :8] == BACKGROUND).all()) and bool((kind[i, 8:15] == IGNORE).all())
        assert bool((kind[i, 15:20] == WORD).all()) and bool((kind[i, 20:] == BACKGROUND).all())


def test_stream_training_teaches_a_window_model_to_fire_after_a_word_and_then_let_go(dataset, tmp_path):
    """A tiny TC-ResNet trained with --stream_training: per file (the test's rule) it still tells the words
    apart, and in a continuous stream it names a word just after it ends and says background once its window,
    which still holds the word, is a few ticks past the end (trained only on rows, it keeps claiming it)."""
    config = recipe_config("kwsc")
    config["model"].update(architecture="TCResNet", hidden_units=4)
    config["training"].update(max_epochs=12, batch_size=8, threads=1, warmup_epochs=1, learning_rate=1e-2,
                              stream_training=1.0, stream_seconds=3.0, stream_gap_min=0.3, stream_gap_max=1.0,
                              stream_target=4, stream_sequences=4, seed=1)
    config["augment"].update(time_shift=0, freq_masks=0, time_masks=0, noise_prob=0.0, gain_db=0.0, freq_warp=0.0)
    results = train(config, dataset, tmp_path, progress=False, echo=lambda *a: None, export=False)
    assert results["accuracy_test"] == results["accuracy_test_streamed"] >= 0.9  # chance is 1/3
    assert json.loads((tmp_path / "train_results.json").read_text())["training"]["stream_training"] == 1.0
    model = build_window_model("TCResNet", FEATURES, len(CLASSES), WINDOW, 4)
    model.load_state_dict(torch.load(tmp_path / "TCResNet4KeywordSpotter.pt"))
    g = torch.Generator().manual_seed(0)
    x = torch.normal(0.5, 0.1, (WINDOW - 1 + 60, FEATURES), generator=g)  # the word over frames 51..58
    x[WINDOW - 1 + 12:WINDOW - 1 + 20, : FEATURES // 2] += 2.0
    with torch.no_grad():
        probs = model.eval().tick_log_probs(x[None]).exp()[0]  # tick i: the window ending at frame i
    yes = CLASSES.index("yes")
    assert float(probs[19:23, yes].max()) > 0.6, probs[15:40, yes]  # named when it ends
    assert float(probs[30:45, yes].max()) < 0.5, probs[15:50, yes]  # 10+ ticks later: let go, the word in view


def test_stream_training_and_window_stream_together_are_refused_in_one_line(dataset, tmp_path, capsys):
    assert main(["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "o"), "--architecture", "TCResNet",
                 "--stream_training", "1", "--window_stream", "1", "--no_progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stream_training and training.window_stream: give one" in err[0]
    assert not (tmp_path / "o").exists()
