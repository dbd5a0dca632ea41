"""Atomic file output for the audio and data steps: a temp file in the target folder, then a rename.

A crash or Ctrl-C never leaves a half-written wav, list or dataset behind, and the final file gets the usual
permissions (``0666 & ~umask``; ``mkstemp`` alone would leave it private to the owner).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_output"]


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_output(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Create ``path`` atomically: ``write`` gets a binary file object; the file appears only when it returns."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
