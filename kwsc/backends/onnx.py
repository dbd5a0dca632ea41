"""IR → ONNX: write a graph as a one-tick ONNX model, for Netron and onnxruntime.

An op whose registry entry names its ONNX twin (``OpDef.onnx``) is written as that op with its attributes;
the others have an ``op_<Name>`` method here.

Each ONNX call computes one tick. State becomes explicit: every stateful node gets a graph input
``<var>_in_<node>`` and a graph output ``<var>_out_<node>`` (``h_in_gru1``/``h_out_gru1``; LSTM adds ``c_…``;
Buffer ``window_…``; FIR filters ``x_hist_…``); the caller starts them at zero and feeds each output back into
its input on the next call. The pairs are listed in the model's ``kwsc_state`` metadata (JSON).

DSP ops become plain ONNX: Window is a Mul by the window table, FFT magnitudes two MatMuls with the real DFT
matrices (in double, as the reference computes), filter banks and DCT MatMuls with the tables of
``kwsc.ir.tables``, Buffer a Concat/Slice on its state. Values computable from constants are written as
initializers; dead nodes are left out. A recurrent node's reset trigger becomes a ``prev_trigger`` state and a
Where on the state outputs (zeroed after the tick whose trigger went non-zero → 0). VAD, IIR feedback and
hard_tanh have no ONNX form and raise a BackendError naming the node.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from kwsc.errors import BackendError
from kwsc.fileio import atomic_write
from kwsc.formats.onnx_schema import ONNX_ACTIVATIONS, gate_rows
from kwsc.ir import tables
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.op_quant import FLOAT_TWIN
from kwsc.ir.ops import REGISTRY, get_op

__all__ = ["to_onnx", "save_onnx", "OPSET", "REFUSES", "written_ops"]

OPSET = 20
_DTYPE_CODES = {"float32": 1, "float64": 11, "int32": 6, "int64": 7, "bool": 9}


# Ops with no ONNX form, and why (IIR feedback and hard_tanh are refused per node: see their methods).
REFUSES = {"VAD": "the voice-activity detector has no ONNX form (its noise-floor tracking has no ONNX op); write "
                  "the model without add_vad",
           "Detector": "the keyword detector has no ONNX form (its argmax, thresholds and suppression keep integer "
                       "state ONNX ops do not); write the model without add_detector",
           "History": "the stream pass's ring buffer is written as no ONNX op; write the window model (before the "
                      "stream pass) to ONNX instead",
           **{op: "a recurrent layer over a whole window is written by no kwsc ONNX writer yet; write the per-tick "
                  "model (after the stream pass)" for op in ("GRUSequence", "LSTMSequence", "RNNSequence")},
           **{op: "kwsc's int8 arithmetic (per-step activation scales) has no ONNX form; export the float model "
                  "(the quantize pass's input)" for op in FLOAT_TWIN}}


def written_ops() -> frozenset[str]:
    """The IR ops this writer writes: graph I/O, those with an ``op_<Name>`` method, those with an ONNX twin."""
    return frozenset(name for name, opdef in REGISTRY.items()
                     if name in ("Input", "Output") or hasattr(_Emitter, f"op_{name}") or opdef.onnx)


def save_onnx(graph: Graph, path: str | Path) -> None:
    """Write ``to_onnx(graph)`` to ``path`` atomically."""
    model = to_onnx(graph)
    atomic_write(Path(path), model.SerializeToString())


def to_onnx(graph: Graph):
    """The ONNX ModelProto (opset 20) computing one tick of ``graph`` with explicit state I/O.

    Raises:
        BackendError: an op has no ONNX form (VAD, IIR with feedback, hard_tanh).
    """
    return _Emitter(graph).run()


class _Emitter:
    def __init__(self, graph: Graph) -> None:
        from kwsc.ir.semantics import evaluate_static

        self.graph = graph
        self.static = evaluate_static(graph)
        self.nodes: list = []
        self.inits: dict[str, Any] = {}
        self.inputs: list = []
        self.outputs: list = []
        self.state_inputs: list = []  # after the graph's own inputs/outputs
        self.state_outputs: list = []
        self.state_pairs: list[dict[str, Any]] = []
        self.names: dict[Value, str] = {}
        self.taken = {n.attrs["name"] for n in graph.input_nodes + graph.output_nodes}
        self.counter = 0
        self.node_names: set[str] = set()

    # ------------------------------------------------------------------ naming and values
    def fresh(self, base: str) -> str:
        self.counter += 1
        name = f"{base}__{self.counter}"
        self.taken.add(name)
        return name

    def ref(self, value: Value) -> str:
        """The ONNX name of an IR value (static values become initializers on first use)."""
        if value in self.names:
            return self.names[value]
        name = value.name if value.name not in self.taken else self.fresh(value.name)
        self.taken.add(name)
        self.names[value] = name
        if value in self.static:
            self.init(name, self.static[value])
        return name

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits[name] = numpy_helper.from_array(np.asarray(array), name)
        return name

    def const(self, base: str, array: np.ndarray) -> str:
        return self.init(self.fresh(base), array)

    def emit(self, op: str, inputs: list[str], outputs: list[str] | None = None, name: str = "", **attrs) -> str:
        from onnx import helper

        outputs = outputs or [self.fresh(f"{name or op}_out")]
        node_name = name if name and name not in self.node_names else self.fresh(name or op)
        self.node_names.add(node_name)
        self.nodes.append(helper.make_node(op, inputs, outputs, name=node_name, **attrs))
        return outputs[0]

    def array(self, node: Node, index: int, what: str) -> np.ndarray:
        value = node.inputs[index]
        if value not in self.static:
            raise BackendError(f"node {node.name} ({node.op}): {what} must be constant to write ONNX")
        return self.static[value]

    def state_io(self, node: Node, var: str, shape: list[int], dtype: str = "float32") -> tuple[str, str]:
        from onnx import helper

        in_name, out_name = f"{var}_in_{node.name}", f"{var}_out_{node.name}"
        self.taken |= {in_name, out_name}
        self.state_inputs.append(helper.make_tensor_value_info(in_name, _DTYPE_CODES[dtype], shape))
        self.state_outputs.append(helper.make_tensor_value_info(out_name, _DTYPE_CODES[dtype], shape))
        self.state_pairs.append({"node": node.name, "var": var, "input": in_name, "output": out_name, "shape": shape,
                                 "dtype": dtype})
        return in_name, out_name

    # ------------------------------------------------------------------ the walk
    def run(self):
        from onnx import helper

        live = self.graph.live_nodes()
        clash = {n.attrs["name"] for n in self.graph.input_nodes} & {n.attrs["name"] for n in self.graph.output_nodes}
        if clash:
            raise BackendError(f"graph {self.graph.name!r}: {', '.join(sorted(clash))} names both an input and an "
                               "output; ONNX needs distinct names")
        for node in self.graph.nodes:
            if node.op == "Input":
                name = node.attrs["name"]
                self.names[node.outputs[0]] = name
                self.inputs.append(helper.make_tensor_value_info(name, _DTYPE_CODES[node.attrs["dtype"]],
                                                                 list(node.attrs["shape"])))
            elif node.op == "Output":
                value = node.inputs[0]
                name = node.attrs["name"]
                self.emit("Identity", [self.ref(value)], [name], name=name)
                self.outputs.append(helper.make_tensor_value_info(name, _DTYPE_CODES[value.dtype], list(value.shape)))
            elif node in live and not all(v in self.static for v in node.outputs):
                handler = getattr(self, f"op_{node.op}", None)
                twin = get_op(node.op).onnx  # the same op in ONNX: same inputs, same attributes
                if node.op in REFUSES:
                    raise BackendError(f"node {node.name} ({node.op}): {REFUSES[node.op]}")
                if handler is None and twin is None:
                    raise BackendError(f"node {node.name} ({node.op}) has no ONNX form")
                if handler is None:
                    self.emit(twin, [self.ref(v) for v in node.inputs], [self.ref(node.outputs[0])], name=node.name,
                              **node.attrs)
                else:
                    handler(node)
        graph_proto = helper.make_graph(self.nodes, self.graph.name, self.inputs + self.state_inputs,
                                        self.outputs + self.state_outputs,
                                        initializer=list(self.inits.values()))
        model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="kwsc")
        model.ir_version = 10
        meta = {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in self.graph.metadata.items()}
        meta["kwsc_state"] = json.dumps(self.state_pairs)
        helper.set_model_props(model, meta)
        return model

    # ------------------------------------------------------------------ basic ops
    def out(self, node: Node, index: int = 0) -> str:
        return self.ref(node.outputs[index])

    def op_Constant(self, node: Node) -> None:  # only reached for non-static (never); kept for completeness
        self.init(self.out(node), node.attrs["value"])

    def op_Square(self, node: Node) -> None:
        x = self.ref(node.inputs[0])
        self.emit("Mul", [x, x], [self.out(node)], name=node.name)

    def op_Cast(self, node: Node) -> None:
        self.emit("Cast", [self.ref(node.inputs[0])], [self.out(node)], name=node.name,
                  to=_DTYPE_CODES[node.attrs["dtype"]])

    def op_Transpose(self, node: Node) -> None:
        perm = node.attrs["perm"] or list(reversed(range(len(node.inputs[0].shape))))
        self.emit("Transpose", [self.ref(node.inputs[0])], [self.out(node)], name=node.name, perm=perm)

    def _reshape(self, x: str, shape: list[int] | tuple[int, ...], out: str | None = None, name: str = "") -> str:
        return self.emit("Reshape", [x, self.const("shape", np.asarray(list(shape), np.int64))],
                         [out] if out else None, name=name or "reshape")

    def op_Reshape(self, node: Node) -> None:
        self._reshape(self.ref(node.inputs[0]), node.outputs[0].shape, self.out(node), node.name)

    def op_Expand(self, node: Node) -> None:
        self.emit("Expand", [self.ref(node.inputs[0]), self.const("shape", np.asarray(node.attrs["shape"], np.int64))],
                  [self.out(node)], name=node.name)

    def op_ConstantOfShape(self, node: Node) -> None:  # only when not folded (never in practice)
        a = node.attrs
        self.init(self.out(node), np.full(a["shape"], a["fill"], dtype=a["dtype"]))

    def op_Concat(self, node: Node) -> None:
        self.emit("Concat", [self.ref(v) for v in node.inputs], [self.out(node)], name=node.name,
                  axis=node.attrs["axis"])

    def op_Slice(self, node: Node) -> None:
        a = node.attrs
        count = len(a["starts"])
        args = [a["starts"], a["ends"], a["axes"] or list(range(count)), a["steps"] or [1] * count]
        names = [self.const(label, np.asarray(v, np.int64)) for label, v in zip(("starts", "ends", "axes", "steps"), args)]
        self.emit("Slice", [self.ref(node.inputs[0]), *names], [self.out(node)], name=node.name)

    def op_Gather(self, node: Node) -> None:
        self.emit("Gather", [self.ref(node.inputs[0]), self.ref(node.inputs[1])], [self.out(node)], name=node.name,
                  axis=node.attrs["axis"])

    def _reduce(self, node: Node) -> None:
        inputs = [self.ref(node.inputs[0])]
        if node.attrs["axes"]:
            inputs.append(self.const("axes", np.asarray(node.attrs["axes"], np.int64)))
        self.emit(node.op, inputs, [self.out(node)], name=node.name, keepdims=int(node.attrs["keepdims"]))

    op_ReduceMean = op_ReduceMax = _reduce

    def op_Clip(self, node: Node) -> None:
        bounds = [self.const(key, np.asarray(node.attrs[key], np.float32)) if math.isfinite(node.attrs[key]) else ""
                  for key in ("min", "max")]
        while bounds and not bounds[-1]:
            bounds.pop()
        self.emit("Clip", [self.ref(node.inputs[0]), *bounds], [self.out(node)], name=node.name)

    def op_Pad(self, node: Node) -> None:
        a = node.attrs
        inputs = [self.ref(node.inputs[0]), self.const("pads", np.asarray(a["pads"], np.int64))]
        if a["mode"] == "constant":
            inputs.append(self.const("value", np.asarray(a["value"], dtype=node.inputs[0].dtype)))
        self.emit("Pad", inputs, [self.out(node)], name=node.name, mode=a["mode"])

    def _windowed(self, node: Node) -> None:
        """Conv and the pools with every list attribute written out (onnxruntime rejects empty lists)."""
        from kwsc.ir.op_conv import spatial_list

        spatial = len(node.inputs[0].shape) - 2
        attrs = {k: v for k, v in node.attrs.items() if k not in ("strides", "dilations", "pads")}
        for key, fill in (("strides", 1), ("dilations", 1), ("pads", 0)):
            attrs[key] = spatial_list(node, key, spatial, fill)
        for key in ("ceil_mode", "count_include_pad"):
            if key in attrs:
                attrs[key] = int(attrs[key])
        inputs = [self.ref(v) for v in node.inputs if v is not None]
        self.emit(node.op, inputs, [self.out(node)], name=node.name, **attrs)

    op_Conv = op_MaxPool = op_AveragePool = _windowed

    def op_Dense(self, node: Node) -> None:
        weights = self.array(node, 1, "weights")
        y = self.emit("MatMul", [self.ref(node.inputs[0]), self.const(f"{node.name}_weights_T", weights.T.copy())],
                      name=f"{node.name}_matmul")
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            bias = self.array(node, 2, "bias").reshape(-1).astype(np.float32)
            y = self.emit("Add", [y, self.const(f"{node.name}_bias", bias)], name=f"{node.name}_bias")
        act = node.attrs["activation"]
        ops = {"none": "Identity", "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
               "log_softmax": "LogSoftmax"}
        extra = {"axis": -1} if act in ("softmax", "log_softmax") else {}
        self.emit(ops[act], [y], [self.out(node)], name=f"{node.name}_{act}", **extra)

    # ------------------------------------------------------------------ recurrent ops
    def _recurrent(self, node: Node) -> None:
        hidden = node.attrs["hidden_size"]
        w, r, bi, bh = (self.array(node, i, label).astype(np.float32) for i, label in
                        ((2, "input_weights"), (3, "hidden_weights"), (4, "input_bias"), (5, "hidden_bias")))
        bi, bh = bi.reshape(-1), bh.reshape(-1)
        order = gate_rows(node.op, hidden, to_onnx=True)  # LSTM: IR (i, f, g, o) blocks → ONNX (i, o, f, c)
        w, r, bi, bh = w[order], r[order], bi[order], bh[order]
        acts = [node.attrs.get("recurrent_activation"), node.attrs["activation"]]
        acts = {"GRU": acts, "LSTM": acts + acts[1:], "RNN": acts[1:]}[node.op]
        for act in acts:
            if act not in ONNX_ACTIVATIONS:
                raise BackendError(f"node {node.name} ({node.op}): activation {act} has no ONNX form")
        x = self._reshape(self.ref(node.inputs[0]), [1, 1, node.inputs[0].type.size], name=f"{node.name}_X")
        state = [self.state_io(node, var, [1, 1, hidden]) for var in (("h", "c") if node.op == "LSTM" else ("h",))]
        inputs = [x, self.const(f"{node.name}_W", w[None]), self.const(f"{node.name}_R", r[None]),
                  self.const(f"{node.name}_B", np.concatenate([bi, bh])[None]), "", *[s_in for s_in, _ in state]]
        new_state = [self.fresh(f"{node.name}_Y_{var}") for var in (("h", "c") if node.op == "LSTM" else ("h",))]
        attrs: dict[str, Any] = {"hidden_size": hidden, "activations": [ONNX_ACTIVATIONS[a] for a in acts]}
        if node.op == "GRU":
            attrs["linear_before_reset"] = int(node.attrs["linear_before_reset"])
        self.emit(node.op, inputs, ["", *new_state], name=node.name, **attrs)
        for k, value in enumerate(new_state):
            self._reshape(value, [hidden], self.out(node, k), f"{node.name}_{'hc'[k]}")
        fired = self._reset_fired(node) if len(node.inputs) > 1 and node.inputs[1] is not None else None
        zeros = self.const(f"{node.name}_zero_state", np.zeros((1, 1, hidden), np.float32)) if fired else None
        for value, (_, s_out) in zip(new_state, state):
            if fired is None:
                self.emit("Identity", [value], [s_out], name=f"{s_out}_state")
            else:  # reset after this tick's output, when the trigger went non-zero → 0 (ELL's compiled timing)
                self.emit("Where", [fired, zeros, value], [s_out], name=f"{s_out}_reset")

    def _reset_fired(self, node: Node) -> str:
        """A bool that is true when the trigger's element 0 (as int) is 0 and was non-zero on the last tick."""
        trigger = node.inputs[1]
        flat = self._reshape(self.ref(trigger), [trigger.type.size], name=f"{node.name}_trigger_flat")
        first = self.emit("Slice", [flat, self.const("start", np.asarray([0], np.int64)),
                                    self.const("end", np.asarray([1], np.int64))], name=f"{node.name}_trigger0")
        now = self.emit("Cast", [self._reshape(first, [], name=f"{node.name}_trigger_scalar")],
                        name=f"{node.name}_trigger_int", to=_DTYPE_CODES["int32"])
        prev_in, prev_out = self.state_io(node, "prev_trigger", [], "int32")
        self.emit("Identity", [now], [prev_out], name=f"{node.name}_prev_trigger")
        zero = self.const("zero", np.asarray(0, np.int32))
        was_on = self.emit("Not", [self.emit("Equal", [prev_in, zero], name=f"{node.name}_was_off")],
                           name=f"{node.name}_was_on")
        return self.emit("And", [was_on, self.emit("Equal", [now, zero], name=f"{node.name}_is_off")],
                         name=f"{node.name}_reset_fired")

    op_GRU = op_LSTM = op_RNN = _recurrent

    # ------------------------------------------------------------------ DSP ops
    def _vector(self, node: Node) -> tuple[str, int]:
        value = node.inputs[0]
        x = self.ref(value)
        if len(value.shape) != 1:
            x = self._reshape(x, [value.type.size], name=f"{node.name}_flat")
        return x, value.type.size

    def _matmul_double(self, node: Node, x: str, matrix: np.ndarray, label: str) -> str:
        """x @ matrix computed in double, as the reference does; returns the double result."""
        xd = self.emit("Cast", [x], name=f"{node.name}_to_double", to=11)
        return self.emit("MatMul", [xd, self.const(f"{node.name}_{label}", matrix.astype(np.float64))],
                         name=f"{node.name}_{label}")

    def op_Buffer(self, node: Node) -> None:
        x, length = self._vector(node)
        width = node.attrs["window_size"]
        w_in, w_out = self.state_io(node, "window", [width])
        kept = self.emit("Slice", [w_in, self.const("start", np.asarray([length], np.int64)),
                                   self.const("end", np.asarray([width], np.int64))], name=f"{node.name}_keep")
        self.emit("Concat", [kept, x], [self.out(node)], name=node.name, axis=0)
        self.emit("Identity", [self.out(node)], [w_out], name=f"{node.name}_state")

    def op_Window(self, node: Node) -> None:
        x, length = self._vector(node)
        table = tables.window_table(node.attrs["kind"], length, node.attrs["symmetric"])
        self.emit("Mul", [x, self.const(f"{node.name}_table", table)], [self.out(node)], name=node.name)

    def op_FFT(self, node: Node) -> None:
        x, length = self._vector(node)
        nfft = (node.outputs[0].shape[0] - 1) * 2
        rows = min(length, nfft)  # rfft truncates or zero-pads to nfft
        angle = 2.0 * math.pi * np.outer(np.arange(rows), np.arange(nfft // 2 + 1)) / nfft
        if rows < length:
            x = self.emit("Slice", [x, self.const("start", np.asarray([0], np.int64)),
                                    self.const("end", np.asarray([rows], np.int64))], name=f"{node.name}_truncate")
        real = self._matmul_double(node, x, np.cos(angle), "dft_real")
        imag = self._matmul_double(node, x, -np.sin(angle), "dft_imag")
        power = self.emit("Add", [self.emit("Mul", [real, real], name=f"{node.name}_re2"),
                                  self.emit("Mul", [imag, imag], name=f"{node.name}_im2")], name=f"{node.name}_power")
        magnitude = self.emit("Sqrt", [power], name=f"{node.name}_magnitude")
        self.emit("Cast", [magnitude], [self.out(node)], name=node.name, to=1)

    def _table_product(self, node: Node, matrix: np.ndarray, label: str) -> None:
        x, _ = self._vector(node)
        y = self._matmul_double(node, x, matrix.T, label)
        self.emit("Cast", [y], [self.out(node)], name=node.name, to=1)

    def op_MelFilterBank(self, node: Node) -> None:
        a = node.attrs
        matrix = tables.filterbank_matrix("mel", node.inputs[0].type.size, a["sample_rate"], a["num_filters"],
                                          a["fft_size"], a["offset"])
        self._table_product(node, matrix, "mel_filters")

    def op_LinearFilterBank(self, node: Node) -> None:
        a = node.attrs
        matrix = tables.filterbank_matrix("linear", node.inputs[0].type.size, a["sample_rate"], a["num_filters"],
                                          0, a["offset"])
        self._table_product(node, matrix, "linear_filters")

    def op_DCT(self, node: Node) -> None:
        self._table_product(node, tables.dct_matrix(node.inputs[0].type.size, node.attrs["normalize"]), "dct")

    def op_IIR(self, node: Node) -> None:
        b, a = node.attrs["b"], node.attrs["a"]
        if a:
            raise BackendError(f"node {node.name} (IIR): feedback coefficients a={a} have no ONNX form "
                               "(only FIR filters, a=[], are written)")
        x, length = self._vector(node)
        xd = self.emit("Cast", [x], name=f"{node.name}_to_double", to=11)
        taps = len(b) - 1
        if taps:
            h_in, h_out = self.state_io(node, "x_hist", [taps])
            hist = self.emit("Cast", [h_in], name=f"{node.name}_hist_double", to=11)
            ext = self.emit("Concat", [hist, xd], name=f"{node.name}_extended", axis=0)
        else:
            ext = xd
        total = None
        for k, coefficient in enumerate(b):
            start = taps - k
            part = self.emit("Slice", [ext, self.const("start", np.asarray([start], np.int64)),
                                       self.const("end", np.asarray([start + length], np.int64))],
                             name=f"{node.name}_tap{k}")
            term = self.emit("Mul", [part, self.const(f"{node.name}_b{k}", np.asarray(coefficient, np.float64))],
                             name=f"{node.name}_term{k}")
            total = term if total is None else self.emit("Add", [total, term], name=f"{node.name}_sum{k}")
        self.emit("Cast", [total], [self.out(node)], name=node.name, to=1)
        if taps:
            tail = self.emit("Slice", [ext, self.const("start", np.asarray([length], np.int64)),
                                       self.const("end", np.asarray([length + taps], np.int64))],
                             name=f"{node.name}_history")
            self.emit("Cast", [tail], [h_out], name=f"{node.name}_state", to=1)


