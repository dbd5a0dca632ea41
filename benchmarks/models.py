"""The reference models the benchmarks measure: the tutorial featurizer and a GRU 2×128 + dense(12) classifier."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify


def tutorial_featurizer() -> Graph:
    """512 samples → 80 log-mel (ELL's tutorial options), via make_featurizer."""
    from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer

    return make_featurizer(FeaturizerOptions(sample_rate=16000, window_size=512, input_buffer_size=512,
                                             hamming_window=True, filterbank_type="mel", filterbank_size=80,
                                             filterbank_nfft=512, nfft=512, log=True, auto_scale=True))


def gru_classifier(hidden: int = 128, layers: int = 2, features: int = 80, classes: int = 12, seed: int = 0,
                   vad: bool = False) -> Graph:
    """Input[F] → GRU×layers → Dense(classes) → LogSoftmax, seeded random weights (the scale of a trained model)."""
    rng = np.random.default_rng(seed)
    g = Graph("gru_classifier")
    x = g.add_input([features])
    trigger = g.op1("VAD", x) if vad else None
    h, size = x, features
    for layer in range(layers):
        k = 1.0 / np.sqrt(hidden)
        w = g.add_constant(rng.uniform(-k, k, (3 * hidden, size)).astype(np.float32), f"w{layer}")
        r = g.add_constant(rng.uniform(-k, k, (3 * hidden, hidden)).astype(np.float32), f"r{layer}")
        bi = g.add_constant(rng.uniform(-k, k, 3 * hidden).astype(np.float32), f"bi{layer}")
        bh = g.add_constant(rng.uniform(-k, k, 3 * hidden).astype(np.float32), f"bh{layer}")
        h = g.add("GRU", [h, trigger, w, r, bi, bh], {"hidden_size": hidden}, name=f"gru{layer}").output
        size = hidden
    w = g.add_constant(rng.uniform(-0.1, 0.1, (classes, hidden)).astype(np.float32), "fc_w")
    b = g.add_constant(np.zeros(classes, np.float32), "fc_b")
    g.add_output(g.op1("LogSoftmax", g.op1("Dense", h, w, b)))
    return verify(g)


def torch_gru(graph: Graph):
    """The same classifier as PyTorch modules (gate blocks reordered z,r,n → r,z,n)."""
    import torch

    grus = graph.find("GRU")
    layers = []
    for node in grus:
        w, r, bi, bh = (node.inputs[i].producer.attrs["value"] for i in range(2, 6))
        hidden = node.attrs["hidden_size"]
        m = torch.nn.GRU(w.shape[1], hidden)
        order = np.r_[hidden:2 * hidden, 0:hidden, 2 * hidden:3 * hidden]
        with torch.no_grad():
            m.weight_ih_l0.copy_(torch.from_numpy(w[order]))
            m.weight_hh_l0.copy_(torch.from_numpy(r[order]))
            m.bias_ih_l0.copy_(torch.from_numpy(bi[order]))
            m.bias_hh_l0.copy_(torch.from_numpy(bh[order]))
        layers.append(m)
    dense = graph.find("Dense")[0]
    fc = torch.nn.Linear(dense.inputs[1].shape[1], dense.inputs[1].shape[0])
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(dense.inputs[1].producer.attrs["value"]))
        fc.bias.copy_(torch.from_numpy(dense.inputs[2].producer.attrs["value"]))
    return layers, fc
