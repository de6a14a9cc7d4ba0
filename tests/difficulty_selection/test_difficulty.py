"""Difficulty scores: the fast scorer against the literal reference, on real SmolLM2 outputs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from compeffdist_utils.core.config import DifficultyParams
from compeffdist_utils.core.samples import SampleError
from compeffdist_utils.difficulty_selection import dataset_scores
from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset
from compeffdist_utils.difficulty_selection.reference import (
    reference_perplexities,
    reference_rank_score,
    reference_token,
    reference_token_scores,
)
from compeffdist_utils.difficulty_selection.scoring import (
    RawScore,
    encode_pairs,
    fit_to_window,
    token_breakdown,
)
from compeffdist_utils.difficulty_selection.token_stats import response_token_stats, vocab_stats

FIXED = [
    (
        "Classify the sentiment of the review as positive or negative.\n\nInput: The food was cold and the "
        "waiter was rude.",
        "Negative. The reviewer complains about cold food and a rude waiter.",
    ),
    ("What is the capital of France?", "Paris"),
    (
        "Please analyze the emotional intensity of the text.\n\nInput: I absolutely LOVED this movie!!!",
        "Very high: capital letters, three exclamation marks and 'absolutely' show strong excitement.",
    ),
    (
        "Extract the aspect terms and their polarity as JSON.\n\nInput: Great pasta, slow service.",
        '[{"aspect": "pasta", "sentiment": "positive"}, {"aspect": "service", "sentiment": "negative"}]',
    ),
]
GREEDY_PROMPTS = [
    "Is the following review positive or negative?\n\nInput: A wonderful, heartfelt film.",
    "Write one sentence about the weather today.",
]


@pytest.fixture(scope="module")
def samples(smol) -> list[dict]:
    """Fixed texts plus outputs that are exactly SmolLM2's greedy continuation (every token rank 0)."""
    model, tok = smol
    recs = [{"sample_id": f"fixed{i}", "instruction": x, "output": y} for i, (x, y) in enumerate(FIXED)]
    for i, prompt in enumerate(GREEDY_PROMPTS):
        x_ids = encode_pairs(tok, [prompt], ["."])[0][0]
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([x_ids]),
                attention_mask=torch.ones(1, len(x_ids), dtype=torch.long),
                max_new_tokens=12,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )[0, len(x_ids) :].tolist()
        if tok.eos_token_id in out:
            out = out[: out.index(tok.eos_token_id)]
        text = tok.decode(out)
        assert encode_pairs(tok, [prompt], [text])[0][1] == out, "greedy output does not re-tokenise"
        recs.append({"sample_id": f"greedy{i}", "instruction": prompt, "output": text})
    return recs


# The fast scorer runs padded batches (and keeps only the response's logits); its logits differ from
# the reference's unpadded pass in the last bits (measured: up to 4.4e-5). A token whose logit is that
# close to the gold token's may count on either side of it, and a nucleus whose cumulative probability
# is that close to p may end one token earlier or later, on another CPU (a gold-vs-next gap of 1.2e-5
# was seen). So rank and nucleus size are compared up to the number of such near ties (their "slack",
# 0 for most tokens' nuclei), and the score up to what those could move. TIE_WINDOW is 20x the
# measured difference.
TIE_WINDOW = 1e-3


def token_slack(logits_row: torch.Tensor, gold: int, rank: int, nucleus: int, nucleus_p: float = 0.95):
    """(rank slack, nucleus slack, score slack): how far last-bit differences could move each."""
    logits = logits_row.double()
    rank_slack = int(((logits - logits[gold]).abs() < TIE_WINDOW).sum()) - 1
    cumulative = torch.cumsum(torch.sort(torch.softmax(logits, -1), descending=True)[0], 0)
    nucleus_slack = int(((cumulative - nucleus_p).abs() < TIE_WINDOW).sum())

    def score(r: int, n: int) -> float:
        return r / n if r < n else 1.0

    # s = r / n is monotone (up in r, down in n): its extremes are at the corners of the slack box.
    low = score(max(0, rank - rank_slack), nucleus + nucleus_slack)
    high = score(rank + rank_slack, max(1, nucleus - nucleus_slack))
    base = score(rank, nucleus)
    return rank_slack, nucleus_slack, max(base - low, high - base)


def add_slack(model, tok, instruction: str, output: str, tokens: list[dict]) -> None:
    """Adds each reference token's slack (see TIE_WINDOW), from the same unpadded forward pass."""
    x_ids, y_ids = encode_pairs(tok, [instruction], [output])[0]
    ids = x_ids + y_ids
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    for t, token in zip(range(len(x_ids), len(ids)), tokens, strict=True):
        slack = token_slack(logits[t - 1], ids[t], token["rank"], token["nucleus"])
        token["rank_slack"], token["nucleus_slack"], token["score_slack"] = slack


@pytest.fixture(scope="module")
def reference(smol, samples) -> dict[str, dict]:
    model, tok = smol
    out = {}
    for r in samples:
        tokens = reference_token_scores(model, tok, r["instruction"], r["output"])
        add_slack(model, tok, r["instruction"], r["output"], tokens)
        out[r["sample_id"]] = {
            "tokens": tokens,
            "rank": reference_rank_score(tokens),
            "rank0": reference_rank_score(tokens, include_rank0=True),
            **reference_perplexities(model, tok, r["instruction"], r["output"]),
        }
    return out


@pytest.fixture(scope="module")
def scored(smol, samples, tmp_path_factory) -> tuple[Path, list[dict]]:
    """(cache file, fast scores): all samples in one left-padded batch of mixed lengths."""
    model, tok = smol
    cache = tmp_path_factory.mktemp("difficulty") / "scores.sqlite"
    return cache, score_dataset(samples, model, tok, DifficultyParams(batch_size=8), cache, progress=False)


# -- the vectorised vocabulary pass on synthetic logits (no model) --------------------------------------
@pytest.mark.parametrize(
    "scale,p,bf16_ties",
    # flat rows (the top-k must grow) ... peaked rows; bf16 rounding makes ties, some with the gold token
    [(0.5, 0.95, False), (0.5, 0.95, True), (3.0, 0.95, False), (3.0, 0.5, True), (12.0, 0.999, True)],
)
def test_vocab_stats_equals_full_sort(scale, p, bf16_ties):
    gen = torch.Generator().manual_seed(int(scale * 10))
    logits = torch.randn(24, 3001, generator=gen) * scale
    if bf16_ties:
        logits = logits.bfloat16().float()
    gold = torch.randint(0, 3001, (24,), generator=gen)
    gold[:5] = logits[:5].argmax(dim=1)  # rank 0
    nll, rank, nucleus = vocab_stats(logits, torch.arange(24), gold, p, vocab_chunk=256)
    if bf16_ties:
        assert any(int((logits[i] == logits[i, gold[i]]).sum()) > 1 for i in range(5, 24))
    for i in range(24):
        ref = reference_token(logits[i], int(gold[i]), p)
        assert (int(rank[i]), int(nucleus[i])) == (ref["rank"], ref["nucleus"])
        assert float(nll[i]) == pytest.approx(ref["nll"], rel=1e-5, abs=1e-5)
    assert int(rank[:5].max()) == 0
    if scale == 0.5:
        assert int(nucleus.min()) > 64  # the growing top-k path was exercised


def test_fit_to_window():
    x, y = list(range(10)), list(range(100, 130))
    assert fit_to_window(x, y, 64) == (x, y)
    assert fit_to_window(x, y, 20) == (x[-10:], y[:10])  # y keeps half the window
    assert fit_to_window(x, y, 36) == (x, y[:26])  # the instruction fits: only y is cut
    assert fit_to_window(list(range(50)), y[:4], 20) == (list(range(34, 50)), y[:4])


def test_raw_score_aggregation():
    raw = RawScore(
        length=5,
        n_tokens=4,
        n_nonzero=2,
        sum_s=0.5,
        nll_sum=4.0,
        n_uncond=4,
        nll_uncond_sum=8.0,
        truncated=True,
    )
    s = raw.scores(include_rank0=False)
    assert s["rank"] == 0.25 and raw.scores(include_rank0=True)["rank"] == 0.125
    assert s["ppl"] == pytest.approx(math.e) and s["ifd"] == pytest.approx(math.exp(1 - 2))
    easy = RawScore(3, 3, 0, 0.0, 1.0, 0, 0.0, False).scores(False)
    assert easy["rank"] == 0.0 and easy["ifd"] is None and easy["ppl_uncond"] is None


def test_bad_records_fail_before_scoring():
    with pytest.raises(SampleError, match="'output' is empty"):
        score_dataset([{"instruction": "x", "output": "  "}], None, None, DifficultyParams(), None)


# -- the fast scorer against the reference on the real model ---------------------------------------------
@pytest.mark.slow
def test_reference_sees_greedy_outputs_as_all_rank_zero(reference):
    for sid in ("greedy0", "greedy1"):
        assert reference[sid]["tokens"] and all(t["rank"] == 0 for t in reference[sid]["tokens"])
    assert reference["fixed0"]["rank"] > 0  # the fixed texts are not trivially easy


def check_against_reference(
    fast: list[dict], samples: list[dict], reference: dict, include_rank0: bool
) -> None:
    assert [f["sample_id"] for f in fast] == [r["sample_id"] for r in samples]
    for f in fast:
        ref = reference[f["sample_id"]]
        # Tokens whose score may change from 0 or to 0 may join or leave the mean's denominator.
        movable = sum(t["score_slack"] > 0 for t in ref["tokens"])
        kept = len(ref["tokens"]) if include_rank0 else sum(t["score"] > 0 for t in ref["tokens"])
        slack = sum(t["score_slack"] for t in ref["tokens"])
        tolerance = 1e-5 + (slack + movable) / max(1, kept - movable)
        assert abs(f["rank"] - ref["rank0" if include_rank0 else "rank"]) <= tolerance, f["sample_id"]
        assert abs(f["n_nonzero"] - sum(t["score"] > 0 for t in ref["tokens"])) <= movable
        assert f["n_tokens"] == f["length"] == len(ref["tokens"])
        if f["sample_id"].startswith("greedy"):
            assert f["rank"] == 0.0 and f["n_nonzero"] == 0


@pytest.mark.slow
def test_fast_scores_match_reference_in_one_padded_batch(scored, samples, reference):
    check_against_reference(scored[1], samples, reference, include_rank0=False)


@pytest.mark.slow
def test_fast_scores_match_reference_in_small_batches_with_rank0(smol, samples, reference):
    model, tok = smol
    settings = DifficultyParams(batch_size=3, vocab_chunk=4096, include_rank0=True)
    fast = score_dataset(samples, model, tok, settings, cache_path=None, progress=False)
    check_against_reference(fast, samples, reference, include_rank0=True)


@pytest.mark.slow
def test_token_ranks_and_nucleus_sizes_match_in_a_padded_batch(smol, samples, reference):
    model, tok = smol
    pairs = encode_pairs(tok, [r["instruction"] for r in samples], [r["output"] for r in samples])
    assert len({len(x) + len(y) for x, y in pairs}) > 3  # really mixed lengths, so really padded
    with torch.inference_mode():
        stats = response_token_stats(
            model, [x + y for x, y in pairs], [len(y) for _, y in pairs], tok.pad_token_id
        )
    for b, r in enumerate(samples):
        rows = stats.owner == b
        ref = reference[r["sample_id"]]["tokens"]
        assert_same_up_to_near_ties(stats.rank[rows].tolist(), stats.nucleus[rows].tolist(), ref)
        assert stats.nll[rows].tolist() == pytest.approx([t["nll"] for t in ref], abs=1e-3)


def assert_same_up_to_near_ties(ranks: list[int], nuclei: list[int], ref: list[dict]) -> None:
    """Rank and nucleus size equal the reference's up to each token's near ties (its slack)."""
    assert len(ranks) == len(nuclei) == len(ref)
    for i, (rank, nucleus, t) in enumerate(zip(ranks, nuclei, ref, strict=True)):
        assert abs(rank - t["rank"]) <= t["rank_slack"], f"token {i}: rank {rank} vs {t['rank']}"
        assert abs(nucleus - t["nucleus"]) <= t["nucleus_slack"], f"token {i}: nucleus {nucleus}"


@pytest.mark.slow
def test_perplexities_and_ifd_match_the_models_own_loss(scored, reference):
    for f in scored[1]:
        ref = reference[f["sample_id"]]
        for key in ("ppl", "ppl_uncond", "ifd"):
            assert f[key] == pytest.approx(ref[key], rel=1e-4), (f["sample_id"], key)


@pytest.mark.slow
def test_scores_are_cached_per_scorer_and_sample(smol, samples, reference, scored, monkeypatch):
    model, tok = smol
    cache, first = scored
    calls = []
    real = dataset_scores.score_encoded
    monkeypatch.setattr(
        dataset_scores, "score_encoded", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k)
    )
    # new ids, same content: reused; include_rank0 is applied to the cached sums
    renamed = [{**r, "sample_id": "copy-" + r["sample_id"]} for r in samples]
    again = score_dataset(renamed, model, tok, DifficultyParams(include_rank0=True), cache, progress=False)
    assert calls == []
    assert [a["rank"] for a in again] == pytest.approx(
        [reference[r["sample_id"]]["rank0"] for r in samples], abs=1e-5
    )
    assert [a["ppl"] for a in again] == [f["ppl"] for f in first]
    # a different nucleus makes a different scorer identity; a new sample is scored alone
    score_dataset(samples[1:3], model, tok, DifficultyParams(nucleus_p=0.9), cache, progress=False)
    assert calls == [2]
    extra = {"instruction": "Say yes.", "output": "Yes."}
    score_dataset([*samples, extra], model, tok, DifficultyParams(), cache, progress=False)
    assert calls == [2, 1]


@pytest.mark.slow
def test_long_samples_are_cut_to_the_window(smol):
    model, tok = smol
    rec = {"instruction": "Summarise. " * 30 + "\n\nInput: some text", "output": "A long answer, " * 20}
    (s,) = score_dataset([rec], model, tok, DifficultyParams(max_length=32), cache_path=None, progress=False)
    assert s["truncated"] and s["n_tokens"] == 16 and s["length"] > 16
    assert 0 <= s["rank"] <= 1 and s["ppl"] > 1


@pytest.mark.slow
def test_bfloat16_scorer_gives_sane_scores(smol, samples, scored):
    model, tok = smol
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    some = [samples[0], samples[2]]
    low = score_dataset(some, bf16, tok, DifficultyParams(dtype="bfloat16"), cache_path=None, progress=False)
    for a, b in zip([scored[1][0], scored[1][2]], low, strict=True):
        assert 0 < b["rank"] <= 1
        assert b["ppl"] == pytest.approx(a["ppl"], rel=0.25)
        assert b["rank"] == pytest.approx(a["rank"], abs=0.15)


class _NoBos:
    """A tokenizer without a BOS token (like Qwen's): PPL(y) then leaves out y's first token."""

    bos_token_id = None

    def __init__(self, tok):
        self._tok = tok

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __call__(self, *args, **kwargs):
        return self._tok(*args, **kwargs)

    def __len__(self):
        return len(self._tok)


@pytest.mark.slow
def test_tokenizer_without_bos(smol, samples):
    model, tok = smol
    no_bos = _NoBos(tok)
    one_token, longer = samples[1], samples[0]  # "Paris" is a single token
    fast = score_dataset(
        [one_token, longer], model, no_bos, DifficultyParams(), cache_path=None, progress=False
    )
    assert fast[0]["length"] == 1 and fast[0]["ppl_uncond"] is None and fast[0]["ifd"] is None
    ref = reference_perplexities(model, no_bos, longer["instruction"], longer["output"])
    assert fast[1]["ppl_uncond"] == pytest.approx(ref["ppl_uncond"], rel=1e-4)
    assert fast[1]["ifd"] == pytest.approx(ref["ifd"], rel=1e-4)


@pytest.mark.slow
def test_token_breakdown_explains_the_score(smol, samples, reference):
    model, tok = smol
    for r in (samples[0], samples[-1]):
        rows = token_breakdown(model, tok, r["instruction"], r["output"], DifficultyParams())
        assert "".join(t["token"] for t in rows) == r["output"]
        ref = reference[r["sample_id"]]["tokens"]
        assert_same_up_to_near_ties([t["rank"] for t in rows], [t["nucleus"] for t in rows], ref)
        assert all(0 < t["p_gold"] <= 1 for t in rows)


def test_scorer_identity_follows_the_code(smol, monkeypatch):
    model, tok = smol
    before = dataset_scores.scorer_identity(model, tok, DifficultyParams())
    monkeypatch.setattr(dataset_scores, "code_hash", lambda roots: "edited-score")
    assert dataset_scores.scorer_identity(model, tok, DifficultyParams()) != before
