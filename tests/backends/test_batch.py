"""The batch featurizer equals the streaming reference interpreter; clip framing follows ELL's AudioTransform."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.batch import BatchFeaturizer, featurize_clips
from kwsc.backends.framing import fed_chunk_count, frames_of
from kwsc.backends.reference import Interpreter
from kwsc.errors import InputError
from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer
from kwsc.ir import Graph, verify
from tests.conftest import read_wav_float

TUTORIAL = dict(input_buffer_size=512, hamming_window=True, filterbank_size=80, filterbank_nfft=512, nfft=512, log=True,
                auto_scale=True)
CONFIGS = {
    "tutorial": TUTORIAL,
    "overlap_512_160": dict(hamming_window=True, log=True),
    "iir_power_dct": dict(iir=True, power_spec=True, log=True, dct=True, hamming_window=True),
    "linear": dict(filterbank_type="linear", filterbank_size=30, log=True, input_buffer_size=256, window_size=400),
    "spectrum_only": dict(filterbank_type="none", input_buffer_size=256, window_size=256),
}


def assert_features_close(got: np.ndarray, ref: np.ndarray) -> None:
    """Within 1e-5 relative, plus 1e-6 of the feature range for values near zero (float32 FFT rounding)."""
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(ref).max())))


@pytest.fixture(scope="module")
def clips(speech_dir) -> list[np.ndarray]:
    """Real clips of different lengths (Speech Commands has some shorter than one second), plus edge cases."""
    files = sorted(speech_dir.glob("[a-z]*/*.wav"))[::97][:12]
    real = [read_wav_float(f) for f in files]
    return real + [real[0][:700], real[1][:513], real[2][:512], np.zeros(0, np.float32), real[3][:9000]]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_batch_run_equals_streaming_reference(config, real_speech):
    graph = make_featurizer(**CONFIGS[config])
    batch = BatchFeaturizer(graph)
    assert batch.fast, batch.why_slow
    hop = graph.inputs[0].shape[0]
    rng = np.random.default_rng(7)
    for audio in (real_speech, rng.uniform(-0.5, 0.5, 20000).astype(np.float32)):
        chunks = audio[: len(audio) // hop * hop].reshape(-1, hop)
        assert_features_close(batch.run(chunks), Interpreter(graph).run(chunks))
    # several independent streams at once, each from its own zero state
    streams = rng.standard_normal((12, 3, hop)).astype(np.float32) * 0.2
    assert_features_close(batch.run(streams), Interpreter(graph, batch_shape=(3,)).run(streams))


def per_clip_streaming(graph, clips, drop):
    """The reference: a fresh interpreter per clip fed the chunks AudioTransform would feed it."""
    hop = graph.inputs[0].shape[0]
    return [Interpreter(graph).run(frames_of(c, hop, drop)) if fed_chunk_count(len(c), hop, drop)
            else np.zeros((0, graph.outputs[0].shape[0]), np.float32) for c in clips]


@pytest.mark.parametrize("config", ["tutorial", "overlap_512_160", "iir_power_dct"])
def test_featurize_clips_equals_per_clip_streaming(config, clips):
    graph = make_featurizer(**CONFIGS[config])
    drop = graph.metadata["drop_frames"]
    got = featurize_clips(graph, clips)
    ref = per_clip_streaming(graph, clips, drop)
    assert [len(g) for g in got] == [len(r) for r in ref]
    for g, r in zip(got, ref):
        if len(r):
            assert_features_close(g, r)
    # small blocks and one FFT worker change nothing
    again = BatchFeaturizer(graph, workers=1, block_frames=7).featurize_clips(clips)
    for g, a in zip(got, again):
        np.testing.assert_array_equal(g, a)


def test_frame_counts_follow_ells_drop_rule():
    one_second = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    tutorial = make_featurizer(**TUTORIAL)
    # 32 chunks (the last 128 samples + 384 zeros), the first dropped → 31
    assert featurize_clips(tutorial, [one_second])[0].shape == (31, 80)
    overlap = make_featurizer(hamming_window=True, log=True)
    # 16000 / 160 = 100 chunks exactly (no padded chunk), drop int(512 / 160) = 3 → 97
    assert overlap.metadata["drop_frames"] == 3
    assert featurize_clips(overlap, [one_second])[0].shape == (97, 40)
    assert [fed_chunk_count(n, 512, 1) for n in (0, 512, 513, 1024, 1025)] == [0, 0, 1, 1, 2]


def test_dropped_chunk_is_never_fed():
    """Changing the first 512 samples (the dropped chunk) changes nothing with 512/512; the second chunk does."""
    tutorial = make_featurizer(**TUTORIAL)
    clip = np.random.default_rng(2).standard_normal(4096).astype(np.float32) * 0.1
    louder = clip.copy()
    louder[:512] *= 10
    a, b = featurize_clips(tutorial, [clip, louder])
    np.testing.assert_array_equal(a, b)
    louder[512] += 1.0
    assert not np.array_equal(featurize_clips(tutorial, [louder])[0][0], a[0])


def test_frames_of_pads_with_seeded_noise_like_audio_transform():
    clip = np.ones(16000, np.float32)
    chunks = frames_of(clip, 512, 1, output_window_size=40, rng=3)
    assert chunks.shape == (40, 512) and chunks.dtype == np.float32
    np.testing.assert_array_equal(chunks[:30], 1.0)
    np.testing.assert_array_equal(chunks[30, :128], 1.0)
    np.testing.assert_array_equal(chunks[30, 128:], 0.0)
    noise = chunks[31:]
    assert 0.7 * 8 / 32767 < noise.std() < 1.3 * 8 / 32767
    np.testing.assert_array_equal(noise, frames_of(clip, 512, 1, output_window_size=40, rng=3)[31:])
    assert frames_of(clip, 512, 1, output_window_size=31).shape == (31, 512)
    with pytest.raises(InputError, match="1-D"):
        frames_of(np.zeros((2, 3)), 512)


def test_graph_with_state_after_the_buffer_falls_back_to_the_interpreter(clips):
    """An IIR on the spectrum is per-frame state: the batch path must notice and still give the same numbers."""
    g = make_featurizer(**CONFIGS["overlap_512_160"])
    log = g.node("log")
    smoothed = g.add("IIR", [log.output], {"b": [0.5], "a": [-0.5]}, name="smooth", after=log)
    g.replace_all_uses_with(log.output, smoothed.output)
    smoothed.set_input(0, log.output)
    verify(g)
    batch = BatchFeaturizer(g)
    assert not batch.fast and "smooth" in batch.why_slow
    got = batch.featurize_clips(clips[:4])
    for a, b in zip(got, per_clip_streaming(g, clips[:4], 3)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_graph_without_buffer_frames_the_chunks_themselves():
    g = Graph("spectrum")
    x = g.add_input([256])
    g.add_output(g.op1("Log", g.op1("Add", g.op1("FFT", g.op1("Window", x)), g.add_constant(np.ones(129)))))
    verify(g)
    batch = BatchFeaturizer(g)
    assert batch.fast and batch.window_size == 256 and batch.drop_frames == 0
    chunks = np.random.default_rng(4).standard_normal((9, 256)).astype(np.float32)
    assert_features_close(batch.run(chunks), Interpreter(g).run(chunks))


def test_transform_frames_checks_shapes():
    batch = BatchFeaturizer(make_featurizer(**TUTORIAL))
    assert batch.transform_frames(np.zeros((0, 512))).shape == (0, 80)
    with pytest.raises(InputError, match=r"\(N, 512\)"):
        batch.transform_frames(np.zeros((3, 160)))
    with pytest.raises(InputError, match="512"):
        batch.run(np.zeros((3, 160)))
    assert featurize_clips(make_featurizer(**TUTORIAL), []) == []


def test_options_object_and_overrides_agree():
    assert make_featurizer(FeaturizerOptions(**TUTORIAL)).metadata == make_featurizer(**TUTORIAL).metadata


@pytest.mark.filterwarnings("ignore")
def test_batch_equals_streaming_for_random_featurizer_options():
    """Random option combinations (hop, window, nfft, bank, log, DCT, IIR, power): batch == reference."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=12, deadline=None, derandomize=True)
    @given(hop=st.sampled_from([64, 100, 128, 256]), extra=st.sampled_from([0, 1, 2, 37]),
           bank=st.sampled_from(["mel", "linear", "none"]), filters=st.integers(4, 24),
           flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
           seed=st.integers(0, 2**16))
    def check(hop, extra, bank, filters, flags, seed):
        hamming, log, dct, iir, power = flags
        options = FeaturizerOptions(input_buffer_size=hop, window_size=hop + extra * hop // 2, filterbank_type=bank,
                                    filterbank_size=filters, hamming_window=hamming, log=log, dct=dct, iir=iir,
                                    power_spec=power)
        graph = make_featurizer(options)
        chunks = np.random.default_rng(seed).normal(0, 0.3, (9, 2, hop)).astype(np.float32)
        batch = BatchFeaturizer(graph, block_frames=5)
        assert batch.fast
        assert_features_close(batch.run(chunks), Interpreter(graph, batch_shape=(2,)).run(chunks))

    check()
