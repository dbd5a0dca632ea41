"""add_vad: one VAD on the classifier input drives every RNN's reset trigger (ELL add_vad.py, §2.5)."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import PassError
from kwsc.ir import Graph, verify
from kwsc.ir.op_dsp import VAD_DEFAULTS
from kwsc.passes import run_pass, run_passes
from kwsc.passes.insert_vad import VadOptions
from tests.passes.graphs import add_rnn, gru_classifier, outputs_over

SEED_LINE = dict(sample_rate=16000, window_size=512, tau_up=1.5, tau_down=0.09, large_input=4, gain_att=0.01,
                 threshold_up=3.5, threshold_down=0.9, level_threshold=0.02)


def speech_like(features: int, seed: int = 2) -> np.ndarray:
    """Quiet, loud ("speech"), quiet, loud, quiet: feature frames that switch a VAD on and off twice."""
    rng = np.random.default_rng(seed)
    levels = [0.02] * 12 + [2.0] * 10 + [0.02] * 8 + [2.0] * 6 + [0.02] * 6
    return np.stack([np.abs(rng.normal(lvl, lvl / 4, features)) for lvl in levels]).astype(np.float32)


def vad_signal(attrs: dict, frames: np.ndarray) -> np.ndarray:
    """The VAD output over frames, from a stand-alone VAD graph with the same attributes."""
    g = Graph("vad")
    g.add_output(g.op1("VAD", g.add_input([frames[0].size]), **attrs))
    return Interpreter(g).run(frames.reshape(len(frames), -1))[:, 0]


def first_off_transition(signal: np.ndarray) -> int:
    """Index of the first tick where the signal goes 1 → 0 (the tick whose output is still unaffected)."""
    drops = np.flatnonzero((signal[:-1] != 0) & (signal[1:] == 0))
    assert len(drops), "test frames never switch the VAD off"
    return int(drops[0]) + 1


def test_one_vad_drives_both_grus_with_the_seed_parameters():
    """::

        before:  input ─ GRU1 ─ GRU2 ─ Dense ─ LogSoftmax       (triggers: Constant [0] each)
        after:   input ─ GRU1 ─ GRU2 ─ Dense ─ LogSoftmax
                   └── VAD ──┴──────┘ (reset triggers)
    """
    before = gru_classifier(features=80, hidden=16, seed=4)
    after = before.copy()
    result = run_pass(after, "add_vad", VadOptions(**SEED_LINE))
    assert result.changed == {"vad_added": 1, "reshape_added": 0, "triggers_rewired": 2, "constants_removed": 2}
    (vad,) = after.find("VAD")
    gru1, gru2 = after.find("GRU")
    assert vad.inputs[0] is after.inputs[0] is gru1.inputs[0]
    assert gru1.input("reset_trigger") is vad.output and gru2.input("reset_trigger") is vad.output
    expected = {k: v for k, v in SEED_LINE.items() if k != "window_size"} | {"frame_duration": 512 / 16000}
    assert {k: vad.attrs[k] for k in expected} == pytest.approx(expected)

    xs = speech_like(80)
    signal = vad_signal(vad.attrs, xs)
    cut = first_off_transition(signal)
    a = outputs_over(before, {"input": xs})["output"]
    b = outputs_over(after, {"input": xs})["output"]
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])  # identical through the transition tick
    assert not np.allclose(a[cut + 1], b[cut + 1])  # then the GRUs restart from zero state
    # the reset is exactly a state reset: a fresh run of the original from the next tick gives the same
    fresh = outputs_over(before, {"input": xs[cut + 1:]})["output"]
    np.testing.assert_allclose(b[cut + 1: cut + 1 + 3], fresh[:3], rtol=1e-6, atol=1e-6)

    again = after.copy()
    assert not run_pass(again, "add_vad", VadOptions(tau_up=9.0)).modified  # idempotent, whatever the options
    assert again.find("VAD")[0].attrs["tau_up"] == 1.5
    verify(again)


def test_defaults_are_ells_and_a_3d_input_is_flattened():
    """::

        input[1,1,8] ─ LSTM ─ out    →    input[1,1,8] ─ LSTM ─ out
                                            └ Reshape[8] ─ VAD ┘
    """
    g = gru_classifier(features=8, hidden=4, layers=1, input_shape=(1, 1, 8), constant_triggers=False, op="LSTM")
    out, report = run_passes(g, ["add_vad"])
    (vad,) = out.find("VAD")
    assert vad.inputs[0].producer.op == "Reshape" and vad.inputs[0].shape == (8,)
    assert vad.inputs[0].producer.inputs[0] is out.inputs[0]
    for key, value in VAD_DEFAULTS.items():
        assert vad.attrs[key] == pytest.approx(value), key
    assert dict(report)["add_vad"].changed["reshape_added"] == 1


def test_existing_vad_is_reused_so_there_is_still_one():
    g = gru_classifier(features=8, hidden=4, layers=2, seed=1)
    vad = g.add("VAD", [g.inputs[0]], {"tau_up": 2.0}, name="my_vad", before=g.node("gru1"))
    g.node("gru1").set_named_input("reset_trigger", vad.output)
    verify(g)
    out, report = run_passes(g, ["add_vad", "dce"])
    assert len(out.find("VAD")) == 1
    assert out.node("gru2").input("reset_trigger") is out.node("my_vad").output
    assert dict(report)["add_vad"].changed["triggers_rewired"] == 1


def test_no_recurrent_node_is_a_clear_error():
    g = Graph("mlp")
    g.add_output(g.op1("Relu", g.add_input([4])))
    with pytest.raises(PassError, match="no recurrent node .*GRU, LSTM or RNN.*ops are: Input, Output, Relu"):
        run_pass(g, "add_vad")


def test_frame_timing_comes_from_the_models_featurizer_record():
    """A classifier trained on 8 kHz features, 200 samples per call, gets a 25 ms VAD frame without options;
    options still win, and a model without a record falls back to ELL's 16000 / 512 (the test above)."""
    g = gru_classifier(features=8, hidden=4, layers=1, seed=3)
    g.metadata.update({"sample_rate": "8000", "input_size": "200", "window_size": "40"})  # as training writes it
    out, _ = run_passes(g, ["add_vad"])
    (vad,) = out.find("VAD")
    assert vad.attrs["sample_rate"] == 8000.0 and vad.attrs["frame_duration"] == pytest.approx(0.025)
    out, _ = run_passes(g, ["add_vad"], {"add_vad": {"window_size": 400}})
    assert out.find("VAD")[0].attrs["frame_duration"] == pytest.approx(0.05)
