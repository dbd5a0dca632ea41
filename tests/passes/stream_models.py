"""Small convolutional keyword spotters in torch, exported to ONNX, for the stream pass's tests.

The architectures people deploy, shrunk (a few channels, a short window) so a test runs in seconds:
cnn-trad-fpool3 (Sainath & Parada 2015; no time padding: it streams frame by frame), DS-CNN (Hello Edge; "same"
padding, and a variant with no padding on time that streams frame by frame), TC-ResNet (1-D convolutions over
time with the features as channels, input [1, F, T]), BC-ResNet (frequency-wise and dilated temporal depthwise
convolutions, broadcast residual) and a CRNN (convolution, then a GRU over the window).
Weights are seeded; BatchNormalization layers get random statistics so folding them is tested too.
``python -m tests.passes.stream_models OUTDIR NAME...`` exports with the dynamo exporter in its own process.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

__all__ = ["MODELS", "build", "export", "export_dynamo_background"]

FEATURES = 10
# name → (input shape, classes)
MODELS = {
    "cnn_trad_fpool3": ((1, 1, 24, FEATURES), 4),
    "ds_cnn": ((1, 1, 16, FEATURES), 4),
    "ds_cnn_valid_time": ((1, 1, 16, FEATURES), 4),
    "tc_resnet": ((1, FEATURES, 20), 4),
    "bc_resnet": ((1, 1, 16, FEATURES), 4),
    "crnn": ((1, 1, 16, FEATURES), 4),
}


def _randomize_batchnorm(module, generator) -> None:
    import torch

    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)


def build(name: str, seed: int = 0):
    """The torch module ``name`` (eval mode, seeded weights)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    shape, classes = MODELS[name]

    class CnnTradFpool3(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, (8, 4))  # no padding anywhere: every frame is real data
            self.pool = nn.MaxPool2d((1, 3))  # over frequency only
            self.conv2 = nn.Conv2d(6, 6, (4, 2))
            self.fc = nn.Linear(6 * 14 * 1, classes)

        def forward(self, x):
            x = (x - 0.5) * 2.0  # input normalisation: binary ops with constants, frame by frame
            y = self.pool(torch.relu(self.conv1(x)))
            y = torch.relu(self.conv2(y))
            return self.fc(y.flatten(1))

    class DsCnn(nn.Module):
        def __init__(self, time_pad: bool):
            super().__init__()
            t = 1 if time_pad else 0
            self.conv = nn.Conv2d(1, 8, (5, 3), stride=(2, 2), padding=(2 * t, 1), bias=False)
            self.bn = nn.BatchNorm2d(8)
            blocks = []
            for _ in range(2):
                blocks += [nn.Conv2d(8, 8, 3, padding=(t, 1), groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                           nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()]
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(8, classes)

        def forward(self, x):
            y = self.blocks(torch.relu(self.bn(self.conv(x))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    class TcResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(FEATURES, 8, 3, padding=1, bias=False)
            self.c1 = nn.Conv1d(8, 12, 9, stride=2, padding=4, bias=False)
            self.b1 = nn.BatchNorm1d(12)
            self.c2 = nn.Conv1d(12, 12, 9, padding=4, bias=False)
            self.b2 = nn.BatchNorm1d(12)
            self.short = nn.Conv1d(8, 12, 1, stride=2, bias=False)
            self.bs = nn.BatchNorm1d(12)
            self.fc = nn.Linear(12, classes)

        def forward(self, x):
            y = self.conv(x)
            z = self.b2(self.c2(torch.relu(self.b1(self.c1(y)))))
            y = torch.relu(z + self.bs(self.short(y)))
            return self.fc(y.mean(dim=2))

    class BcResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 5, stride=(1, 2), padding=2)
            self.freq = nn.Conv2d(8, 8, (1, 3), padding=(0, 1), groups=8, bias=False)  # along frequency
            self.fbn = nn.BatchNorm2d(8)
            self.temporal = nn.Conv2d(8, 8, (3, 1), padding=(2, 0), dilation=(2, 1), groups=8, bias=False)
            self.tbn = nn.BatchNorm2d(8)
            self.point = nn.Conv2d(8, 8, 1, bias=False)
            self.head = nn.Conv2d(8, classes, 1)

        def forward(self, x):
            x = self.conv(x)
            f = self.fbn(self.freq(x))  # [1, 8, T, F']
            t = f.mean(dim=3, keepdim=True)  # frequency averaged away: [1, 8, T, 1]
            t = self.tbn(self.temporal(t))
            t = self.point(t * torch.sigmoid(t))  # swish
            y = torch.relu(x + f + t)  # broadcast residual over frequency
            return self.head(y).mean(dim=(2, 3))

    class Crnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, (3, 4), stride=(1, 2))
            self.gru = nn.GRU(4 * 4, 8)
            self.fc = nn.Linear(8, classes)

        def forward(self, x):
            y = torch.relu(self.conv(x))  # [1, 4, T - 2, 4]
            y = y.permute(2, 0, 1, 3).reshape(y.shape[2], 1, -1)  # [T', 1, 16]: time, batch, features
            out, _ = self.gru(y)
            return self.fc(out[-1])

    module = {"cnn_trad_fpool3": CnnTradFpool3, "ds_cnn": lambda: DsCnn(True),
              "ds_cnn_valid_time": lambda: DsCnn(False), "tc_resnet": TcResNet, "bc_resnet": BcResNet,
              "crnn": Crnn}[name]()
    _randomize_batchnorm(module, torch.Generator().manual_seed(seed + 1))
    return module.eval()


def export(name: str, path: Path, exporter: str = "legacy"):
    """Export ``name`` to ``path``; returns (input array, torch's output) for the window."""
    import numpy as np
    import torch

    module = build(name)
    shape, _ = MODELS[name]
    x = torch.from_numpy(np.random.default_rng(3).standard_normal(shape).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=exporter == "dynamo", opset_version=17)
    with torch.no_grad():
        return x.numpy(), module(x).numpy()


def export_dynamo_background(outdir: Path, names: list[str]) -> subprocess.Popen:
    """Start the dynamo exports in a subprocess (slow: let other tests run meanwhile)."""
    return subprocess.Popen([sys.executable, "-m", "tests.passes.stream_models", str(outdir), *names],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for model_name in sys.argv[2:]:
        export(model_name, out / f"{model_name}_dynamo.onnx", "dynamo")
