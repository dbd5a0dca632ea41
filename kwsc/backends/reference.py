"""The numpy reference interpreter: the loop over the ops' kernels. Every other backend is tested against it.

The meaning of each op is its kernel, declared with the op in ``kwsc.ir`` (contract and the reset-timing NOTE in
``kwsc/ir/semantics.py``); this module only binds inputs, carries state between ticks, and runs the kernels in
graph order, tick by tick (``step``) or over whole sequences (``run``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from kwsc.errors import BackendError, InputError, KwscError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.ops import get_op
from kwsc.ir.semantics import KERNELS, SCANS, evaluate_static, lift

__all__ = ["Interpreter", "run_graph"]


# ---------------------------------------------------------------------------------------- interpreter
class Interpreter:
    """Runs a graph tick by tick (``step``) or over whole sequences (``run``), carrying state.

    Args:
        graph: a verified graph.
        batch_shape: leading dimensions of independent streams (``()`` for one stream); each stream has its
            own state.

    Example::

        interp = Interpreter(featurizer)
        frame_features = interp.step(samples_512)       # one tick
        all_features = interp.run(chunks)               # chunks: (T, 512) → (T, 80), state carried
    """

    def __init__(self, graph: Graph, batch_shape: tuple[int, ...] = ()) -> None:
        missing = sorted({n.op for n in graph.nodes if n.op not in KERNELS and n.op not in ("Input", "Output")})
        if missing:
            raise BackendError(f"reference interpreter has no kernel for: {', '.join(missing)}")
        self.graph = graph
        self.batch_shape = tuple(batch_shape)
        self._order = graph.nodes
        self._static = evaluate_static(graph)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.reset()

    @property
    def input_names(self) -> list[str]:
        return [n.attrs["name"] for n in self.graph.input_nodes]

    @property
    def output_names(self) -> list[str]:
        return [n.attrs["name"] for n in self.graph.output_nodes]

    def reset(self) -> None:
        """Restore every stateful node's initial state (zeros, VAD floor 0.1, …)."""
        self.state = {}
        for node in self._order:
            spec = get_op(node.op).state_spec(node)
            if spec:
                self.state[node.name] = {k: v.initial_array(self.batch_shape) for k, v in spec.items()}

    def _bind(self, inputs: Any, lead: tuple[int, ...]) -> dict[Value, np.ndarray]:
        nodes = self.graph.input_nodes
        if not isinstance(inputs, Mapping):
            if len(nodes) != 1:
                raise InputError(f"graph has {len(nodes)} inputs ({', '.join(self.input_names)}); pass a dict")
            inputs = {nodes[0].attrs["name"]: inputs}
        env: dict[Value, np.ndarray] = {}
        for node in nodes:
            name = node.attrs["name"]
            if name not in inputs:
                raise InputError(f"missing graph input {name!r}")
            value = node.outputs[0]
            arr = np.asarray(inputs[name], dtype=value.dtype)
            want = lead + self.batch_shape + value.shape
            if arr.shape != want:
                if arr.size == int(np.prod(want)) and arr.shape[: len(lead)] == lead:
                    arr = arr.reshape(want)
                else:
                    raise InputError(f"input {name!r}: expected shape {want}, got {arr.shape}")
            env[value] = arr
        return env

    def _execute(self, env: dict[Value, np.ndarray], nb: int, sequence: bool) -> dict[str, np.ndarray]:
        for node in self._order:
            if node.op in ("Input", "Output"):
                continue
            if node.outputs and all(v in self._static for v in node.outputs):
                continue
            params = get_op(node.op).param_inputs
            xs = [self._fetch(v, env) for v in node.inputs]
            xs = [lift(x, nb) if x is not None and v in self._static and i not in params else x
                  for i, (v, x) in enumerate(zip(node.inputs, xs))]
            try:
                if node.name in self.state:
                    outs = self._run_stateful(node, xs, nb, sequence)
                else:
                    outs, _ = KERNELS[node.op](node, xs, {}, nb)
            except KwscError:
                raise
            except Exception as exc:  # add context, as torch.fx's interpreter does
                shapes = ", ".join(str(None if x is None else x.shape) for x in xs)
                raise BackendError(f"while executing node {node.name} ({node.op}), input shapes {shapes}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            for value, out in zip(node.outputs, outs):
                env[value] = out
        return {n.attrs["name"]: self._fetch(n.inputs[0], env) for n in self.graph.output_nodes}

    def _fetch(self, value: Value | None, env: dict) -> np.ndarray | None:
        if value is None:
            return None
        if value in self._static:
            return self._static[value]
        return env[value]

    def _run_stateful(self, node: Node, xs: list, nb: int, sequence: bool) -> list:
        state = self.state[node.name]
        if not sequence:
            outs, self.state[node.name] = KERNELS[node.op](node, xs, state, nb)
            return outs
        if node.op in SCANS:
            outs, self.state[node.name] = SCANS[node.op](node, xs, state, nb - 1)
            return outs
        # Time is the first batch dimension; static inputs (lifted, size 1 there) are the same every tick.
        params = get_op(node.op).param_inputs
        per_step: list[list[np.ndarray]] = []
        for t in range(self._steps):
            xt = [x if x is None or i in params else (x[t] if x.shape[0] == self._steps else x[0])
                  for i, x in enumerate(xs)]
            outs, state = KERNELS[node.op](node, xt, state, nb - 1)
            per_step.append(outs)
        self.state[node.name] = state
        return [np.stack([o[k] for o in per_step]) for k in range(len(per_step[0]))]

    def step(self, inputs: Any) -> Any:
        """One tick. ``inputs``: an array (single-input graphs) or a dict name → array of shape
        ``batch_shape + input shape``. Returns the output array (single output) or a dict."""
        env = self._bind(inputs, ())
        outs = self._execute(env, len(self.batch_shape), sequence=False)
        return self._pack(outs, ())

    def run(self, inputs: Any) -> Any:
        """Many ticks: arrays of shape ``(T,) + batch_shape + input shape``; returns ``(T, …)`` outputs.
        Equivalent to T calls of ``step`` (state is carried in and left updated)."""
        first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
        steps = np.asarray(first).shape[0]
        self._steps = steps
        env = self._bind(inputs, (steps,))
        if steps == 0:  # e.g. a clip shorter than one hop: no ticks, empty outputs, state untouched
            return self._pack({n.attrs["name"]: np.zeros((0,) + self.batch_shape + n.inputs[0].shape,
                                                          n.inputs[0].dtype) for n in self.graph.output_nodes}, (0,))
        outs = self._execute(env, len(self.batch_shape) + 1, sequence=True)
        return self._pack(outs, (steps,))

    def _pack(self, outs: dict[str, np.ndarray], lead: tuple[int, ...]) -> Any:
        full = {}
        for node in self.graph.output_nodes:
            name = node.attrs["name"]
            arr = np.asarray(outs[name])
            want = lead + self.batch_shape + node.inputs[0].shape
            full[name] = np.broadcast_to(arr, want).copy() if arr.shape != want else arr
        return next(iter(full.values())) if len(full) == 1 else full


def run_graph(graph: Graph, frames: Any) -> Any:
    """Convenience: a fresh interpreter over a whole sequence ``(T, …)`` from the initial state."""
    return Interpreter(graph).run(frames)
