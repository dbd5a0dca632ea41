"""`kwsc emit -o some/relative/dir` works like an absolute path: the build and the size tools run inside the
project folder, so a relative output path once made `nm` look for build/…o under the wrong folder (make demo)."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import emit_c, load
from kwsc.backends.reference import Interpreter
from tests.backends.c.test_int32_buffers import vad_driven_gru

pytestmark = pytest.mark.toolchain


def test_relative_output_folder_builds_reports_size_and_loads(tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    graph = vad_driven_gru(hidden=8)
    if shutil.which("arm-none-eabi-gcc"):
        result = emit_c(graph, "out/m4", name="m", arch="cortex-m4", build=True, size_report=True)
        assert result.size is not None and result.size.weights > 0
    emit_c(graph, "out/host", name="m", arch="host", build=True)
    model = load("out/host")
    frame = np.random.default_rng(0).normal(0, 1, 80).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model.predict(frame)).reshape(-1), Interpreter(graph).step(frame),
                               atol=1e-5)
