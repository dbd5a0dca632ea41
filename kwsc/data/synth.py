"""A synthetic Speech-Commands-style corpus spoken by espeak-ng (``kwsc synth-dataset``).

Layout, as Google's Speech Commands: ``<word>/<speaker>_nohash_<n>.wav`` (one-second, 16 kHz, mono, 16-bit),
``_background_noise_/*.wav`` (generated noise), ``validation_list.txt`` and ``testing_list.txt``. A *speaker* is an
espeak-ng English voice plus a variant (``en-gb-scotland+f3``); its 8-hex-digit id is a hash of that name.
Each speaker says every word ``repeats`` times, each time with its own random pitch, pitch range, speed,
loudness, onset inside the second and a faint noise floor. Speakers, not clips, are split: about 10%
validation, 10% testing, the rest training, so no speaker is in two splits.

Reproducible: espeak-ng carries state from one utterance to the next (glottal phase, flutter), so every group of
``SPEAKERS_PER_PROCESS`` speakers is spoken in a fresh process that starts from an uninitialised library, always
in the same order. The same seed gives byte-identical files whatever ``jobs`` is.

Example::

    result = synth_dataset("synth", words=["yes", "no"], variants=20, seed=0)
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwsc.audio.espeak import ENGLISH_VOICES, VOICE_VARIANTS
from kwsc.audio.wav import load_audio, resample, write_wav
from kwsc.data.training_list import NOISE_FOLDER, write_lines
from kwsc.errors import InputError, KwscError, ToolchainError

__all__ = ["synth_dataset", "SynthResult", "DEFAULT_WORDS", "speaker_pool", "speaker_id"]

# The 30 words of Speech Commands v0.01.
DEFAULT_WORDS = ("bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy", "house", "left",
                 "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three",
                 "tree", "two", "up", "wow", "yes", "zero")
SAMPLE_RATE = 16000
# Speakers spoken in one fresh process (a fixed grouping, so the output does not depend on the number of jobs).
SPEAKERS_PER_PROCESS = 4


@dataclass
class SynthResult:
    """What ``synth_dataset`` wrote."""

    out: Path
    clips: int
    speakers: int
    validation: int
    testing: int
    noise_files: int


def speaker_pool() -> list[str]:
    """Every English voice × variant espeak-ng ships: ``voice+variant`` names."""
    return [f"{voice}+{variant}" for voice in ENGLISH_VOICES for variant in VOICE_VARIANTS]


def speaker_id(speaker: str) -> str:
    """The 8-hex-digit id used in file names (stable: a hash of the speaker's name)."""
    return f"{zlib.crc32(speaker.encode()):08x}"


def _clip_name(word: str, speaker: str, repeat: int) -> str:
    return f"{word}/{speaker_id(speaker)}_nohash_{repeat}.wav"


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut espeak's leading/trailing silence (below 1% of the peak)."""
    loud = np.flatnonzero(np.abs(x) > 0.01 * (np.abs(x).max() or 1.0))
    return x[loud[0]:loud[-1] + 1] if len(loud) else x


def _speak_group(task: tuple[str, list[str], list[tuple[int, str]], int, int], report) -> None:
    """Process body: a group of speakers says its words; any failure goes back through ``report`` (a pipe end)."""
    out, speakers, words, repeats, seed = task
    try:
        for speaker in speakers:
            _speak(out, speaker, words, repeats, seed)
    except BaseException as exc:  # noqa: BLE001 — the parent turns it into one clear error line
        report.send(f"{type(exc).__name__}: {exc}" if not isinstance(exc, KwscError) else str(exc))
        raise SystemExit(1) from None
    report.send("")


def _run_groups(ctx, tasks: list, jobs: int, done) -> None:
    """Run every group in its own fresh process, at most ``jobs`` at a time; ``done(task)`` after each.

    Plain processes rather than a Pool: a Pool never notices a worker that died and waits forever.
    """
    from multiprocessing.connection import wait

    pending, running = list(tasks), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                task = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_speak_group, args=(task, send), daemon=True)
                process.start()
                send.close()
                running[process.sentinel] = (process, receive, task)
            for sentinel in wait(list(running)):
                process, receive, task = running.pop(sentinel)
                process.join()
                try:
                    message = receive.recv()
                except EOFError:  # it exited without a word: killed, or crashed in C
                    message = "the worker process died"
                receive.close()
                if process.exitcode != 0 or message:
                    raise ToolchainError(f"speech synthesis for {', '.join(task[1])} failed: "
                                         f"{message or f'exit code {process.exitcode}'}")
                done(task)
    finally:
        for process, _, _ in running.values():
            process.terminate()


def _speak(out: str, speaker: str, words: list[tuple[int, str]], repeats: int, seed: int) -> list[str]:
    from kwsc.audio.espeak import Espeak

    engine = Espeak()
    entries = []
    for (word_index, word), repeat in itertools.product(words, range(repeats)):
        rng = np.random.default_rng([seed, zlib.crc32(speaker.encode()), word_index, repeat])
        speech = engine.say(word, voice=speaker, rate=int(rng.integers(130, 221)), pitch=int(rng.integers(25, 76)),
                            pitch_range=int(rng.integers(20, 91)), seed=int(rng.integers(1 << 31)))
        speech = _trim(resample(speech, engine.sample_rate, SAMPLE_RATE))[: SAMPLE_RATE - 800]
        peak = float(np.abs(speech).max()) or 1.0
        clip = rng.normal(0.0, 10 ** rng.uniform(-3.7, -2.5), SAMPLE_RATE)  # a faint noise floor (-74…-62 dBFS)
        onset = int(rng.integers(400, SAMPLE_RATE - len(speech) - 399))
        clip[onset:onset + len(speech)] += speech * (rng.uniform(0.15, 0.9) / peak)
        name = _clip_name(word, speaker, repeat)
        write_wav(Path(out) / name, clip, SAMPLE_RATE)
        entries.append(name)
    return entries


def _noise(kind: str, seconds: float, rng: np.random.Generator, clips: list[np.ndarray]) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    if kind in ("white", "pink", "brown"):
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 20.0)
        spectrum *= {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[kind]
        x = np.fft.irfft(spectrum, n)
    elif kind == "hum":  # mains hum: 50 or 60 Hz with odd and even harmonics, plus a little hiss
        base = rng.choice([50.0, 60.0])
        t = np.arange(n) / SAMPLE_RATE
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6)) for k in range(1, 8))
        x = x + 0.02 * rng.standard_normal(n)
    else:  # babble: many words from the corpus at random times and levels
        x = np.zeros(n)
        for _ in range(int(seconds * 6)):
            c = clips[int(rng.integers(len(clips)))]
            at = int(rng.integers(0, n - len(c)))
            x[at:at + len(c)] += rng.uniform(0.3, 1.0) * c
    return (x * (rng.uniform(0.05, 0.2) / (np.sqrt(np.mean(x ** 2)) or 1.0))).astype(np.float32)


SILENCE_FOLDER = "_silence_"


def _silence(out: Path, count: int, rng: np.random.Generator) -> list[str]:
    """Write ``count`` one-second ``_silence_`` clips cut from the generated noise files; returns their entries."""
    if count < 0:
        raise InputError(f"--silence must be >= 0, got {count}")
    if count == 0:
        return []
    sources = [load_audio(p) for p in sorted((out / NOISE_FOLDER).glob("*.wav"))]
    (out / SILENCE_FOLDER).mkdir(parents=True, exist_ok=True)
    entries = []
    for k in range(count):
        src = sources[int(rng.integers(len(sources)))]
        at = int(rng.integers(0, len(src) - SAMPLE_RATE))
        gain = 10.0 ** rng.uniform(-3.0, 0.0)  # from near-silence to the noise file's own level (never clipped)
        clip = np.clip(src[at:at + SAMPLE_RATE] * gain, -1.0, 1.0)
        name = f"{SILENCE_FOLDER}/noise{k:04d}_nohash_0.wav"
        write_wav(out / name, clip.astype(np.float32), SAMPLE_RATE)
        entries.append(name)
    return entries


def synth_dataset(out: str | Path, words: list[str] | tuple[str, ...] = DEFAULT_WORDS, variants: int = 40,
                  repeats: int = 1, seed: int = 0, jobs: int | None = None, progress: bool = True,
                  silence: int = 0) -> SynthResult:
    """Write a synthetic keyword corpus to ``out``.

    Args:
        out: output folder (created; existing files with the same names are replaced).
        words: the words to speak (each becomes a folder; letters, digits, ``-`` and ``'`` only).
        variants: number of speakers (voice + variant); each says every word ``repeats`` times.
        repeats: utterances per speaker and word (``_nohash_0``, ``_nohash_1``, …), each with its own prosody.
        seed: chooses the speakers, their splits and every random parameter.
        jobs: worker processes (default: all cores).
        progress: tqdm progress bar on stderr.
        silence: ``_silence_`` clips (default 0: none, as Speech Commands v0.01 whose 30 words are the default):
            one-second crops of the generated background noise at random gains down to near-silence, as v0.02's
            ``_silence_`` class. A model trained without such a class has to name some word on every frame of a
            continuous stream. They are split 10 % / 10 % / 80 % like the speakers (they have no speaker).
    """
    from tqdm import tqdm

    words = list(dict.fromkeys(w.strip().lower() for w in words if w.strip()))
    if not words:
        raise InputError("no words to synthesize")
    for w in words:
        if not all(ch.isalnum() or ch in "-'" for ch in w) or w.startswith("_"):
            raise InputError(f"word {w!r}: only letters, digits, '-' and \"'\" make a folder name here")
    pool = speaker_pool()
    if not 1 <= variants <= len(pool):
        raise InputError(f"--variants must be within 1..{len(pool)} (English voices × variants), got {variants}")
    if not 1 <= repeats <= 100:
        raise InputError(f"--repeats must be within 1..100, got {repeats}")
    rng = np.random.default_rng(int(seed))
    speakers = [pool[i] for i in rng.permutation(len(pool))[:variants]]
    held = max(1, round(0.1 * variants)) if variants >= 3 else 0
    testing, validation = set(speakers[:held]), set(speakers[held:2 * held])
    out = Path(out)
    for w in words + [NOISE_FOLDER]:
        (out / w).mkdir(parents=True, exist_ok=True)
    groups = [speakers[k:k + SPEAKERS_PER_PROCESS] for k in range(0, len(speakers), SPEAKERS_PER_PROCESS)]
    tasks = [(str(out), group, list(enumerate(words)), int(repeats), int(seed)) for group in groups]
    # A fresh process per group, forked from this process when it never loaded espeak-ng (its state would be
    # inherited), else from a clean fork server.
    from kwsc.audio.espeak import Espeak

    methods = multiprocessing.get_all_start_methods()
    clean = not Espeak.loaded() and "fork" in methods
    resample(np.zeros(441, np.float32), 22050, SAMPLE_RATE)  # import scipy.signal, design the filter: forks inherit
    ctx = multiprocessing.get_context("fork" if clean else ("forkserver" if "forkserver" in methods else "spawn"))
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    total = len(speakers) * len(words) * repeats
    with tqdm(total=total, unit="clip", desc="synth", disable=not progress, leave=False) as bar:
        _run_groups(ctx, tasks, jobs, lambda task: bar.update(len(task[1]) * len(words) * repeats))
    entries = {s: [_clip_name(w, s, r) for w, r in itertools.product(words, range(repeats))] for s in speakers}
    noise_rng = np.random.default_rng([int(seed), 0x6E6F6973])
    sample = [entry for s in speakers for entry in entries[s]]
    babble_clips = [load_audio(out / sample[int(k)]) for k in noise_rng.permutation(len(sample))[:40]]
    noises = {"white_noise": 15, "pink_noise": 15, "brown_noise": 12, "mains_hum": 10, "babble": 20}
    for name, seconds in noises.items():
        kind = name.split("_")[0] if name != "mains_hum" else "hum"
        write_wav(out / NOISE_FOLDER / f"{name}.wav", _noise(kind, seconds, noise_rng, babble_clips), SAMPLE_RATE)
    silence_clips = _silence(out, silence, noise_rng)
    validation_list = [e for s in speakers if s in validation for e in entries[s]] + silence_clips[1::10]
    testing_list = [e for s in speakers if s in testing for e in entries[s]] + silence_clips[0::10]
    write_lines(out / "validation_list.txt", sorted(validation_list))
    write_lines(out / "testing_list.txt", sorted(testing_list))
    return SynthResult(out, total, len(speakers), len(validation_list), len(testing_list),
                       len(noises))
