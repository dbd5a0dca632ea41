"""The generated project: deterministic files, the ELL-like API, errors before writing, the static memory plan."""

from __future__ import annotations

import re
import sys
import subprocess

import numpy as np
import pytest

from kwsc.backends.c import emit_c, load
from kwsc.backends.c.lowering import lower_graph
from kwsc.backends.c.plan import Alloc, plan_arena
from kwsc.backends.reference import Interpreter
from kwsc.errors import BackendError, InputError
from kwsc.ir import Graph


def test_generated_files_are_byte_identical(model, tmp_path):
    graph = model("vad")
    first = emit_c(graph, tmp_path / "a", arch="cortex-m4", name="kws")
    second = emit_c(graph.copy(), tmp_path / "b", arch="cortex-m4", name="kws")
    assert first.files == second.files
    assert {"kws.h", "kws.c", "main.c", "Makefile", "CMakeLists.txt", "runtime/include/kwsc_runtime.h",
            "runtime/targets/cortex-m4/startup.c", "runtime/targets/cortex-m4/mps2_an386.ld"} <= set(first.files)
    for rel in first.files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_header_declares_the_ell_api_and_reentrant_form(model, tmp_path):
    emit_c(model("gru"), tmp_path, name="kws")
    header = (tmp_path / "kws.h").read_text()
    for decl in ("void kws_Predict(void* context, const float* input, float* output);",
                 "void kws_Reset(void);", "int32_t kws_GetInputSize(int32_t index);",
                 "int32_t kws_GetOutputSize(int32_t index);",
                 "void kws_GetInputShape(int32_t index, kws_TensorShape* shape);",
                 "void kws_GetOutputShape(int32_t index, kws_TensorShape* shape);",
                 "const char* kws_GetMetadata(const char* key);",
                 "void kws_PredictState(kws_State* state, const float* input, float* output);",
                 "void kws_ResetState(kws_State* state);"):
        assert decl in header, decl
    source = (tmp_path / "kws.c").read_text()
    assert "#include <stdio.h>" not in source and "malloc(" not in source
    # weights are static const (flash); the only mutable global is the default instance; a GRU's W [384, 80] and
    # R [384, 128] are one tiled array (30,720 + 49,152 floats: no copy, no padding at these sizes)
    assert re.search(r"static const float w_gru0_tiles\[79872\]", source)
    mutable = [line for line in source.splitlines() if line.startswith("static ") and " const " not in line
               and not line.startswith("static const")]
    assert mutable == ["static kws_State kws_default_state;"]


def test_unsupported_op_fails_before_writing(tmp_path):
    g = Graph()
    x = g.add_input([4, 2])
    g.add_output(g.op1("Concat", x, x, axis=0))
    outdir = tmp_path / "never"
    with pytest.raises(BackendError, match="no kernel for op.*Concat"):
        emit_c(g, outdir)
    assert not outdir.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "1bad"}, "not a C identifier"), ({"arch": "riscv"}, "unknown --arch"),
    ({"weights_dtype": "int4"}, "weights dtype"),
])
def test_bad_options_are_input_errors(model, tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        emit_c(model("gru"), tmp_path / "x", **kwargs)


def test_plan_reuses_dead_buffers_and_never_overlaps_live_ones():
    # a → b → c chain with a scratch: a's block is free again once b is computed.
    steps = [[Alloc("a", 100)], [Alloc("b", 50), Alloc("b#s", 30)], [Alloc("c", 100)]]
    plan = plan_arena(steps, {"a": 1, "b": 2, "c": 3}, align=1)
    assert plan.offsets["a"] == 0 and plan.offsets["c"] == 0  # c reuses a
    assert plan.offsets["b"] >= 100 and plan.offsets["b#s"] >= plan.offsets["b"] + 50
    assert plan.size == 180
    in_place = plan_arena([[Alloc("a", 64)], [Alloc("b", 64, reuse="a")]], {"a": 1, "b": 2})
    assert in_place.offsets["b"] == in_place.offsets["a"] and in_place.size == 64


def test_featurizer_plan_is_small(model):
    """FFT works inside the dead window frame, so the featurizer needs ~3 KiB of activations, not the sum."""
    lowered = lower_graph(model("featurizer"), "m", align=1)
    fft = next(s for s in lowered.steps if s.op == "FFT")
    window = next(s for s in lowered.steps if s.op == "Window")
    assert fft.scratch.offset == window.outs[0].offset
    total = sum(out.size for s in lowered.steps for out in s.outs if out.kind == "arena")
    assert lowered.arena_size == 512 + 257 < total


@pytest.mark.toolchain
def test_api_through_ctypes(compiled, model, speech_features):
    compiled_model = load(compiled("gru", "host"))
    assert compiled_model.metadata("labels").split(",")[2] == "yes"
    assert compiled_model.metadata("no such key") == ""
    frames = speech_features[:20]
    compiled_model.reset()
    expected = np.stack([compiled_model.predict(f) for f in frames])
    # two independent instances: interleaving them does not mix their state
    a, b = compiled_model.new_state(), compiled_model.new_state()
    outs_a, outs_b = [], []
    for f in frames:
        outs_a.append(compiled_model.predict_state(a, f))
        outs_b.append(compiled_model.predict_state(b, f[::-1].copy()))
    np.testing.assert_array_equal(np.stack(outs_a), expected)
    compiled_model.reset_state(b)
    np.testing.assert_array_equal(compiled_model.predict_state(b, frames[0]), expected[0])
    with pytest.raises(InputError, match="expected 80"):
        compiled_model.predict(np.zeros(81, np.float32))


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ["host", "cortex-m4"])
def test_model_code_calls_no_allocator_and_no_stdio(compiled, arch):
    from kwsc.backends.c.targets import get_target

    outdir = compiled("vad", arch)
    objects = [outdir / "build" / "model.o"] + sorted((outdir / "build" / "runtime").rglob("*.o"))
    nm = get_target(arch).nm_tool
    undefined = set(subprocess.run([nm, "-u"] + [str(o) for o in objects], capture_output=True, text=True,
                                   check=True).stdout.split())
    forbidden = {"malloc", "calloc", "realloc", "free", "printf", "fprintf", "puts", "fopen", "fwrite"}
    assert not forbidden & undefined, forbidden & undefined


def test_computed_weights_are_refused(tmp_path):
    g = Graph()
    x = g.add_input([4])
    w = g.op1("Reshape", g.op1("Dense", x, g.add_constant(np.ones((8, 4), np.float32))), shape=[2, 4])
    g.add_output(g.op1("Dense", x, w))
    with pytest.raises(BackendError, match="weights must be constant"):
        emit_c(g, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_needs_a_host_build(tmp_path):
    with pytest.raises(InputError, match="no lib<name>.so"):
        load(tmp_path)


@pytest.mark.toolchain
def test_cmake_builds_the_project(model, tmp_path):
    import shutil

    from tests.backends.c.conftest import skip_without_toolchain

    skip_without_toolchain("host")
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    emit_c(model("lstm"), tmp_path / "src", name="kws")
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(tmp_path / "src"), "-B", str(build)], ["cmake", "--build", str(build)]):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (build / "example").exists() and list(build.glob("libkws.a"))


@pytest.mark.toolchain
def test_bench_program_times_predict(compiled):
    from kwsc.backends.c import run_bench

    timing = run_bench(compiled("featurizer", "host"), "host", calls=200, repeats=2)
    assert 0 < timing["cpu_us"] < 1e4 and 0 < timing["wall_us"] < 1e5


@pytest.mark.toolchain
def test_reemitting_for_another_arch_rebuilds(model, tmp_path, speech_features):
    from kwsc.backends.c import run_harness
    from tests.backends.c.conftest import skip_without_toolchain

    skip_without_toolchain("host")
    skip_without_toolchain("aarch64")
    graph = model("lstm")
    emit_c(graph, tmp_path, arch="host", build=True)
    emit_c(graph, tmp_path, arch="aarch64", build=True)
    frames = speech_features[:8]
    np.testing.assert_allclose(run_harness(tmp_path, "aarch64", frames), Interpreter(graph).run(frames), atol=1e-4)


def test_output_does_not_depend_on_hash_seed(model, tmp_path):
    """Byte-identical across processes too (no set or hash order leaks into the files)."""
    from kwsc.ir import save
    from tests.conftest import REPO

    save(model("vad"), tmp_path / "m.kwsc")
    script = ("import sys; from kwsc.ir import load; from kwsc.backends.c import emit_c; "
              "emit_c(load(sys.argv[1]), sys.argv[2], arch='cortex-m4')")
    for seed in ("1", "2"):
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.kwsc"), str(tmp_path / seed)], env=env,
                       cwd=REPO, check=True, timeout=120)
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*") if p.is_file())
    assert files
    for rel in files:
        assert (tmp_path / "1" / rel).read_bytes() == (tmp_path / "2" / rel).read_bytes(), rel
