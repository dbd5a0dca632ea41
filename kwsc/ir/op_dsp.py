"""Featurizer (DSP) ops and the voice-activity detector, with ELL's semantics (ell-behaviour.md §1, §2)."""

from __future__ import annotations

from kwsc.ir.ops import Attr, OpDef, StateVar, fail, in_type, register
from kwsc.ir.types import TensorType

__all__ = ["next_pow2", "VAD_DEFAULTS"]


def next_pow2(n: int) -> int:
    """Smallest power of two >= n."""
    p = 1
    while p < n:
        p *= 2
    return p


def _vector_len(n, index: int = 0) -> int:
    t = in_type(n, index)
    return t.size


def _infer_buffer(n):
    size, window = _vector_len(n), n.attrs["window_size"]
    if size > window:
        raise fail(n, f"input of {size} samples is longer than the window ({window}); ELL does not support that")
    return [TensorType((window,), in_type(n, 0).dtype)]


register(OpDef(
    name="Buffer", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"window_size": Attr("int", required=True, doc="samples in the sliding window")},
    infer=_infer_buffer,
    state=lambda n: {"window": StateVar((n.attrs["window_size"],))},
    doc="Sliding window: shifts the window left by the input length, appends the input, outputs the window "
        "(oldest sample first). Zeros initially and after reset.",
))

register(OpDef(
    name="Window", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"kind": Attr("str", "hamming", choices=("hamming", "hann")),
           "symmetric": Attr("bool", True, doc="denominator N-1 (ELL's default) instead of N")},
    infer=lambda n: [TensorType((_vector_len(n),), in_type(n, 0).dtype)],
    doc="Multiplies by a window: hamming w[n] = 0.54 - 0.46·cos(2πn/(N-1)) (symmetric), computed in double.",
))


def _infer_fft(n):
    size = _vector_len(n)
    nfft = n.attrs["nfft"] or next_pow2(size)
    if nfft & (nfft - 1):
        raise fail(n, f"nfft {nfft} is not a power of 2")
    return [TensorType((nfft // 2 + 1,), in_type(n, 0).dtype)]


register(OpDef(
    name="FFT", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"nfft": Attr("int", 0, doc="FFT length (power of 2); 0 = next power of 2 >= input length")},
    infer=_infer_fft,
    doc="Magnitudes |X[k]|, k = 0..nfft/2, of the unnormalised real DFT; input truncated or zero-padded to nfft.",
))


def _infer_filterbank(n):
    return [TensorType((n.attrs["num_filters"],), in_type(n, 0).dtype)]


register(OpDef(
    name="MelFilterBank", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"sample_rate": Attr("float", 16000.0), "num_filters": Attr("int", 40),
           "fft_size": Attr("int", 0, doc="FFT size used for bin placement; 0 = 2·(input length − 1)"),
           "offset": Attr("float", 0.0)},
    infer=_infer_filterbank,
    doc="HTK mel triangles (1127·ln(1+f/700)) on integer bins floor(f·(fft_size+1)/sr), peak 1, support [lo, hi).",
))

register(OpDef(
    name="LinearFilterBank", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"sample_rate": Attr("float", 16000.0), "num_filters": Attr("int", 40), "offset": Attr("float", 0.0)},
    infer=_infer_filterbank,
    doc="Linearly spaced triangles; bins floor(f·(K+1)/sr) with K the input length (ELL's quirk).",
))

register(OpDef(
    name="DCT", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"normalize": Attr("bool", False, doc="orthonormal scaling instead of ELL's unnormalised form")},
    infer=lambda n: [TensorType((_vector_len(n),), in_type(n, 0).dtype)],
    doc="DCT-II, X[k] = Σ x[n]·cos(π(n+½)k/N) (unnormalised, no factor 2, as ELL).",
))


def _iir_state(n):
    return {"x_hist": StateVar((max(len(n.attrs["b"]) - 1, 0),)), "y_hist": StateVar((len(n.attrs["a"]),))}


register(OpDef(
    name="IIR", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"b": Attr("floats", [1.0, -0.97], doc="feed-forward coefficients"),
           "a": Attr("floats", [], doc="feedback coefficients a1..an (y[n] -= Σ a_k·y[n-k])")},
    infer=lambda n: [TensorType((_vector_len(n),), in_type(n, 0).dtype)],
    state=_iir_state,
    doc="IIR filter over the sample stream, state carried across ticks: y[n] = Σ b_k x[n-k] − Σ a_k y[n-k].",
))

# ELL add_vad.py / make_vad.py defaults (ell-behaviour.md §2.1).
VAD_DEFAULTS = {
    "sample_rate": 16000.0, "frame_duration": 0.032, "tau_up": 1.54, "tau_down": 0.074326,
    "large_input": 2.400160, "gain_att": 0.002885, "threshold_up": 3.552713,
    "threshold_down": 0.931252, "level_threshold": 0.007885,
}

def _infer_vad(n):
    _vector_len(n)  # must be connected
    return [TensorType((1,), "int32")]


register(OpDef(
    name="VAD", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"vad"}),
    attrs={k: Attr("float", v) for k, v in VAD_DEFAULTS.items()},
    infer=_infer_vad,
    state=lambda n: {"frame": StateVar((), "int64", 0), "floor": StateVar((), "float32", 0.1),
                     "last_time": StateVar((), "float32", 0.0), "signal": StateVar((), "int32", 0)},
    doc="ELL's voice-activity detector: C-message-weighted level vs an asymmetric noise floor with hysteresis; "
        "outputs 1 while voice is present.",
))
