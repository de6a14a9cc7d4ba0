"""Stage 04: the pairing policy (counts, balance, determinism, cap) and the dataset schema."""

from __future__ import annotations

from collections import Counter

import pytest

from compeffdist_utils.core.config import DecodingParams, DistillDataParams
from compeffdist_utils.distillation_data.dataset import (
    DATASET_FIELDS,
    DistillDataError,
    answer_samples,
    pair_instructions_with_texts,
    sample_instruction,
)


def make_pool(n: int) -> list[dict]:
    return [
        {"instruction_id": f"c{i % 3}-t{i}", "cluster_id": i % 3, "task_name": f"task {i}",
         "task_type": "scoring", "prompt": f"Rate the text ({i}).", "demos": []}
        for i in range(n)
    ]  # fmt: skip


def make_texts(sizes: dict[str, int]) -> list[dict]:
    return [
        {"text_id": f"{d}-{k}", "domain": d, "text": f"{d} text number {k}", "label": None}
        for d, n in sizes.items()
        for k in range(n)
    ]


def test_sample_form_is_the_authors():
    assert sample_instruction("Rate it.", "Great film") == "Rate it.\n\nInput: Great film"


def test_counts_distinct_texts_and_even_use():
    pool, texts = make_pool(10), make_texts({"imdb": 5, "tweets": 5, "rt": 5})
    samples, report = pair_instructions_with_texts(pool, texts, DistillDataParams(texts_per_instruction=3))
    assert report["pairs"] == len(samples) == 30 and report["slots_without_unused_text"] == 0
    per_inst = Counter(s["instruction_id"] for s in samples)
    assert set(per_inst.values()) == {3}
    assert len({s["sample_id"] for s in samples}) == 30  # no instruction gets a text twice
    # 30 draws over 15 texts: every text used exactly twice (queues refill only when empty).
    assert set(Counter(s["text_id"] for s in samples).values()) == {2}
    for s in samples:
        assert s["instruction"] == sample_instruction(
            s["prompt"], f"{s['domain']} text number {s['text_id'].split('-')[1]}"
        )


def test_texts_used_evenly_even_when_instructions_must_skip_their_own_texts():
    # Every instruction needs every text of the corpus: draws must skip texts an instruction already has.
    samples, report = pair_instructions_with_texts(
        make_pool(7), make_texts({"a": 4}), DistillDataParams(texts_per_instruction=4)
    )
    assert len(samples) == 28 and report["slots_without_unused_text"] == 0
    assert set(Counter(s["text_id"] for s in samples).values()) == {7}
    assert len({s["sample_id"] for s in samples}) == 28


def test_balanced_vs_proportional_domain_mix():
    pool, texts = make_pool(30), make_texts({"imdb": 40, "tweets": 10})
    bal, rep = pair_instructions_with_texts(pool, texts, DistillDataParams(texts_per_instruction=2))
    assert rep["pairs_per_domain"] == {"imdb": 30, "tweets": 30}
    prop, _ = pair_instructions_with_texts(
        make_pool(50), texts, DistillDataParams(texts_per_instruction=2, domain_mix="proportional")
    )
    # 100 draws = exactly two passes over the 50 texts: each domain gets its corpus share.
    assert Counter(s["domain"] for s in prop) == {"imdb": 80, "tweets": 20}


def test_deterministic_for_a_seed_and_different_across_seeds():
    pool, texts = make_pool(8), make_texts({"a": 6, "b": 6})
    run = lambda seed: pair_instructions_with_texts(pool, texts, DistillDataParams(seed=seed))[0]  # noqa: E731
    assert run(1) == run(1)
    assert [s["sample_id"] for s in run(1)] != [s["sample_id"] for s in run(2)]
    shuffled = list(reversed(texts))
    assert pair_instructions_with_texts(pool, shuffled, DistillDataParams(seed=1))[0] == run(1)


def test_max_samples_cuts_rounds_so_every_instruction_keeps_a_text():
    pool, texts = make_pool(10), make_texts({"a": 20})
    samples, report = pair_instructions_with_texts(
        pool, texts, DistillDataParams(texts_per_instruction=4, max_samples=15)
    )
    assert len(samples) == 15 and report["capped_by_max_samples"] == 25
    assert set(Counter(s["instruction_id"] for s in samples).values()) == {1, 2}


def test_small_corpus_skips_slots_without_unused_text():
    pool, texts = make_pool(2), make_texts({"a": 1, "b": 1})
    samples, report = pair_instructions_with_texts(pool, texts, DistillDataParams(texts_per_instruction=3))
    assert len(samples) == 4 and report["slots_without_unused_text"] == 2
    assert len({s["sample_id"] for s in samples}) == 4


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DistillDataError, match="no instruction"):
        pair_instructions_with_texts([], make_texts({"a": 1}), DistillDataParams())
    with pytest.raises(DistillDataError, match=r"lacks field\(s\) \['domain'\]"):
        pair_instructions_with_texts(make_pool(1), [{"text_id": 1, "text": "x"}], DistillDataParams())
    with pytest.raises(DistillDataError, match="not unique"):
        pair_instructions_with_texts(make_pool(1) * 2, make_texts({"a": 2}), DistillDataParams())


class EchoTeacher:
    """Answers a canned sentence, or nothing for texts that contain 'silent'."""

    model = "fake-teacher"

    def chat(self, prompts, decoding, desc="teacher", system=None, tags=None):
        return ["" if "silent" in p else "  Score: 4. The author sounds pleased.  " for p in prompts]


def test_dataset_schema_and_empty_answers_dropped():
    texts = make_texts({"a": 3}) + [{"text_id": "s", "domain": "a", "text": "silent one"}]
    samples, _ = pair_instructions_with_texts(make_pool(2), texts, DistillDataParams(texts_per_instruction=2))
    dec = DecodingParams(max_new_tokens=32, temperature=0.7, seed=3)
    n_silent = sum("silent" in s["instruction"] for s in samples)
    dataset, report = answer_samples(EchoTeacher(), samples, dec, "fake-teacher")
    assert report == {"answered": 4, "empty_dropped": n_silent, "kept": 4 - n_silent}
    for r in dataset:
        assert tuple(r) == DATASET_FIELDS
        assert r["output"] == "Score: 4. The author sounds pleased."
        assert r["teacher_model"] == "fake-teacher" and r["decoding"] == dec.model_dump()
        assert r["instruction"].startswith(r["prompt"] + "\n\nInput: ")
