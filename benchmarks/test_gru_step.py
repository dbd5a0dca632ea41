"""One step of GRU 2×128 (80 in) + dense(12) + log-softmax per frame, per implementation.

Goals (single thread on this x86 machine): issue 9, generated C ≤ 3.6 µs/frame and ≥ 5× faster than onnxruntime's
stateful per-step call in the same run; issue 18, the float build ≤ 1.5× the FLOP limit (FLOPs per frame / the
FMA peak measured in this run). Beside it, the bandwidth limit of the same run: the float32 parameter bytes per
frame / the rate one core reads a buffer that size. All goals are printed before any assert.
"generated C (host)" is timed in C (process CPU time); "generated C via ctypes" adds the Python call.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from benchmarks.conftest import record
from benchmarks.models import gru_classifier, torch_gru
from kwsc.evaluate.bench import flops_per_frame, read_bandwidth, weight_bytes_per_frame

pytestmark = pytest.mark.benchmark(group="GRU 2x128 step", timer=time.process_time)  # CPU time: shared machine
RESULTS: dict[str, float] = {}
BANDWIDTH: dict[str, float] = {}
GRAPH = gru_classifier()


def _median_us(benchmark) -> float:
    return benchmark.stats.stats.median * 1e6


@pytest.fixture(scope="module")
def expected(frames80):
    from kwsc.backends.reference import Interpreter

    interp = Interpreter(GRAPH)
    return np.stack([interp.step(f) for f in frames80[:50]])


def test_reference_interpreter(benchmark, frames80, expected):
    from kwsc.backends.reference import Interpreter

    interp = Interpreter(GRAPH)
    it = iter(range(10**9))
    benchmark(lambda: interp.step(frames80[next(it) % 1000]))
    RESULTS["reference (numpy)"] = _median_us(benchmark)


def test_pytorch_eager(benchmark, frames80, expected):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    layers, fc = torch_gru(GRAPH)
    state = [torch.zeros(1, 1, 128) for _ in layers]

    @torch.no_grad()
    def step(x):
        y = torch.from_numpy(x).view(1, 1, -1)
        for i, m in enumerate(layers):
            y, state[i] = m(y, state[i])
        return torch.log_softmax(fc(y.view(1, -1)), dim=1)

    got = np.stack([step(f).numpy().reshape(-1) for f in frames80[:50]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    state[:] = [torch.zeros(1, 1, 128) for _ in layers]
    it = iter(range(10**9))
    benchmark(lambda: step(frames80[next(it) % 1000]))
    RESULTS["pytorch eager"] = _median_us(benchmark)


def test_onnxruntime_stateful(benchmark, frames80, expected, tmp_path_factory):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    layers, fc = torch_gru(GRAPH)

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g0, self.g1, self.fc = layers[0], layers[1], fc

        def forward(self, x, h0, h1):
            y, h0n = self.g0(x, h0)
            y, h1n = self.g1(y, h1)
            return torch.log_softmax(self.fc(y.view(1, -1)), dim=1), h0n, h1n

    path = tmp_path_factory.mktemp("ort") / "gru_step.onnx"
    z = torch.zeros(1, 1, 128)
    torch.onnx.export(Step(), (torch.zeros(1, 1, 80), z, z), str(path), dynamo=False, opset_version=17,
                      input_names=["input", "h0", "h1"], output_names=["output", "h0_out", "h1_out"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    h = [np.zeros((1, 1, 128), np.float32)] * 2

    def step(x):
        out, h[0], h[1] = sess.run(None, {"input": x.reshape(1, 1, 80), "h0": h[0], "h1": h[1]})
        return out

    got = np.stack([step(f).reshape(-1) for f in frames80[:50]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    it = iter(range(10**9))
    benchmark(lambda: step(frames80[next(it) % 1000]))
    RESULTS["onnxruntime (state I/O)"] = _median_us(benchmark)


def test_generated_c_host(benchmark, frames80, expected, tmp_path_factory):
    c = pytest.importorskip("kwsc.backends.c")
    out = tmp_path_factory.mktemp("c") / "gru"
    c.emit_c(GRAPH, out, name="gru", arch="host", build=True)
    model = c.load(out)
    got = np.stack([np.asarray(model.predict(f)).reshape(-1) for f in frames80[:50]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    model.reset()
    it = iter(range(10**9))
    benchmark(lambda: model.predict(frames80[next(it) % 1000]))
    RESULTS["generated C via ctypes"] = _median_us(benchmark)


def test_generated_c_host_native(frames80, tmp_path_factory):
    """The same build timed in C (kwsc.evaluate.bench_native): no ctypes call (~1 µs) in the loop. Not a
    pytest-benchmark row: its timer would see only the Python side."""
    c = pytest.importorskip("kwsc.backends.c")
    from kwsc.evaluate.bench_native import time_compiled

    out = tmp_path_factory.mktemp("c") / "gru_native"
    c.emit_c(GRAPH, out, name="gru", arch="host", build=True)
    stats = time_compiled(out, frames80, rounds=15)
    RESULTS["generated C (host)"] = stats.median_us
    BANDWIDTH["float32"] = read_bandwidth(weight_bytes_per_frame(GRAPH))  # right after the timing: the same load
    assert 0 < stats.min_us <= stats.median_us <= stats.max_us


def test_goals(peak_flops):
    """Print the table and check the goals against the numbers measured above."""
    flops = flops_per_frame(GRAPH)["total"]
    limit_us = flops / peak_flops * 1e6
    print(f"\nGRU 2×128 + dense(12), µs/frame (median, process CPU time); limit = {flops / 1e6:.3f} MFLOP / "
          f"{peak_flops / 1e9:.0f} GFLOP/s = {limit_us:.2f} µs")
    for name, us in RESULTS.items():
        print(f"  {name:28s} {us:9.2f} µs   ×{32000 / us:,.0f} real time")
    if "generated C (host)" not in RESULTS:
        pytest.skip("generated C not measured")
    c_us = RESULTS["generated C (host)"]
    nbytes = weight_bytes_per_frame(GRAPH)
    bw_limit = nbytes / BANDWIDTH["float32"] * 1e6
    print(f"  bandwidth limit = {nbytes / 1e3:,.1f} kB of float32 parameters / {BANDWIDTH['float32'] / 1e9:.0f} GB/s "
          f"= {bw_limit:.2f} µs ({bw_limit / limit_us:.1f}× the FLOP limit); load {os.getloadavg()[0]:.1f}")
    goals = [("issue 9: generated C ≤ 3.6 µs/frame", c_us <= 3.6, f"{c_us:.2f} µs"),
             ("issue 18: float ≤ 1.5× the FLOP limit", c_us <= 1.5 * limit_us,
              f"{c_us / limit_us:.1f}× ({c_us:.2f} / {limit_us:.2f} µs); {c_us / bw_limit:.2f}× the bandwidth limit")]
    if "onnxruntime (state I/O)" in RESULTS:
        ort = RESULTS["onnxruntime (state I/O)"]
        goals.append(("issue 9: ≥ 5× onnxruntime", ort / c_us >= 5, f"×{ort / c_us:.1f}"))
    for name, met, detail in goals:
        print(f"  {'met    ' if met else 'NOT MET'}  {name}: {detail}")
    missed = [name for name, met, _ in goals if not met]
    assert not missed, f"goals not met: {'; '.join(missed)}"
