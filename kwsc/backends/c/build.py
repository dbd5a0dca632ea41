"""Building, running and measuring generated C projects: ``make``, the test harness under qemu, the size report."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kwsc.backends.c.targets import Target, get_target
from kwsc.errors import ToolchainError

__all__ = ["build_project", "run_harness", "run_bench", "SizeReport", "size_report", "format_size_report",
           "toolchain_missing"]


def toolchain_missing(arch: str) -> list[str]:
    """Tools the target needs that are not installed (empty when it can build and run)."""
    return get_target(arch).missing_tools() + ([] if _which("make") else ["make"])


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def _run(cmd: list[str], cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise ToolchainError(f"{what}: {cmd[0]} not found (install it, or run `make test` as root)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{what}: {' '.join(cmd)} timed out after {timeout:.0f} s in {cwd}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise ToolchainError(f"{what} failed (exit {proc.returncode}) in {cwd}: {tail}")
    return proc


def build_project(outdir: str | Path, target: Target) -> list[str]:
    """Run ``make`` in a generated project; returns the artifacts built (relative paths)."""
    missing = target.missing_tools()
    if missing:
        raise ToolchainError(f"cannot build for {target.name}: missing {', '.join(missing)} "
                             f"(`make test` installs them as root)")
    outdir = Path(outdir)
    _run(["make", "-s", f"-j{min(os.cpu_count() or 1, 4)}", "all"], outdir, 600, f"building {outdir} for {target.name}")
    if target.artifact == "shared":
        names = [p.name for p in outdir.glob("lib*.so")] + ["example", "harness", "bench"]
    elif target.artifact == "static":
        names = ["example", "harness", "bench"]
    else:
        names = ["harness.elf", "probe.elf"]
    return sorted(n for n in names if (outdir / n).exists())


def run_harness(outdir: str | Path, arch: str, frames: np.ndarray, resets: list[int] = (),
                output_size: int | None = None, timeout: float = 300) -> np.ndarray:
    """Run the built test harness on ``frames`` (T, inputs) with ``Reset()`` before the listed frame indices.

    Returns:
        (T, outputs) float32: the model's outputs frame by frame, as computed on the target (under qemu).
    """
    target = get_target(arch)
    outdir = Path(outdir)
    exe = "harness" + target.exe_suffix
    if not (outdir / exe).exists():
        raise ToolchainError(f"{outdir / exe} not built; emit with build=True for arch {arch}")
    frames = np.ascontiguousarray(frames, dtype="<f4")
    (outdir / "harness_in.bin").write_bytes(frames.tobytes())
    (outdir / "harness_resets.txt").write_text("".join(f"{int(r)}\n" for r in resets))
    out_path = outdir / "harness_out.bin"
    if out_path.exists():
        out_path.unlink()
    cmd = list(target.runner) + [exe if target.runner else f"./{exe}"]
    _run(cmd, outdir, timeout, f"running the {arch} harness")
    if not out_path.exists():
        raise ToolchainError(f"the {arch} harness wrote no output in {outdir}")
    data = np.frombuffer(out_path.read_bytes(), dtype="<f4")
    steps = frames.shape[0]
    if steps == 0:
        return data.reshape(0, output_size or 0)
    if data.size % steps:
        raise ToolchainError(f"the {arch} harness wrote {data.size} floats for {steps} frames")
    return data.reshape(steps, -1).astype(np.float32)


def run_bench(outdir: str | Path, arch: str = "host", calls: int = 20000, repeats: int = 7,
              timeout: float = 600) -> dict[str, float]:
    """Time ``<name>_Predict`` with the project's generated ``bench`` program (no Python in the loop).

    Returns:
        ``{"cpu_us": …, "wall_us": …}`` per frame: the best of ``repeats`` runs of ``calls`` calls, in this
        thread's CPU time (robust on a shared machine) and in wall time. ARM targets run under qemu-user, whose
        times measure the emulator, not the chip.
    """
    target = get_target(arch)
    outdir = Path(outdir)
    if target.artifact == "baremetal" or not (outdir / "bench").exists():
        raise ToolchainError(f"{outdir}: no bench program for {arch} (build a host, armv7 or aarch64 project)")
    cmd = list(target.runner) + [("bench" if target.runner else "./bench"), str(int(calls)), str(int(repeats))]
    out = _run(cmd, outdir, timeout, f"running the {arch} bench").stdout
    values = dict(re.findall(r"(\w+)_us_per_frame=([0-9.eE+-]+)", out))
    if "cpu" not in values:
        raise ToolchainError(f"unexpected bench output in {outdir}: {out.strip()[:200]}")
    return {"cpu_us": float(values["cpu"]), "wall_us": float(values["wall"])}


@dataclass
class SizeReport:
    """Flash and RAM of a built model, in bytes (from the toolchain's size and nm, and -fstack-usage).

    code: model + runtime instructions and small read-only data, without weights and tables.
    weights: learned parameters (Dense/RNN matrices and biases). tables: derived constants (window, twiddles,
    filter banks, DCT, VAD weights). state: one ``<name>_State`` (activations arena + node state).
    arena: the activation part of it. stack: an estimate (Predict's frames plus the two deepest kernel frames).
    linked_code: for bare-metal targets, the code of a minimal firmware (probe.elf) including libm/libc parts.
    """

    arch: str
    code: int
    weights: int
    tables: int
    state: int
    arena: int
    stack: int
    linked_code: int | None = None

    @property
    def flash(self) -> int:
        return self.code + self.weights + self.tables

    @property
    def ram(self) -> int:
        return self.state

    def as_dict(self) -> dict:
        return asdict(self) | {"flash": self.flash, "ram": self.ram}

    def __str__(self) -> str:
        kib = lambda n: f"{n / 1024:.1f} KiB"  # noqa: E731
        return (f"flash {kib(self.flash)} (code {kib(self.code)}, weights {kib(self.weights)}, tables "
                f"{kib(self.tables)}), RAM {kib(self.ram)} (activations {kib(self.arena)}) + stack ~{kib(self.stack)}")


_CODE_SECTIONS = re.compile(r"^\.(text|rodata|data\.rel\.ro|srodata)")


def _section_sizes(target: Target, objects: list[Path], cwd: Path) -> int:
    out = _run([target.size_tool, "-A", "-d"] + [str(o) for o in objects], cwd, 60, "size").stdout
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and _CODE_SECTIONS.match(parts[0]) and parts[1].isdigit():
            total += int(parts[1])
    return total


def _symbols(target: Target, obj: Path, cwd: Path) -> list[tuple[str, int, str]]:
    out = _run([target.nm_tool, "-S", str(obj)], cwd, 60, "nm").stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            syms.append((parts[3], int(parts[1], 16), parts[2]))
    return syms


def _stack_estimate(outdir: Path, name: str) -> int:
    frames: dict[str, int] = {}
    for su in sorted((outdir / "build").rglob("*.su")):
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1].strip().isdigit():
                frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    own = frames.get(f"{name}_Predict", 0) + frames.get(f"{name}_PredictState", 0)
    kernels = sorted((v for k, v in frames.items() if k.startswith("kwsc_") or k in ("complex_fft_inplace",
                                                                                    "pairwise_sum")), reverse=True)
    return own + sum(kernels[:2])


def size_report(outdir: str | Path, target: Target, name: str) -> SizeReport:
    """Measure a built project (see ``SizeReport``)."""
    outdir = Path(outdir)
    build = outdir / "build"
    model_obj = build / f"{name}.o"
    objects = [model_obj] + sorted(p for p in (build / "runtime").rglob("*.o"))
    weights = tables = state = 0
    for sym, size, kind in _symbols(target, model_obj, outdir):
        if sym.startswith("w_"):
            weights += size
        elif sym.startswith("t_"):
            tables += size
        elif sym == f"{name}_default_state":
            state = size
    code = _section_sizes(target, objects, outdir) - weights - tables
    header = (outdir / f"{name}.h").read_text()
    match = re.search(r"float f\[(\d+)\]; int32_t i\[\d+\]; \} arena;", header)
    arena = 4 * int(match.group(1)) if match else 0
    linked = None
    probe = outdir / "probe.elf"
    if target.artifact == "baremetal" and probe.exists():
        linked = _section_sizes(target, [probe], outdir) - weights - tables
    return SizeReport(arch=target.name, code=code, weights=weights, tables=tables, state=state, arena=arena,
                      stack=_stack_estimate(outdir, name), linked_code=linked)


def format_size_report(report: SizeReport) -> str:
    """The report as a small table (bytes and KiB)."""
    def row(label: str, value: int | None) -> str:
        return f"  {label:<34}{value:>10,d} B {value / 1024:>9.2f} KiB" if value is not None else ""

    lines = [f"size report ({report.arch})",
             "flash", row("code (model + kernels)", report.code), row("weights", report.weights),
             row("tables (window, FFT, filters, VAD)", report.tables), row("total", report.flash)]
    if report.linked_code is not None:
        lines.append(row("linked firmware code (+libm/libc)", report.linked_code))
    lines += ["RAM", row("state + activations (one instance)", report.state),
              row("  of which activations (arena)", report.arena), row("stack (estimate)", report.stack)]
    return "\n".join(line for line in lines if line)
