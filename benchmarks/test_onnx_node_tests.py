"""Every ONNX node test of issue 15's ops on every target: the reference interpreter and the generated C on
host, armv7, aarch64 and Cortex-M4 (qemu), all cases of a target in one C project. Prints the README's per-op
table and the failing cases with their reasons (`make bench`; `make test` runs the host and a qemu sample)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

from tests.frontends.onnx_node_cases import collect, failures, run_c, run_reference, table  # noqa: E402


def test_every_node_case_on_every_target(tmp_path):
    from kwsc.backends.c import toolchain_missing

    cases = collect()
    run_reference(cases)
    arches = [a for a in ("host", "armv7", "aarch64", "cortex-m4") if not toolchain_missing(a)]
    for arch in arches:
        run_c(cases, arch, tmp_path)
    print("\n" + table(cases, arches) + "\n\n" + failures(cases, arches))
    host = [c for c in cases if c.reference is None and c.c.get("host", "") is None]
    for arch in arches:  # a case the host build passes passes on every target
        assert all(c.c[arch] is None for c in host), arch
