"""Which inference precision and compiler suit this CPU (measured: README, Performance).

bfloat16 is fast only where the CPU computes it natively (AVX512_BF16 or AMX); elsewhere
oneDNN emulates it and it is slower than float32.  XLA helps only that emulated case:
with native bfloat16, oneDNN's own kernels are several times faster than XLA's
(benchmarks/bench_video.py: 14.4 against 3.1 frames per second at 640x480 on an AMX CPU),
and for float32 oneDNN's fused convolutions beat XLA's by about 2x.
"""
from __future__ import annotations

PRECISIONS = ("float32", "bfloat16")
NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX)."""
    return bool(cpu_flags() & NATIVE_BFLOAT16_FLAGS)


def default_precision() -> str:
    """``bfloat16`` where the CPU computes it natively, else ``float32`` (the video default;
    still images default to float32, which the committed result tables were made with)."""
    return "bfloat16" if native_bfloat16() else "float32"


def default_jit_compile(precision: str) -> bool:
    """XLA only for bfloat16 on a CPU that emulates it (about 3x faster there than oneDNN's emulation)."""
    return precision == "bfloat16" and not native_bfloat16()
