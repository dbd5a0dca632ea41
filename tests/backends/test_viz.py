"""Graph printers: dot parsed by graphviz, DGML well-formed with the right nodes and links, golden text/dot files,
determinism, ELL's label/colour conventions, annotations, and `kwsc print` end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends import viz
from kwsc.backends.viz import build_viz, format_graph, to_dgml, to_dot, to_text
from kwsc.errors import InputError, ToolchainError
from kwsc.ir import Graph, save, verify
from tests._graphs import featurizer_graph, gru_vad_graph, recurrent_graph

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
DGML_NS = "{http://schemas.microsoft.com/vs/2009/dgml}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; KWSC_UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("KWSC_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing; create it with KWSC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (KWSC_UPDATE_GOLDEN=1 to accept)"


def dot_to_svg(dot_text: str) -> ET.Element:
    proc = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b"", proc.stderr.decode()  # no warnings either (e.g. unknown shapes, bad attributes)
    return ET.fromstring(proc.stdout)


@pytest.mark.toolchain
@needs_dot
@pytest.mark.parametrize("make", [featurizer_graph, gru_vad_graph, lambda: recurrent_graph("LSTM")])
def test_dot_output_is_parsed_by_graphviz(make):
    graph = make()
    svg = dot_to_svg(to_dot(build_viz(graph)))
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in svg.iter(f"{ns}title")]
    for node in graph.nodes:
        assert node.name in titles
    edge_count = sum(v is not None for n in graph.nodes for v in n.inputs)
    assert sum("->" in (t or "") for t in titles) == edge_count


def test_dgml_is_wellformed_with_one_node_per_ir_node_and_the_right_links():
    graph = gru_vad_graph()
    root = ET.fromstring(to_dgml(build_viz(graph)))
    assert root.tag == f"{DGML_NS}DirectedGraph"
    assert [c.tag for c in root] == [f"{DGML_NS}{t}" for t in ("Nodes", "Links", "Properties", "Styles")]
    nodes = root.find(f"{DGML_NS}Nodes")
    assert [n.get("Id") for n in nodes] == [n.name for n in graph.nodes]
    links = [(l.get("Source"), l.get("Target"), l.get("TargetPort")) for l in root.find(f"{DGML_NS}Links")]
    expected = [(v.producer.name, n.name, n.opdef.input_names[i])
                for n in graph.nodes for i, v in enumerate(n.inputs) if v is not None]
    assert links == expected
    assert ("vad", "gru1", "reset_trigger") in links and ("vad", "gru2", "reset_trigger") in links
    by_id = {n.get("Id"): n for n in nodes}
    assert by_id["gru1"].get("hidden_size") == "16"
    assert by_id["gru1"].get("Background") == "#DDA0DD"  # plum, as ELL's activation layers
    assert by_id["gru1_w"].get("outputs") == "48 \u00d7 40"
    declared = {p.get("Id") for p in root.find(f"{DGML_NS}Properties")}
    assert {"hidden_size", "outputs", "TargetPort"} <= declared


def test_dgml_and_dot_escape_awkward_metadata():
    graph = featurizer_graph()
    graph.node("buffer").metadata.update({"name": "it's <\"odd\"> & \\ new\nline", "weird key!": "x"})
    dgml = to_dgml(build_viz(graph))
    node = ET.fromstring(dgml).find(f"{DGML_NS}Nodes")[1]
    assert node.get("name") == "it's <\"odd\"> & \\ new\nline"
    assert node.get("weird_key_") == "x"
    if shutil.which("dot"):
        dot_to_svg(to_dot(build_viz(graph)))


def test_ell_label_and_colour_conventions():
    v = build_viz(featurizer_graph())
    by_id = {n.id: n for n in v.nodes}
    assert by_id["add"].label == "+" and by_id["add"].properties["name"] == "Add"
    assert by_id["log"].label == "log" and by_id["log"].properties["name"] == "Log"
    assert by_id["fft"].label == "FFT" and "name" not in by_id["fft"].properties
    assert by_id["add"].fillcolor == "snow2"
    assert by_id["buffer"].fillcolor == by_id["melfilterbank"].fillcolor == "powderblue"
    assert by_id["offset"].fillcolor == "gray95"
    assert by_id["input"].fillcolor != by_id["output"].fillcolor
    assert by_id["fft"].properties["inputs"] == "512" and by_id["fft"].properties["outputs"] == "257"
    c = {n.id: n for n in build_viz(gru_vad_graph()).nodes}
    assert (c["vad"].fillcolor, c["gru1"].fillcolor, c["fc"].fillcolor) == ("khaki", "plum", "papayawhip")
    assert c["gru1"].properties["inputs"] == "40, 1, 48 \u00d7 40, 48 \u00d7 16, 48, 48"


def test_every_registered_op_gets_a_colour_and_a_label():
    from kwsc.ir import REGISTRY

    for opdef in REGISTRY.values():
        assert viz.fill_colour(opdef) in viz.HEX
        assert viz.node_label(opdef)


def test_edges_carry_port_names_and_reset_trigger_is_visible_in_dot():
    dot = to_dot(build_viz(gru_vad_graph()))
    line = next(l for l in dot.splitlines() if l.startswith('"vad" -> "gru1"'))
    assert 'label=" reset_trigger"' in line and "style=dashed" in line
    # GRU has 6 input ports: more than graphviz's 5 samehead groups, so the port name goes under ir_samehead.
    assert 'ir_samehead="reset_trigger"' in line and 'sametail="output"' in line
    feat = to_dot(build_viz(featurizer_graph()))
    assert '"fft" -> "melfilterbank"[samehead="input", sametail="output"];' in feat
    assert "label=" not in next(l for l in feat.splitlines() if l.startswith('"offset" -> "add"'))  # a + b: no port label


def test_graphviz_attribute_names_do_not_leak_from_ir_attributes():
    g = Graph("r")
    x = g.add_input([2, 3])
    g.add_output(g.op1("Reshape", x, shape=[6]))
    dot = to_dot(build_viz(verify(g)))
    assert '"ir_shape"="[6]"' in dot and '"shape"=' not in dot


def test_text_format_lines():
    text = to_text(build_viz(gru_vad_graph()))
    lines = text.splitlines()
    assert len(lines) == len(gru_vad_graph())
    assert lines[0] == "input: Input() -> [40]"
    assert lines[1] == "vad: VAD(input[40]) -> int32[1]  frame_duration=0.01"
    assert "gru1: GRU(input[40], vad:int32[1], gru1_w[48, 40], gru1_r[48, 16], gru1_bi[48], gru1_bh[48]) -> [16]  hidden_size=16" in lines
    lstm = to_text(build_viz(recurrent_graph("LSTM")))
    assert "-> output[5], cell[5]  hidden_size=5" in lstm and "Output(lstm.cell[5])" in lstm
    trig = Graph("t")
    x = trig.add_input([3])
    trig.add_output(trig.op1("Add", x, trig.add_constant(np.array([0], np.int32).astype(np.float32), "zero")))
    assert "zero: Constant() -> [1]  value=[0.0]" in to_text(build_viz(trig))


@pytest.mark.parametrize("fmt", ["text", "dot"])
def test_golden_featurizer(fmt):
    check_golden(f"featurizer.{fmt}", format_graph(featurizer_graph(), fmt).decode())


@pytest.mark.parametrize("fmt", ["text", "dot"])
def test_golden_classifier(fmt):
    check_golden(f"classifier.{fmt}", format_graph(gru_vad_graph(), fmt).decode())


def test_output_is_deterministic():
    for fmt in ("text", "dot", "dgml"):
        assert format_graph(gru_vad_graph(), fmt) == format_graph(gru_vad_graph(), fmt)
    if shutil.which("dot"):
        assert format_graph(featurizer_graph(), "svg") == format_graph(featurizer_graph(), "svg")


def test_annotations_add_properties_and_override_colour():
    v = build_viz(featurizer_graph(), {"fft": {"fillcolor": "red", "note": "changed", "diff": "weights"}})
    fft = next(n for n in v.nodes if n.id == "fft")
    assert fft.fillcolor == "red" and fft.properties["diff"] == "weights" and fft.subtitle.endswith("changed")
    with pytest.raises(InputError, match="nope"):
        build_viz(featurizer_graph(), {"nope": {}})


def test_render_without_graphviz_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError, match="apt-get install graphviz"):
        viz.render("digraph g {}", "svg")


@pytest.mark.toolchain
@needs_dot
def test_render_reports_graphviz_failure():
    with pytest.raises(ToolchainError, match="failed"):
        viz.render("digraph g { this is not dot", "svg")


# ------------------------------------------------------------------------------------------------ kwsc print
def kwsc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def feat_model(tmp_path) -> Path:
    path = tmp_path / "g.kwsc"
    save(featurizer_graph(), path)
    return path


def test_cli_print_text_to_stdout_is_default(feat_model):
    proc = kwsc("print", str(feat_model))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == format_graph(featurizer_graph(), "text").decode()


@pytest.mark.toolchain
@needs_dot
def test_cli_print_renders_png_svg_pdf_by_extension(feat_model, tmp_path):
    proc = kwsc("print", str(feat_model), "-o", str(tmp_path / "g.png"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert kwsc("print", str(feat_model), "-o", str(tmp_path / "g.svg")).returncode == 0
    ET.fromstring((tmp_path / "g.svg").read_bytes())
    assert kwsc("print", str(feat_model), "-o", str(tmp_path / "g.pdf")).returncode == 0
    assert (tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.kwsc", "g.pdf", "g.png", "g.svg"]  # no temp files


def test_cli_print_formats_from_extension_and_flag(feat_model, tmp_path):
    assert kwsc("print", str(feat_model), "-o", str(tmp_path / "g.dgml")).returncode == 0
    ET.fromstring((tmp_path / "g.dgml").read_text())
    assert kwsc("print", str(feat_model), "--format", "dot", "-o", str(tmp_path / "g.txt")).returncode == 0
    assert (tmp_path / "g.txt").read_text().startswith("digraph network_graph {")
    assert kwsc("print", str(feat_model), "-o", str(tmp_path / "g.gv")).returncode == 0
    assert (tmp_path / "g.gv").read_text() == format_graph(featurizer_graph(), "dot").decode()


@pytest.mark.parametrize("args,message", [
    (["-o", "{tmp}/g.xyz"], "cannot tell the format"),
    (["--format", "png"], "pass -o FILE"),
    (["--format", "jpeg"], "invalid choice"),
])
def test_cli_print_bad_options_are_one_line(feat_model, tmp_path, args, message):
    proc = kwsc("print", str(feat_model), *[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_print_missing_model(tmp_path):
    proc = kwsc("print", str(tmp_path / "missing.kwsc"))
    assert proc.returncode == 2 and proc.stderr.strip() == f"kwsc: error: {tmp_path / 'missing.kwsc'}: no such model file"


def test_cli_print_without_graphviz(feat_model, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no `dot` on PATH
    proc = subprocess.run([sys.executable, "-m", "kwsc", "print", str(feat_model), "-o", str(tmp_path / "g.svg")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "kwsc: error: graphviz's `dot` is not installed; install graphviz: apt-get install graphviz"]
    assert not (tmp_path / "g.svg").exists()


def test_metadata_name_is_appended_to_the_label_as_ell_does():
    g = featurizer_graph()
    g.node("fft").metadata["name"] = "spectrum"
    nodes = {n.id: n for n in build_viz(g).nodes}
    assert nodes["fft"].subtitle == "spectrum\n[257]"
    assert nodes["buffer"].subtitle == "[512]"  # the default name adds nothing
    assert nodes["melfilterbank"].subtitle == "[40]" and nodes["offset"].subtitle == "offset\n[40]"
