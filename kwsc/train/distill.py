"""Knowledge distillation (``kwsc train --teacher PT[,PT...] --distill_weight A --distill_temperature T``).

One or more trained window models (the teachers, kept in eval mode, never updated) read the same augmented rows
as the student, and the student is also trained toward their averaged soft targets (Hinton et al. 2015):

    distill = T² · mean over the chosen outputs of KL(q_T ‖ p_T),
    q_T = mean over teachers of softmax(teacher log-probabilities / T),   p_T = softmax(student log-probs / T)

(a model's log-probabilities differ from its logits by one constant per output, so dividing them by T is the
same as dividing the logits). The training loss becomes ``loss + A × distill``. Without ``--window_stream`` the
chosen outputs are the rows' windows; with it, every tick of the streamed sequences whose window holds the word
(the ticks the window-stream loss trains to name the class, `WindowStream.coverage` ≥ FULL) — the teachers'
answers on windows without the word are not asked for (the DS-CNN, streamed untrained, is confidently wrong
there: README "Convolutional keyword spotters").

A teacher is a ``<stem>.pt`` written by ``kwsc train`` for a window model (DSCNN, TCResNet, BCResNet, CRNN); its
architecture and width come from the ``train_results.json`` beside it, its normalization from its own buffers, so
teachers of other widths and architectures (an ensemble) teach the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from kwsc.errors import FormatError, InputError

__all__ = ["distillation_loss", "Teachers", "load_teachers", "teacher_paths"]


def teacher_paths(spec: str) -> list[Path]:
    """``--teacher``'s comma-separated list of ``.pt`` files."""
    return [Path(p.strip()) for p in str(spec).split(",") if p.strip()]


def distillation_loss(student_log_probs: torch.Tensor, teacher_log_probs: list[torch.Tensor], temperature: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """T² · mean KL(q_T ‖ p_T) over the outputs (…, K) where ``mask`` (…) is True (all when None); q_T is the
    teachers' average of softmax(log-probs / T). Zero when no output is chosen."""
    t = float(temperature)
    student = torch.log_softmax(student_log_probs.float() / t, dim=-1)
    target = torch.stack([torch.softmax(q.float() / t, dim=-1) for q in teacher_log_probs]).mean(dim=0)
    kl = (target * (target.clamp_min(1e-12).log() - student)).sum(dim=-1)  # (…)
    if mask is None:
        return t * t * kl.mean()
    weight = mask.float()
    return t * t * (kl * weight).sum() / weight.sum().clamp_min(1.0)


class Teachers:
    """Window models that answer the student's rows (eval mode, no gradients)."""

    def __init__(self, models: list, paths: list[Path]):
        self.models, self.paths = models, paths

    @torch.no_grad()
    def row_log_probs(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Each teacher's log-probabilities (B, K) of the rows (B, T, F)."""
        return [m(rows)[0] for m in self.models]

    @torch.no_grad()
    def tick_log_probs(self, sequences: torch.Tensor) -> list[torch.Tensor]:
        """Each teacher's log-probabilities (B, ticks, K) at every tick of the streamed sequences."""
        return [m.tick_log_probs(sequences) for m in self.models]


def _teacher_config(path: Path) -> dict:
    results = path.parent / "train_results.json"
    try:
        model = json.loads(results.read_text())["model"]
        return {"architecture": str(model["architecture"]), "hidden_units": int(model["hidden_units"])}
    except FileNotFoundError:
        raise InputError(f"{path}: no train_results.json beside it (--teacher takes a <stem>.pt in the folder "
                         "kwsc train wrote, which names its architecture and width)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{results}: not a kwsc train_results.json with model.architecture and "
                          f"model.hidden_units (--teacher): {exc}") from None


def load_teachers(spec: str, num_features: int, num_keywords: int, window: int, device: torch.device) -> Teachers:
    """The ``--teacher`` models, checked before any training: each a window model of these features, classes and
    window (one line naming the file and what differs otherwise)."""
    from kwsc.train.config import WINDOW_ARCHITECTURES
    from kwsc.train.models_conv import build_window_model

    paths = teacher_paths(spec)
    if not paths:
        raise InputError(f"--teacher {spec!r}: no file given")
    models = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such teacher file (--teacher)")
        cfg = _teacher_config(path)
        if cfg["architecture"] not in WINDOW_ARCHITECTURES:
            raise InputError(f"{path}: a {cfg['architecture']} teacher; --teacher takes window models "
                             f"({', '.join(WINDOW_ARCHITECTURES)})")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 (a foreign or crafted file: one line, never run)
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise FormatError(f"{path}: not a state_dict of tensors (--teacher): {first}") from None
        model = build_window_model(cfg["architecture"], num_features, num_keywords, window, cfg["hidden_units"])
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
        if ours != theirs:
            differ = sorted(set(ours) ^ set(theirs)) or [k for k in ours if ours[k] != theirs[k]]
            raise InputError(f"{path}: not a {cfg['architecture']} {cfg['hidden_units']} for {num_features} "
                             f"features and {num_keywords} classes, as its train_results.json says "
                             f"({', '.join(differ[:3])} differ; --teacher)")
        model.load_state_dict(state)
        models.append(model.to(device).eval().requires_grad_(False))
    return Teachers(models, paths)
