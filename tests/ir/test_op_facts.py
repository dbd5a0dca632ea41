"""Per-op facts on OpDef: input roles, gate blocks, parameter records, ONNX twins — and what is derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from kwsc.errors import VerifyError
from kwsc.ir import Graph, get_op, ops_with_trait, verify
from kwsc.ir.op_dsp import VAD_DEFAULTS, VadParams
from kwsc.ir.ops import OpDef, param, param_attrs, tunable_params


def test_roles_say_which_inputs_are_parameters():
    assert get_op("Dense").param_inputs == {1, 2}
    assert get_op("Gather").param_inputs == {1}
    for op in ops_with_trait("recurrent"):
        opdef = get_op(op)
        assert opdef.param_inputs == {2, 3, 4, 5} and opdef.inputs_with_role("trigger") == {1}
        assert opdef.inputs_with_role("weight") == {2, 3}  # what int8 mode quantizes
    assert get_op("Add").param_inputs == frozenset() and get_op("Concat").input_role(5) == "data"


def test_gate_blocks_drive_shape_inference():
    assert {op: len(get_op(op).gates) for op in ("GRU", "LSTM", "RNN")} == {"GRU": 3, "LSTM": 4, "RNN": 1}
    g = Graph("g")
    x = g.add_input([5])
    w = [g.add_constant(np.zeros(s, np.float32)) for s in ((12, 5), (12, 4), (12,), (12,))]
    assert g.add("GRU", [x, None, *w], {"hidden_size": 4}).outputs[0].shape == (4,)  # 12 rows = 3 gates × 4
    assert g.add("LSTM", [x, None, *w[:1], g.add_constant(np.zeros((12, 3), np.float32)), *w[2:]],
                 {"hidden_size": 3}).outputs[0].shape == (3,)  # 12 rows = 4 gates × 3
    with pytest.raises(VerifyError, match=r"do not match \[4·4, 5\]"):
        g.add("LSTM", [x, None, *w], {"hidden_size": 4})


def test_the_vad_attributes_come_from_its_parameter_record():
    vad = get_op("VAD")
    assert vad.params is VadParams and list(vad.attrs) == list(VAD_DEFAULTS)
    assert {k: a.default for k, a in vad.attrs.items()} == VAD_DEFAULTS
    assert [f.name for f in tunable_params(VadParams)] == ["tau_up", "tau_down", "large_input", "gain_att",
                                                           "threshold_up", "threshold_down", "level_threshold"]
    g = Graph("v")
    node = g.add("VAD", [g.add_input([40])], {"tau_up": 2.5})
    assert vad.params_of(node) == VadParams(tau_up=2.5)


def test_a_record_with_lists_serves_an_op_like_a_detector():
    """What issue 13's Detector needs: per-class thresholds, an ignore list, a window; kinds from annotations."""

    @dataclass(frozen=True)
    class DetectorParams:
        window: int = param(3, "frames averaged", tunable=True)
        thresholds: tuple[float, ...] = param((0.5,), "per-class thresholds", tunable=True)
        ignore: tuple[str, ...] = param(("_silence_",), "labels never reported")
        suppress_s: float = param(0.5, "seconds without a second detection", tunable=True, choices=None)

    attrs = param_attrs(DetectorParams)
    assert {k: a.kind for k, a in attrs.items()} == {"window": "int", "thresholds": "floats", "ignore": "strs",
                                                     "suppress_s": "float"}
    opdef = OpDef(name="Detector", inputs=["scores"], outputs=["output"], infer=lambda n: [n.inputs[0].type],
                  params=DetectorParams)
    assert opdef.attrs["thresholds"].doc == "per-class thresholds"
    assert opdef.complete_attrs({"window": 5}, "d") == {"window": 5, "thresholds": [0.5], "ignore": ["_silence_"],
                                                        "suppress_s": 0.5}


def test_onnx_twins_are_the_one_to_one_ops():
    twins = {name: get_op(name).onnx for name in ops_with_trait("elementwise") if get_op(name).onnx}
    assert twins["Add"] == "Add" and twins["Relu"] == "Relu" and "Square" not in twins and "Cast" not in twins
    assert get_op("GRU").onnx is None  # recurrent cells translate with reordering: not a twin


def test_verify_still_rejects_a_wrong_parameter():
    g = Graph("v")
    g.add_output(g.op1("VAD", g.add_input([8])))
    verify(g)
    with pytest.raises(VerifyError, match="tau_up"):
        g.add("VAD", [g.inputs[0]], {"tau_up": "fast"})
