"""`kwsc bench`: one model measured per implementation — reference interpreter, onnxruntime, generated C on the host
(timed) and generated C on emulated ARM targets (instructions per frame) — with a table, JSON and a comparison.

Every implementation is first checked against the reference interpreter on the same frames (max |Δ| column), so a
fast wrong build shows up in the table instead of hiding behind its speed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kwsc.errors import FormatError, InputError, KwscError
from kwsc.evaluate.bench import (FRAME_SECONDS, TimingStats, cpu_name, flops_per_frame, fma_peak_flops, read_bandwidth,
                                 time_per_call, weight_bytes_per_frame)
from kwsc.ir import Graph
from kwsc.ir.metadata import FeaturizerRecord

__all__ = ["BenchRow", "BenchReport", "bench_model", "format_report", "float_limits", "int8_summary", "compare_reports", "save_report",
           "load_report", "onnxruntime_stepper", "BENCH_TARGETS", "SLOWDOWN"]

BENCH_TARGETS = ("host", "armv7", "aarch64", "aarch64-dotprod", "cortex-m4")
SLOWDOWN = 0.10  # --compare flags a change above +10 %
_EMULATED_COUNT = 2  # instructions/frame from runs of 2 and 4 frames
_CHECK_FRAMES = 8


@dataclass
class BenchRow:
    """One implementation's result: timings (µs/frame) or an instruction count, or why it was skipped."""

    name: str
    kind: str  # "timed", "emulated" or "skipped"
    median_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    realtime: float | None = None
    instructions: float | None = None
    max_abs_diff: float | None = None
    note: str = ""


@dataclass
class BenchReport:
    """A model's benchmark: the rows, and what they are measured against."""

    model: str
    frames: int
    rounds: int
    frame_seconds: float
    flops: float
    peak_flops: float
    cpu: str
    load: float
    clock: str = "process CPU time"
    rows: list[BenchRow] = field(default_factory=list)
    weight_bytes: dict[str, float] = field(default_factory=dict)  # weights dtype → parameter bytes per frame
    bandwidth: dict[str, float] = field(default_factory=dict)  # weights dtype → bytes/s read from such a buffer

    def bandwidth_limit_us(self, weights_dtype: str) -> float:
        """The memory limit: the parameter bytes of a frame / the rate one core reads a buffer of that size."""
        bw = self.bandwidth.get(weights_dtype, 0.0)
        return self.weight_bytes[weights_dtype] / bw * 1e6 if bw > 0 else math.nan

    @property
    def limit_us(self) -> float:
        """The floating-point limit: FLOPs per frame / the measured single-core FMA peak."""
        return self.flops / self.peak_flops * 1e6 if self.peak_flops > 0 else math.nan

    def row(self, name: str) -> BenchRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def as_dict(self) -> dict:
        return asdict(self) | {"limit_us": self.limit_us}


def frame_seconds_of(graph: Graph) -> float:
    """Seconds of audio one tick consumes: metadata input_size / sample_rate, else 32 ms (512 samples at 16 kHz)."""
    try:
        seconds = FeaturizerRecord.from_metadata(graph.metadata).frame_seconds
    except (TypeError, ValueError):
        return FRAME_SECONDS
    return seconds if seconds and seconds > 0 else FRAME_SECONDS


def _input_frames(graph: Graph, count: int, seed: int) -> np.ndarray:
    inputs = graph.inputs
    if len(inputs) != 1 or len(graph.outputs) < 1:
        raise InputError(f"kwsc bench measures models with one input; {graph.name!r} has {len(inputs)}")
    if not inputs[0].type.dtype.startswith("float"):
        raise InputError(f"kwsc bench needs a float input; {graph.name!r} takes {inputs[0].type.dtype}")
    size = inputs[0].type.size
    # Audio-level noise: the featurizer's log stays finite and a VAD sees a steady level (repeatable, seeded).
    return np.random.default_rng(seed).normal(0, 0.1, (count, size)).astype(np.float32)


def _flat(out) -> np.ndarray:
    if isinstance(out, dict):
        out = next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _first_line(exc: Exception, limit: int = 160) -> str:
    """The error's first line, shortened at a word boundary to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"


def _timed(name: str, stats: TimingStats, frame_seconds: float, diff: float | None, note: str = "") -> BenchRow:
    return BenchRow(name, "timed", stats.median_us, stats.min_us, stats.max_us, stats.realtime_factor(frame_seconds),
                    None, diff, note)


def onnxruntime_stepper(graph: Graph):
    """onnxruntime on one tick of the model (kwsc.backends.onnx.to_onnx), single-threaded, state carried.

    Returns:
        ``((step, reset), "")``: ``step(frame)`` → the first output, feeding state outputs back as inputs;
        or ``(None, reason)`` when it cannot run (no exporter, an op without ONNX form such as VAD).
    """
    try:
        import onnxruntime as ort

        from kwsc.backends.onnx import to_onnx
    except ImportError as exc:
        return None, f"skipped: {exc.name or exc} not available"
    try:
        proto = to_onnx(graph)
    except KwscError as exc:
        return None, f"skipped: no ONNX mapping ({_first_line(exc, 120)})"
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        return None, f"skipped: onnxruntime refused the export ({_first_line(exc, 120)})"
    # State I/O (kwsc.backends.onnx): each <var>_out_<node> output is fed back into <var>_in_<node> next tick.
    pairs = json.loads({p.key: p.value for p in proto.metadata_props}.get("kwsc_state", "[]"))
    state_ins, state_outs = {p["input"] for p in pairs}, {p["output"] for p in pairs}
    main_in = next(i for i in sess.get_inputs() if i.name not in state_ins)
    out_names = [o.name for o in sess.get_outputs()]
    main_out = next(k for k, name in enumerate(out_names) if name not in state_outs)
    dtypes = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int32)": np.int32}
    zeros = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtypes.get(i.type, np.float32))
             for i in sess.get_inputs() if i.name in state_ins}
    state = dict(zeros)
    feedback = [(out_names.index(p["output"]), p["input"]) for p in pairs]
    feed_shape = [d if isinstance(d, int) else 1 for d in main_in.shape]

    def step(x: np.ndarray):
        results = sess.run(None, {main_in.name: x.reshape(feed_shape), **state})
        for index, name in feedback:
            state[name] = results[index]
        return results[main_out]

    def reset() -> None:
        state.update(zeros)

    return (step, reset), ""


def bench_model(graph: Graph, *, targets: tuple[str, ...] = ("host",), frames: int = 200, rounds: int = 10,
                seed: int = 0, workdir: str | Path | None = None, model_name: str = "model",
                progress: bool = True, int8: bool = False) -> BenchReport:
    """Measure ``graph`` per implementation.

    Args:
        graph: a verified model with one float input (a featurizer, a classifier or a fused model).
        targets: ``host`` (generated C timed on this machine) and emulated ``armv7``, ``aarch64``, ``cortex-m4``
            (instructions per frame under qemu). The reference interpreter and onnxruntime always run.
        frames: distinct input frames; each timing round runs all of them in order.
        rounds: timing rounds (after one warm-up round); median/min/max are over the rounds' per-frame means.
        seed: seeds the input frames.
        workdir: where the generated C projects go (a temporary folder when None).
        model_name: shown in the report.
        progress: a tqdm bar per implementation on stderr.
        int8: also the int8 build (``weights_dtype="int8"``: Dense/GRU/LSTM in int8 arithmetic) per C target,
            beside the float one, checked against the reference interpreter on the int8 graph; the header adds
            the parameter bytes per frame and the memory-bandwidth limit of each.
    """
    from tqdm import tqdm

    from kwsc.backends.reference import Interpreter

    unknown = [t for t in targets if t not in BENCH_TARGETS]
    if unknown:
        raise InputError(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(BENCH_TARGETS)}")
    if frames < 2 * _EMULATED_COUNT or rounds < 1:
        raise InputError(f"--frames must be >= {2 * _EMULATED_COUNT} and rounds >= 1")
    xs = _input_frames(graph, frames, seed)
    frame_seconds = frame_seconds_of(graph)
    interp = Interpreter(graph)
    check = np.stack([_flat(interp.step(x)) for x in xs[:_CHECK_FRAMES]])
    report = BenchReport(model=model_name, frames=frames, rounds=rounds, frame_seconds=frame_seconds,
                         flops=flops_per_frame(graph)["total"], peak_flops=fma_peak_flops(), cpu=cpu_name(),
                         load=os.getloadavg()[0])
    float_graph, dtypes = _float_graph(graph), ("float32", "int8") if int8 else ("float32",)
    if float_graph is not graph:  # the float rows run the float model the int8 ops were made from
        interp_float = Interpreter(float_graph)
        check = np.stack([_flat(interp_float.step(x)) for x in xs[:_CHECK_FRAMES]])
    checks = {"float32": check}
    if int8:
        from kwsc.backends.c.quantize import simulate_int8_weights

        interp8 = Interpreter(simulate_int8_weights(graph))
        checks["int8"] = np.stack([_flat(interp8.step(x)) for x in xs[:_CHECK_FRAMES]])
    for dtype in dtypes:
        report.weight_bytes[dtype] = weight_bytes_per_frame(float_graph, dtype)
        if "host" in targets and report.weight_bytes[dtype] > 0:
            report.bandwidth[dtype] = read_bandwidth(report.weight_bytes[dtype])

    def diff(step: Callable[[np.ndarray], object], reset: Callable[[], None]) -> float:
        reset()
        got = np.stack([_flat(step(x)) for x in xs[:_CHECK_FRAMES]])
        reset()
        return float(np.max(np.abs(got - check))) if got.shape == check.shape else math.inf

    def timed(step: Callable[[np.ndarray], object]) -> TimingStats:
        return time_per_call(lambda i: step(xs[i % frames]), calls_per_round=frames, rounds=rounds, warmup=1,
                             clock=time.process_time)

    steps = ["reference", "onnxruntime"] + [(t, d) for t in targets for d in dtypes]
    with tempfile.TemporaryDirectory(prefix="kwsc-bench-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        for what in tqdm(steps, desc="kwsc bench", unit="impl", disable=not progress):
            if what == "reference":
                interp.reset()
                report.rows.append(_timed("reference interpreter (numpy)", timed(interp.step), frame_seconds, None))
            elif what == "onnxruntime":
                session, why = onnxruntime_stepper(float_graph)
                if session is None:
                    report.rows.append(BenchRow("onnxruntime", "skipped", note=why))
                else:
                    step, reset = session
                    try:
                        d = diff(step, reset)
                        report.rows.append(_timed("onnxruntime", timed(step), frame_seconds, d))
                    except Exception as exc:  # onnxruntime's own exception types: a row, not a crash
                        report.rows.append(BenchRow("onnxruntime", "skipped", note=f"failed: {_first_line(exc)}"))
            else:
                # A target that cannot build or run is a row saying why; the other rows are still worth having.
                arch, dtype = what
                try:
                    if arch == "host":
                        row = _bench_host(graph, work / f"host-{dtype}", xs, checks[dtype], frames, rounds,
                                          frame_seconds, dtype)
                    else:
                        row = _bench_emulated(graph, work / f"{arch}-{dtype}", arch, xs, checks[dtype], dtype)
                except KwscError as exc:
                    why = _first_line(exc)
                    detail = next((line.strip() for line in str(exc).splitlines() if "error:" in line), "")
                    row = BenchRow(_c_row_name(arch, dtype), "skipped",
                                   note=f"failed: {why}" + (f" … {detail[:160]}" if detail else ""))
                report.rows.append(row)
    return report


def _float_graph(graph: Graph) -> Graph:
    """The float model of a graph that holds int8 ops (itself when it holds none): onnxruntime's row and the
    float C rows run it."""
    from kwsc.ir.op_quant import FLOAT_TWIN, to_float

    if not any(n.op in FLOAT_TWIN for n in graph.nodes):
        return graph
    out = graph.copy()
    to_float(out)
    return out


def _c_row_name(arch: str, weights_dtype: str = "float32") -> str:
    from kwsc.backends.c.targets import get_target

    runner = get_target(arch).runner
    kind = "generated C int8" if weights_dtype == "int8" else "generated C"
    return f"{kind} ({arch}, {runner[0]})" if runner else f"{kind} ({arch})"


def _bench_host(graph: Graph, outdir: Path, xs: np.ndarray, check: np.ndarray, frames: int, rounds: int,
                frame_seconds: float, weights_dtype: str = "float32") -> BenchRow:
    from kwsc.backends.c import emit_c, run_harness
    from kwsc.evaluate.bench_native import time_compiled

    emit_c(graph if weights_dtype == "int8" else _float_graph(graph), outdir, name="model", arch="host", build=True,
           weights_dtype=weights_dtype)
    got = run_harness(outdir, "host", xs[:len(check)])
    d = float(np.max(np.abs(got[:, :check.shape[1]] - check)))
    stats = time_compiled(outdir, xs, calls_per_round=max(frames, 1000), rounds=rounds, warmup=1)
    return _timed(_c_row_name("host", weights_dtype), stats, frame_seconds, d, "timed in C, no Python in the loop")


def _bench_emulated(graph: Graph, outdir: Path, arch: str, xs: np.ndarray, check: np.ndarray,
                    weights_dtype: str = "float32") -> BenchRow:
    from kwsc.backends.c import emit_c, run_harness, toolchain_missing
    from kwsc.evaluate.bench_native import emulated_instructions_per_frame

    name = _c_row_name(arch, weights_dtype)
    missing = toolchain_missing(arch)
    if missing:
        return BenchRow(name, "skipped", note=f"skipped: {', '.join(missing)} not installed")
    emit_c(graph if weights_dtype == "int8" else _float_graph(graph), outdir, name="model", arch=arch, build=True,
           weights_dtype=weights_dtype)
    got = run_harness(outdir, arch, xs[:len(check)])
    d = float(np.max(np.abs(got[:, :check.shape[1]] - check)))
    per_frame = emulated_instructions_per_frame(outdir, arch, xs, count=_EMULATED_COUNT)
    return BenchRow(name, "emulated", instructions=per_frame, max_abs_diff=d, note="instructions per frame")


def _fmt(value: float | None, spec: str) -> str:
    """``format(value, spec)``, or "-" right-aligned to the spec's width when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
        return "-".rjust(int(width or 0))
    return format(value, spec)


def format_report(report: BenchReport) -> str:
    """The report as a table (one line per implementation)."""
    lines = [f"{report.model}: {report.frames} frames × {report.rounds} rounds, {report.clock}; {report.cpu}, "
             f"load {report.load:.1f}",
             f"frame {report.frame_seconds * 1e3:.1f} ms; {report.flops / 1e6:.3f} MFLOP/frame; FMA peak "
             f"{report.peak_flops / 1e9:.0f} GFLOP/s → limit {report.limit_us:.3f} µs/frame",
             f"{'implementation':<40}{'median µs':>11}{'min µs':>10}{'max µs':>10}{'× limit':>9}"
             f"{'× real time':>13}{'instr/frame':>13}{'max |Δ| ref':>13}"]
    for r in report.rows:
        if r.kind == "skipped":
            lines.append(f"{r.name:<40}  {r.note}")
            continue
        over = r.median_us / report.limit_us if r.median_us and report.limit_us > 0 else None
        lines.append(f"{r.name:<40}{_fmt(r.median_us, '11.2f')}{_fmt(r.min_us, '10.2f')}{_fmt(r.max_us, '10.2f')}"
                     f"{_fmt(over, '9.1f' if over is not None and over < 100 else '9,.0f')}{_fmt(r.realtime, '13,.0f')}{_fmt(r.instructions, '13,.0f')}"
                     f"{_fmt(r.max_abs_diff, '13.1e')}")
    if report.weight_bytes:
        lines.append("parameters per frame: " + "; ".join(
            f"{dtype} {nbytes / 1e3:,.1f} kB" + (f" (one core reads such a buffer at {report.bandwidth[dtype] / 1e9:.0f}"
                                                f" GB/s → bandwidth limit {report.bandwidth_limit_us(dtype):.2f} µs)"
                                                if dtype in report.bandwidth else "")
            for dtype, nbytes in report.weight_bytes.items()))
    lines += [f"  {line}" for line in float_limits(report)]
    lines += [f"  {line}" for line in int8_summary(report)]
    return "\n".join(lines)


def float_limits(report: BenchReport) -> list[str]:
    """The float host build against both limits of the same run: the FLOP limit (FLOPs / the FMA peak) and the
    bandwidth limit (float32 parameter bytes / the read rate of a buffer that size). When the bandwidth limit alone
    is over 1.5× the FLOP limit, float32 weights cannot run within 1.5× the FLOP limit on this machine: said so."""
    row = report.row(_c_row_name("host"))
    if row is None or row.kind != "timed" or not report.limit_us > 0:
        return []
    line = f"host float: {row.median_us:.2f} µs = {row.median_us / report.limit_us:.1f}× the FLOP limit"
    bw_limit = report.bandwidth_limit_us("float32") if "float32" in report.weight_bytes else math.nan
    if not bw_limit > 0:
        return [line]
    line += (f", {row.median_us / bw_limit:.2f}× the bandwidth limit ({bw_limit:.2f} µs: "
             f"{report.weight_bytes['float32'] / 1e3:,.1f} kB at {report.bandwidth['float32'] / 1e9:.0f} GB/s)")
    if bw_limit > 1.5 * report.limit_us:
        line += (f"; the bandwidth limit alone is {bw_limit / report.limit_us:.1f}× the FLOP limit: float32 weights "
                 f"cannot stream fast enough for 1.5× it here")
    return [line]


def int8_summary(report: BenchReport) -> list[str]:
    """Float and int8 side by side, as ratios from the same run: per target the int8 build's time or instructions
    against the float build's, the host's against onnxruntime and the limits (empty without int8 rows)."""
    out = []
    ort = report.row("onnxruntime")
    for row in report.rows:
        if not row.name.startswith("generated C int8") or row.kind == "skipped":
            continue
        base = report.row(row.name.replace("generated C int8", "generated C"))
        arch = row.name[row.name.index("(") + 1:].split(",")[0].rstrip(")")
        if row.kind == "timed":
            parts = [f"{arch}: int8 {row.median_us:.2f} µs"]
            if base is not None and base.kind == "timed":
                parts.append(f"float {base.median_us:.2f} µs (×{base.median_us / row.median_us:.1f} faster; float "
                             f"{base.median_us / report.limit_us:.1f}× the FLOP limit"
                             + (f", {base.median_us / report.bandwidth_limit_us('float32'):.1f}× the bandwidth limit"
                                if "float32" in report.bandwidth else "") + ")")
            if ort is not None and ort.kind == "timed":
                parts.append(f"×{ort.median_us / row.median_us:.1f} faster than onnxruntime")
            out.append("; ".join(parts))
        elif base is not None and base.kind == "emulated" and base.instructions:
            out.append(f"{arch}: int8 {row.instructions:,.0f} instructions/frame = "
                       f"{row.instructions / base.instructions:.0%} of float ({base.instructions:,.0f})")
    if out and "int8" in report.weight_bytes and report.weight_bytes["int8"]:
        out.append(f"weights ÷{report.weight_bytes['float32'] / report.weight_bytes['int8']:.2f} in int8")
    return out


def compare_reports(new: BenchReport, old: BenchReport, threshold: float = SLOWDOWN) -> tuple[str, list[str]]:
    """The change of every implementation measured in both reports (median µs/frame or instructions/frame).

    Returns:
        The table text, and the names of the implementations slower by more than ``threshold``.
    """
    lines = [f"change vs previous run ({old.model}, load {old.load:.1f}); + is slower, flagged above "
             f"+{threshold:.0%}", f"{'implementation':<40}{'before':>16}{'now':>16}{'change':>10}"]
    slower = []
    for r in new.rows:
        o = old.row(r.name)
        if o is None or r.kind == "skipped" or o.kind != r.kind:
            lines.append(f"{r.name:<40}{'(not in both runs)':>42}")
            continue
        a, b = (o.instructions, r.instructions) if r.kind == "emulated" else (o.median_us, r.median_us)
        if not a or b is None:
            continue
        change = b / a - 1
        flag = "  SLOWER" if change > threshold else ""
        if flag:
            slower.append(r.name)

        def show(v: float) -> str:
            return f"{v:,.0f} instr" if r.kind == "emulated" else f"{v:.2f} µs"

        lines.append(f"{r.name:<40}{show(a):>16}{show(b):>16}{change:>+10.1%}{flag}")
    return "\n".join(lines), slower


def save_report(report: BenchReport, path: str | Path) -> None:
    """Write the report as JSON, atomically."""
    from kwsc.fileio import atomic_write

    atomic_write(Path(path), (json.dumps(report.as_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def load_report(path: str | Path) -> BenchReport:
    """Read a report written by ``save_report`` (FormatError naming the file when it is not one)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        rows = [BenchRow(**r) for r in data.pop("rows")]
        data.pop("limit_us", None)
        return BenchReport(**data, rows=rows)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FormatError(f"{p}: not a kwsc bench JSON report ({type(exc).__name__}: {exc})") from None
