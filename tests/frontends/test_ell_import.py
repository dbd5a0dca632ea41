"""The .ell importer: load_ell(emit_ell(g)) computes what g computes on real speech; ELL's own spellings
(zero-constant triggers, FC + bias layers, dangling commas, unreferenced nodes) are read; bad files give one
clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kwsc.backends.ell import emit_ell, save_ell
from kwsc.backends.reference import Interpreter
from kwsc.errors import FormatError, InputError, KwscError, UnsupportedOpError
from kwsc.frontends.ell import load_ell
from kwsc.models import load_model
from tests.backends.ell_graphs import every_op_graph, gru_classifier, tutorial_featurizer


def round_trip(graph, tmp_path, name="model.ell"):
    """Write and import again, clean-up included (what ``kwsc import`` does)."""
    path = tmp_path / name
    save_ell(graph, path)
    return load_model(path)


@pytest.fixture(scope="module")
def speech_frames(real_speech):
    """The real speech cut into the featurizer's 512-sample chunks (T, 512)."""
    count = len(real_speech) // 512
    return real_speech[: count * 512].reshape(count, 512)


@pytest.fixture(scope="module")
def features(speech_frames):
    return Interpreter(tutorial_featurizer()).run(speech_frames)


def test_featurizer_round_trip_on_real_speech(tmp_path, speech_frames):
    original = tutorial_featurizer()
    loaded = round_trip(original, tmp_path)
    assert [n.op for n in loaded.nodes] == [n.op for n in original.nodes]
    expected = Interpreter(original).run(speech_frames)
    got = Interpreter(loaded).run(speech_frames)
    assert expected.shape == (156, 80) and expected.max() > 1.0  # real signal, not silence
    np.testing.assert_array_equal(got, expected)
    # metadata comes back: node metadata as strings, graph metadata with its types
    assert loaded.input_nodes[0].metadata == {"auto_scale": "True"}
    assert loaded.find("MelFilterBank")[0].metadata["filterbank_type"] == "mel"
    assert loaded.find("Log")[0].metadata == {"log": "true"}
    assert loaded.metadata == original.metadata
    assert loaded.find("MelFilterBank")[0].attrs == original.find("MelFilterBank")[0].attrs
    # emitting the imported graph again gives the same file
    assert emit_ell(loaded) == emit_ell(original)


@pytest.mark.parametrize("vad", [False, True], ids=["gru", "gru_vad"])
def test_gru_classifier_round_trip_on_real_speech_features(tmp_path, features, vad):
    original = gru_classifier(vad=vad)
    loaded = round_trip(original, tmp_path)
    ops = [n.op for n in loaded.nodes if n.op != "Constant"]
    assert ops == (["Input"] + ["VAD"] * vad + ["GRU", "GRU", "Dense", "LogSoftmax", "Output"])
    grus = loaded.find("GRU")
    if vad:  # one VAD drives both reset triggers
        assert grus[0].inputs[1] is grus[1].inputs[1] is loaded.find("VAD")[0].outputs[0]
    else:  # the ConstantNode<int> [0] placeholder trigger is read back as "no trigger"
        assert all(g.inputs[1] is None for g in grus)
    assert len(loaded.find("Constant")) == 10  # 4 per GRU layer + dense weights and bias: no leftovers
    expected = Interpreter(original).run(features)
    got = Interpreter(loaded).run(features)
    # weights travel at float precision (7 significant digits, like ELL), so outputs agree to ~1e-6
    assert np.abs(got - expected).max() < 2e-5
    assert np.allclose(np.exp(got).sum(axis=-1), 1.0, atol=1e-4)
    if vad:  # the VAD really reset the GRUs on this speech: the outputs differ from the untriggered model
        plain = Interpreter(gru_classifier(vad=False)).run(features)
        assert np.abs(plain - expected).max() > 1e-3


def test_every_mapped_op_round_trips(tmp_path):
    original = every_op_graph()
    loaded = round_trip(original, tmp_path)
    assert sorted(n.op for n in loaded.nodes) == sorted(n.op for n in original.nodes)
    xs = np.random.default_rng(7).standard_normal((10, 64)).astype(np.float32)
    expected, got = Interpreter(original).run(xs), Interpreter(loaded).run(xs)
    for name in ("output", "ints"):
        np.testing.assert_allclose(got[name], expected[name], atol=2e-6)
    assert loaded.find("IIR")[0].metadata == {"iir": "true"}
    assert loaded.find("LSTM")[0].outputs[1].uses  # the cell-state output port is wired


def ell_style_file() -> str:
    """The GRU model written the way ELL's own tools leave it: version-2 InputNode without metadata,
    ELL's dangling comma after "_version" in activations, an unreferenced sink and unknown node."""
    text = emit_ell(gru_classifier(hidden=4, layers=1))
    text = text.replace('"_version": "0"\n      }', '"_version": "0",\n\n      }')
    assert text.count('"_version": "0",\n\n      }') == 2  # tanh and sigmoid activations
    root = json.loads(text.replace(",\n\n", "\n"), object_pairs_hook=list)
    nodes = dict(dict(root)["model"])["nodes"]
    assert dict(nodes[0])["_type"] == "InputNode<float>" and dict(nodes[0])["_version"] == "2"
    sink = '{\n      "_type": "SinkNode<float>",\n      "_version": "6",\n      "id":       "2000"\n    }'
    with_sink = text.replace('    }]\n  },\n  "inputNames"', f"    }}, \n    {sink}]\n  }},\n  \"inputNames\"")
    assert with_sink.count("SinkNode") == 1
    return with_sink


def test_ell_spellings_are_read(tmp_path):
    path = tmp_path / "ell_style.ell"
    path.write_text(ell_style_file())
    loaded = load_model(path)
    gru = loaded.find("GRU")[0]
    assert gru.inputs[1] is None and gru.attrs["activation"] == "tanh"
    assert gru.attrs["recurrent_activation"] == "sigmoid"
    dense = loaded.find("Dense")[0]
    assert dense.inputs[2] is not None and dense.inputs[2].shape == (12,)  # BiasLayerNode folded in
    assert gru.meta["ell_id"] == "1006"
    x = np.random.default_rng(3).standard_normal((5, 80)).astype(np.float32)
    original = gru_classifier(hidden=4, layers=1)
    np.testing.assert_allclose(Interpreter(loaded).run(x), Interpreter(original).run(x), atol=1e-5)


def test_reader_translates_one_to_one_and_the_import_cleanup_fuses(tmp_path):
    """load_ell reads FC + bias layer + softmax layer + log as four ops; load_model (kwsc import) runs the
    clean-up that gives back the Dense with bias and the LogSoftmax, with the same numbers."""
    path = tmp_path / "gru.ell"
    save_ell(gru_classifier(hidden=8, layers=1), path)
    raw = load_ell(path)
    assert [n.op for n in raw.nodes if n.op not in ("Constant", "Input", "Output")] == [
        "GRU", "Dense", "Add", "Softmax", "Log"]
    assert [n.op for n in load_model(path, raw=True).nodes] == [n.op for n in raw.nodes]
    cleaned = load_model(path)
    assert [n.op for n in cleaned.nodes if n.op not in ("Constant", "Input", "Output")] == [
        "GRU", "Dense", "LogSoftmax"]
    x = np.random.default_rng(2).standard_normal((6, 80)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(raw).run(x), Interpreter(cleaned).run(x), atol=1e-6)
    assert emit_ell(raw) != emit_ell(cleaned) and emit_ell(load_model(path)) == path.read_text()


def test_softmax_without_log_and_unfolded_bias(tmp_path):
    from kwsc.ir import Graph

    g = Graph()
    x = g.add_input([6])
    dense = g.op1("Dense", x, g.add_constant(np.eye(6, dtype=np.float32)), g.add_constant(np.arange(6, dtype=np.float32)))
    g.add_output(g.op1("Softmax", dense))
    g.add_output(dense, name="logits")
    loaded = round_trip(g, tmp_path)
    assert [n.op for n in loaded.nodes if n.op != "Constant"] == ["Input", "Dense", "Softmax", "Output", "Output"]
    xs = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    got, expected = Interpreter(loaded).run(xs), Interpreter(g).run(xs)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)


def test_unknown_node_type_is_one_clear_line(tmp_path):
    path = tmp_path / "odd.ell"
    path.write_text(emit_ell(tutorial_featurizer()).replace("HammingWindowNode<float>", "BlackmanWindowNode<float>"))
    with pytest.raises(UnsupportedOpError) as err:
        load_ell(path)
    message = str(err.value)
    assert "BlackmanWindowNode<float>" in message and "node 1002" in message and str(path) in message
    assert "supported:" in message and "GRUNode" in message and "\n" not in message


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.ell"
    text = emit_ell(tutorial_featurizer())
    path.write_text(text.replace('"fftSize": 512', '"fftSize": 512 512'))
    with pytest.raises(FormatError) as err:
        load_ell(path)
    line = text[: text.index('"fftSize": 512')].count("\n") + 1
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:") and "malformed JSON" in message and "\n" not in message
    path.write_text(text[: len(text) // 2])
    with pytest.raises(FormatError, match=r"broken\.ell:\d+:\d+: malformed JSON"):
        load_ell(path)


def test_missing_file_and_non_map_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_ell(tmp_path / "absent.ell")
    path = tmp_path / "list.ell"
    path.write_text("[1, 2]")
    with pytest.raises(FormatError, match="not an ELL model"):
        load_ell(path)
    path.write_text(emit_ell(tutorial_featurizer()).replace('"1004.output"', '"9999.output"'))
    with pytest.raises(KwscError, match="9999"):
        load_ell(path)


def test_load_model_dispatches_ell(tmp_path):
    path = tmp_path / "f.ell"
    save_ell(tutorial_featurizer(), path)
    assert [n.op for n in load_model(path).nodes][:3] == ["Input", "Buffer", "Window"]


def kwsc(*args) -> "subprocess.CompletedProcess":
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)


def test_cli_make_featurizer_import_emit_round_trip(tmp_path):
    """The seed's tutorial featurizer as .ell → .kwsc → .ell gives back the identical file."""
    tutorial = ["--sample_rate", "16000", "--window_size", "512", "--input_buffer_size", "512", "--hamming_window",
                "--filterbank_type", "mel", "--filterbank_size", "80", "--filterbank_nfft", "512", "--nfft", "512",
                "--log", "--auto_scale"]
    first, native, second = tmp_path / "featurizer.ell", tmp_path / "f.kwsc", tmp_path / "f.ell"
    for args in (["make-featurizer", *tutorial, "-o", first], ["import", first, "-o", native],
                 ["emit", native, "--target", "ell", "-o", second]):
        res = kwsc(*args)
        assert res.returncode == 0, res.stderr
    assert first.read_text() == emit_ell(tutorial_featurizer())
    assert second.read_text() == first.read_text()


def test_cli_import_raw_keeps_the_readers_one_to_one_graph(tmp_path):
    from kwsc.ir import load

    path = tmp_path / "gru.ell"
    save_ell(gru_classifier(hidden=4, layers=1), path)
    for flags, expected in (([], ["GRU", "Dense", "LogSoftmax"]),
                            (["--raw"], ["GRU", "Dense", "Add", "Softmax", "Log"])):
        res = kwsc("import", path, *flags, "-o", tmp_path / "g.kwsc")
        assert res.returncode == 0, res.stderr
        ops = [n.op for n in load(tmp_path / "g.kwsc").nodes if n.op not in ("Constant", "Input", "Output")]
        assert ops == expected, flags


def test_cli_reports_a_broken_ell_file_in_one_line(tmp_path):
    path = tmp_path / "broken.ell"
    path.write_text(emit_ell(tutorial_featurizer())[:2000])
    res = kwsc("import", path, "-o", tmp_path / "x.kwsc")
    assert res.returncode == 2 and not (tmp_path / "x.kwsc").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kwsc: error: ") and "malformed JSON" in lines[0]
    assert f"{path}:" in lines[0]


def test_layer_nodes_keep_non_flat_shapes(tmp_path):
    from kwsc.ir import Graph

    g = Graph()
    x = g.add_input([1, 6])
    logits = g.op1("Dense", x, g.add_constant(np.ones((4, 6), np.float32)), activation="log_softmax")
    g.add_output(g.op1("Softmax", logits))
    loaded = round_trip(g, tmp_path)
    assert loaded.outputs[0].shape == (1, 4)
    xs = np.random.default_rng(1).standard_normal((2, 1, 6)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(loaded).run(xs), Interpreter(g).run(xs), atol=1e-6)


@pytest.mark.parametrize("reference, expected", [("1000.output[2:6]", slice(2, 6)), ("1000.output[3]", slice(3, 4)),
                                                 ("1000.output[0:8]", slice(0, 8))])
def test_port_element_ranges_are_resolved(tmp_path, reference, expected):
    from kwsc.ir import Graph

    g = Graph()
    g.add_output(g.op1("Exp", g.add_input([8])))
    path = tmp_path / "ranges.ell"
    path.write_text(emit_ell(g).replace('"input":         "1000.output"', f'"input":         "{reference}"'))
    loaded = load_ell(path)
    x = np.arange(8, dtype=np.float32) / 8
    np.testing.assert_allclose(Interpreter(loaded).step(x), np.exp(x[expected]), rtol=1e-6)
    path.write_text(emit_ell(g).replace('"1000.output"', '"{1000.output[0:2], 1000.output[4:6]}"'))
    with pytest.raises(UnsupportedOpError, match="port reference"):
        load_ell(path)


def test_error_position_is_right_in_a_file_with_ells_dangling_commas(tmp_path):
    text = ell_style_file()
    broken = text.replace('"hiddenUnits": 4', '"hiddenUnits": 4 4')
    path = tmp_path / "ell_style_broken.ell"
    path.write_text(broken)
    line = broken[: broken.index('"hiddenUnits": 4 4')].count("\n") + 1
    with pytest.raises(FormatError, match=rf"ell_style_broken\.ell:{line}:\d+: malformed JSON"):
        load_ell(path)


@pytest.mark.parametrize("options", [
    {"iir": True, "power_spec": True, "log": True, "dct": True, "filterbank_size": 13},
    {"filterbank_type": "linear", "filterbank_size": 20, "hamming_window": True, "log": True},
    {"filterbank_type": "none", "input_buffer_size": 256, "window_size": 400},
], ids=["mfcc_like", "linear", "no_bank"])
def test_featurizer_option_variants_round_trip_on_real_speech(tmp_path, real_speech, options):
    from kwsc.frontends.featurizer import make_featurizer

    original = make_featurizer(**options)
    loaded = round_trip(original, tmp_path)
    hop = original.inputs[0].shape[0]
    chunks = real_speech[: (len(real_speech) // hop) * hop].reshape(-1, hop)[:120]
    np.testing.assert_array_equal(Interpreter(loaded).run(chunks), Interpreter(original).run(chunks))
    assert emit_ell(loaded) == emit_ell(original)
