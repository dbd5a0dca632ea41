"""Atomic file output for the audio and data steps (the one implementation lives in ``kwsc.ir.serialize``)."""

from __future__ import annotations

from kwsc.ir.serialize import atomic_output

__all__ = ["atomic_output"]
