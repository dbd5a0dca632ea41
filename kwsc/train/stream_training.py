"""Training on continuous audio (``kwsc train --stream_training W``): frame targets, state carried across words.

A model trained on one-word rows, each from zero state and read at its last frame, never learns to let go of a
word: in a continuous stream (``kwsc test`` stream mode, the streaming benchmark, a device that listens all the
time) the word just heard is still claimed a second later and the next word is judged through it. Here every
batch also builds continuous sequences on the fly, in feature space, from the batch's own (augmented) clips:

* a sequence of ``seconds`` is gaps of random length (``gap`` range, seconds) with clips between them — keywords,
  ``_unknown_`` words and background clips, whichever the batch drew; gaps are ``kwsc test``'s padding frames
  (featurized N(0, 8/32767) noise), and over the whole sequence, in 60 % of the sequences, a stretch of background
  noise is power-summed at a random gain (the ``_background_noise_`` recordings with ``--wav_files``, else the
  training rows of the background class);
* each frame has a target: the clip's class for ``target_frames`` frames from the end of its word (found by an
  energy rule, as the streaming benchmark's ``word_bounds``), nothing (no loss) while the word is being spoken,
  and the background class elsewhere — a soft target with ``confidence`` on the background class (the rest spread
  evenly; uniform without one) weighted ``background_weight``, so that `kwsc test`'s max rule still picks the
  word's frame over the quiet after it;
* state is carried across words inside a sequence and from one batch's sequences to the next (truncated
  back-propagation through time), except for a share ``restart`` of the sequences that start from zero state (what
  a reset, the test's reset mode or a VAD, gives).

The loss is ``row loss + W × stream loss``; the stream loss is the weighted mean of the frames' cross entropies.
Building a batch is a handful of tensor operations on the training device (no per-sample Python).

Window models (TC-ResNet, DS-CNN, BC-ResNet, CRNN; ``window`` > 0) carry no state: each sequence gets ``window − 1``
more frames in front, and the model runs over it in one pass (``tick_log_probs``: its convolutions over the whole
sequence, a sliding time pooling), so frame ``f`` ≥ ``window − 1`` gets the window model's output on frames
``f − window + 1 … f`` — what the ``stream`` pass computes on the device at that tick. The frame targets are the
same: name the word for ``target_frames`` after it ends, background elsewhere, so the model learns to fire just
after a word and to stay quiet while its window still holds a word it has already named. (Their rows' loss with
these targets: ``WindowStream.stream_loss``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kwsc.train.vad_training import padding_bank

__all__ = ["StreamTraining", "StreamBatch", "word_bounds", "IGNORE", "WORD", "BACKGROUND"]

IGNORE, WORD, BACKGROUND = 0, 1, 2  # what a frame's target is
NOISE_PROBABILITY = 0.6  # share of the sequences with background noise over them (the benchmark: 60 % of the time)


def word_bounds(clips: torch.Tensor, relative: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last speech frame of each clip (B, T, F log-mel features) by an energy rule.

    A frame is speech when its linear mel energy is above the clip's quietest frame by at least ``relative`` ×
    the clip's range (the streaming benchmark's rule, on features); returns (first, last) frame indices (B,).
    """
    energy = torch.expm1(clips.float()).clamp_min(0).sum(dim=2)
    floor = energy.min(dim=1, keepdim=True).values
    peak = energy.max(dim=1, keepdim=True).values
    active = (energy - floor) >= relative * (peak - floor)
    frames = torch.arange(clips.shape[1], device=clips.device)
    first = torch.where(active, frames, clips.shape[1]).min(dim=1).values
    last = torch.where(active, frames, -1).max(dim=1).values
    return first, last


@dataclass
class StreamBatch:
    """Sequences (B, L, F) raw features, per-frame ``kind`` (IGNORE/WORD/BACKGROUND) and ``label`` (class of
    WORD frames), and where the clips went: ``starts`` (B, S) first frame of each slot, ``clip`` (B, S) the
    source row, ``placed`` (B, S) whether the slot holds a clip (it fits), ``word_end`` (B, S) within the clip."""

    features: torch.Tensor
    kind: torch.Tensor
    label: torch.Tensor
    starts: torch.Tensor
    clip: torch.Tensor
    placed: torch.Tensor
    word_end: torch.Tensor


class StreamTraining:
    """Builds continuous training sequences from a batch of clip rows and scores a model on them.

    Args:
        parameters: the dataset's [sample_rate, input_size, F, window, shift].
        num_classes: K.
        background: index of the background class (``_silence_``), or None (uniform background target).
        seconds: sequence length.
        gap: (shortest, longest) gap between clips, seconds.
        target_frames: frames from the end of a word that must name it.
        background_weight: weight of a background frame's loss relative to a word frame's.
        confidence: the background class's share of the background target.
        label_smoothing: of the word frames' targets (the recipe's).
        sequences: sequences per batch.
        restart: share of sequences that start from zero state instead of the previous batch's last state.
        noise_bank: (N, F) raw log features of background noise, in time order, or None.
        noise_max_gain: largest gain of that noise (linear mel domain).
        window: a window model's window (frames; its sequences get ``window − 1`` frames of context in front and no
            state), or 0 for GRU/LSTM.
    """

    def __init__(self, parameters, num_classes: int, background: int | None, device: torch.device, *,
                 seconds: float = 4.0, gap: tuple[float, float] = (0.3, 3.0), target_frames: int = 10,
                 background_weight: float = 0.3, confidence: float = 0.5, label_smoothing: float = 0.0,
                 sequences: int = 16, restart: float = 0.25, noise_bank: torch.Tensor | None = None,
                 noise_max_gain: float = 1.0, window: int = 0):
        sample_rate, input_size, num_features, row_frames, _ = (int(v) for v in parameters)
        self.frame_seconds = input_size / sample_rate
        self.real = min(row_frames, math.ceil(sample_rate / input_size) - 1)  # a 1 s clip's frames (31 at 512/512)
        self.num_classes, self.background, self.device = int(num_classes), background, device
        self.num_features = num_features
        self.target_frames = max(1, int(target_frames))
        self.gap_frames = (max(0, round(gap[0] / self.frame_seconds)),
                           max(0, round(gap[0] / self.frame_seconds), round(gap[1] / self.frame_seconds)))
        self.length = max(round(seconds / self.frame_seconds), self.gap_frames[0] + self.real + self.target_frames)
        self.context = max(0, int(window) - 1)  # frames in front that only fill a window model's first window
        self.length += self.context
        self.slots = math.ceil(self.length / (self.real + max(1, self.gap_frames[0])))
        self.background_weight, self.label_smoothing = float(background_weight), float(label_smoothing)
        self.sequences, self.restart = max(1, int(sequences)), float(restart)
        self.pad_bank = padding_bank(sample_rate, input_size, num_features, device)
        self.noise_linear = None
        if noise_bank is not None and len(noise_bank) > 0:
            self.noise_linear = torch.expm1(noise_bank.float().to(device)).clamp_min(0)
        self.noise_max_gain = float(noise_max_gain)
        if background is None:
            self.target = torch.full((num_classes,), 1.0 / num_classes, device=device)
        else:
            self.target = torch.full((num_classes,), (1.0 - confidence) / (num_classes - 1), device=device)
            self.target[background] = confidence
        self.states: list | None = None  # the last batch's final states (carried, detached)

    def _is_word(self, labels: torch.Tensor) -> torch.Tensor:
        """Which labels are words (every class but the background one)."""
        if self.background is None:
            return torch.ones_like(labels, dtype=torch.bool)
        return labels != self.background

    def build(self, clips: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> StreamBatch:
        """``sequences`` sequences from clip rows (N, ≥ real, F) with labels (N,); clips drawn with replacement."""
        dev, n, length, real = clips.device, len(clips), self.length, self.real
        b, s = self.sequences, self.slots
        clips = clips[:, :real]
        lo, hi = self.gap_frames
        gaps = torch.randint(lo, hi + 1, (b, s), generator=generator, device=dev)
        starts = torch.cumsum(gaps, dim=1) + torch.arange(s, device=dev) * real
        clip = torch.randint(0, n, (b, s), generator=generator, device=dev)
        # a clip is placed when it and its target window fit: every sequence ends in a gap (its state is carried)
        placed = starts + real + self.target_frames <= length
        first, last = word_bounds(clips)
        is_word = self._is_word(labels)
        t = torch.arange(length, device=dev).expand(b, length)
        owner = (torch.searchsorted(starts, t.contiguous(), right=True) - 1)  # the latest slot started by t
        slot = owner.clamp_min(0)
        offset = t - torch.gather(starts, 1, slot)
        source = torch.gather(clip, 1, slot)
        held = (owner >= 0) & torch.gather(placed, 1, slot)
        in_clip = held & (offset < real)
        pads = self.pad_bank[torch.randint(0, len(self.pad_bank), (b, length), generator=generator, device=dev)]
        frames = clips[source, offset.clamp(0, real - 1)]
        features = torch.where(in_clip[..., None], frames.to(pads.dtype), pads)
        if self.noise_linear is not None:
            bank = len(self.noise_linear)
            begin = torch.randint(0, bank, (b, 1), generator=generator, device=dev)
            noise = self.noise_linear[(begin + torch.arange(length, device=dev)) % bank]
            gain = torch.rand(b, 1, 1, generator=generator, device=dev) * self.noise_max_gain
            gain = gain * (torch.rand(b, 1, 1, generator=generator, device=dev) < NOISE_PROBABILITY)
            linear = torch.expm1(features).clamp_min(0)
            features = torch.log1p(torch.sqrt(linear * linear + (gain * noise) ** 2))
        start_of_word, end_of_word = first[source], last[source]
        word = held & is_word[source]
        kind = torch.full((b, length), BACKGROUND, dtype=torch.long, device=dev)
        kind = torch.where(word & (offset >= start_of_word) & (offset < end_of_word), IGNORE, kind)
        kind = torch.where(word & (offset >= end_of_word) & (offset < end_of_word + self.target_frames), WORD, kind)
        return StreamBatch(features, kind, labels[source], starts, clip, placed, last[clip])

    def frame_losses(self, log_probs: torch.Tensor, batch: StreamBatch) -> torch.Tensor:
        """The stream loss: weighted mean cross entropy over the frames (IGNORE frames weigh nothing)."""
        log_probs = log_probs.float()
        eps = self.label_smoothing
        word = -(1 - eps) * torch.gather(log_probs, 2, batch.label[..., None])[..., 0] - eps * log_probs.mean(dim=2)
        background = -(log_probs * self.target).sum(dim=2)
        loss = torch.where(batch.kind == WORD, word, background)
        weight = torch.where(batch.kind == WORD, 1.0,
                             torch.where(batch.kind == BACKGROUND, self.background_weight, 0.0))
        return (loss * weight).sum() / weight.sum().clamp_min(1e-6)

    def window_row_targets(self, clips: torch.Tensor, labels: torch.Tensor, frames: int) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
        """(kind, label) (B, frames) for a window model's ticks over a file streamed alone (``WindowStream``: tick
        ``f`` is the window that ends at the file's frame ``f``): a word row names its word for ``target_frames``
        from the word's end, is free while it is spoken and says background elsewhere — before the word and once
        the target frames are over, while the window still holds the word; a background row is background."""
        b = len(clips)
        first, last = word_bounds(clips[:, : self.real])
        t = torch.arange(frames, device=clips.device).expand(b, frames)
        is_word = self._is_word(labels)[:, None]
        word = is_word & (t >= last[:, None]) & (t < last[:, None] + self.target_frames)
        spoken = is_word & (t >= first[:, None]) & (t < last[:, None])
        kind = torch.where(word, WORD, torch.where(spoken, IGNORE, BACKGROUND))
        return kind, labels[:, None].expand(b, frames)

    def row_targets(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(kind, label) (B, T) for rows read from zero state: a word row names its word for ``target_frames``
        frames from the word's end (into the row's padding), its other frames are free; a background row is
        background over its real frames."""
        b, frames = clips.shape[:2]
        first, last = word_bounds(clips[:, : self.real])
        t = torch.arange(frames, device=clips.device).expand(b, frames)
        is_word = self._is_word(labels)
        word = is_word[:, None] & (t >= last[:, None]) & (t < last[:, None] + self.target_frames)
        kind = torch.where(word, WORD, torch.where(~is_word[:, None] & (t < self.real), BACKGROUND, IGNORE))
        return kind, labels[:, None].expand(b, frames)

    def row_loss(self, model, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The rows' loss with the stream's frame targets (replaces the last-frame loss, which would teach the
        model to hold a word until the row ends, 20 frames after it was spoken)."""
        log_probs, _ = model(clips, None, clips.shape[1])
        kind, label = self.row_targets(clips, labels)
        return self.frame_losses(log_probs, StreamBatch(clips, kind, label, *([None] * 4)))

    @torch.no_grad()
    def file_predictions(self, model, clips: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Per-file predictions by `kwsc test`'s rule: each row's real frames, then its padding frames up to the
        file's length (80 frames for 1 s clips), from zero state; the class of the single most confident frame."""
        was_training = model.training
        model.eval()
        file_frames = math.ceil(self.real / self.num_features) * self.num_features  # ELL pads to the input size
        predictions = []
        generator = torch.Generator(device=self.pad_bank.device)
        generator.manual_seed(0)
        for i in range(0, len(clips), batch_size):
            part = clips[i:i + batch_size, : self.real]
            pad = self.pad_bank[torch.randint(0, len(self.pad_bank), (len(part), file_frames - self.real),
                                              generator=generator, device=self.pad_bank.device)]
            probs = model(torch.cat([part, pad.to(part.dtype)], dim=1), None, file_frames)[0].exp()
            best, cls = probs.max(dim=2)
            frame = best.argmax(dim=1)
            predictions.append(cls[torch.arange(len(part), device=cls.device), frame])
        model.train(was_training)
        return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long, device=clips.device)

    def _start_states(self, generator: torch.Generator):
        if self.states is None:
            return None
        keep = (torch.rand(self.sequences, generator=generator, device=self.device) >= self.restart).float()

        def scale(state):
            if isinstance(state, tuple):
                return tuple(scale(s) for s in state)
            return state * keep[None, :, None].to(state.dtype)
        return [scale(state) for state in self.states]

    def frame_log_probs(self, model, features: torch.Tensor) -> torch.Tensor:
        """A window model's log-probabilities (B, L − context, K) for frames ``context`` … L − 1 of sequences
        (B, L, F): at each, the model on the window that ends there, all from one pass."""
        return model.tick_log_probs(features)

    def loss(self, model, clips: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Build a batch of sequences from ``clips`` and return the model's stream loss on it (state carried; a
        window model: every frame after the first window's context, no state)."""
        batch = self.build(clips, labels, generator)
        if hasattr(model, "tick_log_probs"):
            log_probs = self.frame_log_probs(model, batch.features.to(clips.dtype))
            c = self.context
            return self.frame_losses(log_probs, StreamBatch(None, batch.kind[:, c:], batch.label[:, c:],
                                                            *([None] * 4)))
        log_probs, states = model(batch.features.to(clips.dtype), self._start_states(generator), self.length)

        def detach(state):
            return tuple(detach(s) for s in state) if isinstance(state, tuple) else state.detach()
        self.states = [detach(state) for state in states]
        return self.frame_losses(log_probs, batch)
