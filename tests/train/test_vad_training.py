"""--vad_training: the padding frames are `kwsc test`'s, the loss is what it says, and training with it makes the
model unsure on padding after a reset and forget a word a second later (without it: sure of silence / the word)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.backends.framing import frames_of  # noqa: E402
from kwsc.backends.reference import Interpreter  # noqa: E402
from kwsc.cli import main  # noqa: E402
from kwsc.frontends.featurizer import make_featurizer  # noqa: E402
from kwsc.train.models import KeywordSpotter  # noqa: E402
from kwsc.train.vad_training import PAD_STD, VadTraining  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

PARAMETERS = [16000, 512, 80, 40, 40]


def test_padding_frames_are_the_test_tools_featurized_noise():
    vt = VadTraining(PARAMETERS, 3, 0, torch.device("cpu"))
    assert (vt.real, vt.file_frames) == (31, 80)  # 31 frames of a 1 s clip, padded to 80 as ELL's test does
    featurizer = make_featurizer(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                                 filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True)
    noise = np.random.default_rng(0).normal(0, PAD_STD, (20, 512)).astype(np.float32)
    ref = Interpreter(featurizer).run(noise)
    ours = vt.featurize_noise(torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
    bank = vt.pad_frames((4, 50), torch.Generator().manual_seed(1))
    assert bank.shape == (4, 50, 80) and abs(float(bank.mean()) / float(ref.mean()) - 1) < 0.1


def test_loss_is_soft_cross_entropy_on_idle_and_late_padding_frames():
    torch.manual_seed(0)
    vt = VadTraining(PARAMETERS, 4, 2, torch.device("cpu"), confidence=0.4, forget_after=20)
    q = np.array([0.2, 0.2, 0.4, 0.2])
    np.testing.assert_allclose(vt.target.numpy(), q, rtol=1e-6)
    model = KeywordSpotter("GRU", 80, 16, 4, 2).eval()
    x = torch.rand(3, 40, 80)
    pad = vt.pad_frames((1, 200), torch.Generator().manual_seed(5))[0]
    draws = iter([pad[:49][None], pad[49:49 + 147].reshape(3, 49, 80)])
    vt.pad_frames = lambda shape, generator: next(draws)
    loss = float(vt.loss(model, x, torch.Generator()).detach())

    def frame_log_probs(seq):  # frame by frame from zero state, as the streaming model runs
        states, out = [None, None], []
        with torch.no_grad():
            for frame in seq:
                h = frame[None, None]
                for i, layer in enumerate(model.layers):
                    h, states[i] = layer(h, states[i])
                out.append(torch.log_softmax(model.hidden2keyword(h[0, 0]), dim=0).numpy())
        return np.array(out)

    idle = -(frame_log_probs(pad[:49]) * q).sum(axis=1).mean()
    late = [frame_log_probs(torch.cat([x[r, :31], pad[49 + 49 * r: 98 + 49 * r]]))[51:] for r in range(3)]
    forget = -(np.concatenate(late) * q).sum(axis=1).mean()
    assert loss == pytest.approx(idle + forget, rel=1e-5)


def _silence_certainty_after_reset(out, vt):
    """Largest background probability the trained model gives over padding from zero state."""
    import torch as t

    model = t.load(out / "GRU16KeywordSpotter.pt")
    net = KeywordSpotter("GRU", 8, 16, 3, 2)
    net.load_state_dict(model)
    with t.no_grad():
        lp, _ = net.eval()(vt.pad_frames((1, 49), t.Generator().manual_seed(0)), None, 49)
    return float(lp.exp()[0, :, CLASSES.index("_silence_")].max())


def test_training_with_it_keeps_the_model_unsure_after_a_reset(tmp_path):
    data = write_dataset(tmp_path / "ds", rows=96)
    common = ["--dataset", str(data), "--epochs", "12", "--hidden_units", "16", "--batch_size", "8", "--threads",
              "1", "--no_progress", "--no_export", "--no_augment", "--seed", "1"]
    # plain: per row only (--stream_training 0; the GRU default trains for the stream, which also teaches resets)
    assert main(["train", *common, "--outdir", str(tmp_path / "plain"), "--stream_training", "0"]) == 0
    assert main(["train", *common, "--outdir", str(tmp_path / "vad"), "--vad_training", "1",
                 "--idle_confidence", "0.5", "--vad_forget", "3"]) == 0
    results = json.loads((tmp_path / "vad" / "train_results.json").read_text())
    assert results["training"]["vad_training"] == 1 and results["training"]["vad_forget"] == 3
    assert results["accuracy_test"] > 0.9  # the classes are still learned
    vt = VadTraining([16000, 512, 8, 10, 10], 3, 0, torch.device("cpu"))
    plain, vad = (_silence_certainty_after_reset(tmp_path / n, vt) for n in ("plain", "vad"))
    assert plain > 0.85 and vad < 0.75 and plain - vad > 0.2, (plain, vad)


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    data = write_dataset(tmp_path / "ds")
    assert main(["train", "--dataset", str(data), "--outdir", str(tmp_path / "o"), "--vad_training", "1",
                 "--idle_confidence", "1.5"]) == 2
    assert "idle_confidence 1.5" in capsys.readouterr().err
