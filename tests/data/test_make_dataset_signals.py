"""make-dataset stopped by SIGTERM or Ctrl-C leaves no hidden ``.X.npz.*.tmp`` behind (issue #17: tens of MB were
left); temp files a SIGKILLed run left are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kwsc.audio.wav import write_wav
from kwsc.fileio import atomic_write, remove_stale_temps
from tests.conftest import REPO

# Runs `kwsc make-dataset` in a child whose npz writer writes 1 MB, announces itself, then waits (as a slow disk
# would): the test signals it exactly while the temp file exists, or (phase "featurize") while the featurizer runs.
CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import kwsc.data.make_dataset as md
    from kwsc.cli import main

    phase, ready = sys.argv[1], sys.argv[2]
    if phase == "save":
        def slow_savez(f, **arrays):
            f.write(b"\\0" * (1 << 20))
            f.flush()
            open(ready, "w").close()
            time.sleep(60)
        np.savez = slow_savez
    else:
        real = md._process_chunk
        def slow_chunk(task, context=None):
            open(ready, "w").close()
            time.sleep(60)
            return real(task, context)
        md._process_chunk = slow_chunk
    sys.exit(main(sys.argv[3:]))
""")


@pytest.fixture()
def folder(tmp_path, featurizer_path):
    (tmp_path / "yes").mkdir()
    for k in range(3):
        write_wav(tmp_path / "yes" / f"{k}.wav", np.random.default_rng(k).normal(0, 0.1, 16000), 16000)
    (tmp_path / "list.txt").write_text("".join(f"yes/{k}.wav\n" for k in range(3)))
    (tmp_path / "categories.txt").write_text("yes\n")
    return tmp_path


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("phase,sig,code,message", [
    ("save", signal.SIGTERM, 143, "kwsc: terminated (SIGTERM); temp files removed"),
    ("save", signal.SIGINT, 130, "kwsc: interrupted"),
    ("featurize", signal.SIGTERM, 143, "kwsc: terminated (SIGTERM); temp files removed"),
])
def test_signal_removes_the_temp_file(folder, featurizer_path, phase, sig, code, message):
    ready = folder / "ready"
    args = ["make-dataset", "-l", str(folder / "list.txt"), "-f", str(featurizer_path), "-o", str(folder), "-q",
            "--jobs", "1"]
    child = subprocess.Popen([sys.executable, "-c", CHILD, phase, str(ready), *args], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got there"
            time.sleep(0.05)
        if phase == "save":
            assert len(_temps(folder)) == 1 and _temps(folder)[0].startswith(f".list.npz.{child.pid}.")
        child.send_signal(sig)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == code, err
    assert err.strip().splitlines()[-1] == message
    assert _temps(folder) == [] and not (folder / "list.npz").exists()


def test_temp_files_of_dead_processes_are_removed_by_the_next_run(folder, featurizer_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has ended: its temp file is stale (as after SIGKILL)
    stale = folder / f".list.npz.{dead_pid}.abc123.tmp"
    stale.write_bytes(b"\0" * 1000)
    alive = folder / f".list.npz.{os.getppid()}.def456.tmp"  # a running process (our parent): not touched
    alive.write_bytes(b"\0")
    other = folder / f".other.npz.{dead_pid}.x.tmp"  # another target: not this run's business
    other.write_bytes(b"\0")
    run = subprocess.run([sys.executable, "-m", "kwsc", "make-dataset", "-l", str(folder / "list.txt"), "-f",
                          str(featurizer_path), "-o", str(folder), "-q"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert not stale.exists() and alive.exists() and other.exists()
    assert (folder / "list.npz").is_file()


def test_atomic_write_names_its_temp_file_with_the_pid(tmp_path):
    seen = []

    def write(f):
        seen.extend(p.name for p in tmp_path.iterdir())  # the temp file, while it is written
        f.write(b"x")

    from kwsc.fileio import atomic_output

    atomic_output(tmp_path / "a.bin", write)
    assert seen[0].startswith(f".a.bin.{os.getpid()}.") and seen[0].endswith(".tmp")
    assert remove_stale_temps(tmp_path / "a.bin") == [] and (tmp_path / "a.bin").read_bytes() == b"x"
    atomic_write(tmp_path / "b.txt", "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]
