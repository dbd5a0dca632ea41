"""The host's layout-2 int8 kernel (kwsc_qmat_rows on row octets, runtime/src/opt/qdot.c NOTE [Row octets]) on its
own: every row of random matrices with 0–1,030 columns (the 512-column blocks of x, the column tails) and 1–70 rows,
over random row slices (starts inside a group of eight, cut last groups), equal to plain integer sums — with AVX2
and in the SSE2 build of the same layout, under AddressSanitizer and UBSan."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.toolchain
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="layout 2 is the x86 host's")
@pytest.mark.parametrize("march", ["native", "x86-64"])
def test_row_octets_kernel_equals_plain_sums(tmp_path, march):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-march={march}",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{ROOT / 'runtime/include'}",
                    str(Path(__file__).with_name("qdot_octets_check.c")), str(ROOT / "runtime/src/opt/qdot.c"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if march == "native" and " avx2" in cpu and shutil.which("objdump"):  # the AVX2 kernel is the one checked
        assert "vpmaddubsw" in subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True).stdout
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok "), out.stdout
