"""Command-line option helpers shared by ``kwsc`` (cli/commands) and ``python -m kwsc.train`` (train/options.py).

They sit below the command layer so that ``train/`` can declare its options without importing ``kwsc.commands``;
they know argparse and nothing else of kwsc.
"""

from __future__ import annotations

import argparse

__all__ = ["option", "parse_bool"]


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


def parse_bool(text: str) -> bool:
    """An option value read as a boolean: 1/true/yes/on or 0/false/no/off (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
