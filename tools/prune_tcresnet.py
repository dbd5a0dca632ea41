"""Narrow a trained TC-ResNet to a smaller width by dropping its least important channels (a start for fine-tuning).

    python tools/prune_tcresnet.py W20/TCResNet20KeywordSpotter.pt 19 W19/TCResNet19KeywordSpotter.pt
    kwsc train … --architecture TCResNet --hidden_units 19 --init_weights W19/TCResNet19KeywordSpotter.pt

Each layer keeps the channels with the largest |BatchNorm scale| (a block's output channels by its second
convolution's and its shortcut's scales together, since the two are added); the convolutions, BatchNorms and the
head are sliced to match. The network's function changes (what was dropped is gone), so fine-tune after.
"""

from __future__ import annotations

import sys


def prune(state: dict, width: int) -> dict:
    """The state_dict of TC-ResNet ``width`` from one of a wider TC-ResNet (same feature count and classes)."""
    import torch

    old = int(state["stem.weight"].shape[0])
    widths_old = [old, (3 * old) // 2, 2 * old, 3 * old]
    widths_new = [width, (3 * width) // 2, 2 * width, 3 * width]
    out = dict(state)

    def keep(scores: torch.Tensor, n: int) -> torch.Tensor:
        return torch.sort(torch.argsort(scores.abs(), descending=True)[:n]).values

    def take_bn(prefix: str, idx: torch.Tensor) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{name}"] = state[f"{prefix}.{name}"][idx].clone()

    # the stem has no BatchNorm of its own: its output is block 0's input; score it by the first block's use of it
    first = state["blocks.0.conv1.weight"].abs().sum(dim=(0, 2)) + state["blocks.0.shortcut.0.weight"].abs().sum(
        dim=(0, 2))
    idx_in = keep(first, widths_new[0])
    out["stem.weight"] = state["stem.weight"][idx_in].clone()
    if "stem.bias" in state:
        out["stem.bias"] = state["stem.bias"][idx_in].clone()
    for b in range(3):
        p = f"blocks.{b}"
        mid = keep(state[f"{p}.bn1.weight"], widths_new[b + 1])
        outs = keep(state[f"{p}.bn2.weight"].abs() + state[f"{p}.shortcut.1.weight"].abs(), widths_new[b + 1])
        out[f"{p}.conv1.weight"] = state[f"{p}.conv1.weight"][mid][:, idx_in].clone()
        take_bn(f"{p}.bn1", mid)
        out[f"{p}.conv2.weight"] = state[f"{p}.conv2.weight"][outs][:, mid].clone()
        take_bn(f"{p}.bn2", outs)
        out[f"{p}.shortcut.0.weight"] = state[f"{p}.shortcut.0.weight"][outs][:, idx_in].clone()
        take_bn(f"{p}.shortcut.1", outs)
        idx_in = outs
    out["head.weight"] = state["head.weight"][:, idx_in].clone()
    assert widths_old[-1] == state["head.weight"].shape[1]
    return out


def main(argv: list[str]) -> int:
    import torch

    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source, width, target = argv[0], int(argv[1]), argv[2]
    state = torch.load(source, map_location="cpu", weights_only=True)
    torch.save(prune(state, width), target)
    print(f"wrote {target}: TC-ResNet {width} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
