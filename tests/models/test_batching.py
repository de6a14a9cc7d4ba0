"""``batch_size: auto``: batches from a memory budget, the OOM back-off, the report, and the same results
as a fixed batch size (within float tolerance: batch composition changes float sums in the last bits)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from compeffdist_utils.core.config import DifficultyParams, params_from_dict
from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset
from compeffdist_utils.evaluation import generation
from compeffdist_utils.models import batching
from compeffdist_utils.models.batching import Batcher, batch_reports, bytes_per_token

# Stated tolerance of auto vs a fixed batch: padding and batch size move logits by ~1e-5 (fp32), which
# can move one token's rank or nucleus by one at a near tie; so a sample's rank score may move by up to
# RANK_ATOL (one token of a ~20-token answer moving by ~0.2/20), perplexities by PPL_RTOL, label
# logits by LOGIT_ATOL, and the predicted label not at all away from ties.
RANK_ATOL = 1e-2
PPL_RTOL = 1e-4
LOGIT_ATOL = 1e-3


class FakeModel(torch.nn.Module):
    """A model shape for the memory estimate (no forward): Llama-3.2-3B-like config, fp32 weights."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(
            hidden_size=3072, num_attention_heads=24, num_key_value_heads=8, head_dim=128,
            intermediate_size=8192, vocab_size=128256, num_hidden_layers=28,
        )  # fmt: skip


def test_params_take_auto_or_a_positive_size():
    p = params_from_dict({"difficulty": {"batch_size": "auto"}, "evaluation": {"batch_size": 4}})
    assert p.difficulty.batch_size == "auto" and p.evaluation.batch_size == 4
    for bad in (0, "big"):
        with pytest.raises(ValueError, match="batch_size"):
            params_from_dict({"evaluation": {"batch_size": bad}})


def test_fixed_size_batches_exactly_and_keeps_groups_apart():
    b = Batcher(3, FakeModel(), "prefill")
    got = [
        batch
        for batch, _ in b.run(list(range(8)), [10] * 8, lambda x: None, same=lambda a, c: a // 4 == c // 4)
    ]
    assert got == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert b.report.largest == 3 and b.report.smallest == 1 and b.report.token_budget is None


def test_auto_fills_the_budget_and_fits_more_short_sequences(monkeypatch):
    monkeypatch.setattr(batching, "available_bytes", lambda device: 64 * 2**30)
    model = FakeModel()
    lengths = [2000] * 40 + [100] * 400
    b = Batcher("auto", model, "score")
    sizes = [len(batch) for batch, _ in b.run(list(range(len(lengths))), lengths, lambda x: None)]
    assert sum(sizes) == len(lengths)
    per_long = bytes_per_token(model.config, 4, "score", 2000, "cpu")
    budget = 64 * 2**30 * batching.CPU_SHARE
    assert sizes[0] == int(budget // (2000 * per_long))  # the largest batch that fits the budget
    assert max(sizes) > sizes[0]  # short sequences: more of them per batch
    assert max(sizes) <= batching.MAX_AUTO_BATCH
    assert batch_reports()["score FakeModel"]["setting"] == "auto" and b.report.token_budget > 0


def test_stage_records_carry_the_picked_sizes(monkeypatch):
    import pandas as pd

    from compeffdist_utils.difficulty_selection import summary
    from compeffdist_utils.evaluation import report

    monkeypatch.setattr(batching, "available_bytes", lambda device: 64 * 2**30)
    list(Batcher("auto", FakeModel(), "prefill").run(list(range(20)), [300] * 20, lambda x: None))
    sel = {"n_selected": 0, "expected": 0, "n_groups_selected": 0, "n_groups": 0}
    notes05 = summary.stage_notes(params_from_dict({}), [], [], [], 0.0, sel, pd.DataFrame({"rank": {}}))
    line = notes05["batch_sizes"]["prefill FakeModel"]
    assert line.startswith("prefill: batch_size auto on cpu, budget ") and "20 in all" in line
    bench = SimpleNamespace(fallback=False, note="", datasets=[])
    notes07 = report.stage_notes(bench, pd.DataFrame(), {}, pd.DataFrame())
    assert notes07["batch_sizes"]["prefill FakeModel"] == line


def test_generation_counts_the_kv_cache_of_the_new_tokens():
    cfg = FakeModel().config
    assert bytes_per_token(cfg, 2, "generate", 200, "cuda", new_tokens=300) > bytes_per_token(
        cfg, 2, "generate", 200, "cuda", new_tokens=0
    )


def test_oom_backs_off_and_later_batches_stay_small(monkeypatch):
    monkeypatch.setattr(
        batching, "available_bytes", lambda device: 2**40
    )  # the estimate allows MAX_AUTO_BATCH

    def forward(batch: list[int]) -> list[int]:
        if len(batch) > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [i * 10 for i in batch]

    b = Batcher("auto", FakeModel(), "prefill")
    results = dict(
        pair
        for batch, out in b.run(list(range(100)), [50] * 100, forward)
        for pair in zip(batch, out, strict=True)
    )
    assert results == {i: i * 10 for i in range(100)}
    assert b.report.backoffs >= 1 and b.report.largest <= 5
    assert "OOM back-off" in b.report.line()


def test_other_errors_and_fixed_sizes_do_not_back_off(monkeypatch):
    monkeypatch.setattr(batching, "available_bytes", lambda device: 2**40)

    def broken(batch: list[int]) -> None:
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        list(Batcher("auto", FakeModel(), "prefill").run([0, 1], [5, 5], broken))

    def oom(batch: list[int]) -> None:
        raise torch.OutOfMemoryError("out of memory")

    with pytest.raises(torch.OutOfMemoryError):  # a fixed size is what the user asked for: no silent change
        list(Batcher(4, FakeModel(), "prefill").run([0, 1], [5, 5], oom))


def test_a_config_without_the_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"lacks \['num_hidden_layers'\].*set a number"):
        bytes_per_token(
            SimpleNamespace(hidden_size=8, num_attention_heads=2, vocab_size=10), 4, "score", 10, "cpu"
        )


def test_cpu_allocator_failures_count_as_oom():
    assert batching.is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not batching.is_out_of_memory(RuntimeError("shape mismatch"))


# -- the kit's functions on the embedded SmolLM2: auto agrees with a fixed size --------------------------
SAMPLES = [
    {
        "sample_id": f"s{i}",
        "instruction": f"Rate the sentiment of review {i}.\n\nInput: {text}",
        "output": out,
    }
    for i, (text, out) in enumerate(
        [
            ("The food was cold and the waiter was rude.", "Negative: cold food and a rude waiter."),
            ("A wonderful, heartfelt film with a great cast.", "Positive."),
            ("It was fine, I guess, nothing special at all.", "Neutral; the reviewer is lukewarm about it."),
            ("Terrible.", "Negative"),
            ("I would go back tomorrow, best pasta in town!", "Positive: they want to return soon."),
        ]
    )
]


@pytest.mark.slow
def test_auto_scores_agree_with_batch_one(smol):
    model, tok = smol
    fixed = score_dataset(SAMPLES, model, tok, DifficultyParams(batch_size=1), None, progress=False)
    auto = score_dataset(SAMPLES, model, tok, DifficultyParams(batch_size="auto"), None, progress=False)
    for f, a in zip(fixed, auto, strict=True):
        assert f["sample_id"] == a["sample_id"] and f["n_tokens"] == a["n_tokens"]
        assert abs(f["rank"] - a["rank"]) <= RANK_ATOL
        assert a["ppl"] == pytest.approx(f["ppl"], rel=PPL_RTOL)
        assert a["ifd"] == pytest.approx(f["ifd"], rel=PPL_RTOL)
    report = batch_reports()[f"score {Path(model.config._name_or_path).name}"]
    assert report["setting"] == "auto" and report["largest"] == len(SAMPLES)  # all fit one batch on CPU


@pytest.mark.slow
def test_classify_backs_off_from_a_simulated_oom_with_the_same_answers(smol, monkeypatch):
    model, tok = smol
    texts = [s["instruction"] + "\nSentiment:" for s in SAMPLES]
    ids = generation.label_token_ids(tok, ["positive", "negative", "neutral"])
    fixed_pred, fixed_logits = generation.classify(model, tok, texts, ids, batch_size=2)
    real_forward = model.forward
    seen: list[int] = []

    def forward(*args, **kwargs):
        n = kwargs["input_ids"].shape[0]
        seen.append(n)
        if n > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    pred, logits = generation.classify(model, tok, texts, ids, batch_size="auto")
    assert seen[0] == len(texts) and max(seen[1:]) <= 2  # tried all at once, then backed off
    assert pred == fixed_pred
    assert torch.allclose(torch.tensor(logits), torch.tensor(fixed_logits), atol=LOGIT_ATOL)
    assert batch_reports()[f"prefill {Path(model.config._name_or_path).name}"]["backoffs"] >= 1
