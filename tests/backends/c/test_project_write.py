"""Writing a C project (issue #17): a new folder appears whole, the user's edited files are kept (and the tool says
so), an interrupted emit never builds a new header beside an old model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kwsc.backends.c.project as project
from kwsc.backends.c import emit_c
from kwsc.ir import Graph, save, verify
from tests.conftest import REPO


def dense(seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("dense")
    x = g.add_input([4])
    w = g.add_constant(rng.normal(size=(3, 4)).astype(np.float32), name="w")
    b = g.add_constant(rng.normal(size=3).astype(np.float32), name="b")
    g.add_output(g.op1("Dense", x, w, b))
    return verify(g)


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name == project.INCOMPLETE)


def test_new_folder_appears_whole_with_a_manifest(tmp_path):
    result = emit_c(dense(0), tmp_path / "proj", name="kws")
    out = tmp_path / "proj"
    manifest = (out / project.MANIFEST).read_text()
    assert all(f'"{rel}"' in manifest for rel in result.files)
    assert result.notes == [] and _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_interrupted_new_folder_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = type(tmp_path).write_bytes

    def write_bytes(self, data):
        calls.append(self.name)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", write_bytes)
    with pytest.raises(KeyboardInterrupt):
        emit_c(dense(0), tmp_path / "proj", name="kws")
    assert len(calls) == 5 and list(tmp_path.iterdir()) == []


def test_re_emit_replaces_kwsc_files_and_keeps_timestamps_of_unchanged_ones(tmp_path):
    out = tmp_path / "proj"
    emit_c(dense(0), out, name="kws")
    os.utime(out / "kws.c", (1_000_000, 1_000_000))
    os.utime(out / "main.c", (1_000_000, 1_000_000))
    emit_c(dense(0), out, name="kws")
    assert (out / "kws.c").stat().st_mtime == 1_000_000  # same content: untouched
    result = emit_c(dense(1), out, name="kws")  # other weights: model files replaced, nothing kept
    assert (out / "kws.c").stat().st_mtime != 1_000_000 and (out / "main.c").stat().st_mtime == 1_000_000
    assert result.notes == [] and _leftovers(out) == []
    assert not list(out.glob("*.new")) and not list(out.glob("*.orig"))


def test_user_edits_are_kept_and_reported(tmp_path):
    out = tmp_path / "proj"
    emit_c(dense(0), out, name="kws")
    my_main = (out / "main.c").read_text() + "/* my change */\n"
    my_makefile = "all:\n\techo mine\n"
    (out / "main.c").write_text(my_main)
    (out / "Makefile").write_text(my_makefile)
    (out / "kws.c").write_text("/* I edited the generated model */\n")
    (out / "notes.txt").write_text("not kwsc's")
    save(dense(1), tmp_path / "m.kwsc")
    run = subprocess.run([sys.executable, "-m", "kwsc", "emit", str(tmp_path / "m.kwsc"), "--target", "c", "-o",
                          str(out), "--name", "kws"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (out / "main.c").read_text() == my_main and (out / "Makefile").read_text() == my_makefile
    assert "/* my change */" not in (out / "main.c.new").read_text()
    assert "kws_Predict" in (out / "main.c.new").read_text() and "CFLAGS" in (out / "Makefile.new").read_text()
    assert (out / "kws.c.orig").read_text() == "/* I edited the generated model */\n"
    assert "kws_Predict" in (out / "kws.c").read_text()
    assert (out / "notes.txt").read_text() == "not kwsc's"
    assert "note: kept your edited Makefile (kwsc's new version is Makefile.new)" in run.stdout
    assert "note: kept your edited main.c (kwsc's new version is main.c.new)" in run.stdout
    assert "note: kws.c differed from what kwsc wrote: replaced" in run.stdout and "kept as kws.c.orig" in run.stdout
    # still edited on the next emit: still kept, the .new name not clobbered
    again = emit_c(dense(1), out, name="kws")
    assert (out / "main.c").read_text() == my_main
    assert any("main.c" in note for note in again.notes)


def test_a_foreign_makefile_in_an_existing_folder_is_kept(tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "Makefile").write_text("all:\n\techo the user's own\n")
    result = emit_c(dense(0), out, name="kws")
    assert (out / "Makefile").read_text() == "all:\n\techo the user's own\n"
    assert result.notes == ["kept your edited Makefile (kwsc's new version is Makefile.new)"]


def test_interrupted_re_emit_refuses_to_build_until_emitted_again(tmp_path, monkeypatch):
    out = tmp_path / "proj"
    emit_c(dense(0), out, name="kws")
    old_header = (out / "kws.h").read_bytes()
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("kws.h"):
            raise KeyboardInterrupt  # after Makefile, CMakeLists.txt, bench.c, kws.c were renamed
        return real(src, dst)

    monkeypatch.setattr(project.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        emit_c(dense(1), out, name="kws")
    monkeypatch.setattr(project.os, "replace", real)
    assert (out / "kws.h").read_bytes() == old_header and (out / project.INCOMPLETE).exists()
    assert [p for p in _leftovers(out) if p.endswith(".tmp")] == []  # staged files removed
    if shutil.which("make"):
        make = subprocess.run(["make", "-n", "all"], cwd=out, capture_output=True, text=True, timeout=60)
        assert make.returncode != 0 and "an interrupted kwsc emit left this project half replaced" in make.stderr
    if shutil.which("gcc"):  # and the model itself refuses the old header
        cc = subprocess.run(["gcc", "-fsyntax-only", "-I.", "-Iruntime/include", "kws.c"], cwd=out,
                            capture_output=True, text=True, timeout=60)
        assert cc.returncode != 0 and "kws.h and kws.c come from different kwsc emits" in cc.stderr
    emit_c(dense(1), out, name="kws")
    assert not (out / project.INCOMPLETE).exists() and _leftovers(out) == []
    if shutil.which("gcc"):
        cc = subprocess.run(["gcc", "-fsyntax-only", "-I.", "-Iruntime/include", "kws.c"], cwd=out,
                            capture_output=True, text=True, timeout=60)
        assert cc.returncode == 0, cc.stderr
