"""``add_vad``: one voice-activity detector on the classifier input driving every RNN's reset trigger."""

from __future__ import annotations

import typing
from dataclasses import field, make_dataclass
from typing import Any, Mapping

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.metadata import FeaturizerRecord
from kwsc.ir.op_dsp import VAD_DEFAULTS, VadParams
from kwsc.ir.ops import ops_with_trait, param_docs, tunable_params
from kwsc.passes.manager import PassResult, register_pass
from kwsc.passes.patterns import remove_if_dead

__all__ = ["VadOptions", "insert_vad", "recurrent_nodes"]

ELL_WINDOW_SIZE = 512  # add_vad.py's default samples per featurizer call (with its 16 kHz: 32 ms frames)


# NOTE: [VadOptions from VadParams]
# The pass's options are the VAD's tunable parameters (their names, defaults and docs come from
# ``kwsc.ir.op_dsp.VadParams``) plus the two numbers that give its frame duration. The class is made from that
# record, so a parameter added to the VAD reaches ``add_vad``, ``kwsc transform`` and its ``--help`` by itself.
_TIMING_DOCS = {
    "sample_rate": "audio sample rate (Hz); with window_size gives the VAD frame duration. Not given: the "
                   "model's own (``sample_rate`` of the featurizer it was made for, in its metadata), else ELL's "
                   "16000.",
    "window_size": "audio samples per featurizer call; frame_duration = window_size / sample_rate. Not given: "
                   "the model's own (``input_size`` in its metadata), else ELL's 512.",
}


class _VadOptionsMethods:
    sample_rate: float | None
    window_size: int | None

    def __post_init__(self) -> None:
        if (self.sample_rate is not None and self.sample_rate <= 0) or \
                (self.window_size is not None and self.window_size <= 0):
            raise ValueError(f"sample_rate ({self.sample_rate}) and window_size ({self.window_size}) must be > 0")
        if self.tau_up <= 0 or self.tau_down <= 0:  # type: ignore[attr-defined]
            raise ValueError(f"tau_up ({self.tau_up}) and tau_down ({self.tau_down}) must be > 0")  # type: ignore

    def timing(self, metadata: Mapping[str, Any] | None = None) -> tuple[float, int]:
        """(sample rate, samples per featurizer call): the options, else the model's featurizer record, else ELL's
        defaults (16000 Hz, 512)."""
        record = FeaturizerRecord.from_metadata(metadata or {})
        rate = self.sample_rate or record.sample_rate or VAD_DEFAULTS["sample_rate"]
        hop = self.window_size or record.input_size or ELL_WINDOW_SIZE
        return float(rate), int(hop)

    def vad_attrs(self, metadata: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The VAD node attributes these options give for a model with this metadata (see ``timing``)."""
        rate, hop = self.timing(metadata)
        return {"sample_rate": rate, "frame_duration": float(hop) / rate,
                **{f.name: getattr(self, f.name) for f in tunable_params(VadParams)}}


_HINTS = typing.get_type_hints(VadParams)
VadOptions = make_dataclass(
    "VadOptions",
    [("sample_rate", float | None, field(default=None)), ("window_size", int | None, field(default=None))]
    + [(f.name, _HINTS[f.name], field(default=f.default)) for f in tunable_params(VadParams)],
    bases=(_VadOptionsMethods,), frozen=True)
VadOptions.__module__ = __name__
VadOptions.__doc__ = ("Options of ``add_vad`` (ELL's ``add_vad.py`` parameters and defaults, ell-behaviour.md §2.1)."
                      "\n\n    Attributes:\n" + "".join(
                          f"        {name}: {doc}\n"
                          for name, doc in {**_TIMING_DOCS, **{f.name: param_docs(VadParams)[f.name] + "."
                                                              for f in tunable_params(VadParams)}}.items()))


def recurrent_nodes(graph: Graph) -> list[Node]:
    """GRU/LSTM/RNN nodes in graph order."""
    recurrent = ops_with_trait("recurrent")
    return [n for n in graph.nodes if n.op in recurrent]


def _driving_vad(node: Node) -> Node | None:
    trigger = node.input("reset_trigger") if len(node.inputs) > 1 else None
    return trigger.producer if trigger is not None and trigger.producer.op == "VAD" else None


def _vad_input(graph: Graph, value: Value, before: Node) -> tuple[Value, int]:
    """The classifier input as a flat vector (adds a Reshape when it is not 1-D); returns (value, reshapes)."""
    if len(value.shape) == 1:
        return value, 0
    flat = graph.add("Reshape", [value], {"shape": [value.type.size]}, name="vad_input", before=before)
    return flat.output, 1


@register_pass("add_vad", VadOptions)
def insert_vad(graph: Graph, options: VadOptions) -> PassResult:
    """Voice-activity detection: one VAD node on the classifier input drives every RNN's reset trigger.

    What ELL's ``add_vad.py`` does (ell-behaviour.md §2.5), on the IR:

    Rules:
        1. The recurrent nodes (GRU, LSTM, RNN) are visited in graph order; none at all is a PassError.
        2. An RNN whose reset trigger already comes from a VAD node is left alone.
        3. The VAD is created once, on the value feeding the *first* RNN's input (the classifier input, e.g. 80
           log-mel features), flattened by a Reshape when it is not 1-D (ELL's ReinterpretLayoutNode), with
           ``frame_duration = window_size / sample_rate`` and the other options as attributes; a rate or size
           not given is the model's own (its featurizer record: ``sample_rate``, ``input_size``), else ELL's. If some RNN is
           already driven by a VAD, that VAD is reused instead, so there is still exactly one.
        4. Every other RNN's reset trigger is re-pointed to the VAD output; a Constant trigger left without
           users (what importers put there) is removed.
        Idempotent: on a second run every RNN is already VAD-driven (rule 2) and nothing changes, whatever the
        options; to change the parameters of an existing VAD, edit or rebuild the model.
    """
    rnns = recurrent_nodes(graph)
    if not rnns:
        ops = sorted({n.op for n in graph.nodes})
        raise PassError(f"add_vad: graph {graph.name!r} has no recurrent node (GRU, LSTM or RNN) whose reset "
                        f"trigger a VAD could drive; its ops are: {', '.join(ops)}")
    pending = [n for n in rnns if _driving_vad(n) is None]
    counts = {"vad_added": 0, "reshape_added": 0, "triggers_rewired": 0, "constants_removed": 0}
    if not pending:
        return PassResult(counts)
    existing = [v for v in (_driving_vad(n) for n in rnns) if v is not None]
    if existing:
        vad = existing[0]
    else:
        first = rnns[0]
        features, reshapes = _vad_input(graph, first.inputs[0], before=first)
        vad = graph.add("VAD", [features], options.vad_attrs(graph.metadata), name="vad", before=first)
        counts["vad_added"] = 1
        counts["reshape_added"] = reshapes
    for rnn in pending:
        old = rnn.input("reset_trigger") if len(rnn.inputs) > 1 else None
        rnn.set_named_input("reset_trigger", vad.output)
        counts["triggers_rewired"] += 1
        if old is not None and old.producer.op == "Constant":
            counts["constants_removed"] += remove_if_dead(graph, old.producer)
    graph.toposort()
    return PassResult(counts)
