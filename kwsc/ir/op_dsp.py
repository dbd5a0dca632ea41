"""Featurizer (DSP) ops and the voice-activity detector, with ELL's semantics (ell-behaviour.md §1, §2).

Each op's numpy kernel sits beside its declaration (contract in ``semantics.py``); the constant tables they use
(window, filter banks, DCT, VAD weights) are in ``tables.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from kwsc.ir import tables
from kwsc.ir.ops import Attr, OpDef, StateVar, fail, in_type, param, register
from kwsc.ir.types import TensorType
from kwsc.limits import (MAX_DCT, MAX_DIM, MAX_FFT, MAX_FILTERS, MAX_IIR_TAPS, MAX_SAMPLE_RATE,
                         MIN_SAMPLE_RATE)

__all__ = ["next_pow2", "VadParams", "VAD_DEFAULTS"]


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


def _buffer(node, xs, state, nb):
    batch = state["window"].shape[:-1]
    x = xs[0].reshape(xs[0].shape[:nb] + (-1,))
    x = np.broadcast_to(x, batch + x.shape[-1:])
    window = np.concatenate([state["window"][..., x.shape[-1]:], x], axis=-1).astype(np.float32)
    return [window], {"window": window}


def _buffer_scan(node, seq, state, nb):
    """Sequence form: the window at each tick is the last W samples of (initial window ++ stream)."""
    x = seq[0]  # (T, *batch, L)
    steps = x.shape[0]
    width = node.attrs["window_size"]
    length = node.inputs[0].type.size
    batch = state["window"].shape[:-1]
    x = np.broadcast_to(x.reshape(x.shape[: nb + 1] + (-1,)), (steps,) + batch + (length,))
    flat = np.concatenate([state["window"], np.moveaxis(x, 0, -2).reshape(batch + (steps * length,))], axis=-1)
    ends = width + length * np.arange(1, steps + 1)
    idx = ends[:, None] - width + np.arange(width)[None, :]  # (T, W)
    out = np.moveaxis(flat[..., idx], -2, 0).astype(np.float32)  # (T, *batch, W)
    return [out], {"window": out[-1].copy()}


register(OpDef(
    name="Buffer", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"window_size": Attr("int", required=True, doc="samples in the sliding window", low=1, high=MAX_DIM)},
    infer=_infer_buffer,
    state=lambda n: {"window": StateVar((n.attrs["window_size"],))}, kernel=_buffer, scan=_buffer_scan,
    doc="Sliding window: shifts the window left by the input length, appends the input, outputs the window "
        "(oldest sample first). Zeros initially and after reset.",
))

def _window(node, xs, state, nb):
    x = xs[0]
    w = tables.window_table(node.attrs["kind"], x.shape[-1], node.attrs["symmetric"])
    return [(x * w).astype(np.float32)], state


register(OpDef(
    name="Window", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"kind": Attr("str", "hamming", choices=("hamming", "hann")),
           "symmetric": Attr("bool", True, doc="denominator N-1 (ELL's default) instead of N")},
    infer=lambda n: [TensorType((_vector_len(n),), in_type(n, 0).dtype)], kernel=_window,
    doc="Multiplies by a window: hamming w[n] = 0.54 - 0.46·cos(2πn/(N-1)) (symmetric), computed in double.",
))


def _infer_fft(n):
    size = _vector_len(n)
    nfft = n.attrs["nfft"] or next_pow2(size)
    if nfft & (nfft - 1) or nfft < 2:
        raise fail(n, f"nfft {nfft} is not a power of 2 of at least 2")
    if nfft > MAX_FFT:
        raise fail(n, f"nfft {nfft} (for an input of {size}) exceeds the limit {MAX_FFT}")
    # nfft < size is ELL's documented truncation (the FFT reads the first nfft samples), not an error
    return [TensorType((nfft // 2 + 1,), in_type(n, 0).dtype)]


def _fft(node, xs, state, nb):
    nfft = (node.outputs[0].shape[0] - 1) * 2
    spectrum = np.fft.rfft(xs[0].astype(np.float64), n=nfft, axis=-1)
    return [np.abs(spectrum).astype(np.float32)], state


register(OpDef(
    name="FFT", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"nfft": Attr("int", 0, doc="FFT length (power of 2); 0 = next power of 2 >= input length", low=0,
                        high=MAX_FFT)},
    infer=_infer_fft, kernel=_fft,
    doc="Magnitudes |X[k]|, k = 0..nfft/2, of the unnormalised real DFT; input truncated or zero-padded to nfft.",
))


def _infer_filterbank(n):
    size, a = _vector_len(n), n.attrs
    if size < 2:
        raise fail(n, f"input of {size} spectrum bins is too short for a filter bank")
    if n.op == "MelFilterBank":
        fft_size = a["fft_size"] or 2 * (size - 1)
        bins = tables.mel_bins(a["num_filters"], a["sample_rate"], fft_size)
    else:
        fft_size, bins = 0, tables.linear_bins(a["num_filters"], a["sample_rate"], size)
    if max(bins) > size:
        raise fail(n, f"{a['num_filters']} filters at {a['sample_rate']:g} Hz need {max(bins)} spectrum bins, the "
                      f"input has {size}" + (f" (fft_size {fft_size})" if fft_size else ""))
    return [TensorType((a["num_filters"],), in_type(n, 0).dtype)]


def _filterbank(kind):
    def kernel(node, xs, state, nb):
        x = xs[0]
        a = node.attrs
        m = tables.filterbank_matrix(kind, x.shape[-1], a["sample_rate"], a["num_filters"],
                                     a.get("fft_size", 0), a["offset"])
        return [(x.astype(np.float64) @ m.T.astype(np.float64)).astype(np.float32)], state
    return kernel


register(OpDef(
    name="MelFilterBank", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"sample_rate": Attr("float", 16000.0, low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE),
           "num_filters": Attr("int", 40, low=1, high=MAX_FILTERS),
           "fft_size": Attr("int", 0, doc="FFT size used for bin placement; 0 = 2·(input length − 1)", low=0,
                            high=MAX_FFT),
           "offset": Attr("float", 0.0, low=-1e6, high=1e6)},
    infer=_infer_filterbank, kernel=_filterbank("mel"),
    doc="HTK mel triangles (1127·ln(1+f/700)) on integer bins floor(f·(fft_size+1)/sr), peak 1, support [lo, hi).",
))

register(OpDef(
    name="LinearFilterBank", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"sample_rate": Attr("float", 16000.0, low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE),
           "num_filters": Attr("int", 40, low=1, high=MAX_FILTERS), "offset": Attr("float", 0.0, low=-1e6, high=1e6)},
    infer=_infer_filterbank, kernel=_filterbank("linear"),
    doc="Linearly spaced triangles; bins floor(f·(K+1)/sr) with K the input length (ELL's quirk).",
))

def _infer_dct(n):
    size = _vector_len(n)
    if size > MAX_DCT:
        raise fail(n, f"input of {size} exceeds the DCT length limit {MAX_DCT}")
    return [TensorType((size,), in_type(n, 0).dtype)]


def _dct(node, xs, state, nb):
    x = xs[0]
    m = tables.dct_matrix(x.shape[-1], node.attrs["normalize"])
    return [(x.astype(np.float64) @ m.T.astype(np.float64)).astype(np.float32)], state


register(OpDef(
    name="DCT", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"normalize": Attr("bool", False, doc="orthonormal scaling instead of ELL's unnormalised form")},
    infer=_infer_dct, kernel=_dct,
    doc="DCT-II, X[k] = Σ x[n]·cos(π(n+½)k/N) (unnormalised, no factor 2, as ELL).",
))


def _infer_iir(n):
    b, a = n.attrs["b"], n.attrs["a"]
    if not 1 <= len(b) <= MAX_IIR_TAPS or len(a) > MAX_IIR_TAPS:
        raise fail(n, f"{len(b)} b and {len(a)} a coefficients; 1..{MAX_IIR_TAPS} b and at most {MAX_IIR_TAPS} a")
    return [TensorType((_vector_len(n),), in_type(n, 0).dtype)]


def _iir_state(n):
    return {"x_hist": StateVar((max(len(n.attrs["b"]) - 1, 0),)), "y_hist": StateVar((len(n.attrs["a"]),))}


def _iir(node, xs, state, nb):
    b = np.asarray(node.attrs["b"], dtype=np.float64)
    a = np.asarray(node.attrs["a"], dtype=np.float64)
    x = xs[0].astype(np.float64)
    xh = state["x_hist"].astype(np.float64)  # most recent last
    yh = state["y_hist"].astype(np.float64)
    ys = np.empty_like(x)
    for n in range(x.shape[-1]):
        xn = x[..., n]
        y = b[0] * xn
        for k in range(1, len(b)):
            y = y + b[k] * xh[..., -k]
        for k in range(1, len(a) + 1):
            y = y - a[k - 1] * yh[..., -k]
        ys[..., n] = y
        if len(b) > 1:
            xh = np.concatenate([xh[..., 1:], xn[..., None]], axis=-1)
        if len(a):
            yh = np.concatenate([yh[..., 1:], y[..., None]], axis=-1)
    return [ys.astype(np.float32)], {"x_hist": xh.astype(np.float32), "y_hist": yh.astype(np.float32)}


register(OpDef(
    name="IIR", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"featurizer"}),
    attrs={"b": Attr("floats", [1.0, -0.97], doc="feed-forward coefficients"),
           "a": Attr("floats", [], doc="feedback coefficients a1..an (y[n] -= Σ a_k·y[n-k])")},
    infer=_infer_iir, state=_iir_state, kernel=_iir,
    doc="IIR filter over the sample stream, state carried across ticks: y[n] = Σ b_k x[n-k] − Σ a_k y[n-k].",
))

@dataclass(frozen=True)
class VadParams:
    """The VAD's parameters with the defaults of ELL's add_vad.py / make_vad.py (ell-behaviour.md §2.1).

    The VAD node's attributes are made from this record, ``add_vad``'s options and ``kwsc vad-tune``'s flags from
    its tunable fields, and the C kernel's ``kwsc_vad_params`` from all fields but the sample rate.
    """

    sample_rate: float = param(16000.0, "audio sample rate (Hz)", low=MIN_SAMPLE_RATE, high=MAX_SAMPLE_RATE)
    frame_duration: float = param(0.032, "seconds of audio per VAD tick (one featurizer call)", low=1e-5, high=60.0)
    tau_up: float = param(1.54, "time constant (s) of the noise floor rising", tunable=True, low=1e-6, high=1e6)
    tau_down: float = param(0.074326, "time constant (s) of the noise floor falling", tunable=True, low=1e-6,
                            high=1e6)
    large_input: float = param(2.400160, "level/floor ratio above which the rise is slowed further", tunable=True,
                               low=0.0, high=1e6)
    gain_att: float = param(0.002885, "extra attenuation of the rise rate in that case", tunable=True, low=0.0,
                            high=1e6)
    threshold_up: float = param(3.552713, "level above threshold_up·floor switches to voice", tunable=True,
                                low=0.0, high=1e6)
    threshold_down: float = param(0.931252, "level below threshold_down·floor switches to no voice", tunable=True,
                                  low=0.0, high=1e6)
    level_threshold: float = param(0.007885, "minimum level needed to switch to voice", tunable=True, low=0.0,
                                   high=1e6)


VAD_DEFAULTS = {f.name: f.default for f in fields(VadParams)}

def _infer_vad(n):
    if _vector_len(n) > MAX_FFT:
        raise fail(n, f"input of {_vector_len(n)} exceeds the limit {MAX_FFT}")
    return [TensorType((1,), "int32")]


def _vad(node, xs, state, nb):
    a = node.attrs
    x = xs[0].astype(np.float32)
    n = x.shape[-1]
    w = tables.vad_weights(n).astype(np.float32)
    f32 = np.float32
    level = ((x * w).sum(axis=-1, dtype=np.float32) / f32(n)).astype(f32)
    frame = state["frame"]
    t = (frame.astype(f32) * f32(a["frame_duration"])).astype(f32)
    floor = state["floor"].astype(f32)
    dt = (t - state["last_time"]).astype(f32)
    d = (level - floor).astype(f32)
    tau_up, tau_down = f32(a["tau_up"]), f32(a["tau_down"])
    down = np.maximum(floor + (dt / tau_down) * d, level)
    big = np.minimum(floor + f32(a["gain_att"]) * (dt / tau_up) * d, level)
    up = np.minimum(floor + (dt / tau_up) * d, level)
    new_floor = np.where(level < floor, down, np.where(level > f32(a["large_input"]) * floor, big, up)).astype(f32)
    signal = state["signal"]
    signal = np.where((level > f32(a["threshold_up"]) * new_floor) & (level > f32(a["level_threshold"])), 1, signal)
    signal = np.where(level < f32(a["threshold_down"]) * new_floor, 0, signal).astype(np.int32)
    new_state = {"frame": frame + 1, "floor": new_floor, "last_time": t, "signal": signal}
    return [signal[..., None].astype(np.int32)], new_state


register(OpDef(
    name="VAD", inputs=["input"], outputs=["output"], category="dsp", traits=frozenset({"vad"}), params=VadParams,
    infer=_infer_vad, kernel=_vad,
    state=lambda n: {"frame": StateVar((), "int64", 0), "floor": StateVar((), "float32", 0.1),
                     "last_time": StateVar((), "float32", 0.0), "signal": StateVar((), "int32", 0)},
    doc="ELL's voice-activity detector: C-message-weighted level vs an asymmetric noise floor with hysteresis; "
        "outputs 1 while voice is present.",
))
