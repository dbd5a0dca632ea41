"""The featurizer graph: ELL's node chain and metadata, and its features on real speech against an independent
numpy/scipy implementation written here from the formulas of ell-behaviour.md §1 (no kwsc code in it)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import InputError
from kwsc.frontends.ell import load_ell
from kwsc.frontends.featurizer import FeaturizerOptions, featurizer_info, make_featurizer
from kwsc.ir import load, tables
from tests.conftest import REPO, ell_vectors

TUTORIAL = FeaturizerOptions(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                             filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True,
                             auto_scale=True)
TUTORIAL_ARGS = ("--sample_rate 16000 --window_size 512 --input_buffer_size 512 --hamming_window --filterbank_type mel "
                 "--filterbank_size 80 --filterbank_nfft 512 --nfft 512 --log --auto_scale").split()

BINS_13 = [0, 4, 9, 16, 23, 32, 43, 56, 72, 90, 113, 140, 172, 210, 256]
BINS_80 = [0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 26, 27, 29, 31, 32,
           34, 36, 38, 40, 42, 44, 46, 48, 50, 53, 55, 57, 60, 63, 65, 68, 71, 74, 77, 80, 83, 87, 90, 94, 97, 101, 105,
           109, 113, 118, 122, 127, 132, 136, 141, 147, 152, 158, 163, 169, 175, 181, 188, 195, 201, 209, 216, 223, 231,
           239, 247, 256]


# ------------------------------------------------------------------------ independent implementation
def independent_mel_bins(num_filters: int, sample_rate: float, fft_size: int) -> list[int]:
    mel_max = 1127.0 * math.log(1.0 + (sample_rate / 2) / 700.0)
    step = mel_max / (num_filters + 1)
    return [int(700.0 * (math.exp(j * step / 1127.0) - 1.0) * (fft_size + 1) / sample_rate) for j in range(num_filters + 2)]


def independent_triangles(bins: list[int], length: int) -> np.ndarray:
    bank = np.zeros((len(bins) - 2, length))
    for i in range(len(bins) - 2):
        lo, centre, hi = bins[i], bins[i + 1], bins[i + 2]
        for k in range(lo, centre):
            bank[i, k] = (k - lo) / (centre - lo)
        for k in range(centre, hi):
            bank[i, k] = (hi - k) / (hi - centre)
    return bank


def independent_features(audio: np.ndarray, o: FeaturizerOptions) -> np.ndarray:
    """Streaming features tick by tick: chunks of input_buffer_size (last zero-padded), a zero-initialised window."""
    hop, width = o.input_buffer_size, o.window_size
    nfft = o.nfft or 1 << (width - 1).bit_length()
    padded = np.zeros(-(-len(audio) // hop) * hop)
    padded[: len(audio)] = audio
    if o.iir:  # y[n] = x[n] - a·x[n-1] over the whole stream, x[-1] = 0
        padded = padded - o.pre_emphasis * np.concatenate([[0.0], padded[:-1]])
    n = np.arange(width)
    hamming = 0.54 - 0.46 * np.cos(2 * np.pi * n / (width - 1))
    if o.filterbank_type == "mel":
        bank = independent_triangles(independent_mel_bins(o.filterbank_size, o.sample_rate, o.filterbank_nfft or nfft),
                                     nfft // 2 + 1)
    elif o.filterbank_type == "linear":
        spectrum = nfft // 2 + 1
        step = (o.sample_rate / 2) / (o.filterbank_size + 1)
        bank = independent_triangles([int(j * step * (spectrum + 1) / o.sample_rate)
                                      for j in range(o.filterbank_size + 2)], spectrum)
    window = np.zeros(width)
    out = []
    for start in range(0, len(padded), hop):
        window = np.concatenate([window[hop:], padded[start:start + hop]])
        frame = window * hamming if o.hamming_window else window
        spectrum = np.abs(np.fft.rfft(frame, n=nfft))
        if o.power_spec:
            spectrum = spectrum ** 2 / nfft
        features = spectrum if o.filterbank_type == "none" else bank @ spectrum
        if o.log:
            features = np.log(features + o.log_delta)
        if o.dct:
            size = len(features)
            k = np.arange(size)[:, None]
            features = np.cos(np.pi * (np.arange(size)[None, :] + 0.5) * k / size) @ features
        out.append(features)
    return np.array(out)


def streaming_features(graph, audio: np.ndarray) -> np.ndarray:
    """The graph run tick by tick by the reference interpreter (zero-padded last chunk)."""
    hop = graph.inputs[0].type.size
    padded = np.zeros(-(-len(audio) // hop) * hop, np.float32)
    padded[: len(audio)] = audio
    return Interpreter(graph).run(padded.reshape(-1, hop))


# ------------------------------------------------------------------------ structure and metadata
def test_tutorial_graph_is_ells_node_chain_with_ells_metadata():
    g = make_featurizer(TUTORIAL)
    assert [n.op for n in g.nodes] == ["Input", "Buffer", "Window", "FFT", "MelFilterBank", "Constant", "Add", "Log",
                                       "Output"]
    assert g.node("input").metadata == {"auto_scale": "True"}
    assert g.node("buffer").metadata == {"window_size": "512"}
    assert g.node("mel_filterbank").metadata == {"sample_rate": "16000", "filterbank_size": "80",
                                                 "filterbank_type": "mel", "num_filters": "80"}
    assert g.node("log").metadata == {"log": "true"}
    assert g.node("fft").attrs["nfft"] == 512 and g.node("fft").output.shape == (257,)
    np.testing.assert_array_equal(g.node("log_delta").attrs["value"], np.ones(80, np.float32))
    assert g.inputs[0].shape == (512,) and g.outputs[0].shape == (80,)
    meta = g.metadata
    assert (meta["sample_rate"], meta["input_size"], meta["window_size"], meta["output_size"]) == (16000, 512, 512, 80)
    assert meta["auto_scale"] is True and meta["drop_frames"] == 1 and meta["filterbank_nfft"] == 512
    assert featurizer_info(g) == {"sample_rate": 16000, "input_size": 512, "output_size": 80, "window_size": 512,
                                  "drop_frames": 1, "auto_scale": True}


def test_optional_nodes_follow_ell_order():
    g = make_featurizer(iir=True, power_spec=True, dct=True, log=True, hamming_window=True)
    assert [n.op for n in g.nodes] == ["Input", "IIR", "Buffer", "Window", "FFT", "Square", "Constant", "Div",
                                       "MelFilterBank", "Constant", "Add", "Log", "DCT", "Output"]
    assert g.node("iir").attrs["b"] == [1.0, -0.97] and g.node("iir").attrs["a"] == []
    assert g.node("iir").metadata == {"iir": "true"} and g.node("dct").metadata == {"dct": "true"}
    np.testing.assert_array_equal(g.node("nfft").attrs["value"], np.full(257, 512, np.float32))
    assert g.inputs[0].shape == (160,) and g.metadata["drop_frames"] == 3 and "auto_scale" not in g.node("input").metadata


def test_no_filterbank_outputs_the_spectrum_and_tags_the_fft_as_ell_does():
    g = make_featurizer(filterbank_type="none", window_size=256, input_buffer_size=256)
    assert g.outputs[0].shape == (129,) and g.node("fft").metadata["filterbank_type"] == "none"


def test_mel_bin_edges_equal_ell():
    assert tables.mel_bins(13, 16000.0, 512) == BINS_13 == ell_vectors("mel_filterbank_13.json")["bin_edges"]["13"]["bins"]
    assert tables.mel_bins(80, 16000.0, 512) == BINS_80
    assert independent_mel_bins(80, 16000, 512) == BINS_80  # the test's own implementation agrees too


def test_13_filter_featurizer_uses_ells_weights():
    d = ell_vectors("mel_filterbank_13.json")
    g = make_featurizer(filterbank_size=13, nfft=512, input_buffer_size=512)
    node = g.node("mel_filterbank")
    matrix = tables.filterbank_matrix("mel", 257, node.attrs["sample_rate"], node.attrs["num_filters"],
                                      node.attrs["fft_size"])
    np.testing.assert_allclose(matrix, np.array(d["weights"]), atol=d["tolerance"]["abs"], rtol=0)


@pytest.mark.parametrize("bad, option", [
    (dict(window_size=100), "--window_size"), (dict(nfft=500), "--nfft"), (dict(filterbank_nfft=384), "--filterbank_nfft"),
    (dict(filterbank_nfft=2048), "--filterbank_nfft"), (dict(filterbank_type="bark"), "--filterbank_type"),
    (dict(filterbank_size=0), "--filterbank_size"), (dict(log=True, log_delta=-1.0), "--log_delta"),
    (dict(sample_rate=-5), "--sample_rate"),
])
def test_bad_options_are_one_clear_error(bad, option):
    with pytest.raises(InputError, match=option):
        make_featurizer(**bad)


# ------------------------------------------------------------------------ features of real speech
def test_tutorial_features_of_real_speech_match_independent_implementation(real_speech):
    g = make_featurizer(TUTORIAL)
    ours = streaming_features(g, real_speech)
    theirs = independent_features(real_speech.astype(np.float64), TUTORIAL)
    assert ours.shape == theirs.shape == (-(-len(real_speech) // 512), 80)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert ours.max() > 3.0  # real speech energy, not silence
    # ELL's all-zero channel: filter 2 has edges (1, 2, 2), so the feature is exactly ln(1 + 0) = 0
    assert np.all(ours[:, 2] == 0.0) and np.all(ours[:, [1, 3]].max(axis=0) > 0.1)


@pytest.mark.parametrize("overrides", [
    dict(hamming_window=True, log=True),                                  # 512/160 overlap
    dict(iir=True, power_spec=True, log=True, dct=True, filterbank_size=40),
    dict(filterbank_type="linear", filterbank_size=30, log=True, hamming_window=True),
])
def test_overlapping_and_optional_features_match_independent_implementation(real_speech, overrides):
    options = FeaturizerOptions(**overrides)
    audio = real_speech[:32000]
    ours = streaming_features(make_featurizer(options), audio)
    theirs = independent_features(audio.astype(np.float64), options)
    assert ours.shape == theirs.shape == (200, options.output_size)
    scale = max(1.0, np.abs(theirs).max())  # the DCT sums 40 logs: compare relative to its range
    assert np.abs(ours - theirs).max() <= 1e-4 * scale


# ------------------------------------------------------------------------ command line
def run_kwsc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kwsc", *args], capture_output=True, text=True, cwd=cwd or REPO,
                          timeout=120)


def test_tutorial_command_writes_a_kwsc_that_loads(tmp_path):
    out = tmp_path / "sub" / "featurizer.kwsc"
    result = run_kwsc("make-featurizer", *TUTORIAL_ARGS, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "512 samples in" in result.stdout and "80 features out" in result.stdout
    g = load(out)
    assert g.metadata == make_featurizer(TUTORIAL).metadata
    assert g.node("input").metadata == {"auto_scale": "True"} and g.outputs[0].shape == (80,)
    assert json.loads(out.read_text())["format"] == "kwsc"


def test_default_output_and_kebab_case_spelling(tmp_path):
    result = run_kwsc("make-featurizer", "--window-size", "400", "--input-buffer-size", "160", "--filterbank-size", "20",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "featurizer.kwsc").exists()  # ELL's default name and format, as the tutorial expects
    g = load_ell(tmp_path / "featurizer.ell")
    assert (g.metadata["window_size"], g.metadata["nfft"], g.metadata["output_size"]) == (400, 512, 20)


@pytest.mark.parametrize("args, words", [
    (["--nfft", "500"], "--nfft: 500 is not a power of 2"),
    (["--window_size", "128"], "--window_size"),
    (["--filterbank_type", "bark"], "--filterbank_type"),
    (["--sample_rate", "fast"], "invalid int value"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, words):
    result = run_kwsc("make-featurizer", *args, "-o", str(tmp_path / "f.kwsc"))
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "f.kwsc").exists()


def test_tutorial_command_writes_an_ell_file_that_reads_back(tmp_path, real_speech):
    pytest.importorskip("kwsc.backends.ell")
    from kwsc.backends.batch import featurize_clips
    from kwsc.models import load_model

    out = tmp_path / "featurizer.ell"
    result = run_kwsc("make-featurizer", *TUTORIAL_ARGS, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().lstrip().startswith("{") and '"InputNode<float>"' in out.read_text()
    imported = load_model(out)
    imported.metadata.clear()  # what a reader finds in ELL's node metadata alone
    assert featurizer_info(imported) == featurizer_info(make_featurizer(TUTORIAL))
    ours, theirs = featurize_clips(make_featurizer(TUTORIAL), [real_speech])[0], featurize_clips(imported, [real_speech])[0]
    np.testing.assert_allclose(theirs, ours, rtol=1e-6, atol=1e-6)
