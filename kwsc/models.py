"""Load and save models by file extension: ``.kwsc`` (native), ``.ell`` (ELL JSON), ``.onnx``; and what a model
argument names (``resolve_model_path``): a model file, or a compiled C module given as its folder or as ELL's
``folder/module`` path (``compiled_featurizer/mfcc``, what ``kwsc wrap --outdir compiled_featurizer --module_name
mfcc`` builds).

The one place that maps extensions to frontends/backends, so every command accepts the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kwsc.errors import InputError
from kwsc.ir import Graph

__all__ = ["load_model", "save_model", "MODEL_SUFFIXES", "ModelPath", "resolve_model_path", "load_model_arg",
           "clean_graph", "CLEANUP_PASSES"]

MODEL_SUFFIXES = (".kwsc", ".ell", ".onnx")
# What `kwsc import` runs unless --raw: exporter plumbing out, constants folded, dead nodes gone. Outputs unchanged.
CLEANUP_PASSES = ("shapes", "fold", "dce")


@dataclass(frozen=True)
class ModelPath:
    """What a model argument names.

    Attributes:
        given: the argument as typed.
        file: the model file (.kwsc/.ell/.onnx): the file given, or for a compiled module the model it was built
            from, saved beside it by ``kwsc wrap`` (``<folder>/<module>.kwsc``); None when there is none.
        library: the host build ``<folder>/lib<module>.so`` of a compiled module; None for a plain file or when the
            module was not built for this machine.
        module: the C module name (compiled modules only).
    """

    given: str
    file: Path | None = None
    library: Path | None = None
    module: str | None = None

    def describe(self) -> str:
        """Which implementation a command will run, for its stderr note."""
        if self.library is not None:
            return f"{self.given}: compiled C library {self.library}"
        if self.module is not None:
            return f"{self.given}: {self.file} (the model its C module was built from; no host library built)"
        return str(self.file)


def _modules_in(folder: Path) -> list[str]:
    """C modules of a generated project folder: lib<name>.so builds, else <name>.h + <name>.c sources."""
    built = sorted(p.name[3:-3] for p in folder.glob("lib*.so"))
    return built or sorted(h.stem for h in folder.glob("*.h") if (folder / f"{h.stem}.c").is_file())


def _module(folder: Path, module: str, given: str) -> ModelPath:
    library = folder / f"lib{module}.so"
    source = next((folder / f"{module}{s}" for s in MODEL_SUFFIXES if (folder / f"{module}{s}").is_file()), None)
    return ModelPath(given, source, library if library.is_file() else None, module)


def resolve_model_path(path: str | Path, what: str = "model") -> ModelPath:
    """A model file, a compiled project folder, or ELL's ``folder/module`` path of a compiled module.

    Backslashes are read as folder separators when the path does not exist as given (the tutorial writes
    ``KeywordSpotter\\model``). Raises InputError naming the path (with a hint when a shell ate a backslash).
    """
    given = str(path)
    p = Path(given)
    if p.is_file():
        return ModelPath(given, p)
    if p.is_dir():
        modules = _modules_in(p)
        if len(modules) != 1:
            found = f"modules {', '.join(modules)}: name one as {p}/<module>" if modules else \
                "no compiled module (lib<name>.so or <name>.h/.c); build one with `kwsc wrap`"
            raise InputError(f"{p}: a folder with {found}")
        return _module(p, modules[0], given)
    if "\\" in given:
        return resolve_model_path(given.replace("\\", "/"), what)
    folder = p.parent
    if folder.is_dir() and p.name:
        ref = _module(folder, p.name, given)
        if ref.file is not None or ref.library is not None:
            return ref
        if p.name in _modules_in(folder):
            raise InputError(f"{given}: compiled module {p.name} in {folder} has neither a host library nor its model "
                             "beside it; rebuild it with `kwsc wrap`")
    hint = ""
    if folder.is_dir():  # `KeywordSpotter\model` typed in a shell arrives as `KeywordSpottermodel`
        for d in sorted(x for x in folder.iterdir() if x.is_dir()):
            rest = p.name[len(d.name):]
            if rest and p.name.startswith(d.name) and rest in _modules_in(d):
                hint = f"; did you mean {d / rest}? (in a shell, write / between folder and module, not \\)"
                break
    raise InputError(f"{given}: no such {what}{hint}")


def load_model_arg(path: str | Path, what: str = "model", *, raw: bool = False,
                   dims: dict[str, int] | None = None) -> tuple[Graph, ModelPath]:
    """The graph a model argument names (a compiled module: the model it was built from) and what it named;
    ``raw`` and ``dims`` as in ``load_model``."""
    ref = resolve_model_path(path, what)
    if ref.file is None:
        raise InputError(f"{path}: compiled module {ref.module} has no model file beside it ({ref.module}.kwsc); "
                         f"this command needs the model: pass the .ell/.kwsc it was built from")
    return load_model(ref.file, raw=raw, dims=dims), ref


def clean_graph(graph: Graph) -> tuple[Graph, list]:
    """The graph after the clean-up passes (``CLEANUP_PASSES``) and what each did."""
    from kwsc.passes import run_passes

    return run_passes(graph, list(CLEANUP_PASSES))


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
