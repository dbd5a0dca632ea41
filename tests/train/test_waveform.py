"""Training from wavs: the torch featurizer equals kwsc's tutorial featurizer; augmentation keeps shapes/labels."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.audio.wav import write_wav  # noqa: E402
from kwsc.backends.reference import Interpreter  # noqa: E402
from kwsc.frontends.featurizer import make_featurizer  # noqa: E402
from kwsc.train.waveform import WaveformTrainingSet, load_waveform_training_set  # noqa: E402

PARAMS = [16000, 512, 80, 40, 40]


def _tutorial_featurizer():
    return make_featurizer(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                           filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True)


def test_torch_featurizer_equals_the_streaming_featurizer_with_ells_framing():
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 0.1, (3, 16000)) * np.hanning(16000)).astype(np.float32)
    rows = WaveformTrainingSet(torch.from_numpy(audio), torch.zeros(3, dtype=torch.long), None, PARAMS,
                               {}).featurize(torch.from_numpy(audio), torch.Generator()).numpy()
    assert rows.shape == (3, 40, 80)
    graph = _tutorial_featurizer()
    for clip, row in zip(audio, rows):
        chunks = np.pad(clip, (0, 32 * 512 - 16000)).reshape(32, 512)
        expected = Interpreter(graph).run(chunks[1:])  # ELL drops the first chunk of every file
        assert np.max(np.abs(row[:31] - expected.reshape(31, 80))) < 1e-4
        spread = row[31:] - row[30]  # tail: the last real frame plus noise of half its spread
        assert 0 < spread.std() < row[30].std()


def test_load_a_wav_folder_and_make_augmented_batches(tmp_path):
    rng = np.random.default_rng(1)
    for word in ("yes", "no"):
        (tmp_path / word).mkdir()
        for i in range(3):
            write_wav(tmp_path / word / f"{i}.wav", rng.normal(0, 0.05, 16000).astype(np.float32), 16000)
    (tmp_path / "_background_noise_").mkdir()
    write_wav(tmp_path / "_background_noise_" / "n.wav", rng.normal(0, 0.1, 40000).astype(np.float32), 16000)
    lst = tmp_path / "training_list.txt"
    lst.write_text("".join(f"{w}/{i}.wav\n" for w in ("yes", "no") for i in range(3)))
    options = {"wave_shift": 800, "wave_gain_db": 6, "wave_noise_prob": 1.0, "wave_noise_max": 0.1}
    data = load_waveform_training_set(tmp_path, lst, ["no", "yes"], PARAMS, options, torch.device("cpu"))
    assert len(data) == 6 and data.labels.tolist() == [1, 1, 1, 0, 0, 0] and data.noise is not None
    g = torch.Generator()
    g.manual_seed(0)
    a = data.batch(torch.tensor([0, 4]), g)
    plain = data.featurize(data.clips[[0, 4]], None)
    assert a.shape == (2, 40, 80) and not torch.allclose(a, plain)
