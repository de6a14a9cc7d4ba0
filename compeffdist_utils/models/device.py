"""Device and dtype: where a model runs and in which precision (bf16 only where it is native)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where the file does not exist."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {
        f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()
    }


def fast_bf16(device: str = "cpu", flags: set[str] | None = None) -> bool:
    """Whether bf16 matmuls run natively here: AMX or AVX512-BF16 on CPU, bf16 support on CUDA.

    Without them a CPU emulates bf16 and is slower than fp32 (measured in benchmarks/bench_bf16.py).
    """
    if device.startswith("cuda"):
        import torch  # deferred: heavy, only to ask the device

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))


def resolve_dtype(name: str, device: str = "auto", training: bool = False) -> str:
    """The concrete dtype for a params dtype: ``auto`` is bf16 for forward passes where :func:`fast_bf16`,
    else fp32; training always gets fp32 weights from ``auto`` (bf16 training is ``training.bf16``)."""
    if name != "auto":
        return name
    if training:
        return "float32"
    return "bfloat16" if fast_bf16(pick_device(device)) else "float32"


def torch_dtype_of(name: str, device: str = "auto") -> Any:
    import torch  # deferred: heavy, only to ask the device

    concrete = resolve_dtype(name, device)
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[concrete]


def pick_device(device: str) -> str:
    import torch  # deferred: heavy, only to ask the device

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"
