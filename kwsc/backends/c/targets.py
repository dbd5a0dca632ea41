"""Build targets of the C backend: compiler, flags, kernel variant, memory alignment and how to run a program.

Each target is one ``Target`` value; a variant overrides a few fields (``dataclasses.replace``). Everything that
differs between host, armv7, aarch64 and Cortex-M4 lives here, so the templates and the emitter stay target-free.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace

from kwsc.errors import InputError

__all__ = ["Target", "TARGETS", "ARCHES", "get_target"]

_WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class Target:
    """One architecture the generated C is built for.

    Attributes:
        name: the ``--arch`` value.
        cc: the C compiler (a gcc).
        cflags: flags for model and reference kernels (warnings as errors; no FMA contraction, so the
            featurizer and VAD round like the reference).
        kernel_cflags: extra flags for the optimised kernels in ``runtime/src/opt`` (contraction allowed).
        ldflags: link flags for executables.
        kernels: ``"opt"`` (vectorised matvec) or ``"ref"`` (plain C only).
        opt_files: runtime files taken from ``src/opt`` for models with int8 layers even when ``kernels`` is
            ``"ref"`` (the Cortex-M4's SMLAD products, chosen in the file by the compiler's target macros, and the
            polynomial gate functions instead of libm's); float models keep the plain kernels.
        vector_width: floats per vector in the optimised kernels (``KWSC_VEC``).
        align: activation buffers start at multiples of this many floats (SIMD loads vs RAM).
        artifact: ``"shared"`` (host: a .so loaded with ctypes), ``"static"`` (Linux executables under
            qemu-user) or ``"baremetal"`` (an ELF for qemu-system-arm with semihosting).
        runner: command prefix that runs an executable of this target (empty: run directly).
        size_tool, nm_tool: binutils for the size report.
        startup: runtime files (relative to runtime/) linked into bare-metal executables.
        linker_script: linker script (relative to runtime/) for bare-metal executables.
        qlayout: how int8 weight matrices are stored (``kwsc_qmat.layout``): ``0`` row-major; ``1`` rows in groups
            of four, two rows per int16 lane (the Cortex-M4's SMLAD kernel, NOTE [Row pairs in one SMLAD] in
            runtime/src/opt/qdot.c); ``2`` rows in groups of eight, four columns per 32-bit lane (x86 AVX2/VNNI: one
            broadcast of four x bytes meets eight rows, no horizontal sums; NOTE [Row octets] in qdot.c).
    """

    name: str
    cc: str
    cflags: tuple[str, ...]
    kernel_cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    kernels: str = "opt"
    opt_files: frozenset[str] = frozenset()
    vector_width: int = 4
    align: int = 4
    artifact: str = "static"
    runner: tuple[str, ...] = ()
    size_tool: str = "size"
    nm_tool: str = "nm"
    startup: tuple[str, ...] = ()
    linker_script: str = ""
    probe_ldflags: tuple[str, ...] = field(default=())
    qlayout: int = 0

    @property
    def exe_suffix(self) -> str:
        return ".elf" if self.artifact == "baremetal" else ""

    def missing_tools(self) -> list[str]:
        """The compiler/emulator/binutils of this target that are not on PATH."""
        tools = [self.cc, self.size_tool, self.nm_tool] + ([self.runner[0]] if self.runner else [])
        return [t for t in tools if shutil.which(t) is None]


_HOST = Target(
    name="host", cc="gcc",
    cflags=_WARNINGS + ("-O3", "-fPIC", "-ffp-contract=off"),
    kernel_cflags=("-march=native", "-ffp-contract=fast", "-fno-math-errno"),
    # 8 floats: one AVX2 register. With 16 (pairs of registers without AVX-512) GCC spilled matvec's accumulators
    # and the activation polynomials: 4x slower gates, 2x slower dot products on this AVX2 machine.
    ldflags=("-lm",), vector_width=8, align=16, artifact="shared", qlayout=2,
)

_ARMV7 = Target(
    name="armv7", cc="arm-linux-gnueabihf-gcc",
    cflags=_WARNINGS + ("-O3", "-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard", "-ffp-contract=off"),
    # NEON flushes denormals, so GCC maps vector code to it only with -funsafe-math-optimizations; without it the
    # optimised kernels would run lane by lane on VFP. Only the opt kernels get it (tests hold them to 1e-4).
    kernel_cflags=("-ffp-contract=fast", "-fno-math-errno", "-funsafe-math-optimizations"),
    ldflags=("-static", "-lm"), vector_width=4, align=4,
    runner=("qemu-arm", "-L", "/usr/arm-linux-gnueabihf"),
    size_tool="arm-linux-gnueabihf-size", nm_tool="arm-linux-gnueabihf-nm",
)

_AARCH64 = Target(
    name="aarch64", cc="aarch64-linux-gnu-gcc",
    cflags=_WARNINGS + ("-O3", "-ffp-contract=off"),
    kernel_cflags=("-ffp-contract=fast", "-fno-math-errno"),
    ldflags=("-static", "-lm"), vector_width=4, align=4,
    runner=("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"),
    size_tool="aarch64-linux-gnu-size", nm_tool="aarch64-linux-gnu-nm",
)

_M4_ARCH = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
_CORTEX_M4 = Target(
    name="cortex-m4", cc="arm-none-eabi-gcc",
    # -Os: flash is the scarce resource; the plain reference kernels are the right size/speed trade there.
    cflags=_WARNINGS + _M4_ARCH + ("-Os", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off"),
    ldflags=_M4_ARCH + ("-nostartfiles", "-Wl,--gc-sections", "--specs=nano.specs", "--specs=rdimon.specs", "-lm"),
    probe_ldflags=_M4_ARCH + ("-nostartfiles", "-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs",
                              "-lm"),
    kernels="ref", opt_files=frozenset({"qdot.c", "activation.c"}), vector_width=1, align=1, artifact="baremetal",
    runner=("qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic",
            "-semihosting-config", "enable=on,target=native", "-kernel"),
    size_tool="arm-none-eabi-size", nm_tool="arm-none-eabi-nm",
    startup=("targets/cortex-m4/startup.c",), linker_script="targets/cortex-m4/mps2_an386.ld", qlayout=1,
)

# The host with the plain reference kernels only: what the optimised kernels are tested and benchmarked against.
_HOST_REF = replace(_HOST, name="host-ref", kernels="ref", kernel_cflags=(), vector_width=1, align=1, qlayout=0)
# ARMv8.2-A cores with the dot-product extension (Cortex-A55/A76 and later): int8 products with sdot.
_AARCH64_DOTPROD = replace(_AARCH64, name="aarch64-dotprod",
                           kernel_cflags=_AARCH64.kernel_cflags + ("-march=armv8.2-a+dotprod",))

TARGETS: dict[str, Target] = {t.name: t for t in (_HOST, _ARMV7, _AARCH64, _CORTEX_M4, _HOST_REF, _AARCH64_DOTPROD)}
# What `--arch` offers users; host-ref exists for tests and benchmarks.
ARCHES = ("host", "armv7", "aarch64", "aarch64-dotprod", "cortex-m4")


def get_target(arch: str) -> Target:
    """The target named ``arch`` (InputError listing the known ones otherwise)."""
    try:
        return TARGETS[arch]
    except KeyError:
        raise InputError(f"unknown --arch {arch!r}; choose one of: {', '.join(TARGETS)}") from None
