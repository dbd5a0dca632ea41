"""Where an emulated target's instructions go: guest instructions per frame of the benchmark GRU 2×128 + Dense 12
(`benchmarks/models.py`), per function, under qemu (armv7, aarch64, aarch64-dotprod, cortex-m4).

    python -m benchmarks.instructions_by_function --arch aarch64 --int8
    python -m benchmarks.instructions_by_function --arch armv7 --int8 --function kwsc_qdot_rows   # per instruction

Like `kwsc bench` (kwsc/evaluate/bench.py count_instructions) it runs qemu with `-singlestep -d exec,nochain`, one
trace line per guest instruction, on 2 and 4 frames and takes the difference over 2 (start-up and I/O cancel);
each traced address is charged to the function symbol (the target's nm) at or below it. The total equals
`kwsc bench`'s instructions per frame. With --function, that function's disassembly with a count per instruction.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_TRACE = re.compile(rb"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def _trace(outdir: Path, exe: str, runner: tuple[str, ...], frames: np.ndarray) -> collections.Counter:
    """Executions per guest address of one harness run over ``frames``."""
    (outdir / "harness_in.bin").write_bytes(np.ascontiguousarray(frames, dtype="<f4").tobytes())
    emulator = shutil.which(runner[0])
    if emulator is None:
        sys.exit(f"error: {runner[0]} not found")
    proc = subprocess.Popen([emulator, "-singlestep", "-d", "exec,nochain", *runner[1:], exe],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=outdir)
    counts: collections.Counter = collections.Counter()
    for line in proc.stderr:
        m = _TRACE.match(line)
        if m:
            counts[int(m.group(1), 16)] += 1
    if proc.wait() != 0:
        sys.exit(f"error: {runner[0]} {exe} failed ({proc.returncode})")
    return counts


def main(argv: list[str] | None = None) -> None:
    from benchmarks.models import gru_classifier
    from kwsc.backends.c import emit_c
    from kwsc.backends.c.targets import get_target
    from kwsc.evaluate.bench_run import _input_frames

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", required=True, choices=("armv7", "aarch64", "aarch64-dotprod", "cortex-m4"))
    ap.add_argument("--int8", action="store_true", help="the int8 build (--weights-dtype int8)")
    ap.add_argument("--function", help="also print this function's instructions with their counts per frame")
    args = ap.parse_args(argv)
    target = get_target(args.arch)
    graph = gru_classifier()
    with tempfile.TemporaryDirectory(prefix="kwsc-prof-") as tmp:
        out = Path(tmp) / "c"
        emit_c(graph, out, name="model", arch=args.arch, build=True,
               weights_dtype="int8" if args.int8 else "float32")
        exe = "harness" + target.exe_suffix
        (out / "harness_resets.txt").write_text("")
        symbols = []
        for line in subprocess.run([target.nm_tool, "-n", str(out / exe)], capture_output=True, text=True,
                                   check=True).stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwW":
                symbols.append((int(parts[0], 16), parts[2]))
        starts = [a for a, _ in symbols]
        xs = _input_frames(graph, 4, 0)
        a, b = _trace(out, exe, target.runner, xs[:2]), _trace(out, exe, target.runner, xs[:4])
        per_address = {k: (b[k] - a[k]) / 2 for k in set(a) | set(b)}
        per_function: collections.Counter = collections.Counter()
        for address, n in per_address.items():
            i = bisect.bisect_right(starts, address) - 1
            per_function[symbols[i][1] if i >= 0 else "?"] += n
        for name, n in sorted(per_function.items(), key=lambda kv: -kv[1]):
            if n:
                print(f"{n:10,.0f}  {name}")
        dtype = "int8" if args.int8 else "float32"
        print(f"{sum(per_function.values()):10,.0f}  total per frame ({args.arch}, {dtype})")
        if args.function:
            lo = dict((name, address) for address, name in symbols).get(args.function)
            if lo is None:
                sys.exit(f"error: no function {args.function} in {exe}")
            hi = next((s for s in starts if s > lo), lo + (1 << 20))
            objdump = target.nm_tool.removesuffix("nm") + "objdump"
            dis = subprocess.run([objdump, "-d", f"--start-address={lo}", f"--stop-address={hi}", str(out / exe)],
                                 capture_output=True, text=True, check=True).stdout
            for line in dis.splitlines():
                m = re.match(r"\s*([0-9a-f]+):", line)
                if m:
                    print(f"{per_address.get(int(m.group(1), 16), 0):8.0f} {line}")


if __name__ == "__main__":
    main()
