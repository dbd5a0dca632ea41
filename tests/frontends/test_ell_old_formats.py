"""Older ELL formats (ELL 2.1–2.3.6): a real ELL-written 2018 file (GRULayerNode reset by a VAD), DynamicMap and Map
files with a NeuralNetworkPredictorNode, read into IR ops that compute what ELL's layer equations compute; layers
kwsc cannot represent give one line naming the layer and the ELL versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends.ell_json import Archived
from kwsc.backends.reference import Interpreter
from kwsc.errors import UnsupportedOpError
from kwsc.models import load_model
from tests.conftest import ell_vectors
from tests.frontends.ell_old_formats import layer, matrix_layer, old_map, reference, rounded

REAL_FILE = Path(__file__).parent / "data" / "TestGRUNodeWithVADReset.ell"


def write(tmp_path, text: str, name: str = "old.ell") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_ell_2_3_file_gru_layer_node_reset_by_the_vad():
    """ELL's own TestGRUNodeWithVADReset model on ELL's own VAD frames: the VAD's labels, the GRU against ELL's
    GRULayer equations with the reset after each 1→0 of the VAD, and ELL's test criterion (sum < 0.1 after it)."""
    graph = load_model(REAL_FILE)
    assert [n.op for n in graph.nodes if n.op != "Constant"] == ["Input", "VAD", "GRU", "Output"]
    gru, vad = graph.find("GRU")[0], graph.find("VAD")[0]
    assert gru.inputs[1] is vad.output and gru.attrs["linear_before_reset"] is False
    assert gru.attrs["hidden_size"] == 10 and graph.inputs[0].type.dtype == "float64"
    assert vad.attrs["sample_rate"] == 8000 and vad.meta["ell_id"] == "1094"

    data = ell_vectors("vad_data.json")
    frames = np.array(data["frames"], np.float64)
    graph.add_output(vad.output, name="vad")
    got = Interpreter(graph).run(frames)
    assert got["vad"][:, 0].tolist() == data["expected_labels"]

    # ELL's weights straight from the JSON, through ELL 2.3's GRULayer equations
    nodes = dict(dict(json.loads(REAL_FILE.read_text(), object_pairs_hook=list))["model"])["nodes"]
    fields = dict(next(dict(n)["layer"] for n in nodes if dict(n)["_type"].startswith("GRULayerNode")))
    w = {g: np.array(fields[f"{g}Weights_values"]).reshape(10, 50) for g in ("update", "reset", "hidden")}
    b = {g: np.array(fields[f"{g}Bias"]) for g in ("update", "reset", "hidden")}
    expected, plain, last = [], [], 0
    h = np.zeros(10)
    h_plain = np.zeros(10)
    for x, signal in zip(frames, data["expected_labels"]):
        for state, out in ((h, expected), (h_plain, plain)):
            xh = np.concatenate([x, state])
            z = 1 / (1 + np.exp(-(w["update"] @ xh + b["update"])))
            r = 1 / (1 + np.exp(-(w["reset"] @ xh + b["reset"])))
            new = (1 - z) * np.tanh(w["hidden"] @ np.concatenate([x, r * state]) + b["hidden"]) + z * state
            state[:] = new
            out.append(new.copy())
        if last == 1 and signal == 0:
            h[:] = 0  # the reset happens after the output of the frame where the VAD drops
        last = signal
    expected, plain = np.array(expected), np.array(plain)
    np.testing.assert_allclose(got["output"], expected, atol=1e-6)
    drop = data["expected_labels"].index(0, data["expected_labels"].index(1))  # first 0 after the word
    assert got["output"][drop + 1].sum() < 0.1 < plain[drop + 1].sum()  # ELL's criterion, and it is the reset


CLASSIC_RNG = np.random.default_rng(5)


def classic_model(map_type: str = "DynamicMap"):
    """A 2017-style classifier: scale → FC → bias → ReLU → batch norm → FC → bias → scaling → softmax. The first
    FC's output is a 2 × 1 × 4 tensor, so its per-channel bias and batch norm repeat over the two rows."""
    rng = CLASSIC_RNG
    w1, b1 = rounded(rng.normal(0, 0.5, (8, 6))), rounded(rng.normal(0, 0.1, 4))
    mul, add = rounded(rng.uniform(0.5, 1.5, 4)), rounded(rng.normal(0, 0.1, 4))
    w2, b2, scales = rounded(rng.normal(0, 0.5, (4, 8))), rounded(rng.normal(0, 0.1, 4)), rounded(rng.uniform(1, 2, 4))
    layers = [layer("FullyConnectedLayer<float>", [2, 1, 4], *matrix_layer("weights", w1)),
              layer("BiasLayer<float>", [2, 1, 4], ("bias", b1)),
              layer("ActivationLayer<float,ReLUActivation>", [2, 1, 4]),
              layer("BatchNormalizationLayer<float>", [2, 1, 4], ("multiplicationValues", mul),
                    ("additionValues", add), ("epsilon", 1e-5), ("epsilonSummand", 0)),
              layer("FullyConnectedLayer<float>", [1, 1, 4], *matrix_layer("weights", w2)),
              layer("BiasLayer<float>", [1, 1, 4], ("bias", b2)),
              layer("ScalingLayer<float>", [1, 1, 4], ("scales", scales)),
              layer("SoftmaxLayer<float>", [1, 1, 4])]
    spec = [("scale", 0.5), ("dense", w1), ("bias", np.tile(b1, 2)), ("act", "relu"),
            ("bn", np.tile(mul, 2), np.tile(add, 2)), ("dense", w2), ("bias", b2), ("scaling", scales), ("softmax",)]
    return old_map(layers, 6, 4, map_type=map_type, scale=0.5), spec


def test_dynamic_map_predictor_node_matches_ells_layer_equations(tmp_path):
    text, spec = classic_model()
    graph = load_model(write(tmp_path, text))
    # one op per layer, the input layer's scale included; the clean-up folds each BiasLayer into its Dense
    assert [n.op for n in graph.nodes if n.op != "Constant"] == [
        "Input", "Mul", "Dense", "Relu", "Mul", "Add", "Dense", "Mul", "Softmax", "Output"]
    assert all(d.inputs[2] is not None for d in graph.find("Dense"))
    assert graph.find("Softmax")[0].meta["ell_id"] == "1001"
    frames = np.random.default_rng(1).normal(0, 1, (6, 6))
    got = Interpreter(graph).run(frames.astype(np.float32))
    expected = reference(spec, frames)
    assert expected[:, 0].std() > 0.01  # the inputs move the outputs
    np.testing.assert_allclose(got, expected, atol=2e-6)
    raw = load_model(write(tmp_path, text), raw=True)
    assert len(raw.find("Add")) == 3  # two BiasLayers and the batch norm's shift, unfused
    np.testing.assert_allclose(Interpreter(raw).run(frames.astype(np.float32)), got, atol=1e-6)


def recurrent_model(leaky_object: bool = False):
    """A 2018-style (Map) recurrent classifier: GRU → LSTM → RNN layers, hard-sigmoid and leaky-ReLU activations."""
    rng = np.random.default_rng(9)

    def m(rows, columns):
        return rounded(rng.uniform(-0.6, 0.6, (rows, columns)))

    def v(size):
        return rounded(rng.uniform(-0.3, 0.3, size))

    gru = [m(5, 4 + 5) for _ in range(3)] + [v(5) for _ in range(3)]
    lstm = [m(4, 5 + 4) for _ in range(4)] + [v(4) for _ in range(4)]
    rnn = [m(3, 4 + 3), v(3)]
    w_out = m(2, 3)
    if leaky_object:  # ELL ≥ 2.3.7 archives the activation as an object with its factor
        leaky = layer("ActivationLayer<float>", [1, 1, 3], ("activation", Archived("LeakyReLUActivation<float>", "0")
                                                             .add("leakyFactor", 0.2)))
    else:  # ELL ≤ 2.3.6 did not archive the factor: 0.1 on load
        leaky = layer("ActivationLayer<float,LeakyReLUActivation>", [1, 1, 3])
    layers = [
        layer("ActivationLayer<float,HardSigmoidActivation<float>>", [1, 1, 4]),
        layer("GRULayer<float,TanhActivation,SigmoidActivation>", [1, 1, 5],
              *[f for g, mat in zip(("update", "reset", "hidden"), gru[:3]) for f in matrix_layer(f"{g}Weights", mat)],
              *[(f"{g}Bias", b) for g, b in zip(("update", "reset", "hidden"), gru[3:])]),
        layer("LSTMLayer<float,TanhActivation,SigmoidActivation>", [1, 1, 4],
              *[f for g, mat in zip(("input", "forgotten", "candidate", "output"), lstm[:4])
                for f in matrix_layer(f"{g}Weights", mat)],
              *[(f"{g}Bias", b) for g, b in zip(("input", "forgotten", "candidate", "output"), lstm[4:])]),
        layer("RecurrentLayer<float,TanhActivation>", [1, 1, 3], *matrix_layer("hiddenWeights", rnn[0]),
              ("hiddenBias", rnn[1])),
        leaky,
        layer("FullyConnectedLayer<float>", [1, 1, 2], *matrix_layer("weights", w_out)),
        layer("SoftmaxLayer<float>", [1, 1, 2]),
    ]
    spec = [("act", "hard_sigmoid"), ("gru", *gru), ("lstm", *lstm), ("rnn", *rnn),
            ("act", "leaky_relu", 0.2 if leaky_object else 0.1), ("dense", w_out), ("softmax",)]
    return old_map(layers, 4, 2, map_type="Map"), spec


@pytest.mark.parametrize("leaky_object", [False, True], ids=["ell_2_3_templated", "activation_object"])
def test_map_predictor_recurrent_layers_match_ells_equations_over_time(tmp_path, leaky_object):
    text, spec = recurrent_model(leaky_object)
    graph = load_model(write(tmp_path, text))
    assert [n.op for n in graph.nodes if n.op not in ("Constant", "Input", "Output")] == [
        "HardSigmoid", "GRU", "LSTM", "RNN", "LeakyRelu", "Dense", "Softmax"]
    assert graph.find("GRU")[0].attrs["linear_before_reset"] is False
    frames = np.random.default_rng(2).normal(0, 1.5, (25, 4))
    expected = reference(spec, frames)
    got = Interpreter(graph).run(frames.astype(np.float32))
    assert np.abs(np.diff(expected[:, 0])).max() > 0.01  # state carries over frames and changes the output
    np.testing.assert_allclose(got, expected, atol=1e-5)


def kwsc(*args):
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)


def test_unsupported_layer_is_one_line_naming_layer_node_and_ell_version(tmp_path):
    text, _ = classic_model()
    conv = ('"_type": "ConvolutionalLayer<float>"')
    path = write(tmp_path, text.replace('"_type": "ActivationLayer<float,ReLUActivation>"', conv))
    with pytest.raises(UnsupportedOpError) as err:
        load_model(path)
    message = str(err.value)
    for part in (str(path), "node 1001 (NeuralNetworkPredictorNode<float>)", "layer 3 of 8",
                 "ConvolutionalLayer<float>", "convolution", "ELL 2.1 or older (DynamicMap"):
        assert part in message, (part, message)
    assert "\n" not in message
    res = kwsc("import", path, "-o", tmp_path / "x.kwsc")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "ConvolutionalLayer<float>" in lines[0]
    assert not (tmp_path / "x.kwsc").exists()


def test_era_in_messages_follows_the_format(tmp_path):
    text, _ = classic_model(map_type="Map")
    path = write(tmp_path, text.replace("BatchNormalizationLayer<float>", "RegionDetectionLayer<float>"))
    with pytest.raises(UnsupportedOpError, match=r"RegionDetectionLayer<float>.*ELL 2\.1–2\.3\.6"):
        load_model(path)
    padded = write(tmp_path, text.replace('"outputPaddingSize": 0', '"outputPaddingSize": 1', 1), "padded.ell")
    with pytest.raises(UnsupportedOpError, match=r"InputLayer<float> with outputPaddingSize 1"):
        load_model(padded)
