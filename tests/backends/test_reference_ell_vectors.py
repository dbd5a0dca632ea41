"""The reference interpreter reproduces every vector in ELL's own tests (../shared/reference/ell-testdata).

Each test builds the one-op graph ELL's test exercises, feeds the recorded inputs tick by tick and compares
with the tolerance the JSON states (absolute, strict, as ELL's testing::IsEqual).
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, tables, verify
from tests.conftest import ell_vectors


def one_op_graph(op: str, input_shape, **attrs) -> Graph:
    g = Graph(op.lower())
    x = g.add_input(input_shape)
    g.add_output(g.op1(op, x, **attrs))
    return verify(g)


@pytest.mark.parametrize("name,op", [("gru_node.json", "GRU"), ("lstm_node.json", "LSTM"), ("rnn_node.json", "RNN")])
def test_recurrent_cells_match_ell(name, op):
    d = ell_vectors(name)
    i_size, h_size = d["input_size"], d["hidden_size"]
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    g = Graph(op)
    x = g.add_input([i_size])
    w = g.add_constant(np.array(d["inputWeights"], np.float32).reshape(gates * h_size, i_size), "w")
    r = g.add_constant(np.array(d["hiddenWeights"], np.float32).reshape(gates * h_size, h_size), "r")
    bi = g.add_constant(np.array(d["inputBias"], np.float32), "bi")
    bh = g.add_constant(np.array(d["hiddenBias"], np.float32), "bh")
    trigger = g.add_constant(np.zeros(1, np.int32), "trigger")
    node = g.add(op, [x, trigger, w, r, bi, bh], {"hidden_size": h_size})
    g.add_output(node.outputs[0])
    verify(g)
    interp = Interpreter(g)
    tol = d["tolerance"]["abs"]
    for step, expected in enumerate(d["expected_outputs"]):
        h = interp.step(np.array(d["input"], np.float32))
        assert np.max(np.abs(h - np.array(expected))) < tol, f"step {step + 1}"
    # the sequence mode gives the same three steps from a fresh state
    interp.reset()
    seq = interp.run(np.tile(np.array(d["input"], np.float32), (3, 1)))
    np.testing.assert_allclose(seq, np.array(d["expected_outputs"]), atol=tol, rtol=0)


def test_wrong_gate_order_would_fail():
    """The GRU test can fail: swapping the z and r blocks moves the output far outside the tolerance."""
    d = ell_vectors("gru_node.json")
    h_size, i_size = d["hidden_size"], d["input_size"]
    g = Graph()
    x = g.add_input([i_size])
    w = np.array(d["inputWeights"], np.float32).reshape(3 * h_size, i_size)
    w = np.concatenate([w[h_size:2 * h_size], w[:h_size], w[2 * h_size:]])
    consts = [g.add_constant(w), g.add_constant(np.array(d["hiddenWeights"], np.float32).reshape(3 * h_size, h_size)),
              g.add_constant(np.array(d["inputBias"], np.float32)), g.add_constant(np.array(d["hiddenBias"], np.float32))]
    g.add_output(g.add("GRU", [x, None, *consts], {"hidden_size": h_size}).output)
    h = Interpreter(g).step(np.array(d["input"], np.float32))
    assert np.max(np.abs(h - np.array(d["expected_outputs"][0]))) > 1e-2


def test_hamming_windows_match_ell():
    d = ell_vectors("hamming_reference.json")
    for case in d["windows"]:
        n, symmetric = case["N"], case["symmetry"] == "symmetric"
        g = one_op_graph("Window", [n], kind="hamming", symmetric=symmetric)
        out = Interpreter(g).step(np.ones(n, np.float32))
        assert np.max(np.abs(out - np.array(case["window"]))) < d["tolerance"]["abs"], (n, symmetric)


def test_fft_magnitudes_match_ell():
    d = ell_vectors("fft_reference.json")
    for case in d["cases"]:
        n = case["N"]
        g = one_op_graph("FFT", [n], nfft=n)
        out = Interpreter(g).step(np.array(case["input"], np.float32))
        expected = np.array(case["expected_magnitude"])
        assert out.shape == (n // 2 + 1,)
        # float32 input/output: compare relative to the magnitude (ELL's 1e-8 is for double)
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5 * expected.max())


def test_mel_filterbank_13_matches_ell():
    d = ell_vectors("mel_filterbank_13.json")
    p = d["parameters"]
    assert tables.mel_bins(13, p["sample_rate"], p["fft_size"]) == d["bin_edges"]["13"]["bins"]
    assert tables.mel_bins(80, 16000, 512) == d["bin_edges"]["80"]["bins"]
    weights = np.array(d["weights"])
    # the bank as a graph: feed unit impulses at each FFT bin and read every filter's weight
    g = one_op_graph("MelFilterBank", [p["filter_length"]], sample_rate=p["sample_rate"], num_filters=13,
                     fft_size=p["fft_size"])
    impulses = np.eye(p["filter_length"], dtype=np.float32)
    measured = Interpreter(g).run(impulses).T  # (13, 257)
    assert np.max(np.abs(measured - weights)) < d["tolerance"]["abs"]


def test_mel_filterbank_80_has_the_all_zero_channel():
    m = tables.filterbank_matrix("mel", 257, 16000, 80, 512)
    zero = [i for i in range(80) if not m[i].any()]
    single = [i for i in range(80) if np.count_nonzero(m[i]) == 1]
    assert zero == [2]
    assert single == [0, 1] + list(range(3, 17)) + [19, 22]


def test_buffer_matches_ell():
    d = ell_vectors("buffer_node.json")
    g = one_op_graph("Buffer", [d["input_size"]], window_size=d["window_size"])
    interp = Interpreter(g)
    for step, (x, expected) in enumerate(zip(d["inputs"], d["expected_outputs"])):
        np.testing.assert_array_equal(interp.step(np.array(x, np.float32)), np.array(expected, np.float32), f"step {step}")
    interp.reset()
    np.testing.assert_array_equal(interp.run(np.array(d["inputs"], np.float32)), np.array(d["expected_outputs"]))


def test_dct_matches_ell():
    d = ell_vectors("dct_reference.json")
    for case in d["cases"]:
        n = case["N"]
        g = one_op_graph("DCT", [n], normalize=case["normalized"])
        measured = Interpreter(g).run(np.eye(n, dtype=np.float32)).T  # column j = response to e_j
        assert np.max(np.abs(measured - np.array(case["matrix"]))) < d["tolerance"]["abs"], case["source_function"]
    pre = d["precomputed_13x13"]
    measured = Interpreter(one_op_graph("DCT", [13])).run(np.eye(13, dtype=np.float32)).T
    assert np.max(np.abs(measured - np.array(pre["matrix"]))) < 1e-4


def test_vad_matches_ell_labels_and_traces():
    d = ell_vectors("vad_data.json")
    p = d["parameters"]
    attrs = {k: p[k] for k in ("sample_rate", "frame_duration", "tau_up", "tau_down", "large_input", "gain_att",
                               "threshold_up", "threshold_down", "level_threshold")}
    g = one_op_graph("VAD", [p["window_size"]], **attrs)
    interp = Interpreter(g)
    labels, floors = [], []
    for frame in d["frames"]:
        labels.append(int(interp.step(np.array(frame, np.float32))[0]))
        floors.append(float(interp.state["vad"]["floor"]))
    assert labels == d["expected_labels"]
    derived = d["derived_not_from_ELL"]
    np.testing.assert_allclose(tables.vad_weights(40), np.array(derived["cmessage_weights_N40"]), rtol=1e-9)
    np.testing.assert_allclose(floors, np.array(derived["noise_floor_after_update_per_frame"]), rtol=2e-4, atol=1e-7)
    # sequence mode agrees with the tick-by-tick run
    interp.reset()
    np.testing.assert_array_equal(interp.run(np.array(d["frames"], np.float32))[:, 0], d["expected_labels"])
