"""Typed records kept in ``graph.metadata``: the featurizer's parameters, written once and read by every step.

``graph.metadata`` stays a flat, name-keyed dict (that is what ``.kwsc`` files, ONNX ``metadata_props``, ELL's
``GetMetadata`` and the generated C's ``<name>_GetMetadata`` carry, as strings once compiled). ``FeaturizerRecord``
is its schema for the featurizer: ``make_featurizer`` writes ``record.to_metadata()``; the batch featurizer,
``add_vad``, the evaluators and the demo read ``FeaturizerRecord.from_metadata(...)`` or
``FeaturizerRecord.of_featurizer(graph)`` instead of picking keys and defaults of their own.

# NOTE: [Who carries the record]
# A featurizer graph carries it whole. A fused model carries the featurizer's (fuse_featurizer merges metadata,
# the featurizer's keys winning). A trained classifier carries what training knew: ``sample_rate`` and
# ``input_size`` (samples per featurizer call) of the features it was trained on, so ``add_vad`` finds the VAD's
# frame duration there; its ``window_size`` is the dataset's rows per example, not a sample count, so only the
# audio-timing fields are read from a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping

from kwsc.errors import InputError

if TYPE_CHECKING:
    from kwsc.ir.graph import Graph

__all__ = ["FeaturizerRecord"]


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(float(value))


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


_PARSE = {"int": _int, "float": _float, "bool": _bool, "str": _str}


@dataclass(frozen=True)
class FeaturizerRecord:
    """The featurizer's parameters as ``graph.metadata`` holds them (field order = key order written).

    Attributes:
        sample_rate: audio rate in Hz.
        input_size: samples per tick (the hop): one featurizer call.
        window_size: samples per FFT frame (the Buffer length).
        output_size: features per frame.
        drop_frames: chunks a reader discards at the start of each clip, ``int(window_size / input_size)``
            (ELL's AudioTransform rule).
        nfft: FFT length. filterbank_type: ``mel``, ``linear`` or ``none``. filterbank_size: number of filters.
        filterbank_nfft: FFT size used for mel bin placement.
        hamming_window, log, dct, power_spec, iir: the options that add those stages.
        log_delta, pre_emphasis: their constants.
        auto_scale: readers scale int16 audio by 1/32768 before feeding the graph.
    """

    sample_rate: int | None = None
    input_size: int | None = None
    window_size: int | None = None
    output_size: int | None = None
    drop_frames: int | None = None
    nfft: int | None = None
    filterbank_type: str | None = None
    filterbank_size: int | None = None
    filterbank_nfft: int | None = None
    hamming_window: bool | None = None
    log: bool | None = None
    log_delta: float | None = None
    dct: bool | None = None
    power_spec: bool | None = None
    iir: bool | None = None
    pre_emphasis: float | None = None
    auto_scale: bool | None = None

    def to_metadata(self) -> dict[str, Any]:
        """The flat ``graph.metadata`` entries (fields that are set, in declaration order)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> FeaturizerRecord:
        """Read the record from metadata (typed values, or the strings a compiled model returns); absent → None."""
        # the parser of each field follows its annotation ("int | None" → _int)
        return cls(**{f.name: _PARSE[f.type.split(" ")[0]](meta.get(f.name)) for f in fields(cls)})

    @classmethod
    def of_featurizer(cls, graph: Graph) -> FeaturizerRecord:
        """The record of a featurizer graph: its metadata, completed from the graph itself.

        Works for graphs made by ``make_featurizer`` and for imported ``.ell`` featurizers, which carry only ELL's
        node metadata (``window_size`` on the Buffer, ``sample_rate`` on the filter bank, ``auto_scale`` on the
        input). Sizes come from the graph's input and output.

        Raises:
            InputError: the graph does not have one input and one output.
        """
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise InputError(f"graph {graph.name!r} is not a featurizer: it has {len(graph.inputs)} inputs and "
                             f"{len(graph.outputs)} outputs (expected 1 and 1)")
        record = cls.from_metadata(graph.metadata)
        input_size = int(graph.inputs[0].type.size)
        window = record.window_size
        if window is None:
            window = _int(_node_metadata(graph, "window_size"))
        if window is None:
            buffers = graph.find("Buffer")
            window = buffers[0].attrs["window_size"] if buffers else None
        rate = record.sample_rate if record.sample_rate is not None else _int(_node_metadata(graph, "sample_rate"))
        auto_scale = record.auto_scale
        if auto_scale is None:
            # make_dataset.py passes bool(metadata string), so any present value, even "False", means True.
            auto_scale = _node_metadata(graph, "auto_scale") is not None
        return cls(**{**{f.name: getattr(record, f.name) for f in fields(record)},
                      "sample_rate": rate, "input_size": input_size, "output_size": int(graph.outputs[0].type.size),
                      "window_size": window, "drop_frames": int(window / input_size) if window else 0,
                      "auto_scale": bool(auto_scale)})

    @property
    def frame_seconds(self) -> float | None:
        """Seconds of audio one tick consumes (``input_size / sample_rate``), None when either is unknown."""
        if not self.input_size or not self.sample_rate:
            return None
        return self.input_size / self.sample_rate


def _node_metadata(graph: Graph, key: str) -> str | None:
    for node in graph.nodes:
        if key in node.metadata:
            return node.metadata[key]
    return None
