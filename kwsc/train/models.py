"""The seed's keyword-spotter networks: stacked GRU/LSTM, last time step, Linear, log_softmax.

Layer names follow the seed (``gru1``, ``gru2``, ``gru3``/``lstm1``…, ``hidden2keyword``), so state_dicts load
across. With 3 layers the last recurrent layer has K (= number of keywords) units, as in the seed. Optional
normalization statistics live in the model (buffers ``mean``/``std``) so an exported model needs nothing
downstream. Training runs batch-first (batch, time, F); streaming copies run seq-first for clean ONNX graphs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["KeywordSpotter", "build_model", "streaming_copy", "state_sizes"]


def state_sizes(hidden_units: int, num_layers: int, num_keywords: int) -> list[int]:
    """Hidden size of each recurrent layer (the seed's 3-layer variant ends with K units)."""
    return [num_keywords if (num_layers == 3 and i == 2) else hidden_units for i in range(num_layers)]


class KeywordSpotter(nn.Module):
    """GRU/LSTM keyword spotter; ``forward(x, states)`` → (log-probabilities of the last step, new states).

    Args:
        architecture: "GRU" or "LSTM".
        num_features: F, features per frame (80 for the tutorial featurizer).
        hidden_units: H of every recurrent layer (but the last one of a 3-layer model, which has K).
        num_keywords: K, number of classes.
        num_layers: 1, 2 or 3.
        dropout: dropout between layers and before the head (training only; nothing is exported).
    """

    def __init__(self, architecture: str, num_features: int, hidden_units: int, num_keywords: int,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.architecture = architecture
        self.num_features, self.hidden_units = int(num_features), int(hidden_units)
        self.num_keywords, self.num_layers = int(num_keywords), int(num_layers)
        cell = {"GRU": nn.GRU, "LSTM": nn.LSTM}[architecture]
        self.sizes = state_sizes(self.hidden_units, self.num_layers, self.num_keywords)
        self.layer_names = [f"{architecture.lower()}{i + 1}" for i in range(self.num_layers)]
        in_size = self.num_features
        for name, size in zip(self.layer_names, self.sizes):
            setattr(self, name, cell(in_size, size, batch_first=True))
            in_size = size
        self.hidden2keyword = nn.Linear(in_size, self.num_keywords)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.register_buffer("mean", torch.zeros(self.num_features))
        self.register_buffer("std", torch.ones(self.num_features))
        self.register_buffer("normalize", torch.zeros((), dtype=torch.bool))

    @property
    def layers(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.layer_names]

    def set_normalization(self, mean, std) -> None:
        """Build (x − mean)/std into the model."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.normalize.fill_(True)

    def name(self) -> str:
        """The seed's description, e.g. "2 layer GRU 128"."""
        return f"{self.num_layers} layer {self.architecture} {self.hidden_units}"

    def forward(self, x: torch.Tensor, states: list | None = None, last_frames: int = 1):
        """Log-probabilities at the last step (B, K), or at each of the last ``last_frames`` steps (B, n, K)."""
        if bool(self.normalize):
            x = (x - self.mean) / self.std
        new_states = []
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, state = layer(x, None if states is None else states[i])
            new_states.append(state)
        if last_frames > 1:  # training only (batch-first): the head on every one of the last frames
            return torch.log_softmax(self.hidden2keyword(self.dropout(x[:, -last_frames:])), dim=2), new_states
        last = x[:, -1] if layer.batch_first else x[-1]
        return torch.log_softmax(self.hidden2keyword(self.dropout(last)), dim=1), new_states


def build_model(config: dict, num_features: int, num_keywords: int, window: int | None = None):
    """The network a training config describes (a window model, kwsc/train/models_conv.py, for DSCNN, TCResNet,
    BCResNet and CRNN: ``window`` frames per input)."""
    m = config["model"]
    if m["architecture"] not in ("GRU", "LSTM"):
        from kwsc.train.models_conv import build_window_model
        if window is None:
            raise ValueError(f"a {m['architecture']} model needs the window length")
        return build_window_model(m["architecture"], num_features, num_keywords, window, int(m["hidden_units"]),
                                  float(m.get("dropout") or 0.0))
    return KeywordSpotter(m["architecture"], num_features, int(m["hidden_units"]), num_keywords,
                          int(m["num_layers"]), float(m.get("dropout") or 0.0))


def streaming_copy(model: KeywordSpotter, fold_normalization: bool = True) -> KeywordSpotter:
    """A seq-first eval-mode CPU copy for export; normalization folded into the first layer's input weights.

    Folding is exact algebra: W·((x−m)/s) + b = (W/s)·x + (b − W·(m/s)) for every gate (the GRU's candidate gate
    also adds its input bias outside the reset product), so the exported graph has the seed's shape (no Sub/Div).
    """
    clone = copy.deepcopy(model).cpu().float().eval()
    for layer in clone.layers:
        layer.batch_first = False
    if fold_normalization and bool(clone.normalize):
        first = clone.layers[0]
        with torch.no_grad():
            w = first.weight_ih_l0.double()
            mean, std = clone.mean.double(), clone.std.double()
            first.bias_ih_l0.copy_((first.bias_ih_l0.double() - w @ (mean / std)).float())
            first.weight_ih_l0.copy_((w / std[None, :]).float())
        clone.normalize.fill_(False)
    return clone
