"""The specialist's training records: counts per kind, the formats parse, labels are the corpus's own."""

from __future__ import annotations

import json
import re

import pytest

from compeffdist_utils.models.specialist import SpecialistRecipe
from compeffdist_utils.specialist.data import build_records, count_by, opinion_words, score_of

POOL = {
    "rotten_tomatoes": [(f"a great and funny film number {i} ." if i % 2 else f"a dull mess, take {i}", "positive" if i % 2 else "negative") for i in range(40)],
    "tweets": [(f"@airline flight {i} was {'awful' if i % 3 == 0 else 'fine' if i % 3 == 1 else 'great'}", ["negative", "neutral", "positive"][i % 3]) for i in range(40)],
}  # fmt: skip
RECIPE = SpecialistRecipe(fewshot=30, classify=6, score=6, extract=6, json=6, analysis=6)


@pytest.fixture(scope="module")
def records():
    return build_records(POOL, RECIPE)


def test_counts_follow_the_recipe_and_domains_take_turns(records):
    assert count_by(records, "kind") == dict(sorted(RECIPE.kinds().items()))
    by_domain = count_by(records, "domain")
    assert abs(by_domain["rotten_tomatoes"] - by_domain["tweets"]) <= len(RECIPE.kinds())


def test_the_same_seed_builds_the_same_records_and_another_seed_others():
    assert build_records(POOL, RECIPE) == build_records(POOL, RECIPE)
    assert build_records(POOL, RECIPE) != build_records(POOL, RECIPE.with_overrides(seed=7))


def test_few_shot_prompts_end_with_the_cue_and_answer_with_a_listed_label(records):
    for r in (r for r in records if r["kind"] == "fewshot"):
        assert r["style"] == "raw" and r["instruction"].endswith("\nLabel:")
        assert r["output"].startswith(" ")
        listed = re.search(r"\[([^\]]*)\]", r["instruction"]).group(1)
        assert f"'{r['output'].strip()}'" in listed


def test_chat_answers_parse(records):
    gold = {t: lab for rows in POOL.values() for t, lab in rows}
    for r in (r for r in records if r["style"] == "chat"):
        text = r["instruction"].rsplit("\n\n", 1)[1].split(": ", 1)[1]
        if r["kind"] == "classify":
            assert r["output"] == gold[text]
        elif r["kind"] == "score":
            assert 1 <= int(r["output"]) <= 5
        elif r["kind"] == "extract":
            items = json.loads(r["output"])
            assert all(set(i) == {"opinion", "polarity"} and i["opinion"] in text.lower() for i in items)
        elif r["kind"] == "json":
            obj = json.loads(r["output"])
            assert obj["sentiment"] == gold[text] and 1 <= obj["score"] <= 5
            assert obj["evidence"].rstrip(" .") in text or obj["evidence"].endswith("...")
        else:
            assert gold[text] in r["output"]


def test_the_rule_based_score_and_opinion_words():
    assert score_of("the best film", "positive") == 5 and score_of("a film", "positive") == 4
    assert score_of("the worst film", "negative") == 1 and score_of("nothing to say", "neutral") == 3
    assert opinion_words("Great, GREAT and boring") == [("great", "positive"), ("boring", "negative")]


def test_a_domain_without_texts_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than 5 usable texts"):
        build_records({"tweets": POOL["tweets"], "empty": []}, RECIPE)
