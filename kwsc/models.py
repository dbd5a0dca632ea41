"""Load and save models by file extension: ``.kwsc`` (native), ``.ell`` (ELL JSON), ``.onnx``.

The one place that maps extensions to frontends/backends, so every command accepts the same files.
"""

from __future__ import annotations

from pathlib import Path

from kwsc.errors import InputError
from kwsc.ir import Graph

__all__ = ["load_model", "save_model", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".kwsc", ".ell", ".onnx")


def load_model(path: str | Path, *, raw: bool = False, dims: dict[str, int] | None = None) -> Graph:
    """Read a model in any supported format into the IR (frontends are imported lazily).

    Args:
        path: a ``.kwsc``, ``.ell`` or ``.onnx`` file.
        raw: skip the format's clean-up passes and return the frontend's one-to-one translation (for ``.ell``:
            ``kwsc.frontends.ell.CLEANUP``, which folds BiasLayers into Dense and log∘softmax into LogSoftmax).
        dims: lengths of named symbolic input dims (ONNX only; e.g. ``{"T": 98}`` for a window model).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if dims and suffix != ".onnx":
        raise InputError(f"{p}: symbolic dims (--dim) apply to ONNX models only")
    if suffix == ".kwsc":
        from kwsc.ir import load

        return load(p)
    if suffix == ".ell":
        from kwsc.frontends.ell import CLEANUP, load_ell
        from kwsc.passes import run_pass

        graph = load_ell(p)
        for name, options in () if raw else CLEANUP:
            run_pass(graph, name, options)
        return graph
    if suffix == ".onnx":
        from kwsc.frontends.onnx import import_onnx

        return import_onnx(p, dims=dims)
    raise InputError(f"{p}: unknown model format {suffix or '(no extension)'}; expected {', '.join(MODEL_SUFFIXES)}")


def save_model(graph: Graph, path: str | Path) -> None:
    """Write a model; the format follows the extension. Always atomic (temp file + rename)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".kwsc":
        from kwsc.ir import save

        save(graph, p)
    elif suffix == ".ell":
        from kwsc.backends.ell import save_ell

        save_ell(graph, p)
    elif suffix == ".onnx":
        from kwsc.backends.onnx import save_onnx

        save_onnx(graph, p)
    else:
        raise InputError(f"{p}: unknown model format {suffix or '(no extension)'}; expected {', '.join(MODEL_SUFFIXES)}")
