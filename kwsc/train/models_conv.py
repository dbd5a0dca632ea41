"""Window keyword spotters: DS-CNN, TC-ResNet, BC-ResNet and a CRNN that read a whole window of T frames once.

Every model takes the training rows (B, T, F) (raw log-mel; the normalization statistics are buffers of the
model, applied first), moves them into its own layout — ``[B, 1, T, F]`` for the 2-D models, ``[B, F, T]`` for
TC-ResNet (features as channels) — and returns the log-probabilities of the window (B, K). The exported ONNX
model reads that layout directly (``export_window_onnx``), one window per call.

Built to stream: no convolution pads or strides along time. Each convolution is "valid" in time, so an output
frame depends only on input frames at or before it, and the output at the window's end equals what a per-tick
model with ring buffers computes — the ``stream`` pass's contract (issue 15). Residual branches that are shorter
than their input after a valid convolution add the input's *last* frames (a leading crop along time, which is
the identity per tick). The class is read once per window: a global average over the frames left (and the
frequency bins), or the last step of the CRNN's GRU. Frequency is padded and strided freely.

The architectures follow their papers, adapted to 80 log-mel features at a 32 ms hop and the rule above:

* ``DSCNN`` (Zhang et al. 2017, "Hello Edge"): a 3×5 convolution (frequency stride 4), then four depthwise
  separable blocks (3×3 depthwise, the first with frequency stride 2; pointwise), BatchNorm + ReLU after each,
  global average pool, Linear (80 mel bins → 10, as Hello Edge's 10 MFCCs).
  Width ``hidden_units`` (default 64) channels.
* ``TCResNet`` (Choi et al. 2019): 1-D convolutions over time with the F features as input channels; a width-3
  stem of ``hidden_units`` (default 16) channels and three residual blocks of 1.5×, 2× and 3× that width
  (two width-5 convolutions each, a 1×1 projection on the shortcut), time strides dropped (see above).
* ``BCResNet`` (Kim et al. 2021, broadcasted residual learning): frequency-depthwise convolutions on the 2-D map
  and time-depthwise convolutions on its frequency average, broadcast back over frequency; stem 5×5 (frequency
  stride 4 for ≥ 64 features — 80 mel bins become the paper's 20 after its 40 mel / stride 2 —, else 2), four stages of two blocks with widths 1, 1.5, 2, 2.5 × ``hidden_units`` (default 16 → BC-ResNet-2
  widths; 8 gives BC-ResNet-1), time dilations 1, 1, 2, 2; plain BatchNorm where the paper has SubSpectralNorm.
* ``CRNN``: two 2-D convolutions (frequency strides 4 and 2, 16 channels) then a GRU of ``hidden_units``
  (default 64) units over the frames left; its last step feeds the Linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from kwsc.errors import InputError
from kwsc.train.config import DEFAULT_WIDTH, WINDOW_ARCHITECTURES as CONV_ARCHITECTURES

__all__ = ["CONV_ARCHITECTURES", "DEFAULT_WIDTH", "WindowKeywordSpotter", "DSCNN", "TCResNet", "BCResNet", "CRNN",
           "build_window_model"]



def _bn_relu(channels: int, two_d: bool = True) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels) if two_d else nn.BatchNorm1d(channels), nn.ReLU()]


class WindowKeywordSpotter(nn.Module):
    """Base: normalization buffers, layout, ``forward(x (B,T,F)) → (log-probabilities (B,K), None)``.

    Subclasses set ``layout`` ("NCTF": [B,1,T,F]; "NFT": [B,F,T]), ``receptive_field`` (frames one output frame
    sees) and implement ``classify(x_in_layout)`` → logits (B, K).
    """

    layout = "NCTF"
    receptive_field = 1

    def __init__(self, architecture: str, num_features: int, hidden_units: int, num_keywords: int,
                 window: int, dropout: float = 0.0):
        super().__init__()
        self.architecture = architecture
        self.num_features, self.hidden_units = int(num_features), int(hidden_units)
        self.num_keywords, self.window = int(num_keywords), int(window)
        self.num_layers = 1
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.register_buffer("mean", torch.zeros(self.num_features))
        self.register_buffer("std", torch.ones(self.num_features))
        self.register_buffer("normalize", torch.zeros((), dtype=torch.bool))

    def _check_window(self) -> None:
        if self.window < self.receptive_field:
            raise InputError(f"{self.architecture}: a window of {self.window} frames is shorter than the model's "
                             f"receptive field ({self.receptive_field} frames); use a longer window or a smaller "
                             "model")

    def set_normalization(self, mean, std) -> None:
        """Build (x − mean)/std into the model."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.normalize.fill_(True)

    def name(self) -> str:
        return f"{self.architecture} {self.hidden_units} (window {self.window} frames)"

    @property
    def input_shape(self) -> list[int]:
        """The exported model's input shape (one window)."""
        return [1, 1, self.window, self.num_features] if self.layout == "NCTF" else [1, self.num_features,
                                                                                        self.window]

    def to_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Training rows (B, T, F) → the model's input layout."""
        return x.unsqueeze(1) if self.layout == "NCTF" else x.transpose(1, 2)

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        """(x − mean)/std on the model's layout (Sub and Div by constants in the export)."""
        if not bool(self.normalize):
            return x
        shape = (1, 1, 1, -1) if self.layout == "NCTF" else (1, -1, 1)
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)

    def fold_normalization(self) -> bool:
        """Fold (x − mean)/std into the first convolution when that is exact (it pads nothing); True if folded."""
        return False

    def window_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, K) of windows already in the model's layout (what the ONNX model computes)."""
        return torch.log_softmax(self.classify(self.normalized(x)), dim=1)

    def forward(self, x: torch.Tensor, states=None, last_frames: int = 1):
        """Rows (B, T, F) → (log-probabilities (B, K), None); the trainer's interface (``states`` unused)."""
        if x.shape[1] < self.receptive_field:
            raise InputError(f"{self.architecture}: {x.shape[1]} frames are fewer than the receptive field "
                             f"({self.receptive_field})")
        return self.window_forward(self.to_layout(x)), None

    def classify(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def frame_map(self, x: torch.Tensor) -> torch.Tensor | None:
        """The body's output before the time pooling, [B, C, T'] (frequency averaged), for the models whose class
        is a global average over it; None for the others (the CRNN)."""
        return None

    def pooled_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits (…, K) from the pooled features (…, C)."""
        return self.head(self.dropout(pooled))

    def tick_log_probs(self, rows: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, L − window + 1, K) of every window of ``window`` frames in rows (B, L, F): what
        the streamed model says at each tick (``stream`` pass) once ``window − 1`` frames are in.

        Valid-in-time bodies with a global average: the body runs once over the whole sequence and a moving
        average of the window's ``window − receptive_field + 1`` body frames replaces the pooling (exact, and
        about ``L / window`` windows' work instead of one per tick); other models run every window."""
        x = self.normalized(self.to_layout(rows))
        body = self.frame_map(x)
        if body is None:
            windows = rows.unfold(1, self.window, 1)  # (B, ticks, F, window)
            b, n = windows.shape[:2]
            flat = windows.permute(0, 1, 3, 2).reshape(b * n, self.window, rows.shape[2])
            return self.window_forward(self.to_layout(flat)).reshape(b, n, -1)
        frames = self.window - self.receptive_field + 1
        pooled = nn.functional.avg_pool1d(body, frames, stride=1)  # [B, C, ticks]
        return torch.log_softmax(self.pooled_logits(pooled.transpose(1, 2)), dim=2)


class DSCNN(WindowKeywordSpotter):
    """Depthwise-separable CNN: stem 3×5 (freq stride 4), ``blocks`` × (dw 3×3 + pw), GAP, Linear."""

    def __init__(self, num_features, hidden_units, num_keywords, window, dropout=0.0, blocks: int = 4):
        super().__init__("DSCNN", num_features, hidden_units, num_keywords, window, dropout)
        c = self.hidden_units
        layers = [nn.Conv2d(1, c, (3, 5), stride=(1, 4), padding=(0, 2), bias=False), *_bn_relu(c)]
        for i in range(blocks):
            stride = (1, 2) if i == 0 else (1, 1)
            layers += [nn.Conv2d(c, c, 3, stride=stride, padding=(0, 1), groups=c, bias=False), *_bn_relu(c),
                       nn.Conv2d(c, c, 1, bias=False), *_bn_relu(c)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, self.num_keywords)
        self.receptive_field = 3 + 2 * blocks
        self._check_window()

    def frame_map(self, x):
        return self.body(x).mean(dim=3)

    def classify(self, x):  # one GlobalAveragePool in the export (the stream pass keeps a running buffer for it)
        return self.pooled_logits(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))


class _TCBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.shortcut = (nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), *_bn_relu(c_out, two_d=False))
                         if c_in != c_out else nn.Identity())
        self.crop = 2 * (kernel - 1)

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.shortcut(x)[:, :, self.crop:])


class TCResNet(WindowKeywordSpotter):
    """Temporal convolution ResNet (TC-ResNet8 shape): features as channels, 1-D convolutions over time."""

    layout = "NFT"

    def __init__(self, num_features, hidden_units, num_keywords, window, dropout=0.0, kernel: int = 5):
        super().__init__("TCResNet", num_features, hidden_units, num_keywords, window, dropout)
        c = self.hidden_units
        widths = [c, (3 * c) // 2, 2 * c, 3 * c]
        self.stem = nn.Conv1d(self.num_features, widths[0], 3, bias=False)
        self.blocks = nn.Sequential(*[_TCBlock(widths[i], widths[i + 1], kernel) for i in range(3)])
        self.head = nn.Linear(widths[-1], self.num_keywords)
        self.receptive_field = 3 + 3 * 2 * (kernel - 1)
        self._check_window()

    def fold_normalization(self) -> bool:
        """W·((x − m)/s) = (W/s)·x − Σ W·m/s: exact, the stem pads nothing (done on export copies)."""
        if not bool(self.normalize):
            return False
        stem = self.stem
        folded = nn.Conv1d(stem.in_channels, stem.out_channels, stem.kernel_size, bias=True)
        with torch.no_grad():
            w = stem.weight.double() / self.std.double()[None, :, None]
            folded.weight.copy_(w.float())
            bias = -(w * self.mean.double()[None, :, None]).sum(dim=(1, 2))
            folded.bias.copy_((bias + (stem.bias.double() if stem.bias is not None else 0)).float())
        self.stem = folded
        self.normalize.fill_(False)
        return True

    def frame_map(self, x):
        return self.blocks(self.stem(x))

    def classify(self, x):
        return self.pooled_logits(self.frame_map(x).mean(dim=2))


class _BCBlock(nn.Module):
    """Broadcasted residual block on [B, C, T, F]: f2 = freq-depthwise conv on the map; f1 = time-depthwise
    conv (dilated, valid) + SiLU + 1×1 on the frequency average, broadcast back; normal blocks add the input."""

    def __init__(self, c_in: int, c_out: int, freq_stride: int, dilation: int, dropout: float):
        super().__init__()
        self.transition = c_in != c_out or freq_stride != 1
        pre = [nn.Conv2d(c_in, c_out, 1, bias=False), *_bn_relu(c_out)] if self.transition else []
        self.pre = nn.Sequential(*pre)
        self.f2 = nn.Sequential(nn.Conv2d(c_out, c_out, (1, 3), stride=(1, freq_stride), padding=(0, 1),
                                          groups=c_out, bias=False), nn.BatchNorm2d(c_out))
        self.f1 = nn.Sequential(nn.Conv2d(c_out, c_out, (3, 1), dilation=(dilation, 1), groups=c_out, bias=False),
                                nn.BatchNorm2d(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 1, bias=False),
                                nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        self.crop = 2 * dilation

    def forward(self, x):
        y = self.f2(self.pre(x))
        aux = self.f1(y.mean(dim=3, keepdim=True))
        out = y[:, :, self.crop:] + aux
        if not self.transition:
            out = out + x[:, :, self.crop:]
        return torch.relu(out)


class BCResNet(WindowKeywordSpotter):
    """BC-ResNet: stem, four stages of broadcasted residual blocks, freq-depthwise head, GAP, Linear."""

    STAGES = ((1.0, 1, 1), (1.5, 2, 1), (2.0, 2, 2), (2.5, 1, 2))  # (width ×, freq stride, time dilation)
    BLOCKS = 2

    def __init__(self, num_features, hidden_units, num_keywords, window, dropout=0.0, stem_stride: int | None = None):
        super().__init__("BCResNet", num_features, hidden_units, num_keywords, window, dropout)
        c = self.hidden_units
        if stem_stride is None:  # the paper's maps: 40 mel bins / 2 = 20 after the stem, so 80 mel features / 4
            stem_stride = 4 if self.num_features >= 64 else 2
        self.stem = nn.Sequential(nn.Conv2d(1, 2 * c, 5, stride=(1, stem_stride), padding=(0, 2), bias=False),
                                  *_bn_relu(2 * c))
        blocks, c_in, rf = [], 2 * c, 5
        for scale, stride, dilation in self.STAGES:
            c_out = int(round(c * scale))
            for i in range(self.BLOCKS):
                blocks.append(_BCBlock(c_in, c_out, stride if i == 0 else 1, dilation, 0.1 if dropout else 0.0))
                c_in, rf = c_out, rf + 2 * dilation
        self.blocks = nn.Sequential(*blocks)
        self.receptive_field = rf
        self._check_window()
        bins = (self.num_features - 1) // stem_stride + 1  # frequency bins left (stem pad 2, kernel 5; 5 for 80 mel)
        for _, stride, _ in self.STAGES:
            bins = (bins - 1) // stride + 1  # each stage's first frequency-depthwise 1×3, pad 1
        # the paper's classifier: a depthwise convolution over all the bins left, unpadded — each bin weighted by
        # where it is (the body's convolutions are shift-invariant in frequency and its BatchNorm is not the
        # paper's SubSpectralNorm, so this is the only place frequency *position* is seen) —, then 1×1 to 4 × W
        self.tail = nn.Sequential(nn.Conv2d(c_in, c_in, (1, bins), groups=c_in, bias=False),
                                  nn.Conv2d(c_in, 4 * c, 1, bias=False), *_bn_relu(4 * c))
        self.head = nn.Linear(4 * c, self.num_keywords)

    def frame_map(self, x):
        return self.tail(self.blocks(self.stem(x))).mean(dim=3)

    def classify(self, x):
        x = self.tail(self.blocks(self.stem(x)))
        return self.pooled_logits(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class CRNN(WindowKeywordSpotter):
    """Two convolutions (freq strides 4 and 2) then a GRU over the frames left; its last step → Linear."""

    CHANNELS = 16

    def __init__(self, num_features, hidden_units, num_keywords, window, dropout=0.0):
        super().__init__("CRNN", num_features, hidden_units, num_keywords, window, dropout)
        c = self.CHANNELS
        self.conv = nn.Sequential(nn.Conv2d(1, c, (3, 5), stride=(1, 4), padding=(0, 2), bias=False), *_bn_relu(c),
                                  nn.Conv2d(c, c, 3, stride=(1, 2), padding=(0, 1), bias=False), *_bn_relu(c))
        freq = (self.num_features + 4 - 5) // 4 + 1
        freq = (freq + 2 - 3) // 2 + 1
        self.gru = nn.GRU(c * freq, self.hidden_units)
        self.head = nn.Linear(self.hidden_units, self.num_keywords)
        self.receptive_field = 5
        self._check_window()

    def classify(self, x):
        x = self.conv(x)  # [B, C, T', F']
        b, c, t, f = x.shape
        seq = x.permute(2, 0, 1, 3).reshape(t, b, c * f)  # seq-first for a plain ONNX GRU
        out, _ = self.gru(seq)
        return self.head(self.dropout(out[-1]))


_CLASSES = {"DSCNN": DSCNN, "TCResNet": TCResNet, "BCResNet": BCResNet, "CRNN": CRNN}


def build_window_model(architecture: str, num_features: int, num_keywords: int, window: int,
                       hidden_units: int | None = None, dropout: float = 0.0) -> WindowKeywordSpotter:
    """A window model of ``architecture`` (one of CONV_ARCHITECTURES) for windows of ``window`` frames."""
    width = int(hidden_units or DEFAULT_WIDTH[architecture])
    return _CLASSES[architecture](num_features, width, num_keywords, window, dropout)
