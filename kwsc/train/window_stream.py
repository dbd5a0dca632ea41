"""Window models as `kwsc test` streams them (``kwsc train --window_stream W``): per-file accuracy and training.

The ``stream`` pass turns a window model into a per-tick model whose output at each tick equals the window model on
the last T frames, the frames before the file's first being zeros (its History buffers start with the value of an
all-zero window). `kwsc test --reset` feeds each file's frames from cleared buffers, pads the file with its quiet
padding noise to 80 frames (1 s clips) and lets the single most confident tick decide. A model trained only on
centred rows is confidently wrong at ticks whose window holds part of the word, or none of it, and those ticks win
the max: 84.7 % per window fell to 64.9 % streamed (README "Convolutional keyword spotters").

Here, per row, the sequence `kwsc test` streams is built in feature space — ``T − 1`` zero frames, the row's real
frames (31 for 1 s clips), padding frames (featurized N(0, 8/32767) noise, the test tool's own) up to the file's
length — and the model's output at every tick is computed at once (``tick_log_probs``: the body runs once over the
sequence). Each tick gets a target from how much of the word its window holds (an energy rule on the features,
``word_bounds``): the row's class when at least ``FULL`` of the word is inside, a uniform target (weight
``IDLE_WEIGHT``: "no word here, say nothing confidently") when less than ``PARTIAL`` is, no loss in between;
for rows of the background class (``_silence_``) the whole clip counts as the word — so the empty windows at the
start (zeros) and end (padding) of every file say nothing confidently, and cannot outbid a word by the max rule.
The row term is the tick whose window is the row, from the same pass (BatchNorm sees only the streamed
sequences, see ``loss``). The loss is ``row loss + W × tick
loss``. The same sequences give the per-file accuracy by the test's rule (``file_predictions``), which the
validation line then reports.

With ``--stream_training W`` (a continuous stream, ``StreamTraining`` with ``window``) the rows' loss is
``stream_loss``: the same streamed sequences, with the stream's frame targets instead of the coverage rule (the
word for a few ticks after it ends, background before it and after them), and no row term.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kwsc.train.stream_training import StreamBatch, word_bounds
from kwsc.train.vad_training import padding_bank

__all__ = ["WindowStream", "FULL", "PARTIAL", "IDLE_WEIGHT"]

FULL = 0.75  # share of the word a window must hold to be trained to name it
PARTIAL = 0.5  # below this share the window is trained to say nothing confidently (uniform target)
IDLE_WEIGHT = 0.3  # loss weight of such a window relative to a word window


class WindowStream:
    """`kwsc test --reset`'s view of a window model, for a dataset's [sample_rate, input_size, F, window, shift].

    Args:
        num_classes: K.
        background: index of the background class (its whole clip counts as the word), or None.
        label_smoothing: of the word ticks' targets (the recipe's).
    """

    def __init__(self, parameters, num_classes: int, background: int | None, device: torch.device,
                 label_smoothing: float = 0.0):
        sample_rate, input_size, num_features, window, _ = (int(v) for v in parameters)
        self.window, self.num_features = window, num_features
        self.real = min(window, math.ceil(sample_rate / input_size) - 1)  # a 1 s clip's frames (31 at 512/512)
        # ELL pads each file to a multiple of the classifier's input size (80 features per tick → 80 frames)
        self.file_frames = math.ceil(self.real / num_features) * num_features
        self.num_classes, self.background = int(num_classes), background
        self.label_smoothing = float(label_smoothing)
        self.pad_bank = padding_bank(sample_rate, input_size, num_features, device)

    def sequences(self, rows: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, T − 1 + file frames, F): zero frames, each row's real frames, padding frames."""
        b = len(rows)
        zeros = rows.new_zeros(b, self.window - 1, rows.shape[2])
        index = torch.randint(0, len(self.pad_bank), (b, self.file_frames - self.real), generator=generator,
                              device=self.pad_bank.device)
        pad = self.pad_bank[index].to(device=rows.device, dtype=rows.dtype)
        return torch.cat([zeros, rows[:, : self.real], pad], dim=1)

    @torch.no_grad()
    def file_predictions(self, model, rows: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Per-file predictions by `kwsc test --reset`'s rule: the class of the single most confident tick."""
        was_training = model.training
        model.eval()
        generator = torch.Generator(device=self.pad_bank.device)
        generator.manual_seed(0)
        predictions = []
        for i in range(0, len(rows), batch_size):
            probs = model.tick_log_probs(self.sequences(rows[i:i + batch_size], generator)).exp()
            best, cls = probs.max(dim=2)
            tick = best.argmax(dim=1)
            predictions.append(cls[torch.arange(len(cls), device=cls.device), tick])
        model.train(was_training)
        return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long, device=rows.device)

    def coverage(self, rows: torch.Tensor, whole: torch.Tensor | None = None) -> torch.Tensor:
        """(B, ticks): the share of each row's word inside the window that ends at each file frame; rows where
        ``whole`` (B,) is True count the whole clip as the word (the background class: its noise has no word)."""
        first, last = word_bounds(rows[:, : self.real])
        last = torch.maximum(last, first)  # a row without an active frame: a one-frame word
        if whole is not None:
            first, last = torch.where(whole, 0, first), torch.where(whole, self.real - 1, last)
        ends = torch.arange(self.file_frames, device=rows.device)[None, :]
        starts = ends - (self.window - 1)
        inside = (torch.minimum(ends, last[:, None]) - torch.maximum(starts, first[:, None]) + 1).clamp_min(0)
        return inside.float() / (last - first + 1).float()[:, None]

    def stream_loss(self, model, rows: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                    stream) -> torch.Tensor:
        """The rows' loss under ``--stream_training``: every tick of their streamed sequences (one pass) against
        ``stream``'s (a StreamTraining) frame targets, ``window_row_targets``: tick ``f`` is the window that ends
        at the file's frame ``f``."""
        log_probs = model.tick_log_probs(self.sequences(rows, generator))  # (B, file frames, K)
        kind, label = stream.window_row_targets(rows, labels, log_probs.shape[1])
        return stream.frame_losses(log_probs, StreamBatch(None, kind, label, *([None] * 4)))

    def loss(self, model, rows: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
             weight: float = 1.0, distill=None) -> torch.Tensor:
        """Row loss + ``weight`` × tick loss of a batch of (augmented) rows, from one forward pass over their
        streamed sequences: the row term is the cross entropy of the tick whose window is the row (the clip's
        first T frames, padding after its real ones); word ticks name the class, idle ticks say nothing.

        One pass, not the row batch and then the sequences: BatchNorm's running statistics then describe what the
        streamed model sees (zeros, clips, padding). Two passes left them a blend of both, and the evaluated model
        called the padding-only windows ``_silence_`` at p ≈ 0.57 (0.18 with the batch's statistics), which won
        the test's max rule for a third of the files it got wrong."""
        sequences = self.sequences(rows, generator)
        log_probs = model.tick_log_probs(sequences)  # (B, ticks, K)
        row_tick = min(self.window, self.file_frames) - 1  # the window of the file's first T frames
        row_loss = F.cross_entropy(log_probs[:, row_tick], labels, label_smoothing=self.label_smoothing)
        share = self.coverage(rows, None if self.background is None else labels == self.background)
        word, idle = share >= FULL, share < PARTIAL
        word_loss = F.cross_entropy(log_probs.transpose(1, 2), labels[:, None].expand_as(share),
                                    label_smoothing=self.label_smoothing, reduction="none")
        idle_loss = -log_probs.mean(dim=2)  # cross entropy against the uniform target
        ticks = word.float() + IDLE_WEIGHT * idle.float()
        total = (word_loss * word.float() + IDLE_WEIGHT * idle_loss * idle.float()).sum()
        loss = row_loss + weight * total / ticks.sum().clamp_min(1.0)
        if distill is not None:  # --teacher: distill(sequences, tick log-probs, word ticks) → its weighted term
            loss = loss + distill(sequences, log_probs, word)
        return loss
