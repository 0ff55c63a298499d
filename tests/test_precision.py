"""The precision and XLA defaults follow the CPU's bfloat16 flags (tf_twogan.precision)."""
import pytest

from tf_twogan import precision

NATIVE = ({"avx512f", "amx_bf16"}, {"avx512f", "avx512_bf16"})
EMULATED = ({"avx512f", "avx512_vnni"}, set())


@pytest.mark.parametrize("flags", NATIVE + EMULATED)
def test_bfloat16_is_the_default_only_where_the_cpu_has_it_and_xla_only_where_it_does_not(monkeypatch, flags):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    native = flags in NATIVE
    assert precision.default_precision() == ("bfloat16" if native else "float32")
    # measured (benchmarks/bench_video.py): XLA is 4.6x slower than oneDNN with native bfloat16,
    # about 3x faster than oneDNN's emulation without it, and 2x slower for float32
    assert precision.default_jit_compile("bfloat16") is (not native)
    assert precision.default_jit_compile("float32") is False


def test_the_fuser_compiles_with_xla_by_the_same_rule(monkeypatch, tiny_checkpoint):
    from tf_twogan.inference import Fuser

    for flags in (NATIVE[0], EMULATED[0]):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        assert Fuser(tiny_checkpoint, precision="bfloat16").jit_compile is (flags in EMULATED)
        assert Fuser(tiny_checkpoint).jit_compile is False
        assert Fuser(tiny_checkpoint, precision="bfloat16", jit_compile=True).jit_compile is True


def test_cpu_flags_reads_proc_cpuinfo():
    with open("/proc/cpuinfo") as cpuinfo:
        line = next(line for line in cpuinfo if line.startswith("flags"))
    assert precision.cpu_flags() == set(line.split(":", 1)[1].split())
