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
import sys

from kwsc import __version__
from kwsc.errors import KwscError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other kwsc error
        self.exit(2, f"kwsc: {self.prog.removeprefix('kwsc ')}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every discovered command."""
    import kwsc.commands as commands_pkg

    parser = _Parser(
        prog="kwsc",
        description="kwsc — keyword-spotter compiler: data → training → graph IR → passes → ELL / C for devices.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
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
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an unexpected failure is still one line unless --debug
        if args.debug:
            raise
        print(f"kwsc: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
