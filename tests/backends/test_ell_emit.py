"""The .ell emitter: ELL's archive layout (checked against a real ELL-written file), node types, versions,
field order (ell-behaviour.md §4.5), the GRU excerpt of §4.6, number formatting, metadata and errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends.ell import emit_ell, save_ell
from kwsc.backends.ell_json import Archived, Primitive, format_number, render
from kwsc.errors import BackendError
from kwsc.ir import Graph
from tests.backends.ell_graphs import every_op_graph, gru_classifier, hand_built_featurizer, tutorial_featurizer
from tests.conftest import TESTDATA

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tutorial_featurizer.ell"
SAMPLE = TESTDATA / "protonn_sample.ell"


@pytest.fixture(scope="module")
def sample_text() -> str:
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} not present")
    return SAMPLE.read_text()


def pairs(text: str):
    return json.loads(text, object_pairs_hook=list)


def as_archived(obj, _parent_type: str = "") -> Archived:
    """Parsed pairs → the writer's object model, using only what a reader knows about ELL's primitives:
    ids, port ``nodeId``/``input`` strings, Variant values and the Map's id/element lists."""
    fields = dict(obj)
    out = Archived(fields["_type"], fields["_version"])
    for key, value in obj[2:]:
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            out.add(key, as_archived(value, out.type))
        elif isinstance(value, list) and value and isinstance(value[0], list):
            out.add(key, [as_archived(item) for item in value])
        elif key in ("inputIds", "outputElements"):
            out.add(key, [Primitive(item) for item in value])
        elif key in ("id", "nodeId") or (key == "input" and isinstance(value, str)) or \
                (key == "value" and out.type == "Variant"):
            out.add(key, Primitive(value))
        else:
            out.add(key, value)
    return out


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
LINE = re.compile(r'^(?P<indent> *)(?:"(?P<key>[^"]+)": (?P<gap> *))?(?P<rest>.*)$')


def check_layout(text: str) -> None:
    """ELL's archive layout rules, line by line (asserted on the real file too, so the rules are ELL's)."""
    lines = text.split("\n")
    assert lines[0] == "{" and lines[-1] == "}", "no newline after the final brace"
    parsed = [LINE.match(line) for line in lines]
    for i, m in enumerate(parsed[:-1]):
        indent, key, gap, rest = len(m["indent"]), m["key"], m["gap"], m["rest"]
        nxt = parsed[i + 1]
        n_indent, n_key, n_rest = len(nxt["indent"]), nxt["key"], nxt["rest"]
        assert indent % 2 == 0 and "\t" not in lines[i]
        if key is not None and gap:  # a primitive object repeats the indent after the colon
            assert len(gap) == indent, lines[i]
        if rest == "{":  # every object starts with its type, one level deeper
            assert n_key == "_type" and n_indent == indent + 2, lines[i:i + 2]
        elif rest == "[":  # object arrays keep the key's indent; arrays of primitive objects go one deeper
            assert (n_rest == "{" and n_indent == indent) or (n_key is None and n_indent == indent + 2), lines[i:i + 2]
        elif rest == "}, " or (key is None and rest.endswith('", ')):  # array elements: ", " then newline
            assert n_indent == indent and (n_rest == "{" or n_rest.startswith('"')), lines[i:i + 2]
        elif key is None and rest.startswith('"') and rest.rstrip(",").endswith("]"):  # last primitive element
            more = rest.endswith(",")  # then the next field follows at the array key's indent, else the object closes
            assert (n_indent, n_key is not None) == ((indent - 2, True) if more else (indent - 4, False)), lines[i:i + 2]
        elif rest.endswith(","):  # fields are separated by ",\n" and share the indent
            assert n_key is not None and n_indent == indent, lines[i:i + 2]
        elif key is not None:  # the last field of an object: the object closes one level up
            assert n_key is None and n_rest.startswith("}") and n_indent == indent - 2, lines[i:i + 2]
        if rest.startswith("}") and rest not in ("}", "},", "}, ", "}]", "}],"):
            raise AssertionError(f"unexpected closing line {lines[i]!r}")


def test_writer_reproduces_a_real_ell_file_byte_for_byte(sample_text):
    assert render(as_archived(pairs(sample_text))) == sample_text


@pytest.mark.parametrize("graph", [tutorial_featurizer, lambda: gru_classifier(vad=True, hidden=4, layers=2)],
                         ids=["featurizer", "gru_vad"])
def test_emitted_layout_follows_the_real_file(sample_text, graph):
    text = emit_ell(graph())
    # Re-laying out the parsed file with ELL's rules changes nothing (numbers aside: the parser reads floats
    # as doubles, the file holds floats at 7 digits) ...
    assert NUMBER.sub("N", render(as_archived(pairs(text)))) == NUMBER.sub("N", text)
    # ... and it keeps the line rules the ELL-written sample follows.
    check_layout(sample_text)
    check_layout(text)
    assert text.startswith('{\n  "_type": "Map",\n  "_version": "')
    assert '      "id":       "1000",\n' in text and "    }, \n    {\n" in text and "}]\n  },\n" in text


def test_tutorial_featurizer_matches_golden_file():
    text = emit_ell(tutorial_featurizer())
    if os.environ.get("KWSC_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"{GOLDEN} missing: run with KWSC_UPDATE_GOLDEN=1 once"
    assert text == GOLDEN.read_text()


# Field lists after the common prefix (_type, _version, id, [metadata]), ell-behaviour.md §4.5.
FIELDS = {
    "InputNode": ["layout"], "OutputNode": ["input", "layout"], "ConstantNode": ["values", "layout"],
    "BufferNode": ["input", "windowSize"], "HammingWindowNode": ["input"], "FFTNode": ["input", "fftSize"],
    "MelFilterBankNode": ["input", "filters"], "LinearFilterBankNode": ["input", "filters"],
    "BinaryOperationNode": ["input1", "input2", "inputLayout1", "inputLayout2", "operation", "outputLayout",
                            "padding"],
    "UnaryOperationNode": ["input", "operation"], "DCTNode": ["input", "numFilters"],
    "IIRFilterNode": ["input", "filter"], "ReinterpretLayoutNode": ["input", "outputLayout"],
    "TypeCastNode": ["input"], "VoiceActivityDetectorCodeNode": ["input", "vad"],
    "GRUNode": ["input", "resetTrigger", "hiddenUnits", "inputWeights", "hiddenWeights", "inputBias", "hiddenBias",
                "activation", "activation"],
    "LSTMNode": ["input", "resetTrigger", "hiddenUnits", "inputWeights", "hiddenWeights", "inputBias",
                 "hiddenBias", "activation", "activation"],
    "RNNNode": ["input", "resetTrigger", "hiddenUnits", "inputWeights", "hiddenWeights", "inputBias", "hiddenBias",
                "activation"],
    **{f"{k}LayerNode": ["input", "inputLayout", "outputLayout", "inputShape", "layer"]
       for k in ("FullyConnected", "Bias", "Softmax")},
}
VERSIONS = {"InputNode": "2", "OutputNode": "2", "ConstantNode": "8", "BinaryOperationNode": "7",
            "ReinterpretLayoutNode": "8", "FullyConnectedLayerNode": "5", "BiasLayerNode": "5",
            "SoftmaxLayerNode": "5"}
LAYER_FIELDS = ["inputPaddingScheme", "inputPaddingSize", "outputShape", "outputPaddingScheme", "outputPaddingSize"]
SUB_OBJECT_FIELDS = {
    "MelFilterBank": ["windowSize", "rate", "numFilters", "begin", "end", "offset", "fftSize"],
    "LinearFilterBank": ["windowSize", "rate", "numFilters", "begin", "end", "offset"],
    "IIRFilter<float>": ["b", "a"],
    "VoiceActivityDetector": ["windowSize", "sampleRate", "frameDuration", "tauUp", "tauDown", "largeInput",
                              "gainAtt", "thresholdUp", "thresholdDown", "levelThreshold"],
    "FullyConnectedLayer<float>": LAYER_FIELDS + ["weights_rows", "weights_columns", "weights_values"],
    "BiasLayer<float>": LAYER_FIELDS + ["bias"], "SoftmaxLayer<float>": LAYER_FIELDS,
    "MemoryLayout": ["size", "extent", "offset", "order", "increment"],
    "InputPort<float>": ["nodeId", "name", "type", "input"], "InputPort<int>": ["nodeId", "name", "type", "input"],
    "InputPortBase": ["nodeId", "name", "type", "input"],
}


def all_objects(obj):
    yield obj
    for _, value in obj[2:]:
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            yield from all_objects(value)
        elif isinstance(value, list) and value and isinstance(value[0], list):
            for item in value:
                yield from all_objects(item)


@pytest.mark.parametrize("graph", [tutorial_featurizer, lambda: gru_classifier(vad=True, hidden=4),
                                   lambda: gru_classifier(hidden=4), every_op_graph],
                         ids=["featurizer", "gru_vad", "gru", "every_op"])
def test_field_order_type_names_and_versions(graph):
    root = pairs(emit_ell(graph()))
    nodes = dict(dict(root)["model"])["nodes"]
    seen_types = set()
    for index, node in enumerate(nodes):
        keys = [k for k, _ in node]
        fields = dict(node)
        base = fields["_type"].split("<")[0]
        seen_types.add(base)
        assert keys[:3] == ["_type", "_version", "id"] and fields["id"] == str(1000 + index)
        has_metadata = keys[3] == "metadata"
        assert keys[3 + has_metadata:] == FIELDS[base], base
        version = VERSIONS.get(base, "0")
        expected = version if not has_metadata or int(version) >= 3 else "3"
        assert fields["_version"] == expected, base
    for obj in all_objects(root):
        fields = [k for k, _ in obj]
        if fields[0] == "_type" and dict(obj)["_type"] in SUB_OBJECT_FIELDS:
            assert fields[2:] == SUB_OBJECT_FIELDS[dict(obj)["_type"]], dict(obj)["_type"]
    assert seen_types <= set(FIELDS)


def without_metadata(root):
    """The archive minus every metadata field (the featurizer frontend adds more graph metadata)."""
    if isinstance(root, list) and root and isinstance(root[0], tuple):
        return [(k, without_metadata(v)) for k, v in root if k != "metadata" and k != "_version"]
    if isinstance(root, list):
        return [without_metadata(v) for v in root]
    return root


def test_featurizer_frontend_writes_the_nodes_of_section_1_2():
    ours = pairs(emit_ell(tutorial_featurizer()))
    assert without_metadata(ours) == without_metadata(pairs(emit_ell(hand_built_featurizer())))


@pytest.mark.parametrize("graph", [tutorial_featurizer, hand_built_featurizer], ids=["frontend", "hand_built"])
def test_tutorial_featurizer_nodes_match_section_4_6(graph):
    root = pairs(emit_ell(graph()))
    top = dict(root)
    nodes = [dict(n) for n in dict(top["model"])["nodes"]]
    assert [n["_type"] for n in nodes] == [
        "InputNode<float>", "BufferNode<float>", "HammingWindowNode<float>", "FFTNode<float>",
        "MelFilterBankNode<float>", "ConstantNode<float>", "BinaryOperationNode<float>", "UnaryOperationNode<float>",
        "OutputNode<float>"]
    assert [n["_version"] for n in nodes] == ["3", "3", "0", "0", "3", "8", "7", "3", "2"]
    assert dict(nodes[4]["filters"]) == {"_type": "MelFilterBank", "_version": "0", "windowSize": 257, "rate": 16000,
                                         "numFilters": 80, "begin": 0, "end": 80, "offset": 0, "fftSize": 512}
    assert nodes[5]["values"] == [1] * 80 and nodes[6]["operation"] == "add" and nodes[7]["operation"] == "log"
    assert dict(nodes[6]["input1"])["input"] == "1004.output" and dict(nodes[6]["input2"])["input"] == "1005.output"
    assert top["inputNames"] == ["input"] and top["inputIds"] == ["1000"]
    assert top["outputNames"] == ["output"] and top["outputElements"] == ["1008.output"]
    # Map metadata: typed Variants; the Map and the Model say version 3 when there is metadata.
    assert top["_version"] == "3" and dict(top["model"])["_version"] == "3"
    entries = {dict(e)["k"]: dict(dict(e)["v"]) for e in dict(top["metadata"])["data"]}
    assert entries["sample_rate"] == {"_type": "Variant", "_version": "0", "type": "int", "value": 16000}
    assert entries["auto_scale"]["type"] == "bool" and entries["auto_scale"]["value"] is True
    assert entries["log_delta"]["type"] == "double" and entries["filterbank_type"]["value"] == "mel"
    node_meta = {dict(e)["k"]: dict(dict(e)["v"])["value"] for e in dict(nodes[0]["metadata"])["data"]}
    assert node_meta == {"auto_scale": "True"}


def test_gru_excerpt_of_section_4_6():
    text = emit_ell(gru_classifier(vad=True, hidden=4))
    root = pairs(text)
    nodes = [dict(n) for n in dict(dict(root)["model"])["nodes"]]
    vad = next(n for n in nodes if n["_type"] == "VoiceActivityDetectorCodeNode")
    grus = [n for n in nodes if n["_type"] == "GRUNode<float>"]
    assert len(grus) == 2
    for gru in grus:
        trigger = dict(gru["resetTrigger"])
        assert trigger == {"_type": "InputPortBase", "_version": "0", "nodeId": gru["id"], "name": "resetTrigger",
                           "type": 3, "input": f"{vad['id']}.output"}
        assert gru["hiddenUnits"] == 4
        raw = next(n for n in dict(dict(root)["model"])["nodes"] if dict(n)["id"] == gru["id"])
        acts = [dict(value) for key, value in raw if key == "activation"]
        assert acts == [{"_type": "TanhActivation<float>", "_version": "0"},
                        {"_type": "SigmoidActivation<float>", "_version": "0"}]
    # the raw text really carries the duplicate key, laid out like every other object field
    assert text.count('"activation": {') == 4
    assert dict(vad["input"])["_type"] == "InputPortBase" and dict(vad["input"])["type"] == 1
    assert dict(vad["vad"]) == {"_type": "VoiceActivityDetector", "_version": "0", "windowSize": 80,
                                "sampleRate": 16000, "frameDuration": 0.032, "tauUp": 1.54, "tauDown": 0.074326,
                                "largeInput": 2.40016, "gainAtt": 0.002885, "thresholdUp": 3.552713,
                                "thresholdDown": 0.931252, "levelThreshold": 0.007885}
    types = [n["_type"] for n in nodes]
    # LogSoftmax is written exactly: softmax layer, then log (ELL's importer would drop the log)
    assert types[-5:] == ["FullyConnectedLayerNode<float>", "BiasLayerNode<float>", "SoftmaxLayerNode<float>",
                          "UnaryOperationNode<float>", "OutputNode<float>"]
    assert nodes[-2]["operation"] == "log"
    fc = next(n for n in nodes if n["_type"] == "FullyConnectedLayerNode<float>")
    layer = dict(fc["layer"])
    assert layer["weights_rows"] == 12 and layer["weights_columns"] == 4 and len(layer["weights_values"]) == 48


def test_absent_trigger_becomes_a_zero_int_constant_like_ells_importer():
    nodes = [dict(n) for n in dict(dict(pairs(emit_ell(gru_classifier(hidden=4))))["model"])["nodes"]]
    by_id = {n["id"]: n for n in nodes}
    for gru in (n for n in nodes if n["_type"] == "GRUNode<float>"):
        source = by_id[dict(gru["resetTrigger"])["input"].split(".")[0]]
        assert source["_type"] == "ConstantNode<int>" and source["values"] == [0]
        assert dict(gru["resetTrigger"])["type"] == 3
        # weights are ConstantNodes written just before the node that reads them (dependency order)
        for port in ("inputWeights", "hiddenWeights", "inputBias", "hiddenBias"):
            assert int(dict(gru[port])["input"].split(".")[0]) < int(gru["id"])


def test_numbers_are_printed_like_cpp_streams():
    assert format_number(16000) == "16000" and format_number(-3) == "-3"
    assert format_number(np.float32(0.1)) == "0.1"  # float: 7 significant digits
    assert format_number(np.float32(1 / 3)) == "0.3333333"
    assert format_number(1 / 3, 16) == "0.3333333333333333"  # double: 16
    assert format_number(np.float32(1e-5)) == "1e-05" and format_number(1e20, 16) == "1e+20"
    assert format_number(True) == "true"
    with pytest.raises(BackendError):
        format_number(float("nan"))


def test_unsupported_op_fails_before_anything_is_written(tmp_path):
    g = tutorial_featurizer()
    out = g.outputs[0]
    g.add_output(g.op1("Transpose", g.op1("Reshape", out, shape=[8, 10])), name="transposed")
    target = tmp_path / "model.ell"
    with pytest.raises(BackendError) as err:
        save_ell(g, target)
    message = str(err.value)
    assert "transpose" in message and "Transpose" in message and "\n" not in message
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_save_ell_writes_the_emitted_text(tmp_path):
    g = tutorial_featurizer()
    save_ell(g, tmp_path / "sub" / "f.ell")
    assert (tmp_path / "sub" / "f.ell").read_text() == emit_ell(g)


def test_ell_quirky_attributes_are_refused():
    g = Graph()
    g.add_output(g.op1("Window", g.add_input([16]), kind="hann"))
    with pytest.raises(BackendError, match="Hamming"):
        emit_ell(g)
    g = gru_classifier(hidden=4, layers=1)
    g.find("GRU")[0].attrs["linear_before_reset"] = False
    with pytest.raises(BackendError, match="linear_before_reset"):
        emit_ell(g)
