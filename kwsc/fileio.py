"""Atomic file output: every file kwsc writes appears whole or not at all (temp file in the same folder + rename).

The one implementation used by every layer (the IR's ``.kwsc`` writer, backends, data, training, evaluation);
it imports only the standard library (and ``kwsc.errors`` for its one refusal), so any module may use it.

Temp files are named ``.<name>.<pid>.<random>.tmp``. An exception, Ctrl-C, or SIGTERM (the ``kwsc`` command turns
it into an exception) removes them; SIGKILL cannot be caught, so ``remove_stale_temps`` removes the temp files of
a target whose writing process no longer runs (make-dataset calls it before writing its tens of MB).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_output", "atomic_write", "same_file", "refuse_overwriting", "remove_stale_temps"]


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_output(path: str | os.PathLike, write) -> Path:
    """Create ``path`` atomically: ``write(f)`` gets a binary file object; the file appears only when it returns.

    A temp file in the same folder, then a rename: a crash or Ctrl-C never leaves a half-written file, and the
    final file gets the usual permissions (``0666 & ~umask``; ``mkstemp`` alone would make it owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write bytes or text to a file atomically (see ``atomic_output``)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    atomic_output(path, lambda f: f.write(payload))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one existing file (through any symlink or hard link)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_overwriting(output: str | os.PathLike, inputs, command: str) -> None:
    """Raise InputError when ``output`` is one of the command's inputs: writing it would replace what is read.

    Args:
        output: a path the command is about to write.
        inputs: ``(role, path)`` pairs, e.g. ``[("model", args.model)]``; None paths are skipped.
        command: the command's name, for the message.
    """
    from kwsc.errors import InputError

    for role, path in inputs:
        if path is not None and same_file(output, path):
            raise InputError(f"{command}: the output {output} is the {role} this command reads; it would be "
                             f"replaced: write to another file; nothing written")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or not a pid): not ours to judge
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files ``atomic_output`` left for ``path`` in processes that no longer run (killed with
    SIGKILL, or a power cut); returns what was removed. Temp files of running processes are left alone."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return removed
    for tmp in candidates:
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed
