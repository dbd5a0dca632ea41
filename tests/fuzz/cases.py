"""One fuzz case: a (mutated) file through the kwsc command line, and what became of it.

Models go through ``kwsc import X -o out.kwsc``, ``kwsc print X`` and ``kwsc emit (out.kwsc | X) --target c -o
out_c`` (no build); wavs through ``kwsc listen --wav X --fast`` with a tiny featurizer and classifier. The CLI's
``main`` runs in this process (fast) under a timer; ``run_case_subprocess`` runs the same commands as a child
process under ``resource.setrlimit`` (address space 1 GiB) for the sampled subprocess cases.

Outcomes (``OK``): ``refused`` (one ``kwsc: error:`` line, exit 2, nothing written, for every command),
``accepted-correct`` (ONNX: onnxruntime loads and runs the model and kwsc's reference interpreter, run on kwsc's
import, agrees on a random input), ``accepted`` (``.ell``/``.kwsc``/wav: every command succeeds and the reference
interpreter runs the imported model), ``accepted-emit-refused`` (imported, but the C backend refuses it in one clean
line), ``accepted-ort-refuses`` (ONNX that kwsc reads and onnxruntime does not: watched, reported).
Failures (``FAILURES``): ``mismatch``, ``internal-error`` (exit 1 or an exception), ``messy-error`` (exit 2 but not
exactly one clean line), ``wrote-on-error``, ``reference-error``, ``timeout``, ``memory``, ``crash``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["OK", "FAILURES", "Outcome", "CaseFiles", "run_case", "run_case_subprocess", "cli"]

OK = ("refused", "accepted-correct", "accepted", "accepted-emit-refused", "accepted-ort-refuses")
FAILURES = ("mismatch", "internal-error", "messy-error", "wrote-on-error", "reference-error", "timeout", "memory",
            "crash")
MEMORY_LIMIT = 1 << 30  # bytes of address space for subprocess cases
RTOL, ATOL = 1e-3, 1e-4


@dataclass
class Outcome:
    kind: str
    detail: str = ""
    lines: list[str] = field(default_factory=list)  # the stderr lines of refusals (for the tally's examples)

    @property
    def ok(self) -> bool:
        return self.kind in OK


@dataclass
class CaseFiles:
    """The fixed files a wav case needs (featurizer, classifier, categories), written once per run."""

    folder: Path

    def __post_init__(self) -> None:
        from kwsc.ir import save
        from tests.fuzz.seeds import tiny_classifier, tiny_featurizer

        self.folder.mkdir(parents=True, exist_ok=True)
        self.featurizer, self.classifier = self.folder / "featurizer.kwsc", self.folder / "classifier.kwsc"
        self.categories = self.folder / "categories.txt"
        save(tiny_featurizer(), self.featurizer)
        save(tiny_classifier(), self.classifier)
        self.categories.write_text("one\ntwo\nthree\n")


class CaseTimeout(BaseException):
    """Raised by the timer inside a case (a BaseException, so kwsc's own handlers do not swallow it)."""


def _alarm(signum, frame):
    raise CaseTimeout()


def memoize_parser() -> None:
    """Build kwsc's argument parser once per process (10 ms a call; it holds no per-run state). Only for the
    ``make fuzz`` worker processes: under pytest a memoized parser would outlive the test and keep the commands'
    functions that other tests monkeypatch."""
    import kwsc.cli

    if not hasattr(kwsc.cli.build_parser, "cache_info"):
        kwsc.cli.build_parser = functools.lru_cache(maxsize=1)(kwsc.cli.build_parser)


def cli(argv: list[str], timeout: float = 20.0) -> tuple[int | str, str, str]:
    """``kwsc argv`` in this process: (exit code or ``"timeout"``/``"exception: …"``, stdout, stderr).

    ``timeout`` is in seconds of this process's CPU time (a profiling timer), so a busy machine does not turn a slow
    case into a false hang."""
    from kwsc.cli import main

    out, err = io.StringIO(), io.StringIO()
    logging.getLogger().handlers.clear()  # basicConfig binds to the stderr of its first call; let it rebind
    old = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc: int | str = main([str(a) for a in argv])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
    except CaseTimeout:
        rc = "timeout"
    except RecursionError as exc:  # escaped kwsc's handler
        rc = f"exception: RecursionError: {str(exc)[:100]}"
    except Exception as exc:  # noqa: BLE001 - anything that escapes main is a finding
        rc = f"exception: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
        logging.getLogger().handlers.clear()
    return rc, out.getvalue(), err.getvalue()


def _commands(fmt: str, path: Path, work: Path, files: CaseFiles | None):
    """(name, argv, what it may write) of each command of a case; emit's argv is decided after import."""
    if fmt == "wav":
        return [("listen", ["listen", "--featurizer", files.featurizer, "--classifier", files.classifier,
                            "--categories", files.categories, "--wav", path, "--fast"], None)]
    return [("import", ["import", path, "-o", work / "out.kwsc"], work / "out.kwsc"),
            ("print", ["print", path], None),
            ("emit", None, work / "out_c")]


def _judge(name: str, rc, err: str, written: Path | None) -> Outcome | None:
    """None when the command succeeded; else the outcome of its failure (a clean refusal or a finding)."""
    if rc == 0:
        return None
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if rc == "timeout":
        return Outcome("timeout", f"{name}: over the time limit")
    if isinstance(rc, str):
        kind = "memory" if "MemoryError" in rc else "internal-error"
        return Outcome(kind, f"{name}: {rc}")
    if rc != 2:
        text = lines[-1] if lines else f"exit {rc}"
        return Outcome("memory" if "MemoryError" in text else "internal-error", f"{name}: exit {rc}: {text[:300]}")
    # One error line, last; progress notes before it are fine (listen says what it loads), warnings are not.
    errors = [line for line in lines if line.startswith("kwsc: error:")]
    noise = [line for line in lines if "Traceback" in line or "Warning" in line or "warning:" in line.lower()]
    if len(errors) != 1 or lines[-1] != errors[0] or noise:
        return Outcome("messy-error", f"{name}: {len(lines)} stderr lines: " + " | ".join(lines)[-400:])
    if written is not None and written.exists():
        return Outcome("wrote-on-error", f"{name}: wrote {written.name} and exited 2: {errors[0][:200]}")
    return Outcome("refused", f"{name}: {errors[0][:300]}", errors)


def _feeds(session, ir_inputs: dict, rng) -> dict[str, np.ndarray]:
    kinds = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int32)": np.int32,
             "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
    feeds = {}
    for info in session.get_inputs():
        dtype = kinds.get(info.type, np.float32)
        if info.name in ir_inputs:
            shape = list(ir_inputs[info.name])
            if len(shape) != len(info.shape) or any(isinstance(d, int) and d != s for d, s in zip(info.shape, shape)):
                shape = [d if isinstance(d, int) and d > 0 else 1 for d in info.shape]
        else:
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in info.shape]
        if info.name not in ir_inputs:  # a state input kwsc keeps inside the model: zero, as kwsc starts
            feeds[info.name] = np.zeros(shape, dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[info.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[info.name] = rng.random(shape) < 0.5
        else:
            feeds[info.name] = rng.integers(0, 3, shape).astype(dtype)
    return feeds


def compare_with_onnxruntime(model: bytes, imported: Path, seed: int = 0) -> Outcome:
    """Reference interpreter on kwsc's import vs onnxruntime on the original bytes, one random input."""
    import onnxruntime as ort

    from kwsc.backends.reference import Interpreter
    from kwsc.errors import KwscError
    from kwsc.ir import load

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises many kinds
        return Outcome("accepted-ort-refuses", f"load: {' '.join(str(exc).split())[:300]}")
    graph = load(imported)
    ir_inputs = {n.attrs["name"]: n.outputs[0].shape for n in graph.input_nodes}
    rng = np.random.default_rng(seed)
    feeds = _feeds(session, ir_inputs, rng)
    try:
        with np.errstate(all="ignore"):
            want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    except Exception as exc:  # noqa: BLE001
        return Outcome("accepted-ort-refuses", f"run: {' '.join(str(exc).split())[:300]}")
    try:
        with np.errstate(all="ignore"):
            interpreter = Interpreter(graph)
            ours = interpreter.step({name: feeds[name] for name in ir_inputs})
    except KwscError as exc:
        return Outcome("reference-error", f"reference refuses a model it imported: {str(exc)[:300]}")
    if not isinstance(ours, dict):
        ours = {interpreter.output_names[0]: ours}
    compared = 0
    for name, expected in want.items():
        if name not in ours:
            continue
        got = np.asarray(ours[name])
        expected = np.asarray(expected)
        if got.size != expected.size:
            return Outcome("mismatch", f"output {name}: kwsc shape {got.shape}, onnxruntime {expected.shape}")
        got = got.reshape(expected.shape).astype(np.float64)
        expected = expected.astype(np.float64)
        scale = np.nanmax(np.abs(np.where(np.isfinite(expected), expected, 0)), initial=1.0)
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL * scale, equal_nan=True):
            bad = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL * scale, equal_nan=True)
            at = np.argwhere(bad)[0]
            return Outcome("mismatch", f"output {name}{list(at)}: kwsc {got[tuple(at)]!r}, onnxruntime "
                                       f"{expected[tuple(at)]!r} ({int(bad.sum())} of {bad.size} differ)")
        compared += 1
    if not compared:
        return Outcome("mismatch", f"no output in common (kwsc {sorted(ours)}, onnxruntime {sorted(want)})")
    return Outcome("accepted-correct", f"{compared} output(s) agree")


def _reference_runs(imported: Path) -> Outcome:
    from kwsc.backends.reference import Interpreter
    from kwsc.errors import KwscError
    from kwsc.ir import load

    graph = load(imported)
    rng = np.random.default_rng(0)
    feeds = {n.attrs["name"]: rng.standard_normal(n.outputs[0].shape).astype(n.outputs[0].dtype)
             for n in graph.input_nodes}
    try:
        with np.errstate(all="ignore"):
            Interpreter(graph).step(feeds)
    except KwscError as exc:
        return Outcome("reference-error", f"reference refuses a model it imported: {str(exc)[:300]}")
    return Outcome("accepted", "imported, printed, emitted; the reference interpreter runs it")


def run_case(fmt: str, data: bytes, work: Path, files: CaseFiles | None = None, timeout: float = 20.0,
             compare: bool = True) -> Outcome:
    """Run one case in this process; ``work`` is an empty folder of its own."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"case.{fmt}"
    path.write_bytes(data)
    results: dict[str, Outcome | None] = {}
    for name, argv, written in _commands(fmt, path, work, files):
        if name == "emit":
            source = work / "out.kwsc" if results.get("import") is None else path
            argv = ["emit", source, "--target", "c", "-o", written]
        rc, _, err = cli(argv, timeout)
        results[name] = _judge(name, rc, err, written)
        if results[name] is not None and not results[name].ok:
            return results[name]
    first = results.get("import", results.get("listen"))
    if first is not None:
        return first  # refused at the door (print and emit refused cleanly too)
    if fmt == "wav":
        return Outcome("accepted", "listened")
    if results.get("emit") is not None:
        return Outcome("accepted-emit-refused", results["emit"].detail, results["emit"].lines)
    try:
        if fmt == "onnx" and compare:
            return compare_with_onnxruntime(data, work / "out.kwsc")
        return _reference_runs(work / "out.kwsc")
    except CaseTimeout:
        return Outcome("timeout", "reference run over the time limit")
    except Exception as exc:  # noqa: BLE001
        return Outcome("internal-error", f"checking the import: {type(exc).__name__}: {str(exc)[:300]}")


CPU_LIMIT = 60  # seconds of CPU per command for subprocess cases


def _limit_memory() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT + 5))


def run_case_subprocess(fmt: str, data: bytes, work: Path, files: CaseFiles | None = None,
                        timeout: float = 600.0) -> Outcome:
    """The same commands as ``run_case``, each as ``python -m kwsc`` in a child limited to 1 GiB of address space
    and ``CPU_LIMIT`` seconds of CPU (``timeout``: wall-clock backstop; no onnxruntime comparison: the in-process
    cases do that)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"case.{fmt}"
    path.write_bytes(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    results: dict[str, Outcome | None] = {}
    for name, argv, written in _commands(fmt, path, work, files):
        if name == "emit":
            source = work / "out.kwsc" if results.get("import") is None else path
            argv = ["emit", source, "--target", "c", "-o", written]
        try:
            proc = subprocess.run([sys.executable, "-m", "kwsc", *map(str, argv)], capture_output=True, text=True,
                                  timeout=timeout, env=env, preexec_fn=_limit_memory, cwd=work)
        except subprocess.TimeoutExpired:
            return Outcome("timeout", f"{name}: over {timeout:g} s")
        rc = proc.returncode
        if rc == -signal.SIGXCPU:
            return Outcome("timeout", f"{name}: over {CPU_LIMIT} s of CPU")
        if rc < 0:
            return Outcome("crash", f"{name}: killed by signal {-rc}: {proc.stderr.strip()[-300:]}")
        if "Traceback" in proc.stderr:
            return Outcome("internal-error", f"{name}: traceback: {proc.stderr.strip().splitlines()[-1][:300]}")
        results[name] = _judge(name, rc, proc.stderr, written)
        if results[name] is not None and not results[name].ok:
            return results[name]
    first = results.get("import", results.get("listen"))
    if first is not None:
        return first
    if results.get("emit") is not None:
        return Outcome("accepted-emit-refused", results["emit"].detail, results["emit"].lines)
    return Outcome("accepted", "every command succeeded in a memory-limited child")


def clear(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
