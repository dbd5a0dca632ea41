"""Featurizer options → a streaming graph that computes ELL's audio features (ell-behaviour.md §1).

``make_featurizer(FeaturizerOptions(...))`` builds exactly the node chain of ELL's ``make_featurizer.py``, in
ELL's creation order and with ELL's node metadata, so the graph emits as an ELL-identical ``.ell`` file and
compiles to a device like any other model::

    Input[L] → IIR? → Buffer[W] → Window? → FFT[nfft/2+1] → (Square, Div nfft)? → Mel|LinearFilterBank?
             → (Add log_delta, Log)? → DCT? → Output

One tick consumes ``input_size`` samples (already scaled to [-1, 1): ``auto_scale`` is only metadata) and
produces one feature frame.

Graph metadata (``graph.metadata``, the ``kwsc.ir.metadata.FeaturizerRecord``) written here and read by later
steps (datasets, evaluation, codegen):

==================  =====================================================================================
key                 meaning
==================  =====================================================================================
``model_kind``      ``"featurizer"``
``sample_rate``     audio rate in Hz (int)
``input_size``      samples per tick (the hop), = Input length
``window_size``     samples per FFT frame (Buffer length)
``output_size``     features per frame
``drop_frames``     ``int(window_size / input_size)``: chunks a reader discards at the start of each clip
                    (ELL's AudioTransform rule, §5.2)
``nfft``            FFT length; ``filterbank_nfft``: FFT size used for mel bin placement
``filterbank_type`` ``"mel"``, ``"linear"`` or ``"none"``; ``filterbank_size``: number of filters
``hamming_window``, ``log``, ``dct``, ``power_spec``, ``iir``, ``auto_scale``: booleans (the options)
``log_delta``, ``pre_emphasis``: floats (the options)
==================  =====================================================================================

``featurizer_info(graph)`` reads the same facts back from any featurizer graph, including one imported
from an ``.ell`` file (which carries only ELL's node metadata).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from kwsc.errors import InputError
from kwsc.ir import Graph, tables, verify
from kwsc.ir.validate import validate
from kwsc.ir.metadata import FeaturizerRecord
from kwsc.ir.op_dsp import next_pow2

__all__ = ["FeaturizerOptions", "FILTERBANK_TYPES", "make_featurizer", "featurizer_info"]

FILTERBANK_TYPES = ("mel", "linear", "none")


@dataclass(frozen=True)
class FeaturizerOptions:
    """The options of ELL's ``make_featurizer.py``, with its defaults.

    Attributes:
        sample_rate: audio rate in Hz; used for filter-bank bin placement and stored as metadata.
        window_size: samples per FFT frame (the Buffer length).
        input_buffer_size: samples per tick (hop); ``window_size`` must be a multiple-or-more of it.
        hamming_window: multiply each frame by a symmetric Hamming window.
        filterbank_type: ``"mel"``, ``"linear"`` or ``"none"``.
        filterbank_size: number of filters.
        filterbank_nfft: FFT size used for mel bin placement (None: equals ``nfft``).
        nfft: FFT length, a power of 2 (None: next power of 2 >= ``window_size``).
        log: append ``ln(x + log_delta)``.
        log_delta: the constant added before the log.
        dct: append an unnormalised DCT-II.
        power_spec: replace FFT magnitudes m by m²/nfft.
        iir: add a pre-emphasis filter y[n] = x[n] − pre_emphasis·x[n−1] before the Buffer.
        pre_emphasis: the pre-emphasis coefficient.
        auto_scale: metadata only: readers scale int16 audio by 1/32768 before feeding the graph.
    """

    sample_rate: int = 16000
    window_size: int = 512
    input_buffer_size: int = 160
    hamming_window: bool = False
    filterbank_type: str = "mel"
    filterbank_size: int = 40
    filterbank_nfft: int | None = None
    nfft: int | None = None
    log: bool = False
    log_delta: float = 1.0
    dct: bool = False
    power_spec: bool = False
    iir: bool = False
    pre_emphasis: float = 0.97
    auto_scale: bool = False

    @property
    def fft_size(self) -> int:
        """The FFT length actually used."""
        return int(self.nfft) if self.nfft else next_pow2(int(self.window_size))

    @property
    def spectrum_size(self) -> int:
        """Length of the FFT output (nfft/2 + 1)."""
        return self.fft_size // 2 + 1

    @property
    def output_size(self) -> int:
        """Features per frame."""
        return self.spectrum_size if self.filterbank_type == "none" else int(self.filterbank_size)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FeaturizerOptions":
        """Options from a mapping (e.g. parsed arguments or graph metadata); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Raise InputError (one line, naming the option) when the options cannot make a featurizer."""
        def bad(option: str, message: str) -> InputError:
            return InputError(f"featurizer option --{option}: {message}")

        for name in ("sample_rate", "window_size", "input_buffer_size", "filterbank_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise bad(name, f"must be a positive integer, got {value!r}")
        if self.window_size < self.input_buffer_size:
            raise bad("window_size", f"{self.window_size} is smaller than --input_buffer_size "
                                     f"{self.input_buffer_size}; the window must hold at least one input buffer")
        for name in ("nfft", "filterbank_nfft"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 1:
                raise bad(name, f"must be an integer > 1, got {value!r}")
            if value & (value - 1):
                raise bad(name, f"{value} is not a power of 2")
        if self.filterbank_type not in FILTERBANK_TYPES:
            raise bad("filterbank_type", f"{self.filterbank_type!r} is not one of {', '.join(FILTERBANK_TYPES)}")
        if self.filterbank_type != "none":
            self._check_filterbank_edges(bad)
        for name in ("log_delta", "pre_emphasis"):
            if not math.isfinite(float(getattr(self, name))):
                raise bad(name, f"must be a finite number, got {getattr(self, name)!r}")
        if self.log and self.log_delta < 0:
            raise bad("log_delta", f"{self.log_delta} is negative: ln(x + log_delta) would be NaN for silence")

    def _check_filterbank_edges(self, bad) -> None:
        spectrum = self.spectrum_size
        if self.filterbank_type == "mel":
            bins = tables.mel_bins(self.filterbank_size, float(self.sample_rate),
                                   int(self.filterbank_nfft or self.fft_size))
            hint = "use a --filterbank_nfft no larger than --nfft"
        else:
            bins = tables.linear_bins(self.filterbank_size, float(self.sample_rate), spectrum)
            hint = "use fewer filters"
        if max(bins) > spectrum:
            raise bad("filterbank_nfft" if self.filterbank_type == "mel" else "filterbank_size",
                      f"filter bank edge at bin {max(bins)} lies beyond the {spectrum}-bin spectrum of a "
                      f"{self.fft_size}-point FFT; {hint}")


def make_featurizer(options: FeaturizerOptions | None = None, **overrides: Any) -> Graph:
    """Build the featurizer graph for ``options`` (ELL's node chain, order and metadata).

    Args:
        options: the featurizer options (defaults: ELL's).
        **overrides: option values replacing those in ``options`` (``make_featurizer(log=True)``).

    Returns:
        A verified streaming graph: input ``input`` of ``input_buffer_size`` float32 samples per tick,
        output ``output`` of ``output_size`` features, with ``graph.metadata`` as documented above.

    Raises:
        InputError: the options are inconsistent (window smaller than the hop, nfft not a power of 2,
            filter-bank edges beyond the spectrum, ...).
    """
    opts = options or FeaturizerOptions()
    if overrides:
        opts = FeaturizerOptions.from_dict({**opts.to_dict(), **overrides})
    opts.validate()
    nfft = opts.fft_size
    g = Graph("featurizer")
    x = g.add_input([opts.input_buffer_size], name="input")
    if opts.auto_scale:
        x.producer.metadata["auto_scale"] = "True"
    if opts.iir:
        node = g.add("IIR", [x], {"b": [1.0, -float(opts.pre_emphasis)], "a": []}, name="iir",
                     metadata={"iir": "true"})
        x = node.output
    node = g.add("Buffer", [x], {"window_size": opts.window_size}, name="buffer",
                 metadata={"window_size": str(opts.window_size)})
    last = node
    if opts.hamming_window:
        last = g.add("Window", [last.output], {"kind": "hamming", "symmetric": True}, name="hamming_window")
    last = g.add("FFT", [last.output], {"nfft": nfft}, name="fft")
    spectrum = opts.spectrum_size
    if opts.power_spec:
        square = g.add("Square", [last.output], name="square")
        denominator = g.add_constant(np.full(spectrum, nfft, dtype=np.float32), name="nfft")
        last = g.add("Div", [square.output, denominator], name="power_spectrum")
    if opts.filterbank_type == "mel":
        last = g.add("MelFilterBank", [last.output],
                     {"sample_rate": float(opts.sample_rate), "num_filters": opts.filterbank_size,
                      "fft_size": int(opts.filterbank_nfft or nfft), "offset": 0.0}, name="mel_filterbank")
    elif opts.filterbank_type == "linear":
        last = g.add("LinearFilterBank", [last.output],
                     {"sample_rate": float(opts.sample_rate), "num_filters": opts.filterbank_size, "offset": 0.0},
                     name="linear_filterbank")
    # ELL tags whatever node comes last here, even the FFT when there is no filter bank.
    last.metadata.update({"sample_rate": str(opts.sample_rate), "filterbank_size": str(opts.filterbank_size),
                          "filterbank_type": opts.filterbank_type, "num_filters": str(opts.filterbank_size)})
    if opts.log:
        # ELL sizes this constant by filterbank_size even without a filter bank (a bug); we use the real size.
        size = last.output.shape[0]
        delta = g.add_constant(np.full(size, opts.log_delta, dtype=np.float32), name="log_delta")
        added = g.add("Add", [last.output, delta], name="add_log_delta")
        last = g.add("Log", [added.output], name="log", metadata={"log": "true"})
    if opts.dct:
        last = g.add("DCT", [last.output], {"normalize": False}, name="dct", metadata={"dct": "true"})
    g.add_output(last.output, name="output")
    record = FeaturizerRecord(
        sample_rate=int(opts.sample_rate), input_size=int(opts.input_buffer_size), window_size=int(opts.window_size),
        output_size=int(last.output.shape[0]), drop_frames=int(opts.window_size / opts.input_buffer_size),
        nfft=nfft, filterbank_type=opts.filterbank_type, filterbank_size=int(opts.filterbank_size),
        filterbank_nfft=int(opts.filterbank_nfft or nfft), hamming_window=bool(opts.hamming_window),
        log=bool(opts.log), log_delta=float(opts.log_delta), dct=bool(opts.dct), power_spec=bool(opts.power_spec),
        iir=bool(opts.iir), pre_emphasis=float(opts.pre_emphasis), auto_scale=bool(opts.auto_scale))
    g.metadata.update({"model_kind": "featurizer", **record.to_metadata()})
    return validate(verify(g), "featurizer options")


def featurizer_info(graph: Graph) -> dict[str, Any]:
    """What a reader needs to drive a featurizer graph: sizes, rate, scaling and the drop rule.

    The dict form of ``FeaturizerRecord.of_featurizer(graph)`` (which also reads imported ``.ell`` featurizers).

    Returns:
        dict with ``sample_rate`` (int or None), ``input_size``, ``output_size``, ``window_size`` (int or None),
        ``drop_frames`` (ELL: ``int(window_size / input_size)``, 0 without a window size) and ``auto_scale``.
    """
    record = FeaturizerRecord.of_featurizer(graph)
    return {key: getattr(record, key) for key in ("sample_rate", "input_size", "output_size", "window_size",
                                                  "drop_frames", "auto_scale")}
