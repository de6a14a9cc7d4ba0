"""dtype auto: bf16 forward passes only where the hardware runs bf16 natively, fp32 weights for training."""

from __future__ import annotations

import pytest

from compeffdist_utils.core.config import ParamsError, params_from_dict
from compeffdist_utils.models import device as models


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile\n\nflags\t: avx512_bf16\n")
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= models.cpu_flags(info)
    assert models.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    ("flags", "fast"),
    [({"avx2"}, False), ({"avx2", "avx512_bf16"}, True), ({"amx_bf16"}, True), (set(), False)],
)
def test_fast_bf16_needs_amx_or_avx512_bf16(flags, fast):
    assert models.fast_bf16("cpu", flags) is fast


def test_auto_resolves_by_hardware_and_never_trains_in_bf16(monkeypatch):
    monkeypatch.setattr(models, "fast_bf16", lambda device="cpu", flags=None: True)
    assert models.resolve_dtype("auto", "cpu") == "bfloat16"
    assert models.resolve_dtype("auto", "cpu", training=True) == "float32"
    monkeypatch.setattr(models, "fast_bf16", lambda device="cpu", flags=None: False)
    assert models.resolve_dtype("auto", "cpu") == "float32"
    assert models.resolve_dtype("bfloat16", "cpu") == "bfloat16"  # an explicit choice is kept


def test_params_accept_auto_and_reject_others():
    p = params_from_dict(
        {"models": {"dtype": "auto", "teacher": {"dtype": "auto"}}, "difficulty": {"dtype": "auto"}}
    )
    assert (p.models.dtype, p.models.teacher.dtype, p.difficulty.dtype) == ("auto", "auto", "auto")
    with pytest.raises(ParamsError, match="models.dtype"):
        params_from_dict({"models": {"dtype": "int8"}})
