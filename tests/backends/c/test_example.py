"""The generated example main.c (host build): wav or stdin PCM in, `DETECTED <label> p=… at t=…s` lines out;
and `kwsc emit --target c --build` end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.c import emit_c, load
from kwsc.backends.reference import Interpreter
from kwsc.ir import save, verify
from tests.backends.c.conftest import skip_without_toolchain, tutorial_featurizer
from tests.conftest import REPO, read_wav_float

pytestmark = pytest.mark.toolchain


def speech_detector():
    """Featurizer → Dense(2) → LogSoftmax: class "speech" when the mean log-mel feature exceeds 0.05."""
    g = tutorial_featurizer()
    out_node = g.output_nodes[0]
    features = out_node.inputs[0]
    g.remove_node(out_node)
    w = np.zeros((2, 80), np.float32)
    w[1] = 20.0 / 80.0
    dense = g.op1("Dense", features, g.add_constant(w, name="w"), g.add_constant(np.array([0.0, -1.0], np.float32),
                                                                                 name="b"))
    g.add_output(g.op1("LogSoftmax", dense))
    g.metadata["labels"] = ["_silence_", "speech"]
    return verify(g)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    skip_without_toolchain("host")
    graph = speech_detector()
    outdir = tmp_path_factory.mktemp("example")
    emit_c(graph, outdir, arch="host", build=True, name="detector")
    return graph, outdir


def expected_lines(graph, samples, threshold=0.5):
    """The example's rule with no smoothing: report the best class when it reaches the threshold and changes."""
    steps = len(samples) // 512
    probs = np.exp(Interpreter(graph).run(samples[: steps * 512].reshape(steps, 512)))
    lines, last = [], -1
    for t, p in enumerate(probs):
        best = int(p.argmax())
        if p[best] >= threshold and best != last:
            if best == 1:
                lines.append(f"DETECTED speech p={p[best]:.2f} at t={(t + 1) * 512 / 16000:.2f}s")
            last = best
        elif p[best] < threshold:
            last = -1
    return lines


def test_example_detects_speech_in_a_wav(example, speech_dir):
    graph, outdir = example
    wav = sorted((speech_dir / "yes").glob("*.wav"))[0]
    run = subprocess.run([str(outdir / "example"), str(wav), "0.5", "1"], capture_output=True, text=True,
                         check=True, timeout=60)
    lines = run.stdout.splitlines()
    assert lines == expected_lines(graph, read_wav_float(wav))
    assert len(lines) == 1 and lines[0].startswith("DETECTED speech p=")


def test_example_reads_raw_pcm_from_stdin(example, speech_dir):
    graph, outdir = example
    wav = sorted((speech_dir / "no").glob("*.wav"))[0]
    pcm = (read_wav_float(wav) * 32768).astype("<i2").tobytes()
    run = subprocess.run([str(outdir / "example"), "-", "0.5", "1"], input=pcm, capture_output=True, check=True,
                         timeout=60)
    assert run.stdout.decode().splitlines() == expected_lines(graph, read_wav_float(wav))


def test_example_reads_json_list_labels(tmp_path, speech_dir):
    """Labels stored as a JSON list string (how trained models carry their categories) are parsed too."""
    graph = speech_detector()
    graph.metadata["labels"] = '["_silence_", "speech"]'
    emit_c(graph, tmp_path, arch="host", build=True, name="detector")
    wav = sorted((speech_dir / "yes").glob("*.wav"))[0]
    run = subprocess.run([str(tmp_path / "example"), str(wav), "0.5", "1"], capture_output=True, text=True,
                         check=True, timeout=60)
    assert run.stdout.splitlines() == expected_lines(graph, read_wav_float(wav))


def test_example_rejects_a_non_wav_file(example, tmp_path):
    _, outdir = example
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    run = subprocess.run([str(outdir / "example"), str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "not a 16-bit PCM wav" in run.stderr


def test_cli_emit_build_and_size_report(tmp_path, model, speech_features):
    skip_without_toolchain("host")
    graph = model("gru")
    save(graph, tmp_path / "m.kwsc")
    cmd = [sys.executable, "-m", "kwsc", "emit", str(tmp_path / "m.kwsc"), "--target", "c", "--arch", "host",
           "-o", str(tmp_path / "c"), "--build", "--size-report"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "size report (host)" in run.stdout and "weights" in run.stdout
    out = load(tmp_path / "c").run(speech_features[:30])
    np.testing.assert_allclose(out, Interpreter(graph).run(speech_features[:30]), atol=1e-4, rtol=0)
