"""The generated example program under AddressSanitizer and UndefinedBehaviorSanitizer, fed good and malformed wavs
(issue #17: a 100-channel header overflowed its sample buffer), and the example of models with several inputs, an
unused input or a constant output (issue #16: they failed to build)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.c import emit_c
from kwsc.errors import BackendError
from kwsc.ir import Graph, save, verify
from tests.backends.c.conftest import skip_without_toolchain
from tests.backends.c.test_example import expected_lines, speech_detector
from tests.conftest import REPO, read_wav_float

pytestmark = pytest.mark.toolchain

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"


def _chunk(tag: bytes, body: bytes, size: int | None = None) -> bytes:
    return tag + struct.pack("<I", len(body) if size is None else size) + body + (b"\0" if len(body) % 2 else b"")


def _fmt(tag=1, channels=1, rate=16000, bits=16, extra=b"", size=None) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align & 0xFFFF, bits) + extra
    return _chunk(b"fmt ", body, size)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _interleave(first: np.ndarray, channels: int) -> bytes:
    """16-bit frames whose first channel is ``first`` (the channel the example reads), the others loud noise."""
    x = np.random.default_rng(channels).integers(-30000, 30000, size=(len(first), channels)).astype("<i2")
    x[:, 0] = first
    return x.tobytes()


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """The speech detector's project, its example linked with ASan + UBSan (the project's -Wall -Wextra -Werror)."""
    skip_without_toolchain("host")
    graph = speech_detector()
    outdir = tmp_path_factory.mktemp("asan")
    emit_c(graph, outdir, arch="host", name="detector")
    make = subprocess.run(["make", "-s", "example", f"CC=gcc {SANITIZE}"], cwd=outdir, capture_output=True,
                          text=True, timeout=600)
    assert make.returncode == 0, make.stderr[-3000:]
    return graph, outdir


def _run(outdir, args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([str(outdir / "example"), *args], input=stdin, capture_output=True, timeout=120, env=env)
    err = run.stderr.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return run


@pytest.fixture(scope="module")
def speech(speech_dir):
    wav = sorted((speech_dir / "yes").glob("*.wav"))[0]
    samples = read_wav_float(wav)
    return wav, samples, (samples * 32768).astype("<i2")


def test_good_wavs_run_clean_and_detect(sanitized, speech, tmp_path):
    graph, outdir = sanitized
    wav, samples, pcm = speech
    want = expected_lines(graph, samples)
    assert len(want) == 1
    good = {
        "original": wav.read_bytes(),
        "2 channels": _riff(_fmt(channels=2), _chunk(b"data", _interleave(pcm, 2))),
        "17 channels": _riff(_fmt(channels=17), _chunk(b"data", _interleave(pcm, 17))),  # overflowed before
        "64 channels": _riff(_fmt(channels=64), _chunk(b"data", _interleave(pcm, 64))),
        "extensible": _riff(_fmt(tag=0xFFFE, extra=struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + b"\0" * 14),
                            _chunk(b"data", pcm.tobytes())),
        "odd fmt size + pad": _riff(_fmt(extra=b"\x07"), _chunk(b"data", pcm.tobytes())),
        "odd LIST before data": _riff(_fmt(), _chunk(b"LIST", b"abcde"), _chunk(b"data", pcm.tobytes())),
        "odd data length": _riff(_fmt(), _chunk(b"data", pcm.tobytes() + b"\x01")),
        "open data size": _riff(_fmt(), _chunk(b"data", pcm.tobytes(), size=0xFFFFFFFF)),
        "huge data size": _riff(_fmt(), _chunk(b"data", pcm.tobytes(), size=0x7FFFFFF0)),
        "data then junk chunk": _riff(_fmt(), _chunk(b"data", pcm.tobytes()), _chunk(b"LIST", b"\xff" * 3000)),
    }
    for name, data in good.items():
        path = tmp_path / f"{name.replace(' ', '_')}.wav"
        path.write_bytes(data)
        run = _run(outdir, [str(path), "0.5", "1"])
        assert run.returncode == 0, (name, run.stderr)
        assert run.stdout.decode().splitlines() == want, name
    # raw PCM on stdin, an odd byte count
    run = _run(outdir, ["-", "0.5", "1"], stdin=pcm.tobytes() + b"\x05")
    assert run.returncode == 0 and run.stdout.decode().splitlines() == want
    # out-of-range arguments (atoi/atol would be undefined behaviour): clamped smoothing, a threshold never reached
    for args in (["0.5", "99999999999999999999999"], ["nan", "-99999999999999999999"], ["1e999", "0"]):
        run = _run(outdir, [str(tmp_path / "original.wav"), *args])
        assert run.returncode == 0, (args, run.stderr)


def test_malformed_wavs_are_one_line_and_exit_2(sanitized, speech, tmp_path):
    _, outdir = sanitized
    _, _, pcm = speech
    data = _chunk(b"data", pcm.tobytes())
    canonical = _riff(_fmt(), data)
    bad = {
        "100 channels": (_riff(_fmt(channels=100), _chunk(b"data", _interleave(pcm[:4000], 100))),
                         "100 channels (1 to 64 are read)"),
        "65 channels": (_riff(_fmt(channels=65), data), "65 channels (1 to 64 are read)"),
        "65535 channels": (_riff(_fmt(channels=65535), data), "65535 channels (1 to 64 are read)"),
        "0 channels": (_riff(_fmt(channels=0), data), "0 channels (1 to 64 are read)"),
        "8-bit": (_riff(_fmt(bits=8), _chunk(b"data", bytes(16000))), "8-bit samples (only 16-bit is read)"),
        "24-bit": (_riff(_fmt(bits=24), data), "24-bit samples (only 16-bit is read)"),
        "float": (_riff(_fmt(tag=3, bits=32), data), "format tag 0x3 (only integer PCM is read)"),
        "0 Hz": (_riff(_fmt(rate=0), data), "sample rate 0 Hz (outside 1000 Hz to 384 kHz)"),
        "2^31-1 Hz": (_riff(_fmt(rate=2**31 - 1), data), "sample rate 2147483647 Hz (outside 1000 Hz to 384 kHz)"),
        "empty": (b"", "no RIFF/WAVE header"),
        "text": (b"hello, I am not audio\n" * 3, "no RIFF/WAVE header"),
        "truncated at 10": (canonical[:10], "no RIFF/WAVE header"),
        "truncated at 16": (canonical[:16], "no fmt chunk (truncated header)"),
        "truncated at 20": (canonical[:20], "truncated fmt chunk"),
        "truncated in fmt": (canonical[:30], "truncated fmt chunk"),
        "truncated before data": (canonical[:40], "no data chunk (truncated file)"),
        "fmt size 8": (_riff(_fmt(size=8), data), "fmt chunk shorter than 16 bytes"),
        "fmt size 2^32-1": (_riff(_fmt(size=0xFFFFFFFF), data), "truncated fmt chunk"),
        "huge chunk before fmt": (_riff(_chunk(b"LIST", b"x" * 10, size=0xFFFFFFF0), _fmt(), data),
                                  "no fmt chunk (truncated header)"),
        "huge odd chunk after fmt": (_riff(_fmt(), _chunk(b"junk", b"x" * 9, size=0xFFFFFFFF), data),
                                     "no data chunk (truncated file)"),
        "data before fmt": (_riff(data, _fmt()), "data chunk before the fmt chunk"),
    }
    for name, (content, reason) in bad.items():
        path = tmp_path / f"{name.replace(' ', '_')}.wav"
        path.write_bytes(content)
        run = _run(outdir, [str(path)])
        assert run.returncode == 2, (name, run.returncode, run.stderr)
        assert run.stdout == b"", name
        assert run.stderr.decode() == f"example: {path} is not a 16-bit PCM wav file: {reason}\n", name
    # header only: a data chunk announcing 32000 bytes that the file does not hold reads what is there, cleanly
    (tmp_path / "header_only.wav").write_bytes(canonical[:44])
    run = _run(outdir, [str(tmp_path / "header_only.wav")])
    assert run.returncode == 0 and run.stdout == b""


# ---------------------------------------------------------------------------------------------- issue #16 models
def _cli_emit_build(graph: Graph, tmp_path) -> subprocess.CompletedProcess:
    save(graph, tmp_path / "m.kwsc")
    cmd = [sys.executable, "-m", "kwsc", "emit", str(tmp_path / "m.kwsc"), "--target", "c", "-o", str(tmp_path / "c"),
           "--build"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)


def test_example_of_a_model_with_two_inputs_feeds_audio_to_the_first(tmp_path, speech):
    """Dense scores + a second input (held at 0 by the example): the same detections as the one-input model."""
    skip_without_toolchain("host")
    wav, samples, _ = speech
    g = speech_detector()
    out_node = g.output_nodes[0]
    log_softmax = out_node.inputs[0]
    dense = log_softmax.producer.inputs[0]
    offset = g.add_input([2], name="offset")
    g.remove_node(out_node)
    g.remove_node(log_softmax.producer)
    g.add_output(g.op1("LogSoftmax", g.op1("Add", dense, offset)))
    graph = verify(g)
    run = _cli_emit_build(graph, tmp_path)
    assert run.returncode == 0, run.stderr
    main_c = (tmp_path / "c" / "main.c").read_text()
    assert "detector_Predict" not in main_c and "model_Predict(0, frame, input_extra1, scores)" in main_c
    example = subprocess.run([str(tmp_path / "c" / "example"), str(wav), "0.5", "1"], capture_output=True, text=True,
                             timeout=60, check=True)
    assert example.stdout.splitlines() == expected_lines(speech_detector(), samples)


def test_unused_input_builds_under_werror(tmp_path):
    skip_without_toolchain("host")
    g = Graph("unused")
    x = g.add_input([4])
    g.add_input([2], name="unused_input")
    g.add_output(g.op1("Relu", x))
    run = _cli_emit_build(verify(g), tmp_path)
    assert run.returncode == 0, run.stderr
    assert "-Werror" in (tmp_path / "c" / "Makefile").read_text()
    assert (tmp_path / "c" / "libmodel.so").is_file()


def test_constant_output_with_no_op_in_between_builds_and_runs(tmp_path):
    """Input → nothing; Constant → output: builds (it failed in a template / on -Wunused-parameter) and the
    example reports the constant's class once."""
    skip_without_toolchain("host")
    g = Graph("constant")
    g.add_input([160])
    g.add_output(g.add_constant(np.array([0.1, 0.9], np.float32), name="probabilities"))
    g.metadata["labels"] = ["_silence_", "yes"]
    run = _cli_emit_build(verify(g), tmp_path)
    assert run.returncode == 0, run.stderr
    pcm = np.zeros(1600, "<i2").tobytes()  # 10 frames of 160 samples
    example = subprocess.run([str(tmp_path / "c" / "example"), "-", "0.5", "1"], input=pcm, capture_output=True,
                             timeout=60, check=True)
    assert example.stdout.decode().splitlines() == ["DETECTED yes p=0.90 at t=0.01s"]


def test_a_graph_without_input_is_one_clear_error(tmp_path):
    g = Graph("no_input")
    g.add_output(g.add_constant(np.ones(3, np.float32)))
    with pytest.raises(BackendError, match="has no input: the C API calls the model once per input frame"):
        emit_c(verify(g), tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_hostile_names_stay_inside_comments(tmp_path):
    """Names end up in comments of the generated C: a newline or a comment end in them must not become code."""
    skip_without_toolchain("host")
    g = Graph("names")
    x = g.add_input([4], name="in\nint evil_input = 1;")
    y = g.op1("Relu", x, name="relu */ int evil_node = 1; /* \\")
    g.add_output(y, name="out\r\nint evil_output = 1;")
    emit_c(verify(g), tmp_path, build=True)
    for name in ("model.c", "model.h"):
        for line in (tmp_path / name).read_text().splitlines():
            if "int evil" in line:  # the injected declaration (sanitized identifiers read in_int_evil_…)
                stripped = line.strip()
                assert stripped.startswith("//") or (stripped.startswith("/*") and stripped.endswith("*/")
                                                     and stripped.count("*/") == 1), line
    nm = subprocess.run(["nm", str(tmp_path / "libmodel.so")], capture_output=True, text=True, check=True).stdout
    assert " evil_" not in nm  # no injected global
