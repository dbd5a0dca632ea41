"""Whole models per frame: the fused keyword spotter on the host, and instructions per frame on emulated ARM targets.

- Fused model = tutorial featurizer (512 samples → 80 log-mel) + VAD + GRU 2×128 + dense(12) + log-softmax, built
  with the passes ``add_vad`` and ``fuse_featurizer``: generated C (host) timed in C and through ctypes, against the
  reference interpreter (onnxruntime cannot run it: VAD has no ONNX form).
- ARM targets: guest instructions per frame under qemu (``-singlestep -d exec,nochain``; the difference of runs over
  2 and 4 frames) for armv7 (qemu-arm), aarch64 (qemu-aarch64) and Cortex-M4 (qemu-system-arm, mps2-an386) — for
  the featurizer, the same with a DCT (MFCC), the GRU 2×128 classifier and the fused model. Exact and repeatable
  for a given build, a stand-in for cycles: it ignores pipeline stalls and memory wait states (a Cortex-M4 with
  flash wait states runs slower). Every build is first checked against the reference on the same frames.
- The MFCC featurizer on the host, timed in C.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.models import gru_classifier, tutorial_featurizer
from kwsc.evaluate.bench import flops_per_frame

pytestmark = pytest.mark.benchmark(group="fused model", timer=time.process_time)

ARM = ("armv7", "aarch64", "cortex-m4")
HOST: dict[str, float] = {}
INSTRUCTIONS: dict[tuple[str, str], float] = {}


def fused_model():
    """Featurizer + VAD + GRU 2×128 + dense(12), via the passes a user runs (add_vad, fuse_featurizer)."""
    from kwsc.passes import run_passes

    graph, _ = run_passes(gru_classifier(), ["add_vad", "fuse_featurizer"],
                          {"fuse_featurizer": {"featurizer": tutorial_featurizer()}})
    return graph


def mfcc_featurizer():
    """The tutorial featurizer with ELL's DCT appended (80 MFCCs): the DSP chain's other common form."""
    from kwsc.frontends.featurizer import make_featurizer

    return make_featurizer(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                           filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True,
                           dct=True, auto_scale=True)


MODELS = {"featurizer": tutorial_featurizer, "MFCC (+ DCT 80)": mfcc_featurizer,
          "GRU 2×128 + dense": gru_classifier, "fused + VAD": fused_model}


def _frames(name: str, audio_frames: np.ndarray, frames80: np.ndarray) -> np.ndarray:
    return frames80 if name.startswith("GRU") else audio_frames


def _reference(graph, frames: np.ndarray) -> np.ndarray:
    from kwsc.backends.reference import Interpreter

    interp = Interpreter(graph)
    return np.stack([np.asarray(interp.step(f)).reshape(-1) for f in frames])


@pytest.fixture(scope="module")
def fused():
    return fused_model()


@pytest.fixture(scope="module")
def fused_build(fused, tmp_path_factory):
    c = pytest.importorskip("kwsc.backends.c")
    out = tmp_path_factory.mktemp("c") / "fused"
    c.emit_c(fused, out, name="kws", arch="host", build=True)
    return out


def test_mfcc_generated_c_native(audio_frames, tmp_path_factory):
    """The MFCC featurizer on the host, timed in C: what the 80×80 DCT adds to the log-mel frame."""
    c = pytest.importorskip("kwsc.backends.c")
    from kwsc.evaluate.bench_native import time_compiled

    graph = mfcc_featurizer()
    out = tmp_path_factory.mktemp("c") / "mfcc"
    c.emit_c(graph, out, name="mfcc", arch="host", build=True)
    np.testing.assert_allclose(c.run_harness(out, "host", audio_frames[:20]), _reference(graph, audio_frames[:20]),
                               rtol=1e-4, atol=1e-4)
    HOST["MFCC: generated C (host, timed in C)"] = time_compiled(out, audio_frames, rounds=15).median_us


def test_fused_reference(benchmark, fused, audio_frames):
    from kwsc.backends.reference import Interpreter

    interp = Interpreter(fused)
    it = iter(range(10**12))
    benchmark(lambda: interp.step(audio_frames[next(it) % len(audio_frames)]))
    HOST["fused: reference interpreter (numpy)"] = benchmark.stats.stats.median * 1e6


def test_fused_generated_c_ctypes(benchmark, fused, fused_build, audio_frames):
    from kwsc.backends.c import load

    model = load(fused_build)
    got = model.run(audio_frames[:50])
    np.testing.assert_allclose(got, _reference(fused, audio_frames[:50]), atol=1e-4)
    model.reset()
    it = iter(range(10**12))
    benchmark(lambda: model.predict(audio_frames[next(it) % len(audio_frames)]))
    HOST["fused: generated C via ctypes"] = benchmark.stats.stats.median * 1e6


def test_fused_generated_c_native(fused_build, audio_frames):
    """Timed in C by kwsc.evaluate.bench_native (not a pytest-benchmark row: its timer would see only Python)."""
    from kwsc.evaluate.bench_native import time_compiled

    stats = time_compiled(fused_build, audio_frames, rounds=15)
    HOST["fused: generated C (host, timed in C)"] = stats.median_us
    assert 0 < stats.min_us <= stats.median_us <= stats.max_us


@pytest.mark.parametrize("arch", ARM)
@pytest.mark.parametrize("model", list(MODELS))
def test_instructions_per_frame(model, arch, audio_frames, frames80, tmp_path_factory):
    c = pytest.importorskip("kwsc.backends.c")
    from kwsc.evaluate.bench_native import emulated_instructions_per_frame

    if c.toolchain_missing(arch):
        pytest.skip(f"{arch}: missing {', '.join(c.toolchain_missing(arch))}")
    graph = MODELS[model]()
    frames = _frames(model, audio_frames, frames80)[:8]
    out = tmp_path_factory.mktemp(arch) / "model"
    c.emit_c(graph, out, name="kws", arch=arch, build=True)
    np.testing.assert_allclose(c.run_harness(out, arch, frames), _reference(graph, frames), rtol=1e-4, atol=1e-4)
    per_frame = emulated_instructions_per_frame(out, arch, frames)
    INSTRUCTIONS[(model, arch)] = per_frame
    assert per_frame > flops_per_frame(graph)["total"] / 16  # at most 16 FLOPs per instruction (4-wide FMA ×2 …)


def test_tables(peak_flops, fused):
    """Print the host table (with the limit) and the instructions-per-frame table."""
    flops = flops_per_frame(fused)["total"]
    mfcc = flops_per_frame(mfcc_featurizer())["total"]
    print(f"\nFused model (featurizer + VAD + GRU 2×128 + dense), µs/frame (median, process CPU time); limit = "
          f"{flops / 1e6:.3f} MFLOP / {peak_flops / 1e9:.0f} GFLOP/s = {flops / peak_flops * 1e6:.2f} µs; "
          f"MFCC limit {mfcc / 1e3:.1f} kFLOP = {mfcc / peak_flops * 1e6:.3f} µs")
    for name, us in sorted(HOST.items(), key=lambda kv: kv[1]):
        print(f"  {name:44s} {us:9.2f} µs   ×{32000 / us:>9,.0f} real time")
    if INSTRUCTIONS:
        print("\nInstructions per frame under qemu (exact, -singlestep exec log)")
        print(f"  {'model':22s}" + "".join(f"{a:>14s}" for a in ARM) + f"{'FLOPs/frame':>14s}")
        for model, make in MODELS.items():
            row = [INSTRUCTIONS.get((model, a)) for a in ARM]
            print(f"  {model:22s}" + "".join(f"{v:>14,.0f}" if v else f"{'-':>14s}" for v in row)
                  + f"{flops_per_frame(make())['total']:>14,.0f}")
    if not HOST:
        pytest.skip("nothing measured")
