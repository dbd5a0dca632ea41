"""The `kwsc` front door: --help lists every command with one line, --version, and every error is one line on
stderr with exit code 2 (the traceback only with --debug)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kwsc import __version__
from kwsc.cli import build_parser, main
from kwsc.ir import save
from tests._graphs import featurizer_graph


def kwsc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *args], capture_output=True, text=True, timeout=120)


def commands() -> dict[str, str]:
    """name → one-line help of every registered command."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_help_lists_every_command_with_one_line():
    proc = kwsc("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    found = commands()
    assert "print" in found
    for name, help_text in found.items():
        assert help_text and "\n" not in help_text, name
        assert len(help_text) < 100, f"{name}: help should be one short line"
        assert any(line.split()[:1] == [name] and help_text.split()[0] in line for line in proc.stdout.splitlines()), name


def test_every_command_has_its_own_help(capsys):
    for name in commands():
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([name, "--help"])
        assert info.value.code == 0, name
        assert capsys.readouterr().out.startswith(f"usage: kwsc {name}"), name


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from kwsc.cli import build_parser; build_parser(); "
            "print(' '.join(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib', 'scipy.signal', 'librosa') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_version():
    proc = kwsc("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"kwsc {__version__}"


def test_no_command_prints_help():
    proc = kwsc()
    assert proc.returncode == 0 and proc.stdout.startswith("usage: kwsc")


def test_unknown_command_is_one_line_exit_2():
    proc = kwsc("frobnicate")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid choice: 'frobnicate'" in lines[0] and lines[0].startswith("kwsc: ")


def test_bad_option_is_one_line_exit_2():
    proc = kwsc("print", "--no-such-option", "x.kwsc")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr == "kwsc: unrecognized arguments: --no-such-option (see --help)\n"
    proc = kwsc("print", "--format")
    assert proc.returncode == 2 and proc.stderr.startswith("kwsc: print: argument --format")


def test_kwsc_error_is_one_line_exit_2(tmp_path):
    proc = kwsc("print", str(tmp_path / "missing.kwsc"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"kwsc: error: {tmp_path / 'missing.kwsc'}: no such model file\n"


def test_debug_shows_the_traceback(tmp_path):
    proc = kwsc("--debug", "print", str(tmp_path / "missing.kwsc"))
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr and "kwsc.errors.InputError" in proc.stderr


def test_main_in_process(tmp_path, capsys):
    path = tmp_path / "f.kwsc"
    save(featurizer_graph(), path)
    assert main(["print", str(path)]) == 0
    assert capsys.readouterr().out.startswith("input: Input() -> [160]\n")
    assert main(["print", str(tmp_path / "nope.kwsc")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_unexpected_exception_is_one_line_unless_debug(tmp_path, monkeypatch, capsys):
    import kwsc.commands.print_model as print_model

    def boom(args):
        raise ValueError("something unforeseen")

    monkeypatch.setattr(print_model, "run", boom)
    assert main(["print", "x.kwsc"]) == 1
    err = capsys.readouterr().err
    assert err == "kwsc: internal error: ValueError: something unforeseen (run with --debug for the traceback)\n"
    with pytest.raises(ValueError):
        main(["--debug", "print", "x.kwsc"])


def test_abbreviation_of_one_option_spelled_two_ways_is_that_option(tmp_path):
    # --sample_rate and --sample-rate are one option: --sample must mean it, not be "ambiguous"
    args = build_parser().parse_args(["make-featurizer", "--sample", "8000"])
    assert args.sample_rate == 8000
    with pytest.raises(SystemExit):  # two different options starting alike stay ambiguous
        build_parser().parse_args(["make-featurizer", "--filterbank", "mel"])


def test_ell_script_names_are_commands(tmp_path):
    # the tutorial's `python make_featurizer.py …` is `kwsc make_featurizer …` (and the pasted .py is forgiven)
    for typed in ("make_featurizer", "make_featurizer.py"):
        out = tmp_path / f"{typed}.ell"
        assert main([typed, "--filterbank_size", "8", "-o", str(out)]) == 0
        assert out.is_file()


def test_print_takes_ells_spellings(tmp_path, capsys):
    model = tmp_path / "f.kwsc"
    save(featurizer_graph(), model)
    assert main(["print", "-imap", str(model), "-fmt", "dot", "-of", str(tmp_path / "graph.dot")]) == 0
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert capsys.readouterr().err == f"wrote {tmp_path / 'graph.dot'} (dot, {len(featurizer_graph())} nodes)\n"
    assert main(["print", "-imap", str(model)]) == 0
    assert "Input" in capsys.readouterr().out


def test_emit_help_names_every_arch_the_c_backend_offers(capsys):
    """`--arch`'s help is written in the CLI (importing the C backend would slow every command's start), so this
    keeps it in step with the target registry."""
    from kwsc.backends.c.targets import ARCHES, TARGETS

    with pytest.raises(SystemExit):
        build_parser().parse_args(["emit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.index("--arch ARCH", text.index("C target options"))
    arch_help = text[start:text.index("--build", start)]
    for name in (*ARCHES, *TARGETS):
        assert name in arch_help, f"kwsc emit --help does not name --arch {name}"
