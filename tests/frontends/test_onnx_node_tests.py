"""ONNX's own node tests for issue 15's ops (generated from the pinned onnx), through the reference interpreter
and the compiled C: every case passes or fails for a stated reason that is not a wrong number.

The host build runs every case kwsc compiles (all in one C project); the ARM targets run a bounded sample under
qemu here, and every case in ``make bench`` (``benchmarks/test_onnx_node_tests.py``), which also prints the
README's per-op table (``python -m tests.frontends.onnx_node_cases``).
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("onnx")

from tests.backends.c.conftest import skip_without_toolchain  # noqa: E402
from tests.frontends.onnx_node_cases import collect, run_c, run_reference  # noqa: E402

# Why a case may fail, and nothing else: what kwsc does not do, each said in one line by the importer or emitter.
REFERENCE_REFUSALS = {
    "element type": r"element type (INT8|INT16|UINT8|UINT16|UINT32|UINT64|FLOAT16) is not supported",
    "training mode": r"training_mode=1 is not supported: kwsc compiles inference",
    "MaxPool indices": r"the Indices output is not supported",
    "empty tensor": r"dimension 0 is not positive",
}
C_REFUSALS = {
    "non-float input": r"graph input '\w+' is (int32|int64|bool|float64); the C API takes float",
}


@pytest.fixture(scope="module")
def cases():
    found = collect()
    run_reference(found)
    return found


def _category(reason: str, table: dict[str, str]) -> str | None:
    return next((name for name, pattern in table.items() if re.search(pattern, reason)), None)


def test_reference_passes_every_case_it_does_not_refuse(cases):
    assert len(cases) >= 190 and {c.op for c in cases} >= {"Conv", "MaxPool", "AveragePool", "Pad", "Clip",
                                                            "ReduceMax", "Softmax", "LogSoftmax", "HardSwish"}
    failed = {c.name: c.reference for c in cases if c.reference is not None}
    wrong = {name: why for name, why in failed.items() if _category(why, REFERENCE_REFUSALS) is None}
    assert wrong == {}
    passed = len(cases) - len(failed)
    in_scope = [c for c in cases if c.reference is None or _category(c.reference, REFERENCE_REFUSALS) != "element type"]
    assert passed >= 0.95 * len(in_scope), (passed, len(in_scope))


@pytest.mark.toolchain
def test_c_host_passes_every_case_with_float_inputs(cases, tmp_path):
    skip_without_toolchain("host")
    run_c(cases, "host", tmp_path)
    ran = [c for c in cases if c.reference is None]
    wrong = {c.name: c.c["host"] for c in ran
             if c.c["host"] is not None and _category(c.c["host"], C_REFUSALS) is None}
    assert wrong == {}
    compiled = [c for c in ran if c.c["host"] is None]
    assert len(compiled) >= 125 and {c.op for c in compiled} >= {"Conv", "MaxPool", "AveragePool", "Pad",
                                                                 "BatchNormalization", "Softmax"}


def _small_sample(cases, every: int):
    """Every ``every``-th float case whose tensors are small (Cortex-M4 RAM; qemu time)."""
    import numpy as np

    small = [c for c in cases if c.reference is None and all(np.asarray(v).dtype == np.float32 and np.size(v) <= 600
                                                             for v in c.feeds.values())
             and all(e.size <= 600 for e in c.expected)]
    return small[::every]


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ["armv7", "aarch64", "cortex-m4"])
def test_c_arm_sample_under_qemu(cases, arch, tmp_path):
    skip_without_toolchain(arch)
    sample = _small_sample(cases, 6)
    assert len(sample) >= 15 and len({c.op for c in sample}) >= 10
    run_c(sample, arch, tmp_path)
    assert {c.name: c.c[arch] for c in sample if c.c[arch] is not None} == {}
