"""Benchmark helpers behind `kwsc bench` and benchmarks/: timing statistics, FLOPs per frame, this CPU's measured
single-core floating-point peak, and instructions per frame of emulated ARM targets.

# NOTE: [Instructions as a stand-in for cycles]
# Emulated targets have no meaningful wall-clock time. qemu runs the program with one guest instruction per
# translation block (-singlestep) and logs every executed block (-d exec,nochain): the log's line count is the
# number of instructions executed. Running N and 2N frames and taking the difference removes start-up and I/O,
# so the result is instructions per frame — exact and repeatable for a given binary and input.
# The same works under system emulation (qemu-system-arm -M mps2-an386 for the Cortex-M4): the trace options go
# before the machine options there, since those end in "-kernel FILE". The log (tens of MB per GRU frame) goes to
# stderr and is counted as it streams, never written to disk.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kwsc.errors import ToolchainError
from kwsc.ir import Graph

__all__ = ["TimingStats", "time_per_call", "flops_per_frame", "fma_peak_flops", "count_instructions",
           "instructions_per_frame", "FRAME_SECONDS", "weight_bytes_per_frame", "read_bandwidth"]

FRAME_SECONDS = 0.032  # a 512-sample frame at 16 kHz


@dataclass(frozen=True)
class TimingStats:
    """Microseconds per call."""

    median_us: float
    min_us: float
    max_us: float
    calls: int

    def realtime_factor(self, frame_seconds: float = FRAME_SECONDS) -> float:
        """How many times faster than real time (a frame every ``frame_seconds``)."""
        return frame_seconds * 1e6 / self.median_us if self.median_us > 0 else math.inf


def time_per_call(fn: Callable[[int], None], calls_per_round: int = 200, rounds: int = 15,
                  warmup: int = 2, clock: Callable[[], float] = time.perf_counter) -> TimingStats:
    """Time ``fn(i)`` (one frame per call) in rounds; stats over the per-round mean (robust to timer noise).
    ``clock``: seconds; ``time.process_time`` on a shared machine counts only the time this process ran."""
    for i in range(warmup * calls_per_round):
        fn(i)
    per_round = []
    for _ in range(rounds):
        t0 = clock()
        for i in range(calls_per_round):
            fn(i)
        per_round.append((clock() - t0) / calls_per_round * 1e6)
    return TimingStats(float(np.median(per_round)), float(np.min(per_round)), float(np.max(per_round)),
                       calls_per_round * rounds)


def flops_per_frame(graph: Graph) -> dict[str, float]:
    """Floating-point operations per tick by node (multiply-add = 2), and the total under "total".

    Counts the arithmetic a straightforward implementation must do: matrix-vector products, the real FFT
    (≈ 2.5·N·log2 N for a real N-point transform), the sparse filter bank's non-zeros, and a few operations per
    element for elementwise ops and gates (exp/tanh counted as 1 each: a lower bound).
    """
    from kwsc.ir import tables

    from kwsc.ir.op_quant import float_op

    counts: dict[str, float] = {}
    for node in graph.nodes:
        op = float_op(node.op)  # an int8 op does its float twin's arithmetic
        outs = [v.type.size for v in node.outputs]
        n_in = node.inputs[0].type.size if node.inputs and node.inputs[0] is not None else 0
        if op == "Dense":
            o, i = node.inputs[1].shape
            f = 2.0 * o * i + (o if len(node.inputs) > 2 and node.inputs[2] is not None else 0)
        elif "recurrent" in node.opdef.traits:
            gates = len(node.opdef.gates)
            h = node.attrs["hidden_size"]
            f = 2.0 * gates * h * (n_in + h) + 2 * gates * h + {"GRU": 8, "LSTM": 8, "RNN": 1}[op] * h
        elif op == "FFT":
            nfft = (outs[0] - 1) * 2
            f = 2.5 * nfft * math.log2(nfft) + 3 * outs[0]  # transform + magnitude (2 mul, 1 add, sqrt)
        elif op in ("MelFilterBank", "LinearFilterBank"):
            kind = "mel" if op == "MelFilterBank" else "linear"
            m = tables.filterbank_matrix(kind, n_in, node.attrs["sample_rate"], node.attrs["num_filters"],
                                         node.attrs.get("fft_size", 0), node.attrs["offset"])
            f = 2.0 * np.count_nonzero(m)
        elif op == "DCT":
            f = 2.0 * n_in * n_in
        elif op == "VAD":
            f = 2.0 * n_in + 20
        elif op in ("Input", "Output", "Constant", "Reshape", "Identity", "Buffer", "Shape", "Cast"):
            f = 0.0
        elif op in ("Softmax", "LogSoftmax"):
            f = 4.0 * outs[0]
        else:
            f = float(sum(outs))
        counts[node.name] = f
    counts["total"] = float(sum(counts.values()))
    return counts


_FMA_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef float v8 __attribute__((vector_size(32)));
int main(int argc, char** argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100000000L;
    v8 a[10], x = {1.0000001f,1,1,1,1,1,1,1}, y = {1e-7f,1e-7f,1e-7f,1e-7f,1e-7f,1e-7f,1e-7f,1e-7f};
    for (int k = 0; k < 10; k++) a[k] = (v8){0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);  /* CPU time: the machine may be shared */
    for (long i = 0; i < iters; i++) {
        /* ten independent FMA chains hide the FMA latency: the loop runs at the FMA throughput limit */
        a[0] = a[0] * x + y; a[1] = a[1] * x + y; a[2] = a[2] * x + y; a[3] = a[3] * x + y; a[4] = a[4] * x + y;
        a[5] = a[5] * x + y; a[6] = a[6] * x + y; a[7] = a[7] * x + y; a[8] = a[8] * x + y; a[9] = a[9] * x + y;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    float s = 0; for (int k = 0; k < 10; k++) for (int j = 0; j < 8; j++) s += a[k][j];
    double sec = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("%.6e %f\n", (double)iters * 10 * 8 * 2 / sec, s);
    return 0;
}
"""


def weight_bytes_per_frame(graph: Graph, weights_dtype: str = "float32") -> int:
    """Bytes of parameters a tick reads: every constant weight and bias input of the graph's nodes, float32 (4 B
    each), or with ``int8`` the weight matrices of Dense/GRU/LSTM/RNN (and their int8 twins) as 1 B per weight
    plus a 4 B scale per row, as the C backend stores them."""
    from kwsc.ir.op_quant import FLOAT_TWIN, INT8_OF
    from kwsc.ir.semantics import evaluate_static

    static = evaluate_static(graph)
    total = 0
    for node in graph.nodes:
        weights = node.opdef.inputs_with_role("weight")
        for index in node.opdef.inputs_with_role("weight", "bias"):
            value = node.inputs[index] if index < len(node.inputs) else None
            if value is None or value not in static:
                continue
            size = value.type.size
            int8 = weights_dtype == "int8" and index in weights and (node.op in INT8_OF or node.op in FLOAT_TWIN)
            total += size + 4 * value.shape[-2 if len(value.shape) > 1 else 0] if int8 else 4 * size
    return total


_BANDWIDTH_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef float v8 __attribute__((vector_size(32)));
int main(int argc, char** argv) {
    long bytes = atol(argv[1]), passes = atol(argv[2]), n = bytes / 32;
    v8* buf = aligned_alloc(64, n * 32);
    v8 a = {0}, b = {0}, c = {0}, d = {0};
    for (long i = 0; i < n; i++) buf[i] = (v8){1e-9f, 1e-9f, 1e-9f, 1e-9f, 1e-9f, 1e-9f, 1e-9f, 1e-9f};
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (long p = 0; p < passes; p++) {
        /* four independent sums: the loop is bound by the loads, not by the add latency */
        for (long i = 0; i + 4 <= n; i += 4) { a += buf[i]; b += buf[i + 1]; c += buf[i + 2]; d += buf[i + 3]; }
        __asm__ volatile("" ::: "memory");
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    v8 s = a + b + c + d;
    double sec = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("%.6e %f\n", (double)(n / 4 * 4) * 32 * passes / sec, (double)s[0]);
    return 0;
}
"""


@lru_cache(maxsize=8)
def read_bandwidth(nbytes: int) -> float:
    """Bytes per second one core reads from a buffer of ``nbytes`` read over and over (the best of three runs; gcc
    -O3 -march=native, process CPU time): the rate at which a model's weights of that size can stream per frame
    from wherever they live (L2, L3 or DRAM) on this machine."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise ToolchainError("no C compiler (gcc) to measure the memory bandwidth; apt-get install gcc")
    nbytes = max(int(nbytes), 4096)
    passes = max(1, int(2e9 // nbytes))  # ~2 GB read per run
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "bw.c", Path(tmp) / "bw"
        src.write_text(_BANDWIDTH_SOURCE)
        subprocess.run([cc, "-O3", "-march=native", "-std=gnu11", str(src), "-o", str(exe)], check=True,
                       capture_output=True)
        return max(float(subprocess.run([str(exe), str(nbytes), str(passes)], check=True, capture_output=True,
                                         text=True).stdout.split()[0]) for _ in range(3))


@lru_cache(maxsize=1)
def fma_peak_flops(iterations: int = 50_000_000) -> float:
    """This CPU's single-core float32 FMA peak in FLOP/s, measured with a tight vectorized FMA loop (gcc -O3
    -march=native) over process CPU time (time waiting for a busy core is not counted). The best of three runs."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise ToolchainError("no C compiler (gcc) to measure the FMA peak; apt-get install gcc")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "fma.c", Path(tmp) / "fma"
        src.write_text(_FMA_SOURCE)
        subprocess.run([cc, "-O3", "-march=native", "-ffp-contract=fast", str(src), "-o", str(exe)], check=True,
                       capture_output=True)
        best = 0.0
        for _ in range(3):
            out = subprocess.run([str(exe), str(iterations)], check=True, capture_output=True, text=True).stdout
            best = max(best, float(out.split()[0]))
    return best


def count_instructions(command: Sequence[str], emulator: str, emulator_args: Sequence[str] = (),
                       stdin: bytes | None = None, timeout: float = 300.0, cwd: str | Path | None = None) -> int:
    """Guest instructions executed by ``command`` under a qemu emulator (see the module note), run in ``cwd``."""
    exe = shutil.which(emulator)
    if exe is None:
        raise ToolchainError(f"{emulator} not found; apt-get install qemu-user qemu-system-arm")
    # The trace options go first: qemu-system-arm's arguments may end in "-kernel" (the command is its value).
    # Without -D the log goes to stderr, counted as it streams: a frame of a GRU is ~50 MB of log.
    args = [exe, "-singlestep", "-d", "exec,nochain", *emulator_args, *command]
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout:
        fin.write(stdin or b"")
        fin.seek(0)
        try:
            proc = subprocess.Popen(args, stdin=fin, stdout=fout, stderr=subprocess.PIPE, cwd=cwd)
        except OSError as exc:
            raise ToolchainError(f"cannot run {emulator}: {exc}") from exc
        count, tail, deadline = 0, b"", time.monotonic() + timeout
        try:
            for block in iter(lambda: proc.stderr.read(1 << 20), b""):
                count += (tail[-5:] + block).count(b"Trace ")  # a "Trace " split between blocks counts once
                tail = block[-2000:]
                if time.monotonic() > deadline:
                    raise ToolchainError(f"{emulator} {' '.join(command)}: over {timeout:.0f} s")
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if returncode != 0:
        message = b"\n".join(line for line in tail.splitlines() if not line.startswith(b"Trace "))
        raise ToolchainError(f"{emulator} failed ({returncode}): {message.decode(errors='replace')[-300:]}")
    return count


def instructions_per_frame(run_frames: Callable[[int], int], frames: int = 4) -> float:
    """(count(2N frames) − count(N frames)) / N for a function that returns the instruction count of a run."""
    a = run_frames(frames)
    b = run_frames(2 * frames)
    return (b - a) / frames


def cpu_name() -> str:
    """A short description of this CPU (for benchmark tables)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    except OSError:
        pass
    return "unknown CPU"
