"""The quantize pass and `kwsc quantize`: Dense/GRU/LSTM/RNN become their int8 twins (same inputs, names, state),
the integer arithmetic matches its definition, calibration sets scales from data, bad input fails in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import PassError
from kwsc.ir import load, save
from kwsc.ir.quantized import dequantize, equalized_rows, int_matmul, quantize_activations, quantize_rows
from kwsc.passes import run_passes
from tests.backends.c.conftest import recurrent_classifier

REPO = Path(__file__).resolve().parents[2]


def test_quantize_activations_rounds_half_away_and_clamps():
    x = np.array([[1.0, -0.5, 0.25, 0.0], [0, 0, 0, 0]], np.float32)
    q, s = quantize_activations(x)
    assert s.tolist() == [np.float32(1.0) / np.float32(127), 0.0]
    assert q[0].tolist() == [127, -64, 32, 0] and q[1].tolist() == [0, 0, 0, 0]  # -63.5 → -64, 31.75 → 32
    q, s = quantize_activations(np.array([0.5, -3.0, 0.015], np.float32), fixed_scale=0.01)
    assert q.tolist() == [50, -127, 2] and s == np.float32(0.01)  # beyond the calibrated range: clipped


def test_int_matmul_is_the_exact_integer_sum():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (7, 300)).astype(np.int8)
    x = rng.integers(-127, 128, (5, 300)).astype(np.int8)
    want = x.astype(np.int64) @ w.T.astype(np.int64)
    assert int_matmul(w, x).dtype == np.int32
    np.testing.assert_array_equal(int_matmul(w, x), want)
    w[:] = 127
    x[:] = -127
    assert int_matmul(w, x)[0, 0] == -127 * 127 * 300


def test_pass_keeps_names_wiring_and_means_its_definition():
    graph = recurrent_classifier("GRU", hidden=16, inputs=10, classes=3)
    q, report = run_passes(graph, ["quantize"])
    assert report[0][1].changed == {"nodes_quantized": 3}
    assert [n.op for n in q.nodes if n.op.startswith("Q")] == ["QGRU", "QGRU", "QDense"]
    assert [n.name for n in q.nodes if n.op.startswith("Q")] == ["gru0", "gru1", "dense"]
    assert run_passes(q, ["quantize"])[1][0][1].changed == {"nodes_quantized": 0}  # idempotent
    x = np.random.default_rng(1).normal(0, 1, (6, 10)).astype(np.float32)
    got = Interpreter(q).run(x)
    assert got.shape == (6, 3) and np.isfinite(got).all()
    float_out = Interpreter(graph).run(x)
    assert np.abs(np.exp(got) - np.exp(float_out)).max() < 0.05  # near the float model
    # a QDense by hand from quantized.py's definition: equalized columns, int8 rows, int32 sum, dequantized
    dense = graph.find("Dense")[0]
    w, b = (dense.inputs[i].producer.attrs["value"] for i in (1, 2))
    h = np.random.default_rng(3).uniform(-1, 1, 16).astype(np.float32)
    qw, ws, col = equalized_rows(w)
    hq, hs = quantize_activations((h * col)[None])
    np.testing.assert_array_equal(dequantize(int_matmul(qw, hq), ws, hs, b),
                                  Interpreter(_single_qdense(w, b)).step(h).reshape(1, -1))
    qw, ws = quantize_rows(w)  # and without the equalization
    hq, hs = quantize_activations(h[None])
    np.testing.assert_array_equal(dequantize(int_matmul(qw, hq), ws, hs, b),
                                  Interpreter(_single_qdense(w, b, equalize=False)).step(h).reshape(1, -1))


def _single_qdense(w, b, equalize: bool = True):
    from kwsc.ir import Graph

    g = Graph("one")
    x = g.add_input([w.shape[1]])
    g.add_output(g.add("QDense", [x, g.add_constant(w), g.add_constant(b)], {"equalize": equalize}).output)
    return g


def test_keep_float_and_unknown_names():
    graph = recurrent_classifier("LSTM", layers=1, hidden=8, inputs=6, classes=2)
    q, _ = run_passes(graph, ["quantize"], {"quantize": {"keep_float": "Dense"}})
    assert [n.op for n in q.nodes if n.op in ("QLSTM", "Dense", "QDense")] == ["QLSTM", "Dense"]
    with pytest.raises(PassError, match="keep_float names no op or node"):
        run_passes(graph, ["quantize"], {"quantize": {"keep_float": "Dnese"}})


def kwsc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def test_quantize_command_calibrates_from_a_dataset(tmp_path):
    graph = recurrent_classifier("GRU", layers=1, hidden=8, inputs=5, classes=3)
    model = tmp_path / "m.kwsc"
    save(graph, model)
    rng = np.random.default_rng(2)
    features = rng.normal(0, 2, (6, 4 * 5)).astype(np.float32)  # 6 rows of 4 frames
    np.savez(tmp_path / "data.npz", features=features, labels=np.zeros(6, np.int64))
    proc = kwsc("quantize", model, "--calibrate", tmp_path / "data.npz", "-o", tmp_path / "q.kwsc")
    assert proc.returncode == 0, proc.stderr
    q = load(tmp_path / "q.kwsc")
    gru, dense = q.find("QGRU")[0], q.find("QDense")[0]
    from kwsc.ir.quantized import column_scales

    col = column_scales(gru.inputs[2].producer.attrs["value"])  # equalized columns: the vector rounded is x ⊙ col
    peak = np.abs(features.reshape(-1, 5) * col).max()
    assert gru.attrs["input_scale"] == pytest.approx(peak / 127, rel=1e-6)  # the largest input seen
    assert 0 < gru.attrs["hidden_scale"] <= 1 / 127 + 1e-9 and dense.attrs["input_scale"] > 0
    assert "calibrated 3 scales on 6 rows × 4 steps" in proc.stdout
    out = Interpreter(q).run(features[0].reshape(4, 5))
    assert np.isfinite(out).all()


def test_quantize_command_refuses_bad_input_before_any_work(tmp_path):
    model = tmp_path / "m.kwsc"
    save(recurrent_classifier("GRU", layers=1, hidden=4, inputs=3, classes=2), model)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for args, message in (((model, "-o", model), "is the input model"),
                          ((model, "-o", tmp_path / "q.onnx"), "written as .kwsc"),
                          ((model, "--calibrate", tmp_path / "bad.npz", "-o", tmp_path / "q.kwsc"), "bad.npz")):
        proc = kwsc("quantize", *args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "q.kwsc").exists() and not (tmp_path / "q.onnx").exists()
