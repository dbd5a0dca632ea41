"""Use-def bookkeeping, the stable topological order, and the mutation API of kwsc.ir.Graph."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kwsc.errors import VerifyError
from kwsc.ir import Graph, Use, verify
from tests._graphs import featurizer_graph, gru_vad_graph


def uses_consistent(graph: Graph) -> None:
    """Every input lists its use on the producer, and every recorded use is a real input."""
    for node in graph.nodes:
        for i, value in enumerate(node.inputs):
            if value is not None:
                assert Use(node, i) in value.uses
        for out in node.outputs:
            for use in out.uses:
                assert use.node.inputs[use.index] is out


def diamond() -> tuple[Graph, dict]:
    g = Graph("diamond")
    x = g.add_input([4])
    a = g.op1("Exp", x, name="a")
    b = g.op1("Tanh", x, name="b")
    s = g.op1("Add", a, b, name="s")
    out = g.add_output(s)
    return verify(g), {"x": x, "a": a, "b": b, "s": s, "out": out}


def test_add_records_uses_in_connection_order():
    g, v = diamond()
    assert [(u.node.name, u.index) for u in v["x"].uses] == [("a", 0), ("b", 0)]
    assert v["a"].users == [g.node("s")] and v["s"].producer is g.node("s")
    twice = g.add("Mul", [v["a"], v["a"]], name="sq")
    assert [(u.node.name, u.index) for u in v["a"].uses] == [("s", 0), ("sq", 0), ("sq", 1)]
    assert v["a"].users == [g.node("s"), twice]  # distinct users
    uses_consistent(g)


def test_set_input_moves_the_use():
    g, v = diamond()
    s = g.node("s")
    s.set_input(1, v["a"])
    assert v["b"].uses == () and [(u.node.name, u.index) for u in v["a"].uses] == [("s", 0), ("s", 1)]
    s.set_input(1, v["a"])  # same value again: no duplicate use
    assert len(v["a"].uses) == 2
    uses_consistent(g)
    verify(g)


def test_set_named_input_grows_optional_slots():
    g = Graph()
    x = g.add_input([3])
    w = g.add_constant(np.ones((2, 3), np.float32), "w")
    dense = g.add("Dense", [x, w])
    g.add_output(dense.output)
    assert dense.input("bias") is None
    bias = g.add_constant(np.ones(2, np.float32), "b", before=dense)
    dense.set_named_input("bias", bias)
    assert dense.input("bias") is bias and Use(dense, 2) in bias.uses
    verify(g)


def test_replace_all_uses_with():
    g, v = diamond()
    c = g.add("Sqrt", [v["x"]], name="c", after=g.node("b")).output
    moved = g.replace_all_uses_with(v["a"], c)
    assert moved == 1 and v["a"].uses == () and g.node("s").inputs[0] is c
    uses_consistent(g)
    verify(g)


def test_remove_node_safe_refuses_while_used():
    g, v = diamond()
    with pytest.raises(VerifyError, match="cannot remove node a .*still used by s"):
        g.remove_node(g.node("a"))
    assert "a" in [n.name for n in g.nodes]
    g.replace_all_uses_with(v["a"], v["b"])
    g.remove_node(g.node("a"))
    assert [n.name for n in g.nodes] == ["input", "b", "s", "output"]
    assert [(u.node.name, u.index) for u in v["x"].uses] == [("b", 0)]  # the removed node's uses are gone
    uses_consistent(g)
    verify(g)
    assert g.unique_name("a") == "a"  # its name is free again


def test_remove_node_unsafe_leaves_a_dangling_input_that_verify_names():
    g, v = diamond()
    g.remove_node(g.node("b"), safe=False)
    with pytest.raises(VerifyError, match=r"node s \(Add\): input 1 \(b\) is produced by a node outside the graph"):
        verify(g)


def test_toposort_is_stable_and_restores_a_shuffled_chain():
    g = featurizer_graph()
    before = [n.name for n in g.nodes]
    g.toposort()
    assert [n.name for n in g.nodes] == before  # already topological: unchanged
    rng = random.Random(3)
    for _ in range(5):
        rng.shuffle(g._nodes)
        g.toposort()
        verify(g)
    g2 = Graph()
    x = g2.add_input([4])
    for k in range(6):
        x = g2.op1("Exp", x, name=f"e{k}")
    g2.add_output(x)
    chain = [n.name for n in g2.nodes]
    rng.shuffle(g2._nodes)
    g2.toposort()
    assert [n.name for n in g2.nodes] == chain


def test_toposort_of_a_shuffled_model_is_valid_and_keeps_independent_nodes_in_shuffled_order():
    g = gru_vad_graph()
    rng = random.Random(0)
    rng.shuffle(g._nodes)
    shuffled = [n.name for n in g.nodes]
    g.toposort()
    verify(g)
    sources = [n.name for n in g.nodes if not any(n.inputs)]
    assert sources == [s for s in shuffled if s in sources]  # lowest position first among ready nodes


def test_toposort_detects_cycles_naming_nodes():
    g, v = diamond()
    g.node("a").set_input(0, v["s"])  # a reads s, s reads a
    with pytest.raises(VerifyError, match=r"cycle through nodes: a, output, s"):
        g.toposort()
    with pytest.raises(VerifyError, match="later node"):
        verify(g)


def test_copy_is_deep_and_verified():
    g = gru_vad_graph()
    c = g.copy()
    verify(c)
    assert [n.name for n in c.nodes] == [n.name for n in g.nodes]
    c.node("fc_b").attrs["value"][0] = 99
    assert g.node("fc_b").attrs["value"][0] != 99
    assert all(n.graph is c for n in c.nodes)
    assert c.node("gru1").inputs[1].producer is c.node("vad")


def test_unique_names_and_rename():
    g = Graph()
    x = g.add_input([2])
    a = g.add("Exp", [x], name="1 bad-name")
    b = g.add("Exp", [a.output], name="1 bad-name")
    assert (a.name, b.name) == ("n1_bad_name", "n1_bad_name_1")
    assert g.rename(b, "n1_bad_name") == "n1_bad_name_1" and b.output.name == b.name
    assert g.rename(b, "clean") == "clean" and b.output.name == "clean"


def test_to_networkx_has_every_edge_with_ports():
    g = gru_vad_graph()
    nx_graph = g.to_networkx()
    assert set(nx_graph.nodes) == {n.name for n in g.nodes}
    assert nx_graph.number_of_edges() == sum(v is not None for n in g.nodes for v in n.inputs)
    ports = {d["dst_port"] for _, dst, d in nx_graph.in_edges("gru1", data=True)}
    assert ports == {0, 1, 2, 3, 4, 5}


def test_failed_add_leaves_no_phantom_use():
    """Bug fixed: a node whose type inference failed stayed recorded as a user of its inputs (toposort then
    crashed with a KeyError and verify() passed)."""
    g = Graph()
    x = g.add_input([600])
    with pytest.raises(VerifyError, match="longer than the window"):
        g.op1("Buffer", x, window_size=512)
    assert x.uses == ()
    g.add_output(x)
    g.toposort()
    verify(g)


def test_verify_catches_a_use_by_a_node_outside_the_graph():
    g, v = diamond()
    g.remove_node(g.node("a"), safe=False)  # a's input use of x is dropped, but s still reads a
    orphan = g.add("Exp", [v["x"]], name="orphan")
    g._nodes.remove(orphan)  # bypassing the API: x now lists a use by a node that is not in the graph
    with pytest.raises(VerifyError, match="stale use by orphan"):
        verify(g)
