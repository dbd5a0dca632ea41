"""Every user-facing failure of kwsc is a KwscError: the CLI prints its message as one line and exits 2."""

from __future__ import annotations

__all__ = [
    "KwscError",
    "InputError",
    "FormatError",
    "FrontendError",
    "UnsupportedOpError",
    "VerifyError",
    "PassError",
    "BackendError",
    "ToolchainError",
]


class KwscError(Exception):
    """Base class: something the user can fix (bad file, bad option, unsupported model)."""

    exit_code = 2


class InputError(KwscError):
    """A missing/unreadable input file or a bad command-line value."""


class FormatError(KwscError):
    """A file exists but is malformed, truncated, or from a future format version."""


class FrontendError(KwscError):
    """A model could not be translated into the IR."""


class UnsupportedOpError(FrontendError):
    """An op (ONNX op type, ELL node type, IR op name) kwsc does not support."""


class VerifyError(KwscError):
    """A graph breaks an IR invariant (types, order, dangling values, attributes)."""


class PassError(KwscError):
    """A pass failed or left an invalid graph."""


class BackendError(KwscError):
    """A backend cannot emit/compile/run the graph."""


class ToolchainError(BackendError):
    """A compiler, emulator or other external tool is missing or failed."""
