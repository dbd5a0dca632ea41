"""Knowledge distillation (``--teacher``) and mixup (``--mixup``): the losses against hand-computed values, the
teachers' loading and refusals, and short trainings that use them. Tiny models; a few seconds on one core."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.cli import main  # noqa: E402
from kwsc.errors import InputError  # noqa: E402
from kwsc.train.config import recipe_config  # noqa: E402
from kwsc.train.distill import distillation_loss, load_teachers  # noqa: E402
from kwsc.train.models_conv import build_window_model  # noqa: E402
from kwsc.train.pipeline import train  # noqa: E402
from kwsc.train.trainer import mixup_rows, row_loss  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

WINDOW, FEATURES = 40, 16


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_distillation_loss_equals_the_hand_computed_value():
    student = torch.log_softmax(torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]]), dim=1)
    t1 = torch.log_softmax(torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]]), dim=1)
    t2 = torch.log_softmax(torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), dim=1)
    T = 2.0
    # by hand: q = mean of the teachers' softmax(z / T); p = softmax(student / T); T² · mean_rows Σ q log(q / p)
    q = (_softmax(t1.numpy() / T) + _softmax(t2.numpy() / T)) / 2
    p = _softmax(student.numpy() / T)
    want = T * T * float(np.mean(np.sum(q * np.log(q / p), axis=1)))
    got = float(distillation_loss(student, [t1, t2], T))
    assert got == pytest.approx(want, rel=1e-5) and want > 0.1
    # the teachers' probabilities are averaged, not their log-probabilities
    q_geo = _softmax((t1.numpy() + t2.numpy()) / 2 / T)
    assert got != pytest.approx(T * T * float(np.mean(np.sum(q_geo * np.log(q_geo / p), axis=1))), rel=1e-3)
    # a student equal to its one teacher: nothing to learn
    assert float(distillation_loss(t1, [t1], 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_counts_only_the_chosen_outputs():
    torch.manual_seed(0)
    student = torch.log_softmax(torch.randn(2, 5, 4), dim=2)
    teacher = torch.log_softmax(torch.randn(2, 5, 4), dim=2)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1], mask[1, 3] = True, True
    chosen = torch.stack([student[0, 1], student[1, 3]]), torch.stack([teacher[0, 1], teacher[1, 3]])
    assert float(distillation_loss(student, [teacher], 1.5, mask)) == pytest.approx(
        float(distillation_loss(chosen[0], [chosen[1]], 1.5)), rel=1e-6)
    assert float(distillation_loss(student, [teacher], 1.5, torch.zeros(2, 5, dtype=torch.bool))) == 0.0


def test_mixup_mixes_the_rows_and_the_labels():
    x = torch.arange(4 * 3 * 2, dtype=torch.float32).reshape(4, 3, 2)
    mixed, partner, lam = mixup_rows(x, 0.4, torch.Generator().manual_seed(3))
    assert 0.0 < lam < 1.0 and sorted(partner.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner])
    again = mixup_rows(x, 0.4, torch.Generator().manual_seed(3))  # drawn from the generator: --resume repeats it
    assert torch.equal(again[0], mixed) and again[2] == lam
    # the loss is the cross entropy against the mixed label distribution λ·onehot(y) + (1 − λ)·onehot(y[partner])
    log_probs = torch.log_softmax(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [3.0, 1.0, 0.0],
                                                [0.5, 0.0, 0.0]]), dim=1)
    y = torch.tensor([0, 2, 1, 0])
    partner = torch.tensor([2, 3, 0, 1])
    target = 0.3 * np.eye(3)[y.numpy()] + 0.7 * np.eye(3)[y[partner].numpy()]
    want = float(np.mean(-np.sum(target * log_probs.numpy(), axis=1)))
    assert float(row_loss(log_probs, y, mix=(partner, 0.3))) == pytest.approx(want, rel=1e-6)
    assert float(row_loss(log_probs, y)) == pytest.approx(float(np.mean(-log_probs.numpy()[range(4), y.numpy()])))
    # two frames per row (loss_frames 2): each row's label repeated for both
    two = log_probs.repeat_interleave(2, dim=0)
    assert float(row_loss(two, y, 2, mix=(partner, 0.3))) == pytest.approx(want, rel=1e-6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("kd40"), rows=48, window=WINDOW, features=FEATURES, event=(12, 20))


def _teacher(folder, architecture="DSCNN", width=8, seed=1):
    torch.manual_seed(seed)
    model = build_window_model(architecture, FEATURES, len(CLASSES), WINDOW, width)
    model.set_normalization(np.linspace(0.5, 1.5, FEATURES), np.linspace(0.5, 2.0, FEATURES))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "T.pt")
    (folder / "train_results.json").write_text(json.dumps({"model": {"architecture": architecture,
                                                                     "hidden_units": width}}))
    return model.eval(), folder / "T.pt"


def test_teachers_answer_as_the_saved_models_with_their_own_normalization(tmp_path):
    ds, ds_path = _teacher(tmp_path / "a", "DSCNN", 8)
    tc, tc_path = _teacher(tmp_path / "b", "TCResNet", 4)
    teachers = load_teachers(f"{ds_path},{tc_path}", FEATURES, len(CLASSES), WINDOW, torch.device("cpu"))
    rows = torch.randn(3, WINDOW + 5, FEATURES) + 1
    with torch.no_grad():
        for got, model in zip(teachers.tick_log_probs(rows), (ds, tc)):
            torch.testing.assert_close(got, model.tick_log_probs(rows))
        for got, model in zip(teachers.row_log_probs(rows[:, :WINDOW]), (ds, tc)):
            torch.testing.assert_close(got, model(rows[:, :WINDOW])[0])
    assert not any(p.requires_grad for m in teachers.models for p in m.parameters())


def test_bad_teachers_are_refused_in_one_line(tmp_path, dataset, capsys):
    _, good = _teacher(tmp_path / "good", "TCResNet", 4)
    with pytest.raises(InputError, match="no such teacher file"):
        load_teachers(str(tmp_path / "none.pt"), FEATURES, len(CLASSES), WINDOW, torch.device("cpu"))
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "T.pt").write_bytes(good.read_bytes())
    with pytest.raises(InputError, match="no train_results.json beside it"):
        load_teachers(str(tmp_path / "lone" / "T.pt"), FEATURES, len(CLASSES), WINDOW, torch.device("cpu"))
    gru = tmp_path / "gru"
    gru.mkdir()
    (gru / "T.pt").write_bytes(good.read_bytes())
    (gru / "train_results.json").write_text(json.dumps({"model": {"architecture": "GRU", "hidden_units": 4}}))
    with pytest.raises(InputError, match="takes window models"):
        load_teachers(str(gru / "T.pt"), FEATURES, len(CLASSES), WINDOW, torch.device("cpu"))
    with pytest.raises(InputError, match="not a TCResNet 4 for 16 features and 5 classes"):
        load_teachers(str(good), FEATURES, len(CLASSES) + 2, WINDOW, torch.device("cpu"))
    args = ["train", "--dataset", str(dataset), "--architecture", "TCResNet", "--hidden_units", "4", "--no_progress",
            "--threads", "1", "--epochs", "1"]
    assert main([*args, "--outdir", str(tmp_path / "o1"), "--teacher", str(tmp_path / "lone" / "T.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train_results.json" in err[0]
    assert main([*args, "--outdir", str(tmp_path / "o2"), "--mixup", "0.2", "--window_stream", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mixup" in err[0] and "window_stream" in err[0]
    assert not (tmp_path / "o2").exists()
    assert main([*args, "--outdir", str(tmp_path / "o3"), "--distill_temperature", "0"]) == 2
    assert "distill_temperature" in capsys.readouterr().err


def _config(**training):
    config = recipe_config("kwsc")
    config["model"].update(architecture="TCResNet", hidden_units=4)
    config["training"].update(max_epochs=6, batch_size=8, threads=1, warmup_epochs=1, learning_rate=1e-2,
                              **training)
    config["augment"].update(time_shift=0, freq_masks=0, time_masks=0, noise_prob=0.0, gain_db=0.0, freq_warp=0.0)
    return config


def test_a_student_learns_from_its_teacher_alone(dataset, tmp_path):
    """With the labels' weight gone (label smoothing 1: uniform targets), only the teacher carries the classes:
    a student distilled from a trained teacher learns them; the same run without the teacher stays near chance."""
    teacher_dir = tmp_path / "teacher"
    taught = train(_config(), dataset, teacher_dir, progress=False, echo=lambda *_: None, export=False)
    assert taught["accuracy_test_window"] >= 0.75
    pt = next(teacher_dir.glob("*KeywordSpotter.pt"))
    # plain rows (no --window_stream): the row outputs are distilled
    student = train(_config(teacher=str(pt), distill_weight=5.0, label_smoothing=1.0), dataset, tmp_path / "s",
                    progress=False, echo=lambda *_: None, export=False)
    alone = train(_config(label_smoothing=1.0), dataset, tmp_path / "n", progress=False, echo=lambda *_: None,
                  export=False)
    assert student["accuracy_test_window"] >= 0.75 and alone["accuracy_test_window"] <= 0.6
    assert student["training"]["teacher"] == str(pt)
    # with --window_stream the word ticks are distilled; the streamed score follows the teacher
    streamed = train(_config(teacher=str(pt), distill_weight=5.0, label_smoothing=1.0, window_stream=1.0), dataset,
                     tmp_path / "w", progress=False, echo=lambda *_: None, export=False)
    streamed_alone = train(_config(label_smoothing=1.0, window_stream=1.0), dataset, tmp_path / "wn",
                           progress=False, echo=lambda *_: None, export=False)
    assert streamed["accuracy_test_streamed"] >= 0.6 >= streamed_alone["accuracy_test_streamed"]


def test_mixup_training_runs_and_is_recorded(dataset, tmp_path):
    results = train(_config(mixup=0.2), dataset, tmp_path, progress=False, echo=lambda *_: None, export=False)
    assert results["training"]["mixup"] == 0.2 and results["accuracy_test_window"] >= 0.75
