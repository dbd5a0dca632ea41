"""Graphs the .ell emitter and importer tests share: the tutorial featurizer and GRU keyword spotters.

``tutorial_featurizer`` is kwsc's featurizer frontend run with the seed's tutorial command line;
``hand_built_featurizer`` is ell-behaviour.md §1.2 written node for node with the IR builder, so the
tests can check that both are written as the same ELL nodes.
"""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify

__all__ = ["tutorial_featurizer", "hand_built_featurizer", "gru_classifier", "every_op_graph"]

TUTORIAL_OPTIONS = {"sample_rate": 16000, "window_size": 512, "input_buffer_size": 512, "hamming_window": True,
                    "filterbank_type": "mel", "filterbank_size": 80, "filterbank_nfft": 512, "nfft": 512,
                    "log": True, "auto_scale": True}


def tutorial_featurizer() -> Graph:
    """``kwsc make-featurizer --sample_rate 16000 --window_size 512 --input_buffer_size 512 --hamming_window
    --filterbank_type mel --filterbank_size 80 --filterbank_nfft 512 --nfft 512 --log --auto_scale``."""
    from kwsc.frontends.featurizer import make_featurizer

    return make_featurizer(**TUTORIAL_OPTIONS)


def hand_built_featurizer() -> Graph:
    """ELL's tutorial featurizer: 512 samples → Buffer 512 → Hamming → FFT 512 → 80 mel → ln(x + 1)."""
    g = Graph("featurizer")
    x = g.add_input([512])
    x.producer.metadata["auto_scale"] = "True"
    window = g.add("Buffer", [x], {"window_size": 512}, metadata={"window_size": "512"}).output
    hamming = g.op1("Window", window, kind="hamming", symmetric=True)
    spectrum = g.op1("FFT", hamming, nfft=512)
    mel = g.add("MelFilterBank", [spectrum], {"sample_rate": 16000.0, "num_filters": 80, "fft_size": 512},
                metadata={"sample_rate": "16000", "filterbank_size": "80", "filterbank_type": "mel",
                          "num_filters": "80"}).output
    shifted = g.op1("Add", mel, g.add_constant(np.ones(80, dtype=np.float32), name="log_delta"))
    g.add_output(g.add("Log", [shifted], metadata={"log": "true"}).output)
    g.metadata.update({"sample_rate": 16000, "input_size": 512, "window_size": 512, "filterbank_type": "mel",
                       "filterbank_size": 80, "auto_scale": True, "log_delta": 1.0})
    return verify(g)


def gru_classifier(*, vad: bool = False, seed: int = 0, hidden: int = 128, layers: int = 2, classes: int = 12,
                   features: int = 80) -> Graph:
    """Input [80] → GRU × layers (explicit random weights) → Dense(classes) → LogSoftmax; optional VAD triggers."""
    rng = np.random.default_rng(seed)
    g = Graph("classifier")
    x = g.add_input([features])
    trigger = g.op1("VAD", x, sample_rate=16000.0, frame_duration=0.032) if vad else None
    h = x
    scale = 1.0 / np.sqrt(hidden)
    for _ in range(layers):
        shapes = [(3 * hidden, h.type.size), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
        weights = [g.add_constant(rng.uniform(-scale, scale, s).astype(np.float32)) for s in shapes]
        h = g.add("GRU", [h, trigger, *weights], {"hidden_size": hidden}).output
    dense_w = g.add_constant(rng.uniform(-0.5, 0.5, (classes, hidden)).astype(np.float32))
    dense_b = g.add_constant(rng.uniform(-0.1, 0.1, classes).astype(np.float32))
    logits = g.op1("Dense", h, dense_w, dense_b)
    g.add_output(g.op1("LogSoftmax", logits))
    return verify(g)


def every_op_graph(seed: int = 0) -> Graph:
    """One graph touching every other op the emitter maps (IIR, linear bank, DCT, LSTM, RNN, casts, …)."""
    rng = np.random.default_rng(seed)
    g = Graph("every_op")
    x = g.add_input([64])
    emphasized = g.add("IIR", [x], {"b": [1.0, -0.97], "a": []}, metadata={"iir": "true"}).output
    window = g.op1("Window", g.op1("Buffer", emphasized, window_size=128))
    power = g.op1("Square", g.op1("FFT", window))
    power = g.op1("Div", power, g.add_constant(np.float32(128.0)))
    linear = g.op1("LinearFilterBank", power, sample_rate=8000.0, num_filters=16)
    cepstrum = g.op1("DCT", g.op1("Log", g.op1("Add", linear, g.add_constant(np.ones(16, np.float32)))))
    mixed = g.op1("Sub", g.op1("Mul", cepstrum, g.add_constant(np.full(16, 0.1, np.float32))),
                  g.op1("Sqrt", g.op1("Abs", cepstrum)))
    squashed = g.op1("Tanh", mixed)
    hidden = 8

    def weights(gates, inputs):
        shapes = [(gates * hidden, inputs), (gates * hidden, hidden), (gates * hidden,), (gates * hidden,)]
        return [g.add_constant(rng.uniform(-0.4, 0.4, s).astype(np.float32)) for s in shapes]

    lstm = g.add("LSTM", [squashed, None, *weights(4, 16)], {"hidden_size": hidden})
    rnn = g.add("RNN", [lstm.outputs[0], None, *weights(1, hidden)], {"hidden_size": hidden}).output
    cell = g.op1("Sigmoid", lstm.outputs[1])
    both = g.op1("Add", g.op1("Exp", g.op1("Mul", rnn, cell)), g.op1("Reshape", rnn, shape=[hidden]))
    g.add_output(g.op1("Softmax", g.op1("Dense", both, g.add_constant(rng.standard_normal((5, hidden)).astype(np.float32)))))
    g.add_output(g.op1("Cast", g.op1("Cast", g.op1("Reshape", mixed, shape=[4, 4]), dtype="int32"), dtype="float32"),
                 name="ints")
    return verify(g)
