"""Dataset building speed: `kwsc make-dataset` on 2,000 one-second wavs, reading included (target ≥ 4,000 clips/s
on the 2-core dev machine), and `kwsc synth-dataset` speed (target ≥ 200 clips/s).

Run: `.venv/bin/python -m pytest benchmarks/test_dataset_bench.py -q --benchmark-columns=median,min,max`
The clips/s figures are in the table's extra info (`--benchmark-json`) and printed at the end.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.conftest import record
from kwsc.audio.wav import write_wav
from kwsc.data.make_dataset import make_dataset
from kwsc.frontends.featurizer import make_featurizer
from kwsc.ir import save

CLIPS = 2000
TUTORIAL = dict(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True, auto_scale=True)


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    """2,000 one-second 16 kHz 16-bit wavs in 10 label folders (speech-like noise bursts), a list and categories."""
    root = tmp_path_factory.mktemp("bench_wavs")
    rng = np.random.default_rng(0)
    labels = [f"word{i}" for i in range(10)]
    entries = []
    for k in range(CLIPS):
        label = labels[k % 10]
        (root / label).mkdir(exist_ok=True)
        envelope = np.exp(-((np.arange(16000) - rng.integers(4000, 12000)) / 2500.0) ** 2)
        write_wav(root / label / f"{k:05d}.wav", rng.normal(0, 0.2, 16000) * envelope, 16000)
        entries.append(f"{label}/{k:05d}.wav")
    (root / "list.txt").write_text("\n".join(entries) + "\n")
    (root / "categories.txt").write_text("\n".join(labels) + "\n")
    save(make_featurizer(**TUTORIAL), root / "featurizer.kwsc")
    return root


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.mark.parametrize("jobs,processes", [(None, False), (1, False), (None, True)],
                         ids=["threads", "one-worker", "processes"])
def test_make_dataset_clips_per_second(benchmark, wav_folder, tmp_path, jobs, processes):
    """Wall-clock clips/s (all cores by default, page-cached wavs) and CPU cost per clip (what a free core does)."""
    cpu = []

    def build():
        start = _cpu_seconds()
        result = make_dataset(wav_folder / "list.txt", wav_folder / "featurizer.kwsc", outdir=tmp_path,
                              progress=False, jobs=jobs, processes=processes)
        cpu.append(_cpu_seconds() - start)
        return result

    result = benchmark.pedantic(build, rounds=5, iterations=1, warmup_rounds=1)
    assert result.rows == CLIPS
    best = CLIPS / benchmark.stats.stats.min
    median = CLIPS / benchmark.stats.stats.median
    per_cpu_second = CLIPS / float(np.median(cpu[1:]))
    load = os.getloadavg()[0]
    record(benchmark, clips=CLIPS, jobs=jobs or os.cpu_count(), processes=processes, clips_per_s_best=round(best),
           clips_per_s_median=round(median), clips_per_cpu_second=round(per_cpu_second), load_average=load)
    kind = "processes" if processes else "threads"
    print(f"\nmake-dataset: {CLIPS} clips, jobs {jobs or os.cpu_count()} {kind}: best {best:.0f} clips/s, median "
          f"{median:.0f} clips/s; {per_cpu_second:.0f} clips per CPU-second; load average {load:.1f}")


def test_synth_dataset_clips_per_second(benchmark, tmp_path):
    pytest.importorskip("espeakng_loader")
    from kwsc.data.synth import synth_dataset

    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    counter = iter(range(100))

    def synth():
        return synth_dataset(tmp_path / f"run{next(counter)}", words=words, variants=40, seed=0, progress=False)

    result = benchmark.pedantic(synth, rounds=3, iterations=1)
    assert result.clips == 400
    best = result.clips / benchmark.stats.stats.min
    median = result.clips / benchmark.stats.stats.median
    record(benchmark, clips=result.clips, clips_per_s_best=round(best), clips_per_s_median=round(median))
    print(f"\nsynth-dataset: {result.clips} clips: best {best:.0f} clips/s, median {median:.0f} clips/s")
