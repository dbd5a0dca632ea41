"""What a keyword spotter can need, as numbers: the limits every model is checked against at the door, and JSON
reading bounded by them.

One table (``LIMITS``) for the three model formats (ONNX, ``.ell``, ``.kwsc``) and the featurizer options; the
README's "Hostile input" section shows the same table. A model outside them is refused in one line naming the node
and the field, before any work: a keyword spotter with a 2^40-sample window or a tensor of 2^30 elements is a
broken file, not a model, and honouring it would only end in a MemoryError at emit time.

A leaf module (standard library only): the IR, the frontends and the commands all import it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from kwsc.errors import FormatError

__all__ = ["LIMITS", "MAX_RANK", "MAX_DIM", "MAX_ELEMENTS", "MAX_GRAPH_ELEMENTS", "MAX_NODES", "MAX_FFT",
           "MAX_FILTERS", "MAX_DCT", "MAX_IIR_TAPS", "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MAX_ABS_CONSTANT",
           "MAX_JSON_DEPTH", "MAX_JSON_INT_DIGITS", "limits_table", "load_json", "check_json_text"]

MAX_RANK = 6                  # axes of one tensor ([N, C, D, H, W] is a 3-D conv's)
MAX_DIM = 1 << 20             # length of one axis (a 10 s window of 96 kHz audio fits)
MAX_ELEMENTS = 1 << 24        # elements of one tensor (64 MiB of float32)
MAX_GRAPH_ELEMENTS = 1 << 26  # elements of all constants of a model together (256 MiB of float32)
MAX_NODES = 100_000           # nodes of one graph
MAX_FFT = 1 << 16             # FFT length (a power of two, at least 2)
MAX_FILTERS = 4096            # filters of a mel/linear filter bank
MAX_DCT = 4096                # length of a DCT (its matrix is length² doubles)
MAX_IIR_TAPS = 64             # coefficients of an IIR filter (b and a each)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000.0, 384000.0  # Hz, as for wav files
MAX_ABS_CONSTANT = 1e9        # |value| of a float weight, bias or other constant; and it must be finite
MAX_JSON_DEPTH = 100          # nesting of arrays/objects in .ell and .kwsc files
MAX_JSON_INT_DIGITS = 20      # digits of one JSON integer (int64 has 19)

# name → (value, what it bounds): the one table (README "Hostile input" prints it).
LIMITS: dict[str, tuple[Any, str]] = {
    "MAX_RANK": (MAX_RANK, "axes of one tensor"),
    "MAX_DIM": (MAX_DIM, "length of one axis (graph inputs: at least 1)"),
    "MAX_ELEMENTS": (MAX_ELEMENTS, "elements of one tensor"),
    "MAX_GRAPH_ELEMENTS": (MAX_GRAPH_ELEMENTS, "elements of all constants of a model"),
    "MAX_NODES": (MAX_NODES, "nodes of one graph"),
    "MAX_FFT": (MAX_FFT, "FFT length (power of two, >= 2, >= its input length)"),
    "MAX_FILTERS": (MAX_FILTERS, "filters of a filter bank"),
    "MAX_DCT": (MAX_DCT, "length of a DCT"),
    "MAX_IIR_TAPS": (MAX_IIR_TAPS, "coefficients of an IIR filter (b, a each)"),
    "SAMPLE_RATE": (f"{MIN_SAMPLE_RATE:g}–{MAX_SAMPLE_RATE:g}", "Hz, filter banks and VAD"),
    "MAX_ABS_CONSTANT": (MAX_ABS_CONSTANT, "absolute value of a float constant (weights, biases); NaN/Inf refused"),
    "MAX_JSON_DEPTH": (MAX_JSON_DEPTH, "nesting of .ell/.kwsc JSON"),
    "MAX_JSON_INT_DIGITS": (MAX_JSON_INT_DIGITS, "digits of a JSON integer; NaN/Infinity/1e999 refused"),
}


def limits_table() -> str:
    """The limits as a Markdown table (README)."""
    rows = ["| limit | value | bounds |", "|---|---|---|"]
    for name, (value, what) in LIMITS.items():
        shown = f"{value:,}" if isinstance(value, int) else (f"{value:g}" if isinstance(value, float) else value)
        rows.append(f"| `{name}` | {shown} | {what} |")
    return "\n".join(rows)


# A JSON string (skipped whole, in C), a bracket, or a non-finite constant outside strings.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|-?Infinity|NaN')


# A \uXXXX escape of half a surrogate pair: valid JSON, but no character (it cannot be printed or written).
_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|"
                             r"(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def check_json_text(text: str, where: str) -> None:
    """Refuse JSON nested deeper than ``MAX_JSON_DEPTH``, holding ``NaN``/``Infinity`` or a lone surrogate escape
    (FormatError ``where:line:col``); linear in the text, no recursion."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise FormatError(f"{where}:{_position(text, match.start())}: JSON nested deeper than "
                                  f"{MAX_JSON_DEPTH} levels")
        elif token in ("]", "}"):
            depth -= 1
        elif token[0] != '"':
            raise FormatError(f"{where}:{_position(text, match.start())}: {token} is not a number kwsc reads "
                              "(non-finite values are refused)")
    if "\\u" in text:
        lone = _LONE_SURROGATE.search(text)
        if lone:
            raise FormatError(f"{where}:{_position(text, lone.start())}: {lone.group()} is half a surrogate pair, "
                              "not a character")


def _hooks(where: str) -> dict[str, Callable]:
    def parse_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise FormatError(f"{where}: number {text[:40]} is out of range (non-finite values are refused)")
        return value

    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
            raise FormatError(f"{where}: integer {text[:24]}… has {len(text.lstrip('-'))} digits (at most "
                              f"{MAX_JSON_INT_DIGITS})")
        return int(text)

    return {"parse_float": parse_float, "parse_int": parse_int}


def load_json(text: str, where: str, **kwargs: Any) -> Any:
    """``json.loads`` within the limits: depth, no NaN/Infinity, finite floats, integers of at most
    ``MAX_JSON_INT_DIGITS`` digits. Raises FormatError; a JSON syntax error stays a ``json.JSONDecodeError`` (the
    caller words it with its line and column)."""
    check_json_text(text, where)
    return json.loads(text, **_hooks(where), **kwargs)
