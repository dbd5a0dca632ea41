"""The C runtime's optimised kernels (runtime/src/opt) against its reference kernels (runtime/src/ref): the gain
each optimisation brings, measured in C by the generated `bench` program (STYLE principle 12: an optimised kernel
comes with a benchmark showing its gain). Host only: `--arch host` (opt) vs `--arch host-ref` (ref)."""

from __future__ import annotations

import pytest

from benchmarks.models import gru_classifier, tutorial_featurizer

MODELS = {"featurizer 512 → 80 log-mel": tutorial_featurizer, "GRU 2×128 + dense(12)": gru_classifier}
RESULTS: dict[str, dict[str, float]] = {}


@pytest.mark.parametrize("name", list(MODELS))
def test_opt_kernels_gain(name, tmp_path_factory):
    c = pytest.importorskip("kwsc.backends.c")
    missing = c.toolchain_missing("host")
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    graph = MODELS[name]()
    root = tmp_path_factory.mktemp("c_kernels")
    timings = {}
    for arch in ("host-ref", "host"):
        c.emit_c(graph, root / arch, arch=arch, build=True)
        timings[arch] = c.run_bench(root / arch, arch, calls=5000, repeats=7)["cpu_us"]
    RESULTS[name] = timings
    print(f"\n{name}: reference kernels {timings['host-ref']:.2f} µs/frame, optimised {timings['host']:.2f} µs/frame, "
          f"gain ×{timings['host-ref'] / timings['host']:.1f} (CPU time per Predict)")
    assert timings["host"] < timings["host-ref"], "the optimised kernels must be faster than the reference ones"
