#!/usr/bin/env python3
"""Check that a refactoring left the generated C byte-identical.

Two checks, each printing the ``diff -r`` it ran (empty when nothing changed):

1. **The demo's models** (``--demo-out``, a ``make demo`` output folder): the kwsc commands logged in its
   ``logs/`` (make-featurizer, import, transform, emit) are replayed with this tree into a temp folder — the
   add_vad line as ``kwsc.demo`` has it now, emits without ``--build``/``--size-report`` — and each generated C
   project is compared with the demo's (build products ignored).
2. **Test-fixture models** (``--base``, a commit): the C backend's fixture models as the commit's tests define
   them (tutorial featurizer, GRU and LSTM classifiers float and int8, the fused model with and without VAD, the
   op zoo and DSP chain of the coverage test) are emitted for several targets by this tree and by a temporary
   worktree of the commit.

The files the emitter generates (model, header, example, harness, build files) must be identical; the copies of
the runtime (``runtime/`` in each project) are compared too but reported apart, because adding a kernel (a new op)
changes them by design: ``git diff <base> -- kwsc/runtime`` shows what was added.

Usage::

    PYTHONPATH=$PWD python tools/check_c_identical.py --demo-out /work/baseline/demo-out --base bdf5c56

Exit status 0 when every generated file is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Files an emit writes (the build adds objects, libraries and programs next to them, which are not compared).
SOURCE_SUFFIXES = {".c", ".h", ".ld"}
EMITTED_NAMES = {"Makefile", "CMakeLists.txt"}

# Run with each tree's kwsc; the fixture graphs always come from the base tree's tests (argv[2]), so that both
# trees compile the same graphs even when a later commit adds to the fixtures.
FIXTURES = r'''
import sys
from pathlib import Path
sys.path.insert(0, ".")
from kwsc.backends.c import emit_c
sys.path.insert(0, sys.argv[2])  # kwsc is imported already: only `tests` comes from there
from tests.backends.c.conftest import MODELS
from tests.backends.c.test_op_coverage import dsp_graph, zoo_graph

out = Path(sys.argv[1])
cases = [(name, build, arch, "float32") for name, build in MODELS.items() for arch in ("host", "cortex-m4")]
cases += [(name, MODELS[name], "host", "int8") for name in ("gru", "lstm", "vad")]
cases += [("zoo", zoo_graph, arch, "float32") for arch in ("host", "host-ref", "armv7")]
cases += [("dsp", dsp_graph, arch, "float32") for arch in ("host", "aarch64")]
for name, build, arch, dtype in cases:
    emit_c(build(), out / f"{name}-{arch}-{dtype}", arch=arch, weights_dtype=dtype)
'''


def _sources(folder: Path) -> set[str]:
    """The emitted files of a C project folder (relative paths), without build products."""
    found = set()
    for path in folder.rglob("*"):
        if path.is_file() and (path.name in EMITTED_NAMES or path.suffix in SOURCE_SUFFIXES):
            rel = path.relative_to(folder)
            if rel.parts[0] not in ("build",):
                found.add(str(rel))
    return found


def _diff(a: Path, b: Path, runtime: bool) -> str:
    """``diff -r`` of the generated files (``runtime=False``) or the runtime copies (True) of two C project folders
    (build products left out)."""
    names = sorted(n for n in _sources(a) | _sources(b) if n.startswith("runtime/") == runtime)
    with tempfile.TemporaryDirectory(prefix="kwsc-cdiff-") as tmp:
        for side, folder in (("before", a), ("after", b)):
            for rel in names:
                if (folder / rel).exists():
                    target = Path(tmp, side, rel)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / rel, target)
        result = subprocess.run(["diff", "-r", "before", "after"], cwd=tmp, capture_output=True, text=True)
    return result.stdout


def _kwsc(args: list[str], cwd: Path = REPO) -> None:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    print("  $ kwsc " + shlex.join(args), flush=True)
    subprocess.run([sys.executable, "-m", "kwsc", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def check_demo(demo_out: Path, work: Path) -> list[str]:
    """Replay the demo's compile steps into ``work``; return the non-empty diffs."""
    from kwsc.demo import TUTORIAL_VAD

    work.mkdir(parents=True, exist_ok=True)
    for name in ("model", "data", "lists"):  # inputs the replayed steps read but do not make
        if (demo_out / name).exists() and not (work / name).exists():
            (work / name).symlink_to(demo_out / name)
    emits: list[tuple[Path, Path]] = []
    for log in sorted((demo_out / "logs").glob("log_*.txt")):
        line = log.read_text(encoding="utf-8").splitlines()[0]
        if not line.startswith("$ kwsc "):
            continue
        args = [a.replace(str(demo_out), str(work)) for a in shlex.split(line[2:])[1:]]
        if args[0] not in ("make-featurizer", "import", "transform", "emit"):
            continue
        if args[0] == "transform" and "add_vad" in args:
            model, output = args[1], args[args.index("-o") + 1]
            args = ["transform", model, "--passes", "add_vad", *TUTORIAL_VAD, "-o", output]
        if args[0] == "emit":
            args = [a for a in args if a not in ("--build", "--size-report", "--size_report")]
            out = Path(args[args.index("-o") + 1])
            emits.append((demo_out / out.relative_to(work), out))
        _kwsc(args)
    return _compare([(before, after, f"{before} {after}") for before, after in emits])


def _compare(pairs: list[tuple[Path, Path, str]]) -> list[str]:
    """Diff each pair; print the diffs; return the pairs whose generated files differ."""
    failures = []
    for before, after, label in pairs:
        diff = _diff(before, after, runtime=False)
        runtime = _diff(before, after, runtime=True)
        changed = sorted({line.split()[2][len("before/"):] for line in runtime.splitlines()
                          if line.startswith("diff -r")})
        print(f"diff -r {label} (generated files): {'(empty)' if not diff else ''}"
              + (f"; runtime copies differ: {', '.join(changed)}" if changed else ""))
        if diff:
            print(diff)
            failures.append(label)
    return failures


def check_fixtures(base: str, work: Path) -> list[str]:
    """Emit the fixture models with ``base`` and with this tree; return the non-empty diffs."""
    script = work / "emit_fixtures.py"
    work.mkdir(parents=True, exist_ok=True)
    script.write_text(FIXTURES)
    tree = work / "base-tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), base], cwd=REPO, check=True)
    try:
        for label, root in (("before", tree), ("after", REPO)):
            print(f"  emitting fixtures with {label} ({root})", flush=True)
            subprocess.run([sys.executable, str(script), str(work / label), str(tree)], cwd=root, check=True,
                           env={**os.environ, "PYTHONPATH": str(root)})
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    return _compare([(before, work / "after" / before.name, f"before/{before.name} after/{before.name}")
                     for before in sorted((work / "before").iterdir())])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-out", type=Path, help="a `make demo` output folder to replay and compare with")
    parser.add_argument("--base", help="a commit whose generated C the fixtures must match")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temp folder, kept)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kwsc-c-identical-"))
    failures = []
    if args.demo_out:
        print(f"demo models (replayed into {work / 'demo'}):")
        failures += check_demo(args.demo_out.resolve(), work / "demo")
    if args.base:
        print(f"fixture models ({args.base} vs this tree, in {work / 'fixtures'}):")
        failures += check_fixtures(args.base, work / "fixtures")
    print("generated C identical" if not failures else f"DIFFERENT: {', '.join(failures)}")
    if args.base:
        changes = subprocess.run(["git", "diff", "--stat", args.base, "--", "kwsc/runtime"], cwd=REPO,
                                 capture_output=True, text=True).stdout
        print(f"runtime sources changed since {args.base}:\n{changes or '  none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
