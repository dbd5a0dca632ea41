"""``make fuzz``: thousands of cases in worker processes, a tally per format and outcome (JSON + text).

    python -m tests.fuzz --cases 10000 --jobs 2 --out fuzz-out       # the whole run
    python -m tests.fuzz --case 1234 --out fuzz-out                  # one case again, with what was done to it

Case *i* is fully determined by ``--seed`` and *i*: its format (ONNX 40 %, ``.ell`` 25 %, ``.kwsc`` 25 %, wav
10 %), its seed file and its mutations come from ``random.Random(f"{seed}:{i}")``. Each worker is a child process
limited to its start-up size + 1 GiB of address space; it writes one JSON line before and after each case, so a
case that hangs (no progress for ``--timeout`` s) or kills its worker is recorded as ``timeout``/``crash`` and the
worker restarts after it. One case in 50 also runs its commands as memory-limited subprocesses.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.cases import (FAILURES, OK, CaseFiles, Outcome, clear, memoize_parser, run_case,
                              run_case_subprocess)
from tests.fuzz.mutate import mutate
from tests.fuzz.seeds import FORMATS, build_seeds, load_seeds, save_seeds

__all__ = ["generate_case", "main"]

WEIGHTS = {"onnx": 40, "ell": 25, "kwsc": 25, "wav": 10}
SUBPROCESS_EVERY = 50


def generate_case(seeds: dict[str, dict[str, bytes]], rng: random.Random, fmt: str | None = None):
    """(format, seed name, mutated bytes, what was done) for one case."""
    fmt = fmt or rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    name = rng.choice(sorted(seeds[fmt]))
    data, done = mutate(fmt, rng, seeds[fmt][name])
    return fmt, name, data, done


def _worker(args) -> int:
    """Run cases [start, stop) and append one JSON line per event to ``--log``."""
    soft = resource.getrlimit(resource.RLIMIT_AS)
    size = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), soft[1]))
    memoize_parser()
    seeds = load_seeds(Path(args.out) / "seeds")
    done = set(_all_records(Path(args.out))) if args.resume else set()  # cases other logs have
    scratch = Path(tempfile.mkdtemp(prefix="kwsc-fuzz-"))
    files = CaseFiles(scratch / "fixed")
    with open(args.log, "a", buffering=1) as log:
        for i in range(args.start, args.stop):
            if i in done:
                continue
            rng = random.Random(f"{args.seed}:{i}")
            fmt, name, data, done = generate_case(seeds, rng)
            log.write(json.dumps({"start": i}) + "\n")
            work = scratch / f"case{i}"
            t0 = time.monotonic()
            if i % SUBPROCESS_EVERY == SUBPROCESS_EVERY - 1:
                outcome, mode = run_case_subprocess(fmt, data, work, files), "subprocess"
            else:
                outcome, mode = run_case(fmt, data, work, files, timeout=args.timeout), "in-process"
            clear(work)
            log.write(json.dumps({"case": i, "format": fmt, "seed": name, "mutations": done, "mode": mode,
                                  "outcome": outcome.kind, "detail": outcome.detail,
                                  "seconds": round(time.monotonic() - t0, 3)}) + "\n")
    clear(scratch)
    return 0


def _read_log(path: Path) -> tuple[dict[int, dict], int | None]:
    done, started = {}, None
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "start" in entry:
                started = entry["start"]
            else:
                done[entry["case"]] = entry
    return done, started


def _launch(args, start: int, stop: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.fuzz", "--worker", "--start", str(start), "--stop", str(stop), "--log",
           str(log), "--out", args.out, "--seed", str(args.seed), "--timeout", str(args.timeout), "--stall",
           str(args.stall)] + (["--resume"] if args.resume else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _all_records(out: Path) -> dict[int, dict]:
    records: dict[int, dict] = {}
    for log in sorted(out.glob("worker*.jsonl")):
        records.update(_read_log(log)[0])
    return records


def _chunks(args, out: Path) -> list[dict]:
    """The case ranges of the workers: [0, cases) split evenly, or with --resume the cases no log has yet."""
    if not args.resume:
        for log in out.glob("worker*.jsonl"):
            log.unlink()
        bounds = [args.cases * k // args.jobs for k in range(args.jobs + 1)]
        return [{"next": bounds[k], "stop": bounds[k + 1], "log": out / f"worker{k}.jsonl"} for k in range(args.jobs)]
    done = set(_all_records(out))
    missing = [i for i in range(args.cases) if i not in done]
    groups = [missing[len(missing) * k // args.jobs: len(missing) * (k + 1) // args.jobs] for k in range(args.jobs)]
    return [{"next": g[0], "stop": g[-1] + 1, "log": out / f"worker-r{g[0]}.jsonl"} for g in groups if g]


def _supervise(args) -> dict[int, dict]:
    out = Path(args.out)
    chunks = _chunks(args, out)
    records: dict[int, dict] = {}
    for chunk in chunks:
        chunk["proc"] = _launch(args, chunk["next"], chunk["stop"], chunk["log"]) if chunk["next"] < chunk["stop"] \
            else None
        chunk["seen"], chunk["since"] = 0, time.monotonic()
    last_report = time.monotonic()
    while any(c["proc"] is not None for c in chunks):
        time.sleep(1.0)
        for chunk in chunks:
            proc = chunk["proc"]
            if proc is None:
                continue
            done, started = _read_log(chunk["log"])
            records.update(done)
            if len(done) != chunk["seen"]:
                chunk["seen"], chunk["since"] = len(done), time.monotonic()
            dead = proc.poll() is not None
            stalled = time.monotonic() - chunk["since"] > args.stall  # wall clock: the case timer is CPU time
            if not dead and not stalled:
                continue
            if stalled and not dead:
                proc.kill()
                proc.wait()
            pending = started if started is not None and started not in records else None
            if pending is not None:  # the case it was on when it died or hung
                kind = "timeout" if stalled else ("memory" if proc.returncode in (-9, 137) else "crash")
                entry = {"case": pending, "format": "?", "seed": "?", "mutations": [], "mode": "worker",
                         "outcome": kind, "detail": f"worker exit {proc.returncode}", "seconds": None}
                rng = random.Random(f"{args.seed}:{pending}")
                entry["format"], entry["seed"], _, entry["mutations"] = generate_case(load_seeds(out / "seeds"), rng)
                with open(chunk["log"], "a") as log:
                    log.write(json.dumps(entry) + "\n")
                records[pending] = entry
                resume = pending + 1
            else:
                resume = max([i for i in records if chunk["next"] <= i < chunk["stop"]], default=chunk["next"] - 1) + 1
            chunk["proc"] = _launch(args, resume, chunk["stop"], chunk["log"]) if resume < chunk["stop"] else None
            chunk["since"] = time.monotonic()
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            bad = sum(1 for r in records.values() if r["outcome"] in FAILURES)
            print(f"fuzz: {len(records)}/{args.cases} cases, {bad} failure(s)", file=sys.stderr, flush=True)
    return _all_records(out)


def tally(records: dict[int, dict]) -> dict:
    table: dict[str, collections.Counter] = {fmt: collections.Counter() for fmt in FORMATS}
    for entry in records.values():
        table.setdefault(entry["format"], collections.Counter())[entry["outcome"]] += 1
    return {fmt: dict(sorted(counts.items())) for fmt, counts in table.items()}


def tally_text(counts: dict, records: dict[int, dict], seconds: float, args) -> str:
    outcomes = [o for o in OK + FAILURES if any(o in c for c in counts.values())]
    header = "| format | cases | " + " | ".join(outcomes) + " |"
    rows = [header, "|" + "---|" * (len(outcomes) + 2)]
    for fmt, c in counts.items():
        rows.append(f"| {fmt} | {sum(c.values())} | " + " | ".join(str(c.get(o, 0)) for o in outcomes) + " |")
    total = collections.Counter()
    for c in counts.values():
        total.update(c)
    rows.append(f"| all | {sum(total.values())} | " + " | ".join(str(total.get(o, 0)) for o in outcomes) + " |")
    failures = [r for r in sorted(records.values(), key=lambda r: r["case"]) if r["outcome"] in FAILURES]
    lines = [f"kwsc fuzz: {len(records)} cases, seed {args.seed}, {args.jobs} worker(s), {seconds:.0f} s, "
             f"{len(failures)} failure(s)", "", *rows, ""]
    for r in failures[:50]:
        lines.append(f"FAIL case {r['case']} ({r['format']}/{r['seed']}, {'; '.join(r['mutations'])}): "
                     f"{r['outcome']}: {r['detail']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=10000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--timeout", type=float, default=20.0, help="CPU seconds per command (in-process cases)")
    p.add_argument("--stall", type=float, default=600.0, help="wall seconds without progress before a worker is "
                   "killed and its case counted as a timeout")
    p.add_argument("--out", default="fuzz-out")
    p.add_argument("--case", type=int, help="run this one case in this process and print it")
    p.add_argument("--no-torch", action="store_true", help="no torch-exported seed")
    p.add_argument("--resume", action="store_true", help="run only the cases no worker log in --out has yet "
                   "(after an interrupted run; the tally covers all logs)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    p.add_argument("--log", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.worker:
        return _worker(args)
    if not (out / "seeds").is_dir() or (args.case is None and not args.resume):
        save_seeds(build_seeds(with_torch=not args.no_torch), out / "seeds")
    if args.case is not None:
        rng = random.Random(f"{args.seed}:{args.case}")
        fmt, name, data, done = generate_case(load_seeds(out / "seeds"), rng)
        work = Path(tempfile.mkdtemp(prefix="kwsc-fuzz-case-"))
        (out / f"case{args.case}.{fmt}").write_bytes(data)
        outcome: Outcome = run_case(fmt, data, work / "w", CaseFiles(work / "fixed"), timeout=args.timeout)
        print(f"case {args.case}: {fmt}/{name} {done}: {outcome.kind}: {outcome.detail}\n"
              f"  file: {out / f'case{args.case}.{fmt}'}")
        return 0 if outcome.ok else 1
    start = time.monotonic()
    records = _supervise(args)
    seconds = time.monotonic() - start
    counts = tally(records)
    (out / "tally.json").write_text(json.dumps({"cases": len(records), "seed": args.seed, "jobs": args.jobs,
                                                "seconds": round(seconds), "tally": counts,
                                                "failures": [r for r in records.values() if r["outcome"] in FAILURES]},
                                               indent=1) + "\n")
    text = tally_text(counts, records, seconds, args)
    (out / "tally.txt").write_text(text)
    print(text, end="")
    return 1 if any(r["outcome"] in FAILURES for r in records.values()) else 0
