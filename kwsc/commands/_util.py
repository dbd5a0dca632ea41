"""Helpers shared by the command modules: subcommands, path checks; the option spellings come from ``kwsc.options``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kwsc.errors import InputError
from kwsc.options import option, parse_bool

__all__ = ["option", "add_command", "existing_file", "existing_dir", "parse_bool"]


def add_command(sub, name: str, func, help: str, description: str | None = None,
                aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """Add a subcommand whose ``--help`` shows ``description`` (defaults to ``help``).

    ``aliases`` are other names of the same command, e.g. the ELL tutorial's script names (``make_dataset`` for
    ``make-dataset``); the name typed is in ``args.command``.
    """
    parser = sub.add_parser(name, help=help, description=description or help, aliases=list(aliases),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub._choices_actions[-1].metavar = name  # `kwsc --help` lists the aliases once, below the commands
    parser.set_defaults(func=func)
    return parser


def existing_file(path: str | Path, what: str = "file") -> Path:
    """The path, or InputError naming it when it does not exist or is not a file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such {what}")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    return p


def existing_dir(path: str | Path, what: str = "folder") -> Path:
    """The path, or InputError naming it when it is not an existing folder."""
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"{p}: no such {what}")
    return p
