"""Every registered op, through every way into and out of kwsc: supported, or refused with a reason.

Each backend and frontend answers from its own dispatch (the C kernel table, the ONNX writer's methods and op
twins, the ONNX translators' declared products, ELL's schema, the interpreter's kernels, the printer's rules)
and names what it refuses and why. An op added to the registry and not to one of them fails here, so an op
cannot be half-added; an op both supported and refused, or a refusal naming no registered op, fails too.
"""

from __future__ import annotations

import importlib.util

import pytest

from kwsc.ir import get_op, op_names

GRAPH_IO = frozenset({"Input", "Output"})


def reference():
    return {op for op in op_names() if get_op(op).kernel is not None} | GRAPH_IO, {}


def c_backend():
    from kwsc.backends.c.kernels import ALIAS_OPS, GRAPH_OPS, KERNEL_TABLE, REFUSES

    return set(KERNEL_TABLE) | ALIAS_OPS | GRAPH_OPS, REFUSES


def onnx_out():
    pytest.importorskip("onnx")
    from kwsc.backends.onnx import REFUSES, written_ops

    return written_ops(), REFUSES


def onnx_in():
    pytest.importorskip("onnx")
    from kwsc.frontends.onnx import NOT_IMPORTED, imported_ops

    return imported_ops(), NOT_IMPORTED


def _ell_schema():
    if importlib.util.find_spec("kwsc.formats.ell_schema") is None:
        pytest.skip("kwsc/formats/ell_schema.py (the shared ELL schema, branch `ell`) is not merged yet")
    from kwsc.formats import ell_schema

    return ell_schema


def ell_out():
    schema = _ell_schema()
    return set(schema.writer_ops()), schema.WRITER_REFUSES


def ell_in():
    schema = _ell_schema()
    return set(schema.reader_ops()), schema.READER_REFUSES


def viz():
    """The printer draws any op from its category, traits and symbol: it must give each a colour and a label."""
    from kwsc.backends.viz import PALETTE, fill_colour, node_label

    return {op for op in op_names() if fill_colour(get_op(op)) in PALETTE.values() and node_label(get_op(op))}, {}


DIRECTIONS = {"reference": reference, "C": c_backend, "ONNX out": onnx_out, "ONNX in": onnx_in,
              "ELL out": ell_out, "ELL in": ell_in, "viz": viz}


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_every_op_is_supported_or_refused_with_a_reason(direction):
    supported, refused = DIRECTIONS[direction]()
    ops = set(op_names())
    assert sorted(ops - set(supported) - set(refused)) == [], f"{direction}: neither supported nor refused"
    assert sorted(set(supported) & set(refused)) == [], f"{direction}: both supported and refused"
    assert sorted(set(refused) - ops) == [], f"{direction}: refuses ops that are not registered"
    assert sorted(set(supported) - ops) == [], f"{direction}: supports ops that are not registered"
    vague = [op for op, why in refused.items() if not isinstance(why, str) or len(why.split()) < 3]
    assert vague == [], f"{direction}: a refusal must say why"


def test_the_directions_are_not_vacuous():
    """Each direction supports the core of a keyword spotter, and the ones that refuse something say so."""
    for direction, answer in DIRECTIONS.items():
        try:
            supported, refused = answer()
        except pytest.skip.Exception:
            continue
        assert {"Input", "Output", "GRU", "Add"} <= set(supported), direction
    assert "VAD" in onnx_out()[1] and "Concat" in c_backend()[1] and "FFT" in onnx_in()[1]
