"""Helpers shared by the command modules: options spelled both ``--snake_case`` and ``--kebab-case``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kwsc.errors import InputError

__all__ = ["option", "add_command", "existing_file", "existing_dir", "parse_bool"]


def option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str, **kwargs):
    """Add an option accepting both spellings: ``--sample_rate`` and ``--sample-rate`` (ELL users type the first)."""
    spellings: list[str] = []
    for name in names:
        spellings.append(name)
        if name.startswith("--"):
            for alt in (name.replace("_", "-"), "--" + name[2:].replace("-", "_")):
                if alt not in spellings:
                    spellings.append(alt)
    return parser.add_argument(*spellings, **kwargs)


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


def parse_bool(text: str) -> bool:
    """An option value read as a boolean: 1/true/yes/on or 0/false/no/off (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
