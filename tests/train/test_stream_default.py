"""The kwsc recipe's GRU/LSTM train for the stream by default (issue 13): ``--stream_training 1`` unless the user
chose stream_training (command line or --config JSON), another recipe that excludes it (--vad_training,
--teacher, --mixup), --recipe seed or a window model; the resolved value is what train_results.json records, and
``kwsc train`` says so in one line. No torch for the resolution (kwsc/train/options.py has none)."""

from __future__ import annotations

import argparse
import json

import pytest

from kwsc.train import config as train_config
from kwsc.train.config import WINDOW_ARCHITECTURES
from kwsc.train.options import add_train_arguments, resolve_config, stream_default_note


def _resolve(*options: str, defaults: dict | None = None) -> tuple[dict, dict]:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return resolve_config(parser.parse_args(["--dataset", "d", "--outdir", "o", *options]), defaults)


def _weight(*options: str) -> float:
    return _resolve(*options)[0]["training"]["stream_training"]


@pytest.mark.parametrize("architecture", ["GRU", "LSTM"])
def test_recurrent_models_train_for_the_stream_by_default(architecture):
    config, applied = _resolve("--architecture", architecture)
    assert config["training"]["stream_training"] == 1.0 and applied == {"stream_training": 1.0}
    assert config["training"]["max_epochs"] == 60  # the rest of the kwsc recipe as before


def test_no_option_at_all_is_a_gru_trained_for_the_stream_and_so_is_the_tutorials_line():
    assert _weight() == 1.0
    config, applied = _resolve(defaults={"model": {"hidden_units": 128}})  # as `kwsc train_classifier` resolves
    assert config["model"]["hidden_units"] == 128 and applied == {"stream_training": 1.0}


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_window_models_are_unchanged(architecture):
    config, applied = _resolve("--architecture", architecture)
    assert config["training"]["stream_training"] == 0.0 and applied == {}


def test_the_seed_recipe_is_elLs_behaviour():
    for architecture in ("GRU", "LSTM"):
        config, applied = _resolve("--recipe", "seed", "--architecture", architecture)
        assert config["training"]["stream_training"] == 0.0 and applied == {}


def test_a_given_stream_training_wins():
    assert _resolve("--stream_training", "0")[1] == {}
    assert _weight("--stream_training", "0") == 0.0  # the per-row recipe of before
    assert _weight("--stream_training", "2") == 2.0
    assert _weight("--architecture", "LSTM", "--stream_training", "0.5") == 0.5


def test_a_config_json_chooses_too(tmp_path):
    off = tmp_path / "off.json"
    off.write_text(json.dumps({"training": {"stream_training": 0}}))
    config, applied = _resolve("--config", str(off))
    assert config["training"]["stream_training"] == 0 and applied == {}
    # a config that says nothing of it (other training keys) leaves the default on
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"training": {"max_epochs": 5}, "model": {"architecture": "LSTM"}}))
    config, applied = _resolve("--config", str(other))
    assert config["training"]["stream_training"] == 1.0 and config["training"]["max_epochs"] == 5
    # a train_results.json of a per-row run, given back as --config, trains per row again
    results = tmp_path / "train_results.json"
    results.write_text(json.dumps({"accuracy_test": 0.9, "training": _resolve("--stream_training", "0")[0]["training"]}))
    assert _weight("--config", str(results)) == 0.0


@pytest.mark.parametrize("options", [("--vad_training", "1"), ("--mixup", "0.2"), ("--teacher", "t.pt"),
                                     ("--loss_frames", "10"),
                                     ("--architecture", "LSTM", "--vad_training", "0.5")])
def test_recipes_that_exclude_it_make_the_default_step_aside_without_an_error(options):
    config, applied = _resolve(*options)  # validate_config refuses them *with* stream_training: no error here
    assert config["training"]["stream_training"] == 0.0 and applied == {}


def test_excluding_recipes_in_a_config_json_and_off_values_that_exclude_nothing(tmp_path):
    vad = tmp_path / "vad.json"
    vad.write_text(json.dumps({"training": {"vad_training": 1}}))
    assert _weight("--config", str(vad)) == 0.0
    assert _weight("--vad_training", "0") == 1.0 and _weight("--mixup", "0") == 1.0  # 0: off, nothing excluded


def test_a_window_model_with_a_teacher_is_unaffected():
    config, applied = _resolve("--architecture", "TCResNet", "--teacher", "t.pt", "--window_stream", "1")
    assert config["training"]["stream_training"] == 0.0 and config["training"]["teacher"] == "t.pt"
    assert config["model"]["hidden_units"] == 16 and applied == {}


def test_a_given_stream_training_with_an_excluding_recipe_is_still_refused():
    from kwsc.errors import InputError

    with pytest.raises(InputError, match="training.mixup"):
        _resolve("--mixup", "0.2", "--stream_training", "1")
    with pytest.raises(InputError, match="training.loss_frames 10: stream_training trains every frame"):
        _resolve("--loss_frames", "10", "--stream_training", "1")


def test_every_key_of_the_table_applies_only_when_not_chosen(monkeypatch, tmp_path):
    """A second key (as the lead may add max_epochs): applied with the stream default, each key only when the
    user gave it in neither place; the whole table steps aside where stream_training does."""
    monkeypatch.setitem(train_config.RECURRENT_STREAM_DEFAULTS, "max_epochs", 7)
    config, applied = _resolve()
    assert applied == {"stream_training": 1.0, "max_epochs": 7} and config["training"]["max_epochs"] == 7
    config, applied = _resolve("--architecture", "LSTM", "--epochs", "3")
    assert applied == {"stream_training": 1.0} and config["training"]["max_epochs"] == 3
    epochs = tmp_path / "epochs.json"
    epochs.write_text(json.dumps({"training": {"max_epochs": 5}}))
    config, applied = _resolve("--config", str(epochs))
    assert applied == {"stream_training": 1.0} and config["training"]["max_epochs"] == 5
    for options in (("--stream_training", "0"), ("--vad_training", "1"), ("--recipe", "seed"),
                    ("--architecture", "DSCNN")):
        config, applied = _resolve(*options)
        assert applied == {} and config["training"]["max_epochs"] == (30 if "seed" in options else 60), options


def test_the_note_and_the_help_say_the_default_and_how_to_turn_it_off():
    config, applied = _resolve("--architecture", "LSTM")
    note = stream_default_note(config, applied)
    assert "\n" not in note and "LSTM trains for the stream by default" in note and "--stream_training 0" in note
    assert stream_default_note(*_resolve("--stream_training", "1")) is None
    assert stream_default_note(*_resolve("--architecture", "BCResNet")) is None
    assert stream_default_note(config, {"max_epochs": 7}) is None  # another key alone (a resume kept stream_training)
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    text = " ".join(next(a.help for a in parser._actions if a.dest == "stream_training").split())
    assert "default: 1 for GRU/LSTM in the kwsc recipe; 0 with --vad_training, --teacher, --mixup or --loss_frames > 1" in text
    assert "--recipe seed, and for window models" in text
