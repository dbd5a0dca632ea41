"""The pass registry and pipeline runner: passes by name, options as frozen dataclasses, verify after each.

A pass is a plain function ``fn(graph, options) -> PassResult`` that mutates the graph it is given and
returns what it changed (counts by kind). Its options are a frozen dataclass declared next to it. The
registry maps a name (``fold``, ``dce``, ``add_vad`` …) to a ``PassInfo``; ``run_passes`` clones the graph
once, runs the named passes in order, calls ``verify`` after each, and wraps any failure as
``pass 'X' failed after [A, B]: …`` so the user knows where in the pipeline it broke.

Example::

    graph, report = run_passes(graph, ["shapes", "fold", "dce", "add_vad"],
                               {"add_vad": {"tau_up": 1.5, "window_size": 512}})
    for name, result in report:
        print(name, result.summary())
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from kwsc.errors import KwscError, PassError
from kwsc.ir.graph import Graph
from kwsc.ir.verify import verify

__all__ = ["PassResult", "PassInfo", "NoOptions", "PASSES", "register_pass", "get_pass", "make_options",
           "run_pass", "run_passes", "all_passes", "PASS_MODULES"]


@dataclass
class PassResult:
    """What one pass did: counts by kind of change (``{"nodes_removed": 3}``); all zero means no change.
    ``notes``: lines saying what was done where (the stream pass's buffers), printed under the summary."""

    changed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def modified(self) -> bool:
        """True when the pass changed anything."""
        return any(v for v in self.changed.values())

    def summary(self) -> str:
        """One line for the CLI: ``nodes_removed=3, constants_added=1`` or ``no change``."""
        items = [f"{k}={v}" for k, v in self.changed.items() if v]
        return ", ".join(items) if items else "no change"


@dataclass(frozen=True)
class NoOptions:
    """Options of a pass that takes none."""


@dataclass(frozen=True)
class PassInfo:
    """A registered pass: its name, function, options class and one-line documentation."""

    name: str
    fn: Callable[[Graph, Any], PassResult]
    options: type
    doc: str

    @property
    def option_fields(self) -> list[dataclasses.Field]:
        """The options dataclass fields (what ``kwsc transform`` turns into command-line options)."""
        return list(dataclasses.fields(self.options))


PASSES: dict[str, PassInfo] = {}

# The modules that register passes; imported on first use of the registry.
PASS_MODULES = ("fold_constants", "eliminate_dead_nodes", "remove_shape_plumbing", "insert_vad",
                "rewire_reset_trigger", "fuse_featurizer", "fuse_dense", "fold_batchnorm", "add_detector",
                "stream", "quantize")


def register_pass(name: str, options: type = NoOptions):
    """Decorator: register ``fn(graph, options) -> PassResult`` under ``name`` with its options dataclass."""
    if not (dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError(f"pass {name}: options must be a frozen dataclass")

    def deco(fn):
        if name in PASSES and PASSES[name].fn is not fn:
            raise ValueError(f"pass {name} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        PASSES[name] = PassInfo(name, fn, options, doc[0] if doc else "")
        return fn

    return deco


def _ensure_loaded() -> None:
    for module in PASS_MODULES:
        importlib.import_module(f"kwsc.passes.{module}")


def get_pass(name: str) -> PassInfo:
    """The registered pass ``name``; PassError listing the known names otherwise."""
    _ensure_loaded()
    try:
        return PASSES[name]
    except KeyError:
        raise PassError(f"unknown pass {name!r}; known passes: {', '.join(all_passes())}") from None


def all_passes() -> dict[str, PassInfo]:
    """Every registered pass, in ``PASS_MODULES`` order (whatever order the modules were imported in)."""
    _ensure_loaded()
    modules = [f"kwsc.passes.{m}" for m in PASS_MODULES]

    def rank(info: PassInfo) -> int:
        module = info.fn.__module__
        return modules.index(module) if module in modules else len(modules)

    return {info.name: info for info in sorted(PASSES.values(), key=rank)}


def make_options(info: PassInfo, given: Any = None) -> Any:
    """Build the options object of a pass from None, an instance, or a dict of field values.

    Raises:
        PassError: an unknown option name or a value the dataclass rejects.
    """
    if given is None:
        given = {}
    if isinstance(given, info.options):
        return given
    if not isinstance(given, Mapping):
        raise PassError(f"pass {info.name!r}: options must be {info.options.__name__} or a dict, "
                        f"got {type(given).__name__}")
    known = {f.name for f in info.option_fields}
    unknown = sorted(set(given) - known)
    if unknown:
        raise PassError(f"pass {info.name!r}: unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(known)) or 'none'}")
    try:
        return info.options(**given)
    except (TypeError, ValueError) as exc:
        raise PassError(f"pass {info.name!r}: bad options: {exc}") from exc


def run_pass(graph: Graph, name: str, options: Any = None, check: bool = True) -> PassResult:
    """Run one pass in place on ``graph`` (no clone) and verify the result when ``check``."""
    info = get_pass(name)
    result = info.fn(graph, make_options(info, options))
    if not isinstance(result, PassResult):  # pragma: no cover - pass developer error
        raise PassError(f"pass {name!r} returned {type(result).__name__}, not PassResult")
    if check:
        verify(graph)
    return result


def run_passes(graph: Graph, names: Iterable[str], options: Mapping[str, Any] | None = None,
               check: bool = True) -> tuple[Graph, list[tuple[str, PassResult]]]:
    """Run passes in order on a clone of ``graph``.

    Args:
        graph: the input graph; never modified.
        names: pass names, in order (a name may repeat).
        options: pass name → options (the pass's dataclass instance or a dict of its fields).
        check: run ``verify`` after every pass (on by default).

    Returns:
        The transformed clone and a report: ``[(pass name, PassResult), …]`` in run order.

    Raises:
        PassError: an unknown pass or option, or a pass that failed or left an invalid graph; the message
            names the pass and the passes that ran before it.
    """
    names = list(names)
    options = dict(options or {})
    infos = [get_pass(n) for n in names]
    stray = sorted(set(options) - set(names))
    if stray:
        raise PassError(f"options given for pass(es) not in the pipeline: {', '.join(stray)}")
    prepared = [make_options(info, options.get(info.name)) for info in infos]
    work = graph.copy()
    report: list[tuple[str, PassResult]] = []
    done: list[str] = []
    for info, opts in zip(infos, prepared):
        try:
            result = run_pass(work, info.name, opts, check=check)
        except KwscError as exc:
            raise PassError(f"pass {info.name!r} failed after [{', '.join(done)}]: {exc}") from exc
        except Exception as exc:  # a pass bug: still one clear line naming the pass
            raise PassError(f"pass {info.name!r} failed after [{', '.join(done)}]: "
                            f"{type(exc).__name__}: {exc}") from exc
        report.append((info.name, result))
        done.append(info.name)
    return work, report
