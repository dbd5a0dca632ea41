"""`kwsc listen`: keyword detection on live audio — a microphone (PortAudio via sounddevice) or wav files played
as a stream (in real time, or as fast as the model runs).

Each chunk of ``featurizer.input_size`` samples goes through the featurizer (the first window/input chunks of the
stream are dropped, as ELL's AudioTransform does), then the classifier; a StreamingDetector (the Detector op's
reference step) turns the outputs into ``DETECTED <word> p=… at t=…`` events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from kwsc.errors import InputError, KwscError
from kwsc.evaluate.keyword_test import to_probabilities
from kwsc.evaluate.runners import ModelRunner, drop_chunks, sample_rate_of
from kwsc.evaluate.streaming import Detection, StreamingDetector

__all__ = ["wav_chunks", "microphone_chunks", "list_devices", "listen", "model_detector", "AudioDeviceError"]


class AudioDeviceError(KwscError):
    """No usable audio input device."""


def wav_chunks(paths: Sequence[str | Path], chunk: int, sample_rate: int, realtime: bool = False,
               gap_s: float = 0.5) -> Iterator[np.ndarray]:
    """The wav files one after another (with ``gap_s`` of silence between them) as chunks of ``chunk`` samples."""
    from kwsc.audio.wav import load_audio

    parts = []
    for p in paths:
        parts.append(load_audio(p, sample_rate))
        parts.append(np.zeros(int(gap_s * sample_rate), np.float32))
    stream = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    period = chunk / sample_rate
    start = time.monotonic()
    for i in range(-(-len(stream) // chunk)):
        piece = np.zeros(chunk, np.float32)
        data = stream[i * chunk: (i + 1) * chunk]
        piece[: len(data)] = data
        if realtime:
            delay = start + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield piece


def _sounddevice():
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise AudioDeviceError(f"no audio input: PortAudio is not available ({exc}); "
                               "install portaudio19-dev or use --wav FILE") from None
    return sd


def list_devices() -> str:
    """The audio input devices PortAudio sees, one per line (``index: name (channels, default rate)``)."""
    sd = _sounddevice()
    try:
        devices = list(enumerate(sd.query_devices()))
    except Exception as exc:  # PortAudio raises its own error types
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    lines = [f"{i}: {d['name']} ({d['max_input_channels']} input channels, {d['default_samplerate']:g} Hz)"
             for i, d in devices if d.get("max_input_channels", 0) > 0]
    return "\n".join(lines) if lines else "no audio input devices (PortAudio lists none)"


def microphone_chunks(device: int | str | None, chunk: int, sample_rate: int,
                      seconds: float | None = None) -> Iterator[np.ndarray]:
    """Chunks from a microphone; AudioDeviceError (one line) when PortAudio or an input device is missing.

    The device is checked and opened here, before the first chunk is asked for, so errors come at once.
    """
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        inputs = [d for d in devices if d.get("max_input_channels", 0) > 0]
    except Exception as exc:  # PortAudio raises its own error types
        raise AudioDeviceError(f"no audio input device: {exc}; use --wav FILE") from None
    if not inputs:
        raise AudioDeviceError("no audio input device found (PortAudio lists none); use --wav FILE")
    import queue

    q: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata, frames, t, status):
        q.put(indata[:, 0].copy())

    try:
        stream = sd.InputStream(device=device, channels=1, samplerate=sample_rate, blocksize=chunk,
                                dtype="float32", callback=callback)
    except Exception as exc:
        raise AudioDeviceError(f"cannot open audio input device {device!r}: {exc}") from None
    stream.start()

    def chunks() -> Iterator[np.ndarray]:
        try:
            end = time.monotonic() + seconds if seconds else None
            while end is None or time.monotonic() < end:
                yield q.get()
        finally:
            stream.stop()
            stream.close()

    return chunks()


def model_detector(classifier: ModelRunner):
    """The classifier's own Detector node (``add_detector``), or None."""
    graph = getattr(classifier, "graph", None)
    found = graph.find("Detector") if graph is not None else []
    return found[0] if found else None


def listen(featurizer: ModelRunner, classifier: ModelRunner, chunks: Iterator[np.ndarray], labels: Sequence[str],
           threshold: float = 0.8, smoothing: int = 1, refractory_s: float = 1.0,
           on_detection: Callable[[Detection], None] | None = None) -> list[Detection]:
    """Run the models over a chunk stream; returns (and reports) the detections.

    The detection is the Detector op's (through ``StreamingDetector``): with the classifier's own Detector's
    settings when it has one (``add_detector``: what the compiled model does), else ``threshold``, ``smoothing``
    and ``refractory_s``.
    """
    if classifier.output_size != len(labels):
        raise InputError(f"classifier has {classifier.output_size} outputs but there are {len(labels)} labels")
    sample_rate = sample_rate_of(featurizer)
    drop = drop_chunks(featurizer)
    frame_seconds = featurizer.input_size / sample_rate
    own = model_detector(classifier)
    detector = (StreamingDetector.from_attrs(list(labels), frame_seconds, own.attrs) if own is not None else
                StreamingDetector(list(labels), frame_seconds, threshold, smoothing, refractory_s))
    featurizer.reset()
    classifier.reset()
    found: list[Detection] = []
    for i, chunk in enumerate(chunks):
        if i < drop:  # read and thrown away, not fed to the model (ELL's AudioTransform)
            continue
        features = featurizer.step(chunk)
        det = detector.push(to_probabilities(classifier.step(features)))
        if det is not None:
            # report the time in the audio stream, counting the dropped chunks
            det = Detection(det.t + drop * featurizer.input_size / sample_rate, det.label, det.p)
            found.append(det)
            if on_detection:
                on_detection(det)
    return found
