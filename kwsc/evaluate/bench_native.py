"""Measuring generated C where it runs: a C timing loop around a host build, instruction counts on emulated targets.

# NOTE: [Timing compiled code without Python in the loop]
# A ctypes call costs about a microsecond — as much as a whole featurizer frame in C. The host build is timed by a
# small C driver that dlopen()s lib<name>.so and calls <name>_Predict on frames from a file, rounds of many calls
# between two clock readings, as firmware would call it. Clocks are per-process CPU time (CLOCK_PROCESS_CPUTIME_ID,
# like Python's time.process_time): on a shared machine the wall clock also counts time the process spent
# waiting for a core.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from kwsc.errors import ToolchainError
from kwsc.evaluate.bench import TimingStats, count_instructions, instructions_per_frame

__all__ = ["time_compiled", "emulated_instructions_per_frame"]

_DRIVER_SOURCE = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef int (*size_fn)(int);
typedef void (*predict_fn)(void*, ...);
static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}
static void* sym(void* lib, const char* name, const char* suffix) {
    char full[512];
    snprintf(full, sizeof full, "%s_%s", name, suffix);
    void* f = dlsym(lib, full);
    if (!f) { fprintf(stderr, "no symbol %s\n", full); exit(3); }
    return f;
}
int main(int argc, char** argv) {
    if (argc != 7) { fprintf(stderr, "usage: lib name frames.bin calls rounds warmup\n"); return 2; }
    void* lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 3; }
    size_fn in_size = (size_fn)sym(lib, argv[2], "GetInputSize");
    size_fn out_size = (size_fn)sym(lib, argv[2], "GetOutputSize");
    predict_fn predict = (predict_fn)sym(lib, argv[2], "Predict");
    int n_in = 0, n_out = 0, frame_floats = 0, out_floats = 0;
    while (n_in < 4 && in_size(n_in) > 0) frame_floats += in_size(n_in++);
    while (n_out < 4 && out_size(n_out) > 0) out_floats += out_size(n_out++);
    if (n_in != 1 || n_out > 2) { fprintf(stderr, "%d inputs / %d outputs: not supported\n", n_in, n_out); return 4; }
    FILE* f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 3; }
    fseek(f, 0, SEEK_END);
    long frames = ftell(f) / (long)(sizeof(float) * frame_floats);
    fseek(f, 0, SEEK_SET);
    float* in = malloc(sizeof(float) * frame_floats * (frames ? frames : 1));
    float* out = malloc(sizeof(float) * (out_floats + 1));
    if (frames < 1 || fread(in, sizeof(float) * frame_floats, frames, f) != (size_t)frames) return 5;
    long calls = atol(argv[4]), rounds = atol(argv[5]), warmup = atol(argv[6]), k = 0;
    for (long r = -warmup; r < rounds; r++) {
        double t0 = now_us();
        for (long i = 0; i < calls; i++, k = (k + 1) % frames) {
            const float* x = in + k * frame_floats;
            if (n_out == 1) predict(NULL, x, out); else predict(NULL, x, out, out + out_size(0));
        }
        double t1 = now_us();
        if (r >= 0) printf("%.6f\n", (t1 - t0) / calls);
    }
    return 0;
}
"""


@lru_cache(maxsize=1)
def _driver() -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise ToolchainError("no C compiler (gcc) to build the timing driver; apt-get install gcc")
    tmp = Path(tempfile.mkdtemp(prefix="kwsc-bench-"))
    atexit.register(shutil.rmtree, tmp, True)
    (tmp / "driver.c").write_text(_DRIVER_SOURCE)
    proc = subprocess.run([cc, "-O2", "-std=gnu99", str(tmp / "driver.c"), "-o", str(tmp / "driver"), "-ldl"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building the C timing driver failed: {proc.stderr.strip()[-300:]}")
    return tmp / "driver"


def time_compiled(outdir: str | Path, frames: np.ndarray, calls_per_round: int = 2000, rounds: int = 15,
                  warmup: int = 2, timeout: float = 600) -> TimingStats:
    """Microseconds per ``<name>_Predict`` call of a host build, timed in C (see the module note).

    Args:
        outdir: a project emitted with ``arch="host", build=True`` (holds ``lib<name>.so``).
        frames: (T, input size) float32 inputs, fed in turn (cycling) — one input, one or two outputs.
        calls_per_round, rounds, warmup: calls between two clock readings, rounds measured, rounds discarded.

    Returns:
        Statistics over the per-round mean time per call.
    """
    outdir = Path(outdir)
    libs = sorted(outdir.glob("lib*.so"))
    if len(libs) != 1:
        raise ToolchainError(f"{outdir}: expected one lib<name>.so of a host build, found {len(libs)}")
    name = libs[0].name[3:-3]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "frames.bin"
        data.write_bytes(np.ascontiguousarray(frames, dtype="<f4").tobytes())
        cmd = [str(_driver()), str(libs[0].resolve()), name, str(data), str(calls_per_round), str(rounds), str(warmup)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"timing {libs[0]}: over {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"timing {libs[0]} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    per_round = [float(v) for v in proc.stdout.split()]
    return TimingStats(float(np.median(per_round)), float(np.min(per_round)), float(np.max(per_round)),
                       calls_per_round * rounds)


def emulated_instructions_per_frame(outdir: str | Path, arch: str, frames: np.ndarray, count: int = 2,
                                    timeout: float = 600) -> float:
    """Guest instructions per ``Predict`` of a build for an emulated target (armv7, aarch64, cortex-m4).

    Runs the project's test harness under qemu on ``count`` and ``2·count`` frames of ``frames`` and takes the
    difference (``instructions_per_frame``): start-up, file I/O and the harness loop's first frames cancel out.

    Args:
        outdir: a project emitted with ``build=True`` for ``arch``.
        frames: at least ``2·count`` input frames (T, input size).
    """
    from kwsc.backends.c.targets import get_target

    target = get_target(arch)
    if not target.runner:
        raise ToolchainError(f"{arch} runs natively; time it instead of counting instructions")
    outdir = Path(outdir)
    exe = "harness" + target.exe_suffix
    if not (outdir / exe).exists():
        raise ToolchainError(f"{outdir / exe} not built; emit with build=True for arch {arch}")
    frames = np.ascontiguousarray(frames, dtype="<f4")
    if len(frames) < 2 * count:
        raise ToolchainError(f"{2 * count} frames needed, got {len(frames)}")
    (outdir / "harness_resets.txt").write_text("")

    def run(n: int) -> int:
        (outdir / "harness_in.bin").write_bytes(frames[:n].tobytes())
        return count_instructions([exe], target.runner[0], target.runner[1:], timeout=timeout, cwd=outdir)

    return instructions_per_frame(run, frames=count)
