"""The C backend: a graph → a self-contained C99 project for host, armv7, aarch64 or Cortex-M4.

``emit_c(graph, outdir, name=..., arch=..., build=..., weights_dtype=..., size_report=...)`` renders (and builds)
the project; ``load(outdir)`` opens a host build with ctypes; ``run_harness`` replays frames on any target
(qemu for the ARM ones); ``run_bench`` times Predict in C;
``simulate_int8_weights`` gives the reference interpreter the int8 build's weights.
The C kernels live in ``kwsc/runtime`` (``runtime/`` at the repository root links there).
"""

from kwsc.backends.c.build import SizeReport, format_size_report, run_bench, run_harness, toolchain_missing
from kwsc.backends.c.emitter import EmitResult, emit_c, runtime_dir
from kwsc.backends.c.load import CompiledModel, load
from kwsc.backends.c.quantize import dequantize_rows, quantize_rows, simulate_int8_weights
from kwsc.backends.c.targets import TARGETS, Target

__all__ = ["emit_c", "EmitResult", "load", "CompiledModel", "run_harness", "run_bench", "SizeReport",
           "format_size_report", "toolchain_missing", "simulate_int8_weights", "quantize_rows", "dequantize_rows",
           "runtime_dir", "TARGETS", "Target"]
