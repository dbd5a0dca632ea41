"""Writing a generated C project into its folder without losing the user's work or leaving it half written.

* A new (or empty) folder: every file is written into a temp folder beside it, which is then renamed into place
  whole; an interruption leaves no project folder at all (only a hidden ``.NAME.*.tmp`` folder).
* An existing folder: every changed file is first staged as a hidden temp file beside its target; then a marker
  ``.kwsc-emit-incomplete`` is created, the staged files are renamed into place (Makefile and CMakeLists.txt
  first), the manifest is written and the marker removed. The generated Makefile and CMakeLists.txt refuse to
  build while the marker exists, and ``<name>.c`` refuses to compile against a ``<name>.h`` of another emit
  (``<NAME>_KWSC_EMIT``), so an interrupted emit can never build a new header beside an old model.
* The manifest ``.kwsc-manifest.json`` records the SHA-256 of each file as kwsc wrote it. A file whose content
  differs from its manifest hash, or that kwsc never wrote, is the user's:
  - the example and build files (``main.c``, ``Makefile``, …; ``USER_FILES``) are kept, and kwsc's new version is
    written beside them as ``X.new``;
  - the generated model and runtime (``<name>.h``, ``<name>.c``, ``runtime/…``: "do not edit") must match each
    other, so kwsc's version is written and the user's is kept as ``X.orig``.
  ``ProjectWrite`` says which, for the command to print.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kwsc.errors import InputError
from kwsc.fileio import atomic_write

__all__ = ["ProjectWrite", "write_project", "MANIFEST", "INCOMPLETE", "USER_FILES"]

MANIFEST = ".kwsc-manifest.json"
INCOMPLETE = ".kwsc-emit-incomplete"
USER_FILES = frozenset({"main.c", "Makefile", "CMakeLists.txt", "test_harness.c", "bench.c", "probe.c"})
_FIRST = ("Makefile", "CMakeLists.txt")  # renamed first: from then on they refuse to build until the emit is done


@dataclass
class ProjectWrite:
    """What ``write_project`` did (paths relative to the folder).

    Attributes:
        written: files (re)written with kwsc's content.
        unchanged: files that already held exactly kwsc's content (left alone, timestamps kept).
        kept: (file, where kwsc's version went): the user's edited example/build files, left as they were.
        saved: (file, where the user's version went): edited generated files replaced by kwsc's.
        whole: the folder was new and was renamed into place whole.
    """

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    saved: list[tuple[str, str]] = field(default_factory=list)
    whole: bool = False

    def notes(self) -> list[str]:
        """One line per file of the user's that kwsc did not simply replace."""
        lines = [f"kept your edited {rel} (kwsc's new version is {new})" for rel, new in self.kept]
        lines += [f"{rel} differed from what kwsc wrote: replaced (this file is generated and must match the rest), "
                  f"your version kept as {orig}" for rel, orig in self.saved]
        return lines


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(outdir: Path) -> dict[str, str]:
    try:
        entries = json.loads((outdir / MANIFEST).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in entries.items()} if isinstance(entries, dict) else {}


def _manifest_bytes(digests: dict[str, str]) -> bytes:
    body = {"written_by": "kwsc emit --target c", "files": dict(sorted(digests.items()))}
    return (json.dumps(body, indent=1) + "\n").encode("utf-8")


def _free_name(path: Path, suffix: str) -> Path:
    candidate, k = path.with_name(path.name + suffix), 1
    while candidate.exists():
        candidate, k = path.with_name(f"{path.name}{suffix}.{k}"), k + 1
    return candidate


def _write_whole(outdir: Path, files: dict[str, bytes]) -> ProjectWrite:
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".tmp", dir=outdir.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / MANIFEST).write_bytes(_manifest_bytes({rel: _digest(data) for rel, data in files.items()}))
        os.replace(tmp, outdir)  # onto nothing, or onto an empty folder (rename(2) replaces an empty directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ProjectWrite(written=sorted(files), whole=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stage(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def write_project(outdir: str | Path, files: dict[str, bytes]) -> ProjectWrite:
    """Write ``files`` (relative path → content) into ``outdir`` as the module docstring describes."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    if not outdir.exists() or not any(outdir.iterdir()):
        return _write_whole(outdir, files)
    manifest = _read_manifest(outdir)
    report = ProjectWrite()
    plan: list[tuple[Path, bytes]] = []  # (target, content) to stage
    for rel in sorted(files, key=lambda r: (r not in _FIRST, r)):
        data, path = files[rel], outdir / rel
        if path.is_dir():
            raise InputError(f"{path}: is a folder where kwsc writes a file; move it away")
        current = path.read_bytes() if path.exists() else None
        if current == data:
            report.unchanged.append(rel)
            continue
        users = current is not None and manifest.get(rel) != _digest(current)
        if users and rel in USER_FILES:
            new = _free_name(path, ".new")
            plan.append((new, data))
            report.kept.append((rel, new.name if "/" not in rel else str(new.relative_to(outdir))))
            continue
        if users:
            orig = _free_name(path, ".orig")
            shutil.copy2(path, orig)
            report.saved.append((rel, str(orig.relative_to(outdir))))
        plan.append((path, data))
        report.written.append(rel)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in plan:
            staged.append((_stage(path, data), path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    marker = outdir / INCOMPLETE
    atomic_write(marker, "kwsc emit was interrupted while replacing this project's files: run it again\n")
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise  # the marker stays: make refuses to build the half-replaced project
    recorded = dict(manifest)
    recorded.update({rel: _digest(data) for rel, data in files.items()})
    atomic_write(outdir / MANIFEST, _manifest_bytes(recorded))
    marker.unlink()
    return report

