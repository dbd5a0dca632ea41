"""The native .kwsc format: a lossless round trip (hypothesis: random graphs, special float values, metadata),
and one clear KwscError for every kind of broken file — from the library and from `kwsc print`."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwsc.backends.reference import Interpreter
from kwsc.errors import FormatError, InputError, KwscError, UnsupportedOpError
from kwsc.ir import FORMAT_VERSION, Graph, load, ops_with_trait, save, verify
from kwsc.ir.serialize import graph_from_json, graph_to_json
from kwsc.limits import MAX_ABS_CONSTANT
from tests._graphs import featurizer_graph, gru_vad_graph

# ------------------------------------------------------------------------------------------ random graphs
f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
finite = st.floats(-4, 4, width=32)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), names)
json_like = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(names, inner, max_size=3)), max_leaves=8)
UNARY = sorted(ops_with_trait("unary"))
BINARY = sorted(ops_with_trait("binary"))
ACTIVATIONS = ("tanh", "sigmoid", "relu", "hard_sigmoid", "hard_tanh")


def float_array(draw, shape, special: bool) -> np.ndarray:
    values = draw(st.lists(f32 if special else finite, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(values, dtype=np.float32).reshape(shape)


@st.composite
def random_graphs(draw) -> Graph:
    g = Graph(draw(names) or "g")
    g.metadata = draw(st.dictionaries(names, json_like, max_size=4))
    size = draw(st.integers(1, 6))
    x = g.add_input([size])
    special = draw(st.booleans())  # NaN/inf/-0.0 in constants (and then in outputs)
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["unary", "binary", "dense", "recurrent", "buffer", "vad", "int_const"]))
        if kind == "unary":
            op = draw(st.sampled_from(UNARY))
            attrs = {"alpha": draw(finite)} if op in ("LeakyRelu", "HardSigmoid") else {}
            x = g.op1(op, x, **attrs)
        elif kind == "binary":
            shape = draw(st.sampled_from([(size,), (1,)]))
            x = g.op1(draw(st.sampled_from(BINARY)), x, g.add_constant(float_array(draw, shape, special)))
        elif kind == "dense":
            out = draw(st.integers(1, 5))
            w = g.add_constant(float_array(draw, (out, size), special), "w")
            b = g.add_constant(float_array(draw, (out,), special), "b") if draw(st.booleans()) else None
            act = draw(st.sampled_from(["none", "relu", "sigmoid", "tanh", "softmax", "log_softmax"]))
            x = g.op1("Dense", x, w, b, activation=act)
            size = out
        elif kind == "recurrent":
            op = draw(st.sampled_from(["GRU", "LSTM", "RNN"]))
            hidden, gates = draw(st.integers(1, 4)), {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
            trigger = draw(st.sampled_from(["none", "const", "vad"]))
            trig = (None if trigger == "none" else g.op1("VAD", x) if trigger == "vad" else
                    g.add_constant(np.array([draw(st.integers(-2**31, 2**31 - 1))], np.int32), "trigger"))
            params = [g.add_constant(float_array(draw, shape, special), "p") for shape in
                      ((gates * hidden, size), (gates * hidden, hidden), (gates * hidden,), (gates * hidden,))]
            attrs = {"hidden_size": hidden, "activation": draw(st.sampled_from(ACTIVATIONS))}
            if op != "RNN":
                attrs["recurrent_activation"] = draw(st.sampled_from(ACTIVATIONS))
            if op == "GRU":
                attrs["linear_before_reset"] = draw(st.booleans())
            node = g.add(op, [x, trig, *params], attrs, name=draw(names) or None)
            if op == "LSTM" and draw(st.booleans()):
                g.add_output(node.outputs[1], f"cell{len(g.output_nodes)}")
            x, size = node.outputs[0], hidden
        elif kind == "buffer":
            size = size + draw(st.integers(0, 6))
            x = g.op1("Buffer", x, window_size=size)
        elif kind == "vad":
            vad = g.op1("VAD", x, tau_up=draw(st.floats(0.125, 10, width=32)),
                        threshold_up=draw(st.floats(0, 4, width=32)))
            x = g.op1("Add", x, g.op1("Cast", vad, dtype="float32"))
        else:
            c = g.add_constant(np.array(draw(st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=1)), np.int32))
            x = g.op1("Mul", x, g.op1("Cast", c, dtype="float32"))
    g.add_output(x)
    for node in g.nodes:
        if draw(st.integers(0, 3)) == 0:
            node.metadata.update(draw(st.dictionaries(names, names, max_size=2)))
        if draw(st.integers(0, 3)) == 0:
            node.meta.update(draw(st.dictionaries(names, json_like, max_size=2)))
    return verify(g)


def canonical(value):
    """A comparable form in which floats compare by bits (NaN == NaN, -0.0 != 0.0) and arrays by bytes."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return ("dict", [(k, canonical(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return ("list", [canonical(v) for v in value])
    return (type(value).__name__, value)


def structure(g: Graph):
    return (g.name, canonical(g.metadata), [
        (n.name, n.op, [None if v is None else (v.producer.name, v.index) for v in n.inputs],
         [(v.name, v.type) for v in n.outputs], canonical(n.attrs), canonical(n.metadata), canonical(n.meta))
        for n in g.nodes])


def run_outputs(g: Graph, xs: np.ndarray):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = Interpreter(g).run(xs)
    return out if isinstance(out, dict) else {"output": out}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), seed=st.integers(0, 2**32 - 1))
def test_round_trip_is_lossless(tmp_path_factory, graph, seed):
    path = tmp_path_factory.mktemp("rt") / "model.kwsc"
    save(graph, path)
    special = any(n.op == "Constant" and n.attrs["value"].dtype.kind == "f" and
                  not (np.abs(n.attrs["value"]) <= MAX_ABS_CONSTANT).all() for n in graph.nodes)
    if special:  # the format keeps NaN/Inf/huge weights bit-exact; loading a FILE refuses them (kwsc.limits)
        with pytest.raises(KwscError, match="not finite|exceeds the limit"):
            load(path)
        loaded = graph_from_json(json.loads(path.read_text()), str(path))
    else:
        loaded = load(path)
    assert structure(loaded) == structure(graph)
    save(loaded, path.with_name("again.kwsc"))
    assert path.read_bytes() == path.with_name("again.kwsc").read_bytes()  # saving is deterministic
    xs = np.random.default_rng(seed).normal(size=(3,) + graph.inputs[0].shape).astype(np.float32)
    a, b = run_outputs(graph, xs), run_outputs(loaded, xs)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()


def test_round_trip_keeps_special_values_bit_exact(tmp_path):
    g = Graph("special")
    x = g.add_input([4])
    values = np.array([np.nan, -np.inf, -0.0, np.float32(1e-45)], np.float32)
    g.add_output(g.op1("Add", x, g.add_constant(values, "c")))
    g.metadata = {"nan": math.nan, "inf": -math.inf, "zero": -0.0, "nested": {"list": [1, "two", None]}}
    verify(g)
    save(g, tmp_path / "s.kwsc")
    loaded = graph_from_json(json.loads((tmp_path / "s.kwsc").read_text()))  # load() refuses NaN weights
    assert loaded.node("c").attrs["value"].tobytes() == values.tobytes()
    assert structure(loaded) == structure(g)
    assert json.loads((tmp_path / "s.kwsc").read_text())["version"] == FORMAT_VERSION  # strict JSON (no NaN literal)


# ------------------------------------------------------------------------------------------ broken files
def good_doc() -> dict:
    return graph_to_json(featurizer_graph())


def write(tmp_path: Path, content: str | bytes, name: str = "bad.kwsc") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def mutated(change) -> str:
    doc = good_doc()
    change(doc)
    return json.dumps(doc, indent=1)


def _set_tensor_data(doc, data):
    next(n for n in doc["nodes"] if n["op"] == "Constant")["attrs"]["value"]["tensor"]["data"] = data


BROKEN = {
    "malformed": ('{"format": "kwsc",\n "version": 1,,\n "nodes": []}', FormatError,
                  r"bad.kwsc:2:15: malformed kwsc model: Expecting property name"),
    "empty": ("", FormatError, r"bad.kwsc:1:1: malformed kwsc model: .*truncated"),
    "future": (mutated(lambda d: d.update(version=FORMAT_VERSION + 1)), FormatError,
               r"written by a newer kwsc \(format version 2; this kwsc reads up to 1\); upgrade kwsc"),
    "not_kwsc": ('{"nodes": []}', FormatError, r"not a kwsc model"),
    "array": ("[1, 2]", FormatError, r"not a kwsc model"),
    "bad_version": (mutated(lambda d: d.update(version="one")), FormatError, r"bad format version 'one'"),
    "no_nodes": (mutated(lambda d: d.pop("nodes")), FormatError, r'"nodes" must be a list'),
    "missing_op": (mutated(lambda d: d["nodes"][2].pop("op")), FormatError,
                   r"node #2: malformed node entry \(KeyError: 'op'\)"),
    "node_not_object": (mutated(lambda d: d["nodes"].insert(0, "Input")), FormatError, r"node #0: malformed node entry"),
    "bad_ref": (mutated(lambda d: d["nodes"][1].update(inputs=["nowhere.0"])), FormatError,
                r"node #1 \(buffer\): input 'nowhere.0' is not produced by an earlier node"),
    "bad_base64": (mutated(lambda d: _set_tensor_data(d, "@@not base64@@")), FormatError, r"node #5: bad tensor"),
    "short_tensor": (mutated(lambda d: _set_tensor_data(d, "AAAA")), FormatError, r"node #5: bad tensor"),
    "unknown_op": (mutated(lambda d: d["nodes"][3].update(op="FFTT")), UnsupportedOpError,
                   r"node #3: unknown op 'FFTT'; did you mean FFT\?"),
    "bad_attr": (mutated(lambda d: d["nodes"][1]["attrs"].update(window_size="big")), KwscError,
                 r"node #1: node buffer \(Buffer\) attribute window_size: expected int"),
    "bad_float": (mutated(lambda d: d["nodes"][4]["attrs"].update(offset={"float": "lots"})), FormatError,
                  r"node #4: bad float 'lots'"),
    "bad_metadata": (mutated(lambda d: d.update(metadata={"dict": [1, 2]})), FormatError, r"metadata"),
    "binary": (b"\x89PNG\r\n\x1a\n\xff\xfe", FormatError, r"not a kwsc model \(binary data"),
}


def truncated_text() -> str:
    text = json.dumps(graph_to_json(gru_vad_graph()), indent=1)
    cut = text.index('"data": "') + 40  # in the middle of a long base64 string
    return text[:cut]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_raise_one_clear_error(tmp_path, case):
    content, kind, message = BROKEN[case]
    path = write(tmp_path, content)
    with pytest.raises(kind, match=message) as info:
        load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_file_says_truncated(tmp_path):
    path = write(tmp_path, truncated_text())
    with pytest.raises(FormatError, match=r"bad.kwsc:\d+:\d+: malformed kwsc model: .*\(file truncated\?\)"):
        load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.kwsc")
    with pytest.raises(InputError, match="is a directory"):
        load(tmp_path)


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_any_corruption_is_a_kwsc_error_never_a_crash(tmp_path_factory, cut, flip, byte):
    data = bytearray(json.dumps(good_doc(), indent=1).encode())
    data[flip % len(data)] = byte
    data = data[: max(1, cut % (len(data) + 1))] if cut % 3 == 0 else data
    path = tmp_path_factory.mktemp("c") / "m.kwsc"
    path.write_bytes(bytes(data))
    try:
        load(path)
    except KwscError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("case", ["malformed", "future", "bad_base64", "unknown_op", "missing_op", "bad_float", "binary"])
def test_cli_reports_broken_files_in_one_line(tmp_path, case):
    content, _, message = BROKEN[case]
    path = write(tmp_path, content)
    proc = subprocess.run([sys.executable, "-m", "kwsc", "print", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kwsc: error: ") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_reports_truncated_file_in_one_line(tmp_path):
    path = write(tmp_path, truncated_text())
    proc = subprocess.run([sys.executable, "-m", "kwsc", "print", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "truncated" in proc.stderr


def test_numpy_scalars_in_metadata_save_and_unsavable_values_are_a_clear_error(tmp_path):
    """Bug fixed: a numpy bool in metadata (or any non-JSON object) made save() raise a bare TypeError."""
    g = featurizer_graph()
    g.metadata.update({"auto_scale": np.bool_(True), "rate": np.int64(16000), "gain": np.float32(0.5)})
    save(g, tmp_path / "m.kwsc")
    loaded = load(tmp_path / "m.kwsc").metadata
    assert (loaded["auto_scale"], loaded["rate"], loaded["gain"]) == (True, 16000, 0.5)
    g.metadata["callback"] = object()
    with pytest.raises(FormatError, match=r"m2.kwsc: cannot save graph 'featurizer': Object of type object"):
        save(g, tmp_path / "m2.kwsc")
    assert not (tmp_path / "m2.kwsc").exists()


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from kwsc.fileio import atomic_write

    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", "hello")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's owner-only 0600
    assert not list(tmp_path.glob(".*.tmp"))
