"""ONNX GRU / LSTM / RNN → the IR's stateful recurrent ops, and explicit state I/O → node state.

Gate orders (ell-behaviour.md §3.7–3.8): ONNX GRU (z, r, h) equals the IR's (z, r, n) and is taken unchanged;
ONNX LSTM (i, o, f, c) is reordered to the IR's (i, f, g, o) with block indices [0, 2, 3, 1]. ONNX's B is
split into input and hidden biases.

# NOTE: [Explicit state]
# A streaming export passes the recurrent state through the graph: a graph input (h_in) feeds initial_h and a
# graph output (h_out) returns Y_h, and the caller feeds h_out back into h_in on the next call. In the IR the
# recurrent node owns that state, so the pair disappears from the interface. Which element of h_in feeds which
# element of which node's state is found by *running* the plumbing between them on index codes (Slice, Gather,
# Concat … move values without changing them), and the pairing is accepted only when h_out returns every state
# element at exactly the position h_in takes it from. The result is recorded in ``node.meta["state_io"]``.
"""

from __future__ import annotations

import numpy as np

from kwsc.errors import FrontendError
from kwsc.frontends.onnx._importer import Importer, translator
from kwsc.frontends.onnx._load import attr
from kwsc.ir.graph import Node, Value
from kwsc.ir.ops import get_op
from kwsc.formats.onnx_schema import ONNX_ACTIVATIONS, gate_rows
from kwsc.ir.semantics import evaluate_node

__all__ = ["resolve_states"]

_DEFAULT_ACTIVATIONS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}
_ACTIVATIONS = {onnx.lower(): ir for ir, onnx in ONNX_ACTIVATIONS.items()}  # ONNX compares them without case


def _activations(imp: Importer, node) -> list[str]:
    op = node.op_type
    for key in ("clip", "activation_alpha", "activation_beta"):
        if any(a.name == key for a in node.attribute):
            raise imp.error(f"attribute {key!r} is not supported")
    given = attr(node, "activations", "strs", _DEFAULT_ACTIVATIONS[op])
    if len(given) != len(_DEFAULT_ACTIVATIONS[op]):
        raise imp.error(f"expects {len(_DEFAULT_ACTIVATIONS[op])} activations (one direction), got {given}")
    mapped = []
    for name in given:
        if name.lower() not in _ACTIVATIONS:
            raise imp.error(f"activation {name!r} is not supported ({', '.join(ONNX_ACTIVATIONS.values())})")
        mapped.append(_ACTIVATIONS[name.lower()])
    return mapped


def _hidden_size(imp: Importer, node, gates: int, r: np.ndarray) -> int:
    """The hidden size: R is [1, gates·hidden, hidden], so R's last axis. ONNX lets a model leave the hidden_size
    attribute out (onnxruntime refuses such a model); when it is given, it must agree with R."""
    given = attr(node, "hidden_size", "int", None)
    if given is not None and given <= 0:
        raise imp.error(f"hidden_size {given} is not positive")
    hidden = r.shape[-1]
    if given is not None and given != hidden:
        raise imp.error(f"hidden_size {given} disagrees with R's shape {list(r.shape)} (hidden size {hidden}): "
                        f"R must be [1, {gates}·hidden_size, hidden_size]")
    if hidden <= 0 or r.shape[1] != gates * hidden:
        raise imp.error(f"R has shape {list(r.shape)}, expected [1, {gates}·hidden_size, hidden_size] "
                        f"({node.op_type}: {gates} gate{'s' if gates > 1 else ''})")
    return hidden


def _check_shape(imp: Importer, array: np.ndarray, want: tuple[int, ...], what: str) -> None:
    if array.shape != want:
        raise imp.error(f"{what} has shape {list(array.shape)}, expected {list(want)}")


@translator("GRU", "LSTM", "RNN", produces=("GRU", "LSTM", "RNN", "Reshape", "GRUSequence", "LSTMSequence",
                                            "RNNSequence"))
def _recurrent(imp: Importer, node) -> None:
    op = node.op_type
    gates = len(get_op(op).gates)
    direction = attr(node, "direction", "str", "forward")
    if direction != "forward":
        raise imp.error(f"direction {direction!r} is not supported: a streaming model runs forward only")
    acts = _activations(imp, node)
    layout = attr(node, "layout", "int", 0)
    if layout not in (0, 1):
        raise imp.error(f"layout {layout} is not 0 or 1")
    if op == "LSTM":
        if attr(node, "input_forget", "int", 0):
            raise imp.error("input_forget=1 (coupled input/forget gates) is not supported")
        if acts[1] != acts[2]:
            raise imp.error(f"cell and output activations must be equal, got {acts[1]} and {acts[2]}")
    x = imp.value(0)
    # a fixed sequence [T, 1, F] (a window model) becomes a sequence op, which the stream pass makes per-tick
    sequence = len(x.shape) == 3 and x.shape[0] > 1 and x.shape[1] == 1 and layout == 0
    if not sequence and (len(x.shape) != 3 or x.shape[:2] != (1, 1)):
        raise imp.error(f"input X has per-tick shape {list(x.shape)}; kwsc streams one frame per tick "
                        "(sequence length 1, batch 1)")
    w, r = imp.const(1, "W"), imp.const(2, "R")
    if w.ndim != 3 or r.ndim != 3:
        raise imp.error(f"W {list(w.shape)} and R {list(r.shape)} must have rank 3")
    hidden = _hidden_size(imp, node, gates, r)
    size = gates * hidden
    _check_shape(imp, w, (1, size, x.shape[2]), "W")
    _check_shape(imp, r, (1, size, hidden), "R")
    b = imp.const(3, "B") if imp.has(3) else np.zeros((1, 2 * size), np.float32)
    _check_shape(imp, b, (1, 2 * size), "B")
    if imp.has(4):
        lens = imp.const(4, "sequence_lens")
        if lens.size != 1 or int(lens.reshape(-1)[0]) != x.shape[0]:
            raise imp.error(f"sequence_lens {lens.reshape(-1).tolist()} is not the whole sequence ({x.shape[0]})")
    if op == "LSTM" and imp.has(7):
        peepholes = imp.const(7, "P")
        if peepholes.size and np.any(peepholes != 0):
            raise imp.error("LSTM peepholes (input P) are not supported")
    w, r, bi, bh = w[0], r[0], b[0, :size], b[0, size:]
    order = gate_rows(op, hidden, to_onnx=False)  # ONNX's gate order → the IR's (LSTM: i, o, f, c → i, f, g, o)
    w, r, bi, bh = w[order], r[order], bi[order], bh[order]
    base = (node.name or op.lower()).strip("/_:.")
    params = []
    for label, array in (("input_weights", w), ("hidden_weights", r), ("input_bias", bi), ("hidden_bias", bh)):
        value = imp.graph.add_constant(np.ascontiguousarray(array, dtype=np.float32), name=f"{base}_{label}")
        value.producer.meta["source"] = node.name or base
        imp.static[value] = value.producer.attrs["value"]
        params.append(value)
    attrs = {"hidden_size": hidden, "activation": acts[1] if op != "RNN" else acts[0]}
    if op != "RNN":
        attrs["recurrent_activation"] = acts[0]
    if op == "GRU":
        attrs["linear_before_reset"] = bool(attr(node, "linear_before_reset", "int", 0))
    if sequence:
        _sequence(imp, op, x, params, attrs)
        return
    rnn = imp.add(op, [x, None, *params], attrs)
    for index, var in ((5, "h"), (6, "c")) if op == "LSTM" else ((5, "h"),):
        if imp.has(index):
            _initial_state(imp, rnn, var, index, hidden)
    h = rnn.outputs[0]
    if imp.wants(0):
        imp.bind(0, imp.add1("Reshape", [h], {"shape": [1, 1, 1, hidden]}, name=f"{base}_Y"))
    if imp.wants(1):
        imp.bind(1, imp.add1("Reshape", [h], {"shape": [1, 1, hidden]}, name=f"{base}_Y_h"))
    if op == "LSTM" and imp.wants(2):
        imp.bind(2, imp.add1("Reshape", [rnn.outputs[1]], {"shape": [1, 1, hidden]}, name=f"{base}_Y_c"))


def _sequence(imp: Importer, op: str, x: Value, params: list[Value], attrs: dict) -> None:
    """ONNX's RNN over a fixed [T, 1, F]: the IR's sequence op (NOTE [Sequence RNNs] in ir/op_stream.py)."""
    for index, what in ((5, "initial_h"), (6, "initial_c")):
        if imp.has(index) and (not imp.is_const(index) or np.any(imp.const(index, what) != 0)):
            raise imp.error(f"{what} must be absent or zero for a whole sequence [T, 1, F] (the window runs from "
                            "a zero state)")
    seq = imp.add(op + "Sequence", [x, *params], attrs)
    if imp.wants(0):
        imp.bind(0, seq.outputs[0])
    if imp.wants(1):
        imp.bind(1, seq.outputs[1])
    if op == "LSTM" and imp.wants(2):
        imp.bind(2, seq.outputs[2])


def _initial_state(imp: Importer, rnn: Node, var: str, index: int, hidden: int) -> None:
    what = "initial_h" if var == "h" else "initial_c"
    if imp.is_const(index):
        initial = imp.const(index, what)
        if initial.shape != (1, 1, hidden):  # [num_directions, batch, hidden], as onnxruntime checks it
            raise imp.error(f"{what} has shape {list(initial.shape)}, expected [1, 1, {hidden}]")
        if np.any(initial != 0):
            raise imp.error(f"a non-zero constant {what} is not supported (kwsc's recurrent state starts at zero)")
        return
    value = imp.value(index)
    if value.shape != (1, 1, hidden):
        raise imp.error(f"{what} has shape {list(value.shape)}, expected [1, 1, {hidden}]")
    imp.pending_states.append((rnn, var, value))


# ---------------------------------------------------------------------- explicit state I/O (NOTE above)
_LEAF_OUTPUTS = {0: "h", 1: "c"}


def _ancestors(value: Value, static: dict, stop_recurrent: bool) -> tuple[list[Node], list[Node], bool]:
    """Nodes between the graph's sources and ``value``: (data-movement nodes, source nodes, only-shape-ops)."""
    seen: set[Node] = set()
    inner: list[Node] = []
    sources: list[Node] = []
    plain = True
    stack = [value]
    while stack:
        v = stack.pop()
        if v is None or v in static:
            continue
        node = v.producer
        if node in seen:
            continue
        seen.add(node)
        if node.op == "Input" or (stop_recurrent and "recurrent" in get_op(node.op).traits):
            sources.append(node)
            continue
        if "shape" not in get_op(node.op).traits:
            plain = False
            continue
        inner.append(node)
        stack.extend(node.inputs)
    return inner, sources, plain


def _run_codes(graph, inner: list[Node], seeds: dict[Value, np.ndarray], static: dict) -> dict[Value, np.ndarray]:
    """Trace element codes (float64, exact) through the shape ops in ``inner``."""
    env = dict(seeds)
    for node in sorted(inner, key=graph.index):
        xs = [None if v is None else (env[v] if v in env else static[v]) for v in node.inputs]
        env.update(zip(node.outputs, evaluate_node(node, xs, dtype="float64")))
    return env


def resolve_states(imp: Importer) -> None:
    """Turn explicit state inputs/outputs into recurrent node state (see NOTE [Explicit state])."""
    if not imp.pending_states:
        return
    graph, static = imp.graph, imp.static
    feeds: dict[Node, dict[tuple[Node, str, int], int]] = {}
    for rnn, var, value in imp.pending_states:
        what = f"node {rnn.meta.get('source', rnn.name)!r} ({rnn.op}) initial_{var}"
        inner, sources, plain = _ancestors(value, static, stop_recurrent=False)
        inputs = [n for n in sources if n.op == "Input"]
        if not plain or len(inputs) != 1 or len(sources) != 1:
            raise FrontendError(f"{imp.where}: {what} must be taken from one graph input by slicing/reshaping only")
        source = inputs[0]
        codes = np.arange(1, source.outputs[0].type.size + 1, dtype=np.float64).reshape(source.outputs[0].shape)
        env = _run_codes(graph, inner, {source.outputs[0]: codes}, static)
        positions = env[value].reshape(-1) - 1
        if np.any(positions != np.round(positions)) or np.any(positions < 0):
            raise FrontendError(f"{imp.where}: {what} does not select elements of graph input {source.attrs['name']!r}")
        mapping = feeds.setdefault(source, {})
        for j, p in enumerate(positions.astype(int)):
            mapping[(rnn, var, j)] = int(p)
    pairs = _pair_outputs(imp, feeds)
    for source, (output, mapping) in pairs.items():
        for (rnn, var, j), p in sorted(mapping.items(), key=lambda kv: (kv[0][0].name, kv[0][1], kv[0][2])):
            entry = rnn.meta.setdefault("state_io", {}).setdefault(
                var, {"input": source.attrs["name"], "output": output.attrs["name"],
                      "shape": list(source.outputs[0].shape), "positions": []})
            entry["positions"].append(p)
        graph.remove_node(output)
        _remove_downstream(imp, source)


def _pair_outputs(imp: Importer, feeds: dict) -> dict[Node, tuple[Node, dict]]:
    graph, static = imp.graph, imp.static
    keys = sorted({k for mapping in feeds.values() for k in mapping}, key=lambda k: (graph.index(k[0]), k[1], k[2]))
    code_of = {k: i + 1 for i, k in enumerate(keys)}
    pairs: dict[Node, tuple[Node, dict]] = {}
    for output in graph.output_nodes:
        value = output.inputs[0]
        inner, sources, plain = _ancestors(value, static, stop_recurrent=True)
        if not plain or not sources or any(n.op == "Input" for n in sources):
            continue
        seeds = {}
        for rnn in sources:
            for index, var in _LEAF_OUTPUTS.items():
                if index < len(rnn.outputs):
                    hidden = rnn.outputs[index].type.size
                    seeds[rnn.outputs[index]] = np.array([code_of.get((rnn, var, j), 0) for j in range(hidden)],
                                                         dtype=np.float64)
        returned = _run_codes(graph, inner, seeds, static)[value].reshape(-1) if value not in seeds \
            else seeds[value]
        for source, mapping in feeds.items():
            if source in pairs or source.outputs[0].type.size != returned.size:
                continue
            wanted = np.zeros(returned.size)
            for k, p in mapping.items():
                wanted[p] = code_of[k]
            if np.array_equal(returned, wanted):
                pairs[source] = (output, mapping)
                break
    for source in feeds:
        if source not in pairs:
            raise FrontendError(f"{imp.where}: graph input {source.attrs['name']!r} feeds a recurrent initial state, "
                                "but no graph output returns that state at the same positions (expected the "
                                "matching Y_h/Y_c output, fed back by the caller)")
    return pairs


def _remove_downstream(imp: Importer, source: Node) -> None:
    """Remove a state input and the plumbing that only served the (now internal) initial state."""
    graph, static = imp.graph, imp.static
    doomed = {source}
    for node in graph.nodes[graph.index(source) + 1:]:
        # a static value (e.g. Shape of the state input: sizes only) does not carry the state
        if any(v is not None and v.producer in doomed and v not in static for v in node.inputs):
            doomed.add(node)
    for node in doomed:
        for out in node.outputs:
            if out in static and any(user not in doomed for user in out.users):
                constant = graph.add_constant(static[out], name=f"{node.name}_value", before=node)
                constant.producer.meta["source"] = node.meta.get("source", node.name)
                static[constant] = static[out]
                graph.replace_all_uses_with(out, constant)
    for node in doomed - {source}:
        if node.op == "Output":
            raise FrontendError(f"{imp.where}: graph output {node.attrs['name']!r} reads the state input "
                                f"{source.attrs['name']!r}, not only a recurrent initial state")
        if "shape" not in get_op(node.op).traits:
            raise FrontendError(f"{imp.where}: state input {source.attrs['name']!r} is also used by "
                                f"{node.meta.get('source', node.name)!r} ({node.op}), not only as an initial state")
    for node in reversed([n for n in graph.nodes if n in doomed]):
        graph.remove_node(node)
