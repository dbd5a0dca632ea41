"""The ``kwsc`` command: parses arguments, calls library functions, prints. No logic of its own.

Commands live in ``kwsc/commands/<group>.py``; each module has ``register(subparsers)`` and is found
automatically, so adding a command never edits this file. Heavy imports (torch, onnx, matplotlib) happen
inside command functions, so ``kwsc --help`` and ``kwsc print`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
import textwrap

from kwsc import __version__
from kwsc.errors import KwscError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other kwsc error
        where = "" if self.prog == "kwsc" else f"{self.prog.removeprefix('kwsc ')}: "
        self.exit(2, f"kwsc: {where}{message} (see --help)\n")

    def _get_option_tuples(self, option_string):
        # An abbreviation matching several spellings of ONE option (--sample → --sample_rate, --sample-rate) is that
        # option, not "ambiguous"; argparse compares spellings, so keep one match per action.
        matches = {}
        for match in super()._get_option_tuples(option_string):
            matches.setdefault(id(match[0]), match)
        return list(matches.values())


class _OneLineHelp(argparse.RawDescriptionHelpFormatter):
    """--help lists each command on one line: no wrapping, help text aligned after the longest command name."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=1000)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures command names without their extra indent, so the longest one would wrap.
        for subaction in getattr(action, "_get_subactions", list)():
            length = len(self._format_action_invocation(subaction)) + self._current_indent + self._indent_increment
            self._action_max_length = max(self._action_max_length, length)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every discovered command."""
    import kwsc.commands as commands_pkg

    parser = _Parser(
        prog="kwsc",
        description="kwsc — keyword-spotter compiler: data → training → graph IR → passes → ELL / C for devices.",
        formatter_class=_OneLineHelp,
    )
    parser.add_argument("--version", action="version", version=f"kwsc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules = []
    for info in pkgutil.iter_modules(commands_pkg.__path__):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"kwsc.commands.{info.name}"))
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.__name__)):
        module.register(sub)
    aliases = [f"{name} ({p.prog.removeprefix('kwsc ')})" for name, p in sub.choices.items()
               if p.prog != f"kwsc {name}"]
    if aliases:
        parser.epilog = ("The ELL tutorial's script names are commands too (`python X.py` → `kwsc X`):\n  "
                         + textwrap.fill(", ".join(aliases), 110, subsequent_indent="  "))
    return parser


def _script_name_as_command(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``kwsc make_dataset.py …`` (ELL's script name pasted with its extension) is ``kwsc make_dataset …``."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):  # the first positional is the command
            if arg.endswith(".py") and arg not in commands and arg[:-3] in commands:
                argv = [*argv[:i], arg[:-3], *argv[i + 1:]]
            break
    return argv


class Terminated(BaseException):
    """SIGTERM as an exception: ``finally`` blocks and ``atomic_output`` remove their temp files on the way out
    (Python's default SIGTERM ends the process on the spot and leaves them). Not an ``Exception``: nothing
    handles it on the way except cleanup."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding application): leave its signals alone
        previous = None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _script_name_as_command(argv, parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="kwsc: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        result = args.func(args)
        return int(result or 0)
    except KwscError as exc:
        if args.debug:
            raise
        print(f"kwsc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kwsc: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("kwsc: terminated (SIGTERM); temp files removed", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an unexpected failure is still one line unless --debug
        if args.debug:
            raise
        print(f"kwsc: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
