"""Every ``kwsc <command> --option`` the README shows exists with that spelling (README.md is the user's contract).

Command lines are read from the README's code blocks (``\\`` continuations joined, ``#`` comments dropped) and from
inline code spans that start a ``kwsc`` command; each command must be one the CLI knows (or an ELL script name it
answers to) and each option one its parser has, in the exact spelling or the other of ``--snake_case`` /
``--kebab-case``. Abbreviations, which argparse would accept, are not: the README shows full spellings.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from kwsc.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"

# Words after "kwsc " in prose or error text that are not commands (an error message quoted in a code block).
_NOT_COMMANDS = {"needs", "does", "compiles", "data"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every shell fragment that may hold a kwsc command."""
    out: list[tuple[int, str]] = []
    in_code, buf, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            if not buf:
                start = number
            buf += " " + line.strip()
            if buf.endswith("\\"):
                buf = buf[:-1]
                continue
            code = re.split(r"\s#", buf)[0]  # a trailing comment
            out.extend((start, part) for part in re.split(r"&&|\||;", code))
            buf = ""
        else:
            out.extend((number, span) for span in re.findall(r"`([^`]*)`", line))
    return out


def _invocations(text: str) -> list[tuple[int, str, str]]:
    found = []
    for number, fragment in _command_lines(text):
        match = re.search(r"(?:^|[\s(])kwsc ([a-z][a-z_-]*)(.*)", fragment)
        if match and match.group(1) not in _NOT_COMMANDS:
            found.append((number, match.group(1), match.group(2)))
    return found


def _problems(text: str, commands: dict[str, argparse.ArgumentParser]) -> tuple[list[str], int]:
    """Unknown commands and options in ``text``, and how many options were checked."""
    problems, options_checked = [], 0
    for number, command, rest in _invocations(text):
        if command not in commands:
            problems.append(f"README.md:{number}: `kwsc {command}` is not a command")
            continue
        spellings = {o for a in commands[command]._actions for o in a.option_strings}
        normal = {o.replace("-", "_") for o in spellings if o.startswith("--")}
        for option in re.findall(r"(?<![\w\[-])(--?[A-Za-z][\w-]*)", rest):
            options_checked += 1
            if option in spellings or (option.startswith("--") and option.replace("-", "_") in normal):
                continue
            problems.append(f"README.md:{number}: `kwsc {command}` has no option {option}")
    return problems, options_checked


def test_readme_kwsc_commands_and_options_exist():
    commands = _commands()
    text = README.read_text(encoding="utf-8")
    invocations = _invocations(text)
    problems, options_checked = _problems(text, commands)
    # The extraction itself must have found the README's commands, or this test would pass on nothing.
    shown = {commands[c].prog.split()[-1] for _, c, _ in invocations if c in commands}
    canonical = {p.prog.split()[-1] for p in commands.values()}
    assert shown == canonical, f"commands never shown with an example in README.md: {sorted(canonical - shown)}"
    assert len(invocations) >= 100 and options_checked >= 300, (len(invocations), options_checked)
    assert not problems, "\n".join(problems)


def test_readme_check_flags_wrong_spellings():
    """Options in code blocks (with continuations, not in comments) and in inline code; unknown ones, abbreviations
    and unknown commands are flagged, both spellings of a real option are not."""
    sample = ("```sh\nkwsc train --dataset data --hidden-units 8 \\\n    --no_such_option 1   # --not_this\n```\n"
              "and `kwsc emit m.kwsc --arch x --bogus`, `kwsc test --data d`, `kwsc frobnicate -o x`\n")
    problems, checked = _problems(sample, _commands())
    assert checked == 6
    assert [p.split(": ", 1)[1] for p in problems] == [
        "`kwsc train` has no option --no_such_option", "`kwsc emit` has no option --bogus",
        "`kwsc test` has no option --data", "`kwsc frobnicate` is not a command"]
