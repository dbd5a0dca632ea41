"""A convolutional window model the way a user runs it: torch → ONNX → `kwsc import` → the `stream` pass →
`fuse_featurizer` → `kwsc wrap` (C) → the example program on a wav, `kwsc test` in every mode (compiled C and
reference give the same decisions) and `kwsc bench`. Kept tiny (4 channels, a 12-frame window, 10 mel bands)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from tests.conftest import read_wav_float

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def kwsc(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from tests.backends.c.conftest import skip_without_toolchain

    skip_without_toolchain("host")
    from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer
    from kwsc.ir import save

    root = tmp_path_factory.mktemp("conv_e2e")
    torch.manual_seed(0)

    class TinyDsCnn(torch.nn.Module):  # no padding on time: every layer streams frame by frame
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, (3, 3), stride=(1, 2))
            self.depth = torch.nn.Conv2d(4, 4, 3, groups=4)
            self.point = torch.nn.Conv2d(4, 4, 1)
            self.fc = torch.nn.Linear(4, len(LABELS))

        def forward(self, x):
            y = torch.relu(self.point(torch.relu(self.depth(torch.relu(self.conv(x * 0.1))))))
            return torch.log_softmax(self.fc(y.mean(dim=(2, 3))) * 4.0, -1)

    torch.onnx.export(TinyDsCnn().eval(), (torch.zeros(1, 1, 12, 10),), str(root / "tiny.onnx"), dynamo=False)
    save(make_featurizer(FeaturizerOptions(sample_rate=16000, window_size=512, input_buffer_size=512,
                                           hamming_window=True, filterbank_size=10, log=True, auto_scale=True)),
         root / "featurizer.kwsc")
    (root / "categories.txt").write_text("\n".join(LABELS) + "\n")
    for args in (("import", root / "tiny.onnx", "-o", root / "tiny.kwsc"),
                 ("transform", root / "tiny.kwsc", "--passes", "stream", "-o", root / "tick.kwsc"),
                 ("transform", root / "tick.kwsc", "--passes", "fuse_featurizer,fold,dce", "--featurizer",
                  root / "featurizer.kwsc", "-o", root / "fused.kwsc"),
                 ("wrap", "--model_file", root / "fused.kwsc", "--outdir", root / "c", "--module_name", "kws")):
        done = kwsc(*args)
        assert done.returncode == 0, done.stderr
    return root


def test_example_program_prints_the_reference_detections(project, speech_dir):
    from kwsc.models import load_model

    wav = sorted((speech_dir / "yes").glob("*.wav"))[0]
    run = subprocess.run([str(project / "c" / "example"), str(wav), "0.3", "1"], capture_output=True, text=True,
                         timeout=60, check=True)
    graph = load_model(project / "fused.kwsc")
    samples = read_wav_float(wav)
    steps = len(samples) // 512
    probs = np.exp(Interpreter(graph).run(samples[: steps * 512].reshape(steps, 512))).reshape(steps, -1)
    lines, last = [], -1  # the example's rule without smoothing: a new best class at or above the threshold
    for t, p in enumerate(probs):
        best = int(p.argmax())
        if p[best] >= 0.3 and best != last:
            lines.append(f"DETECTED class{best} p={p[best]:.2f} at t={(t + 1) * 512 / 16000:.2f}s")
            last = best
        elif p[best] < 0.3:
            last = -1
    got = [line.split(" ", 2)[2] for line in run.stdout.splitlines()]  # labels aside: the class may be named
    assert got == [line.split(" ", 2)[2] for line in lines] and got


def test_keyword_test_every_mode_compiled_equals_reference(project, speech_dir, tmp_path):
    files = [f"{word}/{sorted((speech_dir / word).glob('*.wav'))[0].name}" for word in ("yes", "no")]
    (tmp_path / "list.txt").write_text("\n".join(files) + "\n")
    runs = {}
    for label, classifier in (("c", project / "c" / "kws"), ("reference", project / "fused.kwsc")):
        done = kwsc("test", "--classifier", classifier, "--list_file", tmp_path / "list.txt", "--wav_files",
                    speech_dir, "--categories", project / "categories.txt", "--modes", "reset,stream,vad",
                    "-o", tmp_path / label / "results.json")
        assert done.returncode == 0, done.stderr
        assert "vad mode: none: the classifier keeps no recurrent state" in done.stderr
        runs[label] = json.loads((tmp_path / label / "results.json").read_text())["modes"]
    assert set(runs["c"]) == {"reset", "stream", "vad"}
    for mode in runs["c"]:
        got = [(f["expected"], f["predicted"]) for f in runs["c"][mode]["files"]]
        want = [(f["expected"], f["predicted"]) for f in runs["reference"][mode]["files"]]
        assert got == want, mode
    # nothing for a VAD to reset: the vad mode decides exactly as the stream mode
    assert [f["predicted"] for f in runs["c"]["vad"]["files"]] == [f["predicted"] for f in runs["c"]["stream"]["files"]]


def test_bench_runs_the_streamed_model(project, tmp_path):
    done = kwsc("bench", project / "fused.kwsc", "--targets", "host", "--frames", "20", "--rounds", "2",
                "--json", tmp_path / "bench.json")
    assert done.returncode == 0, done.stderr
    assert "generated C (host)" in done.stdout and "reference interpreter" in done.stdout
