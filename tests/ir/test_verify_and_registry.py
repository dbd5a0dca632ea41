"""verify() catches each broken invariant with a message naming the node; the op registry is complete."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.ir.semantics import KERNELS
from kwsc.errors import KwscError, UnsupportedOpError, VerifyError
from kwsc.ir import REGISTRY, Graph, get_op, op_names, ops_with_trait, verify
from kwsc.ir.ops import ATTR_KINDS
from tests._graphs import featurizer_graph, gru_vad_graph


def test_valid_graphs_verify():
    assert verify(featurizer_graph()) is not None
    verify(gru_vad_graph())


@pytest.mark.parametrize("break_it,message", [
    (lambda g: g.node("buffer").attrs.__setitem__("window_size", "big"),
     r"node buffer \(Buffer\) attribute window_size: expected int, got str"),
    (lambda g: g.node("buffer").attrs.__setitem__("window_size", 512.5), r"window_size: expected int"),
    (lambda g: g.node("window").attrs.__setitem__("kind", "blackman"), r"'blackman' is not one of hamming, hann"),
    (lambda g: g.node("fft").attrs.__setitem__("colour", 1), r"node fft \(FFT\): unknown attribute\(s\) colour"),
    (lambda g: g.node("buffer").attrs.pop("window_size"), r"node buffer \(Buffer\): attribute window_size is required"),
    (lambda g: g.node("log")._inputs.append(g.node("add").output),
     r"node log \(Log\): 2 inputs given, expected 1..1"),
    (lambda g: g.node("add").set_input(1, None), r"node add \(Add\): required input 'b' is not connected"),
    (lambda g: g.remove_node(g.node("offset"), safe=False), r"node add \(Add\): input 1 \(offset\) is produced by a node outside"),
    (lambda g: g.node("log").set_input(0, g.node("fft").output),
     r"node log \(Log\): stored output types \['float32\[40\]'\] differ from inferred \['float32\[257\]'\]"),
    (lambda g: g.node("offset").attrs.__setitem__("value", np.zeros(3, np.float32)),
     r"node offset \(Constant\): stored output types"),
    (lambda g: g.node("log").outputs[0]._uses.append(type(g.node("log").outputs[0].uses[0])(g.node("fft"), 0)),
     r"node log \(Log\): output log lists a stale use by fft"),
    (lambda g: g.remove_node(g.output_nodes[0]), r"graph 'featurizer' has no outputs"),
    (lambda g: g.add_input([1], name="input_2").producer.attrs.__setitem__("name", "input"),
     r"duplicate input names \['input', 'input'\]"),
])
def test_verify_catches_each_invariant(break_it, message):
    g = featurizer_graph()
    break_it(g)
    with pytest.raises(VerifyError, match=message):
        verify(g)


def test_verify_refuses_nodes_of_another_graph():
    g, other = featurizer_graph(), featurizer_graph()
    g._nodes.append(other.node("log"))
    with pytest.raises(VerifyError, match="belongs to another graph"):
        verify(g)


def test_builder_rejects_bad_nodes_up_front():
    g = Graph()
    x = g.add_input([600])
    with pytest.raises(VerifyError, match="longer than the window"):
        g.op1("Buffer", x, window_size=512)
    with pytest.raises(VerifyError, match=r"unknown attribute\(s\) window"):
        g.op1("Buffer", x, window=512)
    with pytest.raises(VerifyError, match=r"\(Dense\): 1 inputs given, expected 2..3"):
        g.add("Dense", [x])
    with pytest.raises(VerifyError, match="do not broadcast"):
        g.op1("Add", x, g.add_constant(np.ones(3, np.float32)))
    assert [n.op for n in g.nodes] == ["Input", "Constant"]  # failed adds leave nothing behind


def test_every_op_has_a_reference_kernel_and_a_docstring():
    missing = [name for name in op_names() if name not in KERNELS and name not in ("Input", "Output")]
    assert missing == []
    for name, opdef in REGISTRY.items():
        assert opdef.name == name
        assert len(opdef.doc) > 10, f"{name} has no doc"
        for attr_name, attr in opdef.attrs.items():
            assert attr.kind in ATTR_KINDS, (name, attr_name)


def test_registry_has_the_required_ops_and_traits():
    required = ("Input Output Constant Reshape Add Sub Mul Div Log Exp Sqrt Tanh Sigmoid Relu Dense Softmax "
                "LogSoftmax Buffer Window FFT MelFilterBank LinearFilterBank DCT IIR GRU LSTM RNN VAD Cast").split()
    assert set(required) <= set(op_names())
    # the int8 twins are recurrent too: VAD insertion and reset-trigger rewiring treat them alike
    assert ops_with_trait("recurrent") == {"GRU", "LSTM", "RNN", "QGRU", "QLSTM", "QRNN"}
    for name in ops_with_trait("binary"):
        assert get_op(name).symbol in ("+", "-", "*", "/", "max", "min", "^")
    stateful = {n for n, op in REGISTRY.items() if op.stateful}
    assert {"Buffer", "IIR", "GRU", "LSTM", "RNN", "VAD"} <= stateful


def test_unknown_op_is_unsupported_with_a_close_match_hint():
    with pytest.raises(UnsupportedOpError, match=r"unknown op 'Bufer'; did you mean Buffer\?"):
        get_op("Bufer")
    with pytest.raises(UnsupportedOpError, match=r"unknown op 'gru'; did you mean GRU\b"):
        get_op("gru")  # case does not hide the match
    with pytest.raises(UnsupportedOpError, match=r"unknown op 'Zorglub'$"):
        get_op("Zorglub")
    with pytest.raises(UnsupportedOpError):
        Graph().add("Convolution2D", [])
    assert issubclass(UnsupportedOpError, KwscError)
