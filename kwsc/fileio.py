"""Atomic file output: every file kwsc writes appears whole or not at all (temp file in the same folder + rename).

The one implementation used by every layer (the IR's ``.kwsc`` writer, backends, data, training, evaluation);
it imports only the standard library, so any module may use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_output", "atomic_write", "same_file", "refuse_overwriting"]


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
