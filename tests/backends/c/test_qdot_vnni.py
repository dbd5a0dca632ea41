"""The host's AVX-512 VNNI / AVX-VNNI int8 kernels (runtime/src/opt/qdot.c, the vpdpbusd branch that -march picks on
Ice Lake and later, Alder Lake, Zen 4), run on a CPU without VNNI: qdot.c is built with AVX2 and the test-only
vnni_shim.h force-included, which selects the VNNI branch and supplies the instruction's semantics in portable C
(per 32-bit lane, four unsigned × signed byte products added to the accumulator, wrapping). So the branch's own code
runs — its operand order, the |x| / sign(x) trick, the row octets of layout 2, the row-major rows of QConv, tails and
row slices — on emulated instructions, not on the hardware. Checked: the kernels alone against plain sums (the
shapes of test_qdot_octets.py, under ASan and UBSan) with both families' intrinsic names; whole int8 models against
the reference interpreter; a deliberately wrong shim fails; and the branch compiles warning-free for real VNNI CPUs
with vpdpbusd in the object."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kwsc.backends.c import emit_c, run_harness
from kwsc.backends.c.targets import get_target
from tests.backends.c.conftest import reference_outputs, skip_without_toolchain

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
SHIM = HERE / "vnni_shim.h"
AVX2 = "-march=x86-64-v3"  # AVX2 without VNNI whatever the machine: the shim then decides the branch
# (a CPU, the -march flags): Zen 4 as its ISA list where this GCC lacks -march=znver4 (GCC < 12.3)
ZNVER4 = ("-march=znver3 -mavx512f -mavx512cd -mavx512vl -mavx512bw -mavx512dq -mavx512ifma -mavx512vbmi "
          "-mavx512vbmi2 -mavx512bitalg -mavx512vpopcntdq -mavx512vnni -mavx512bf16 -mgfni -mvaes -mvpclmulqdq")
VARIANTS = {"avx512vnni": ["-DKWSC_VNNI_SHIM_AVX512"], "avxvnni": []}

_CPU = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
needs_avx2 = pytest.mark.skipif(" avx2" not in _CPU, reason="the emulated-VNNI builds are AVX2 programs")

pytestmark = [pytest.mark.toolchain,
              pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 kernels"),
              pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")]


def _check_exe(tmp_path: Path, flags: list[str], sanitize: bool) -> Path:
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", AVX2, *flags, "-include", str(SHIM)]
                   + (["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else [])
                   + [f"-I{ROOT / 'runtime/include'}", str(HERE / "qdot_octets_check.c"),
                      str(ROOT / "runtime/src/opt/qdot.c"), "-o", str(exe)], check=True, capture_output=True, text=True)
    return exe


@needs_avx2
@pytest.mark.parametrize("variant", VARIANTS)
def test_vnni_kernels_on_emulated_vpdpbusd_equal_plain_sums(tmp_path, variant):
    # under ASan and UBSan once: the memory accesses are the AVX2 kernels' (test_qdot_octets.py), not the products
    exe = _check_exe(tmp_path, VARIANTS[variant], sanitize=variant == "avxvnni")
    if shutil.which("objdump"):  # the AVX2 products are gone: every int8 product goes through the shim
        assert "vpmaddubsw" not in subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True).stdout
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok "), out.stdout


@needs_avx2
def test_a_wrong_vpdpbusd_is_caught(tmp_path):
    """The shim with the operands' roles swapped (the first read as signed, the second as unsigned): the kernels'
    sums go wrong at once — the checks above run the shim, and they can fail."""
    exe = _check_exe(tmp_path, VARIANTS["avx512vnni"] + ["-DKWSC_VNNI_SHIM_BROKEN"], sanitize=False)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and out.stdout.startswith("BAD rows "), out.stdout + out.stderr


def _wide_dense():
    from tests.backends.c.test_int8_arith import dense_graph

    return dense_graph(rows=70, cols=611)  # past the 512 columns of x per block, a cut last group of eight


def _cells():
    from tests.backends.c.test_int8_arith import cells_graph

    return cells_graph()  # GRU candidate rows from row 42: row slices inside a group of eight


def _conv():
    from tests.backends.c.test_int8_conv import qconv_zoo

    return qconv_zoo()  # kwsc_qdot_rows: row-major rows, four at a time


@needs_avx2
@pytest.mark.parametrize("name, variant", [("dense", "avx512vnni"), ("cells", "avxvnni"), ("conv", "avx512vnni")])
def test_vnni_builds_equal_reference(tmp_path, name, variant):
    """Whole int8 models whose host build runs the VNNI branch (on the shim) against the reference interpreter: bit
    for bit for QDense and QConv, within the gate functions' float rounding for the cells (test_int8_arith.py)."""
    skip_without_toolchain("host")
    graph = {"dense": _wide_dense, "cells": _cells, "conv": _conv}[name]()
    emit_c(graph, tmp_path, arch="host")
    flags = " ".join(["$(CFLAGS)", AVX2, "-ffp-contract=fast -fno-math-errno -DKWSC_VEC=8", *VARIANTS[variant],
                      "-include", str(SHIM)])
    subprocess.run(["make", "-s", f"KERNEL_CFLAGS={flags}", "harness"], cwd=tmp_path, check=True, capture_output=True)
    size = int(np.prod(graph.inputs[0].shape))
    x = np.random.default_rng(4).normal(0, 1, (10, size)).astype(np.float32)
    x[3] = 0.0  # an all-zero step: scale 0
    resets = [6] if name == "cells" else []
    got, want = run_harness(tmp_path, "host", x, resets), reference_outputs(graph, x, resets)
    if name == "cells":
        np.testing.assert_allclose(got, want, atol=2e-3, rtol=0, err_msg="VNNI cells")
        assert np.abs(got - want).mean() < 1e-4
    else:
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f"VNNI {name}")


def _march_supported(flag: str) -> bool:
    return subprocess.run(["gcc", flag, "-x", "c", "-E", "-o", "/dev/null", "/dev/null"],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("cpu", ["icelake-server", "alderlake", "sapphirerapids", "znver4"])
def test_vnni_branch_compiles_for_vnni_cpus(tmp_path, cpu):
    """qdot.c with the host's flags (warnings are errors) and a VNNI CPU's -march: vpdpbusd, no AVX2 products."""
    march = f"-march={cpu}"
    if cpu == "znver4" and not _march_supported(march):
        march = ZNVER4
    host = get_target("host")
    kernel = [f for f in host.kernel_cflags if not f.startswith("-march")]
    obj = tmp_path / "qdot.o"
    subprocess.run(["gcc", *host.cflags, *kernel, *march.split(), f"-I{ROOT / 'runtime/include'}", "-c",
                    str(ROOT / "runtime/src/opt/qdot.c"), "-o", str(obj)], check=True, capture_output=True, text=True)
    if shutil.which("objdump"):
        asm = subprocess.run(["objdump", "-d", str(obj)], capture_output=True, text=True).stdout
        assert "vpdpbusd" in asm and "vpmaddubsw" not in asm
