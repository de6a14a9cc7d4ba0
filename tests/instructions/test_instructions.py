"""Stage 03: parsers on realistic teacher answers, cleaning rules, dedup, the pipeline with a fake teacher."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pydantic import ValidationError

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.analysis import generate_analysis_prompts
from compeffdist_utils.instructions.cleaning import clean_demo_pair, compares_two_texts, first_paragraph
from compeffdist_utils.instructions.demonstrations import generate_demonstrations
from compeffdist_utils.instructions.funnel import EmptyPoolError, Funnel
from compeffdist_utils.instructions.ideation import ideate_tasks
from compeffdist_utils.instructions.json_repair import close_json_brackets, extract_json_list
from compeffdist_utils.instructions.parsing import (
    analysis_item_problem,
    parse_io_pairs,
    parse_numbered_list,
    parse_standardisation,
)
from compeffdist_utils.instructions.pool import build_pool, near_duplicates
from compeffdist_utils.instructions.prompts import (
    ANALYSIS_EXAMPLE,
    ANALYSIS_EXAMPLE_ITEMS,
    IDEATION_EXAMPLE,
    STANDARDISATION_EXAMPLE,
    STANDARDISATION_EXAMPLES,
    analysis_prompt,
    ideation_prompt,
    standardisation_prompt,
    task_instruction_prompt,
)
from compeffdist_utils.instructions.standardisation import standardise_tasks
from compeffdist_utils.instructions.task_items import assign_task_type, read_task_item
from compeffdist_utils.instructions.text import echoes_worked_example, strip_quotes, task_statement
from compeffdist_utils.teacher.backends import conversation

# -- (a) numbered lists -------------------------------------------------------------------------------------

ANALYSIS_ANSWER = """Sure! Here are some analysis prompts for this group of attributes:

1. Please analyze how the author's emotional state changes from the beginning to the end of the text.
2) What signs of dissatisfaction can be found in the text, and how strongly are they expressed?
**3.** "How does the writer's mood influence the way they describe the experience?"
- a bullet that is not numbered should be ignored
4. Why?

I hope these prompts help you analyse user texts!"""


def test_numbered_list_skips_prose_bullets_and_strips_markup():
    items = parse_numbered_list(ANALYSIS_ANSWER)
    assert items == [
        "Please analyze how the author's emotional state changes from the beginning to the end of the text.",
        "What signs of dissatisfaction can be found in the text, and how strongly are they expressed?",
        "How does the writer's mood influence the way they describe the experience?",
        "Why?",
    ]


def test_numbered_list_of_junk_is_empty():
    assert parse_numbered_list("I am sorry, I cannot help with that.") == []
    assert parse_numbered_list("") == []


def test_analysis_items_must_be_questions_or_requests():
    assert analysis_item_problem("What does the author's wording reveal about their mood?") is None
    assert analysis_item_problem("Describe the author's attitude towards the product") is None
    assert analysis_item_problem("The author's mood shapes the message, doesn't it?") is None
    assert analysis_item_problem("I'm going to analyze the overall sentiment of the text.") == (
        "not_a_question_or_request"
    )
    assert analysis_item_problem('A writer is said to have "paint a dull picture" by the') == (
        "not_a_question_or_request"
    )
    assert analysis_item_problem("Why?") == "too_short"
    assert analysis_item_problem(ANALYSIS_EXAMPLE_ITEMS[1]) == "echoes_worked_example"


def test_echo_of_worked_example_is_detected_whatever_the_case_and_punctuation():
    assert echoes_worked_example(ANALYSIS_EXAMPLE_ITEMS[0].upper().rstrip("."))
    assert not echoes_worked_example("Please analyze how the author describes the waiting time.")
    # Real SmolLM2 outputs: an example item with a clause added is an echo; a topic swap is not.
    assert echoes_worked_example(
        "What playful or witty elements appear in the text, and what effect does this have on the reader's "
        "perception of the topic?"
    )
    adapted = (
        "Decide whether the text is frustrated or not frustrated. Answer frustration or not frustrated. Output "
        "format: exactly one label from {frustrated, not frustrated}, in lower case, with nothing else."
    )
    assert task_statement(adapted).endswith("not frustrated.") and not echoes_worked_example(
        task_statement(adapted)
    )
    copied = "Decide whether the input text is sarcastic, that is, whether the author mocks. Output format: a label"
    assert echoes_worked_example(task_statement(copied))


# -- (b) JSON lists ---------------------------------------------------------------------------------------

TASKS_FENCED = """Here are the tasks:
```json
[
  {"task_name": "frustration level classification", "task_type": "classification",
   "task_description": "Classify the frustration of the author as low, medium or high."},
  {"task_name": "frustration rating", "task_description": "Rate the frustration from 1 to 5.",},
]
```
Let me know if you need more."""

TASKS_TRUNCATED = """[
  {"task_name": "cause of frustration", "task_type": "extraction", "task_description": "Extract the cause."},
  {"task_name": "frustration report", "task_type": "structured output", "task_description": "Return JSON wi"""


def test_json_list_in_fence_with_trailing_commas():
    res = extract_json_list(TASKS_FENCED)
    assert res.status == "repaired"
    assert [t["task_name"] for t in res.items] == ["frustration level classification", "frustration rating"]


def test_json_list_truncated_keeps_complete_objects():
    res = extract_json_list(TASKS_TRUNCATED)
    assert res.status == "repaired"
    assert len(res.items) == 1 and res.items[0]["task_name"] == "cause of frustration"


def test_json_list_plain_and_wrapped_and_failed():
    plain = extract_json_list('[{"task_name": "a", "task_description": "b"}]')
    assert plain.status == "ok" and len(plain.items) == 1
    wrapped = extract_json_list('{"tasks": [{"task_name": "a", "task_description": "b"}]}')
    assert len(wrapped.items) == 1
    assert extract_json_list("1. Sentiment classification\n2. Rating").status == "failed"
    assert extract_json_list("[not json at all").status == "failed"


# Real SmolLM2-135M answers: a list flattened into one object with repeated keys, a forgotten comma.
SMOL_FLATTENED = """```json
{
  "task_name": "humor",
  "task_type": "classification",
  "task_description": "Decide whether the text is humorous or not.",
  "task_description": "Rate whether the text is humorous or not.",
  "task_description": "Send JSON {\\"humorous\\": true, \\"target\\": \\"...\\"}.",
  "title": "Humor"
}
```"""
SMOL_MISSING_COMMA = """JSON:
{
  "task_name": "frustration check",
  "task_type": "classification",
  "task_description": "Decide whether the author is frustrated."
  "pick one": "classification"
}

In the example, the task is a classification."""


def test_json_repeated_keys_split_into_several_objects():
    res = extract_json_list(SMOL_FLATTENED)
    assert res.status == "repaired"
    assert [x.get("task_description") for x in res.items] == [
        "Decide whether the text is humorous or not.",
        "Rate whether the text is humorous or not.",
        'Send JSON {"humorous": true, "target": "..."}.',
    ]
    assert res.items[0]["task_name"] == "humor" and res.items[2]["title"] == "Humor"


def test_json_missing_comma_and_prose_around_an_object():
    res = extract_json_list(SMOL_MISSING_COMMA)
    assert res.status == "repaired" and len(res.items) == 1
    assert res.items[0]["task_description"] == "Decide whether the author is frustrated."


def test_json_salvages_flat_objects_from_a_broken_list():
    # A real SmolLM2-135M answer: a nested list closed with the wrong bracket.
    answer = (
        '[\n  {"task_name": "emotion intensity score", "task_type": "analysis_score", "task_description": '
        '"Determine the intensity.", "additional_fields": [{"task_name": "emotion_score", "task_type": '
        '"analysis_score", "task_description": "The score of emotional intensity."}}]\n\nThis task is focused'
    )
    res = extract_json_list(answer)
    assert res.status == "salvaged"
    assert res.items == [
        {
            "task_name": "emotion_score",
            "task_type": "analysis_score",
            "task_description": "The score of emotional intensity.",
        }
    ]


def test_json_object_with_a_label_list_is_one_task():
    res = extract_json_list('{"task_name": "t", "task_description": "d", "labels": ["low", "high"]}')
    assert res.status == "ok" and res.items == [
        {"task_name": "t", "task_description": "d", "labels": ["low", "high"]}
    ]


def test_json_truncated_inside_an_escaped_quote():
    res = extract_json_list(
        '[{"task_name": "a", "task_description": "say \\"hi\\" ]"}, {"task_name": "b", "task_d'
    )
    assert [x["task_name"] for x in res.items] == ["a"]
    assert res.items[0]["task_description"] == 'say "hi" ]'


def test_task_items_accept_key_variants_and_drop_bad_ones():
    task, reason = read_task_item(
        {"Name": "Stance tagging", "Description": "Label the stance.", "Type": "label"}
    )
    assert reason is None and task == {
        "task_name": "Stance tagging",
        "task_description": "Label the stance.",
        "task_type": "label",
    }
    assert read_task_item("just a string") == (None, "not_an_object")
    assert read_task_item({"task_name": "x"}) == (None, "missing_description")
    assert read_task_item(
        {"description": "Rate the anger of the author from 1 to 5, where 5 is furious."}
    ) == (
        {
            "task_name": "rate the anger of the author",
            "task_description": "Rate the anger of the author from 1 to 5, where 5 is furious.",
            "task_type": "",
        },
        None,
    )
    assert read_task_item({"task_name": "sarcasm detection", "task_description": "whatever"})[1] == (
        "echoes_worked_example"
    )


@pytest.mark.parametrize(
    ("name", "desc", "given", "expected"),
    [
        ("x", "y", "Rating", ("scoring", "answer")),
        ("x", "y", "information extraction", ("extraction", "answer")),
        ("x", "y", "structured output", ("structured_output", "answer")),
        ("x", "y", "JSON", ("structured_output", "answer")),
        (
            "anger report",
            "Return a JSON object with the fields target and cause.",
            "",
            ("structured_output", "keywords"),
        ),
        ("trigger finder", "Extract the phrases that trigger anger.", "magic", ("extraction", "keywords")),
        ("anger scale", "Rate the anger on a scale from 1 to 5.", "", ("scoring", "keywords")),
        ("anger detection", "Decide whether the author is angry.", "", ("classification", "keywords")),
        ("anger", "The author's anger.", "", ("classification", "default")),
    ],
)
def test_task_type_from_answer_then_keywords_then_default(name, desc, given, expected):
    assert assign_task_type(name, desc, given) == expected


# -- (c) standardisation ---------------------------------------------------------------------------------

STD_ANSWER = """**Definition:** Read the text and decide how frustrated its author is.
Output format: one label from {low, medium, high}, lower case.

Example 1:
Input: "I waited an hour and nobody even said sorry."
Output: high

Example 2:
**Input:** The delivery was a bit late but fine.
**Output:** low

Input: The app crashes now and then, which is annoying.
Output: medium
Input: I have an input with no output because the answer was cut"""


def test_standardisation_definition_keeps_output_format_and_pairs_parse():
    std = parse_standardisation(STD_ANSWER)
    assert std.definition.startswith("Read the text and decide how frustrated")
    assert "Output format: one label from {low, medium, high}" in std.definition
    assert std.examples == [
        ('"I waited an hour and nobody even said sorry."', "high"),
        ("The delivery was a bit late but fine.", "low"),
        ("The app crashes now and then, which is annoying.", "medium"),
    ]


def test_standardisation_without_definition_label_uses_leading_text():
    std = parse_standardisation("Rate the text from 1 to 5.\nInput: Good.\nOutput: 4")
    assert std.definition == "Rate the text from 1 to 5."
    assert std.examples == [("Good.", "4")]


# A real SmolLM2-135M standardisation answer: "Example: <text>" as the input label, copies of the worked
# example's input, explanations after the output, an unclosed quote.
SMOL_STANDARDISATION = """Definition: The task is to identify the humour of the input text.

Example: "The staff were friendly and the burger arrived hot.
Output: sarcastic

Explanation: The task is to identify the sentiment of the input text.

Example: "My cat learned to open the fridge, so now we both live on cheese.
Output: humorous

Explanation: The task is"""


def test_standardisation_of_a_small_teacher_answer():
    std = parse_standardisation(SMOL_STANDARDISATION)
    assert std.definition == "The task is to identify the humour of the input text."
    assert len(std.examples) == 2 and std.examples[1][1].startswith("humorous\n\nExplanation")
    funnel = Funnel()
    task = {
        "cluster_id": 3,
        "task_index": 0,
        "task_name": "humour",
        "task_description": "d",
        "task_type": "x",
    }

    class Canned(FakeTeacher):
        def generate(self, requests, desc="teacher"):
            repeat = "\n\nExample: My cat learned to open the fridge, so now we both live on cheese.\nOutput: funny"
            return [SMOL_STANDARDISATION + repeat] * len(requests)

    kept, _ = standardise_tasks(Canned(), [task], InstructionsParams(min_examples=1), funnel)
    # The copied worked-example input and the repeated input are dropped; the other example is cleaned
    # (unclosed quote, explanation after the output).
    assert kept[0]["demos"] == [
        {"input": "My cat learned to open the fridge, so now we both live on cheese.", "output": "humorous"}
    ]
    assert funnel["standardisation"].notes["examples_dropped_empty_echo_or_repeat"] == 2


def test_each_task_is_standardised_after_a_worked_example_of_its_own_type():
    """A scoring task shown the classification example came back with its label set; each type has its own."""
    types = ["classification", "scoring", "extraction", "structured_output", "unknown"]
    tasks = [
        {"cluster_id": 0, "task_index": k, "task_name": f"t{k}", "task_description": "d", "task_type": t}
        for k, t in enumerate(types)
    ]
    seen: list[str] = []

    class Recording(FakeTeacher):
        def generate(self, requests, desc="teacher"):
            seen.extend(r.messages[1][1] for r in requests)  # the worked example's answer
            return ["Definition: Rate the anger.\n\nInput: I hate this.\nOutput: 5"] * len(requests)

    standardise_tasks(Recording(), tasks, InstructionsParams(min_examples=1), Funnel())
    answers = dict(zip(types, seen, strict=True))
    assert (
        "Output: not sarcastic" in answers["classification"]
        and answers["unknown"] == answers["classification"]
    )
    assert "Output: 5" in answers["scoring"] and "Output: Oh great | Best night ever" in answers["extraction"]
    assert '"cue": "Best night ever"' in answers["structured_output"]
    for _, answer in STANDARDISATION_EXAMPLES.values():
        assert len(parse_standardisation(answer).examples) == 2  # each example answer parses
        # and a teacher copying its definition is caught
        assert echoes_worked_example(task_statement(parse_standardisation(answer).definition))


def test_io_pairs_multiline_json_output():
    text = 'Input: Great food, slow service.\nOutput: {"food": "positive",\n "service": "negative"}\n'
    assert parse_io_pairs(text) == [
        ("Great food, slow service.", '{"food": "positive",\n "service": "negative"}')
    ]


def test_two_text_detection():
    assert compares_two_texts("Compare the two reviews and say which is more positive.", [])
    assert compares_two_texts(
        "Decide which text is more positive.", [("Text 1: great. Text 2: awful.", "Text 1")]
    )
    assert compares_two_texts("Label it.", [("Review A: fine\nReview B: bad", "A")])
    assert not compares_two_texts(
        "Rate the text from 1 to 5.", [("I rated it 1 star, see text 1 below", "1")]
    )
    assert not compares_two_texts("Rate the anger of the text.", [("The second half was boring.", "2")])


# -- (d) demo cleaning -------------------------------------------------------------------------------------


def test_cleaning_rules():
    assert strip_quotes('"\u201chello\u201d"') == "hello"
    assert (
        strip_quotes('"never closed') == "never closed" and strip_quotes('He said "wow"') == 'He said "wow"'
    )
    assert first_paragraph("positive\n\nThis is because the author liked it.") == "positive"
    assert close_json_brackets('{"a": [1, 2') == '{"a": [1, 2]}'
    assert close_json_brackets('[{"k": "v", "w": "cut') == '[{"k": "v", "w": "cut"}]'
    assert close_json_brackets('{"a": "[not a bracket", "b": 1,') == '{"a": "[not a bracket", "b": 1}'
    assert close_json_brackets("low (see [note") == "low (see [note"
    refs = ["The pasta was cold and the waiter ignored us for half an hour."]
    pair, reason = clean_demo_pair('"Loved the staff!"', '"positive"\n\nExplanation: ...', refs, [])
    assert pair == ("Loved the staff!", "positive") and reason is None
    assert (
        clean_demo_pair("Like the reference text, it was bad.", "negative", refs, [])[1]
        == "mentions_reference"
    )
    assert clean_demo_pair(refs[0], "negative", refs, [])[1] == "mentions_reference"
    assert clean_demo_pair("Same input as shown", "x", [], ["same input as shown"])[1] == "copies_shown_demo"
    assert clean_demo_pair('""', "x", refs, [])[1] == "empty"


# -- prompts -----------------------------------------------------------------------------------------------


def test_prompts_and_worked_example_as_an_earlier_turn():
    request = analysis_prompt(["anger", "rage"], [("anger", "how angry")], 5)
    assert "anger, rage" in request and "- anger: how angry" in request and "Write 5 " in request
    assert conversation(request, None) == (("user", request),)
    chat = conversation(request, ANALYSIS_EXAMPLE)
    assert [role for role, _ in chat] == ["user", "assistant", "user"] and chat[-1] == ("user", request)
    assert ANALYSIS_EXAMPLE_ITEMS[0] in chat[1][1] and "humour" in chat[0][1]
    assert "sarcasm" not in ideation_prompt("anger", "how angry")
    assert "mean:" not in analysis_prompt(
        ["anger"], [("anger", "")], 5
    ) and "Description" not in ideation_prompt("a", "")
    assert extract_json_list(IDEATION_EXAMPLE[1]).status == "ok"  # the example answer is valid JSON
    assert "at least 8 examples" in standardisation_prompt("t", "scoring", "d", 8)
    assert len(parse_standardisation(STANDARDISATION_EXAMPLE[1]).examples) == 2
    assert task_instruction_prompt("Do it.", []) == "Do it."
    assert task_instruction_prompt("Do it.", [("a", "b")]) == "Do it.\n\nExamples:\n\nInput: a\nOutput: b"


# -- dedup -------------------------------------------------------------------------------------------------


def test_near_duplicates_greedy_keeps_first():
    v = np.array([[1, 0, 0], [0.99, 0.141, 0], [0, 1, 0], [0, 0.995, 0.0998], [0, 0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert near_duplicates(v, 0.95) == [None, 0, None, 2, None]
    assert near_duplicates(v, 0.999) == [None, None, None, None, None]
    assert near_duplicates(np.zeros((0, 3), dtype=np.float32), 0.9) == []


def test_near_duplicates_blocks_match_a_plain_greedy_scan():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 8))
    v = np.repeat(base, 4, axis=0) + rng.normal(scale=0.15, size=(24, 8))  # 6 groups of near-duplicates
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)[rng.permutation(24)]
    expected: list[int | None] = []
    for i in range(len(v)):
        kept = [j for j in range(i) if expected[j] is None]
        sims = [float(v[j] @ v[i]) for j in kept]
        expected.append(kept[int(np.argmax(sims))] if sims and max(sims) >= 0.9 else None)
    assert near_duplicates(v, 0.9, block=5) == expected == near_duplicates(v, 0.9)
    assert 4 <= sum(d is None for d in expected) < 24


# -- pipeline with a fake teacher -------------------------------------------------------------------------


def bow_embed(texts: list[str]) -> np.ndarray:
    """Bag-of-words count vectors (same words -> cosine 1): a fast stand-in for the kit embedder."""
    tokens = [re.findall(r"\w+", t.lower()) for t in texts]
    vocab = sorted({w for ts in tokens for w in ts})
    m = np.array([[ts.count(w) for w in vocab] for ts in tokens], dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


STD_SCORING = """Definition: Rate how frustrated the author of the text is on a scale from 1 (calm) to 5.
Output format: one integer.

Input: Third time the package got lost. Unbelievable.
Output: 5
Input: Shipping took a day longer than promised.
Output: 2
Input: Everything arrived on time.
Output: 1"""

STD_TWO_TEXTS = """Definition: Compare two reviews and say which one is more frustrated.
Input: Review 1: late again. Review 2: fine.
Output: Review 1
Input: Review 1: ok. Review 2: awful!
Output: Review 2"""

DEMO_ANSWER = """Input: "Waited 40 minutes for a table, then they forgot our drinks."
Output: 4

Input: The film dragged a little but the ending made up for it.
Output: 2

Hope this helps!"""


class FakeTeacher:
    """Same ``generate`` signature as TeacherBackend; canned answers chosen by what the request asks for."""

    def __init__(self, junk: bool = False):
        self.junk = junk
        self.calls: list[tuple[str, list[int]]] = []  # (desc, number of messages of each request)

    def generate(self, requests, desc="teacher"):
        self.calls.append((desc, [len(r.messages) for r in requests]))
        return [self._answer(r.messages[-1][1]) for r in requests]

    def _answer(self, prompt: str) -> str:
        if self.junk:
            return "I'm sorry, as an AI I like sentiment."
        if "analysis prompts" in prompt:
            return ANALYSIS_ANSWER
        if "JSON list" in prompt:
            extra = [{"task_name": "compare reviews", "task_description": "Compare two.", "task_type": "x"}]
            return TASKS_FENCED.replace("frustration", prompt.split('"')[1]) + "\n" + json.dumps(extra)
        if "Rewrite the following" in prompt:
            return STD_TWO_TEXTS if "Task name: compare" in prompt else STD_SCORING
        if "style references" in prompt:
            return DEMO_ANSWER if "Reference 2" in prompt else "Input: only one\nOutput: 1"
        raise AssertionError(f"unexpected prompt: {prompt[:80]}")


CLUSTERS = [
    {"cluster_id": 1, "size": 2, "total_count": 30, "exemplar": "frustration level",
     "attributes": [{"attr": "annoyance", "count": 10, "top_description": "how annoyed the author is"},
                    {"attr": "frustration level", "count": 20, "top_description": "how frustrated"}]},
    {"cluster_id": 0, "size": 1, "total_count": 50, "exemplar": "sarcasm",
     "attributes": [{"attr": "irony", "count": 50, "top_description": "saying the opposite"}]},
]  # fmt: skip
USER_TEXTS = [
    "The pasta was cold and the waiter ignored us for half an hour.",
    "Best concert of my life, the crowd was amazing!",
    "Flight delayed again. Thanks a lot, airline.",
]


def run_pipeline(teacher, ip: InstructionsParams):
    funnel = Funnel()
    clusters = sorted(CLUSTERS, key=lambda c: -c["total_count"])
    analysis, _ = generate_analysis_prompts(teacher, clusters, ip, funnel)
    tasks, _ = ideate_tasks(teacher, clusters, ip, funnel)
    std, _ = standardise_tasks(teacher, tasks, ip, funnel)
    grounded, _ = generate_demonstrations(teacher, std, USER_TEXTS, ip, funnel)
    pool, removed = build_pool(analysis, std, grounded, ip, bow_embed, funnel)
    return funnel, tasks, std, grounded, pool, removed


def test_pipeline_funnel_counts_and_pool_schema():
    ip = InstructionsParams(min_examples=3, max_demos=2, demo_requests_per_task=2, analysis_per_cluster=2)
    teacher = FakeTeacher()
    funnel, tasks, std, grounded, pool, removed = run_pipeline(teacher, ip)
    # One batch per step, each request preceded by its worked example (an earlier user/assistant turn).
    assert teacher.calls == [
        ("03a analysis prompts", [3, 3]),
        ("03b task ideation", [3, 3]),
        ("03c standardisation", [3] * 4),
        ("03d demonstrations", [3] * 8),
    ]
    f = funnel.as_dict()
    # (a) 2 clusters x 4 numbered items: "Why?" too short, 2 kept, the 3rd over the limit.
    assert f["analysis"]["requests"] == 2 and f["analysis"]["items_parsed"] == 8
    assert f["analysis"]["dropped"] == {"too_short": 2, "over_limit": 2} and f["analysis"]["items_kept"] == 4
    # (b) per cluster: 2 tasks from the fenced list; the concatenated second list is not read (first fence).
    assert f["ideation"]["items_kept"] == 4 and f["ideation"]["notes"]["json_repaired"] == 2
    assert {t["task_type"] for t in tasks} == {"classification", "scoring"}
    assert tasks[0]["attribute"] == "irony" and tasks[2]["attribute"] == "frustration level"
    # (c) all 4 standardised with 3 examples, 2 kept as demos.
    assert f["standardisation"]["items_kept"] == 4 and all(len(t["demos"]) == 2 for t in std)
    # (d) 2 requests per task, each answer has exactly two clean pairs; repeats are duplicates.
    d = f["demonstrations"]
    assert d["requests"] == 8 and d["answers_parsed"] == 8 and d["items_parsed"] == 16
    assert d["items_kept"] == 8 and d["dropped"] == {"duplicate": 8}
    assert all(len(v) == 2 for v in grounded.values())
    # (e) pool: analysis prompts of the two clusters are identical -> near-duplicates removed.
    assert f["dedup"]["dropped"] == {"near_duplicate": len(removed)} and len(removed) >= 2
    assert len(pool) + len(removed) == 8
    ids = [r["instruction_id"] for r in pool]
    assert len(ids) == len(set(ids)) and ids[0] == "c0-a0"
    for r in pool:
        assert set(r) == {"instruction_id", "cluster_id", "task_name", "task_type", "prompt", "demos"}
        if r["task_type"] == "analysis":
            assert r["task_name"] == "analysis" and r["demos"] == []
        else:
            assert r["prompt"].startswith("Rate how frustrated") and "\n\nExamples:\n\nInput: " in r["prompt"]
            assert r["demos"][0] == {
                "input": "Waited 40 minutes for a table, then they forgot our drinks.",
                "output": "4",
            }
    assert f["pool"] == dict(sorted({t: sum(r["task_type"] == t for r in pool) for t in f["pool"]}.items()))
    json.dumps(f)  # the funnel is written as JSON


def test_kit_tasks_join_the_pool_only_when_asked():
    """instructions.kit_tasks adds one fixed overall-sentiment task per named type (cluster -1), after
    deduplication, counted in the pool's task types; the default leaves the teacher's pool as it is."""
    from compeffdist_utils.instructions.kit_tasks import KIT_CLUSTER, kit_instructions

    plain = run_pipeline(FakeTeacher(), InstructionsParams(min_examples=3, demo_requests_per_task=1))
    assert all(r["cluster_id"] != KIT_CLUSTER for r in plain[4])
    ip = InstructionsParams(min_examples=3, demo_requests_per_task=1, kit_tasks=["classification", "scoring"])
    funnel, *_, pool, _removed = run_pipeline(FakeTeacher(), ip)
    kit = [r for r in pool if r["cluster_id"] == KIT_CLUSTER]
    assert [r["instruction_id"] for r in kit] == ["kit-classification", "kit-scoring"]
    assert len(pool) == len(plain[4]) + 2 and set(kit[0]) == set(plain[4][0])
    assert "{negative, neutral, positive}" in kit[0]["prompt"] and "Output format:" in kit[1]["prompt"]
    assert funnel.pool["classification"] == plain[0].pool.get("classification", 0) + 1
    with pytest.raises(ValueError, match="kit_tasks"):
        kit_instructions(["sarcasm"])
    with pytest.raises(ValidationError, match="kit_tasks"):
        InstructionsParams(kit_tasks=["sarcasm"])


def test_paper_params_send_single_turn_requests():
    teacher = FakeTeacher()
    run_pipeline(teacher, InstructionsParams(worked_example=False, min_examples=3, demo_requests_per_task=1))
    assert {n for _, sizes in teacher.calls for n in sizes} == {1}


def test_two_text_tasks_and_too_few_examples_are_dropped():
    ip = InstructionsParams(min_examples=4, demo_requests_per_task=0)
    teacher = FakeTeacher()
    funnel = Funnel()
    tasks = [
        {
            "cluster_id": 0,
            "task_index": i,
            "task_name": name,
            "task_description": name,
            "task_type": "scoring",
        }
        for i, name in enumerate(["compare", "rate"])
    ]
    kept, log = standardise_tasks(teacher, tasks, ip, funnel)
    assert kept == [] and [r["status"] for r in log] == ["two_text_task", "too_few_examples"]
    assert funnel["standardisation"].dropped == {"two_text_task": 1, "too_few_examples": 1}


def test_demonstrations_need_exactly_two_pairs():
    ip = InstructionsParams(demo_requests_per_task=3)
    task = {"cluster_id": 0, "task_index": 0, "task_name": "rate", "definition": "Rate it.",
            "demos": [{"input": "a b c", "output": "1"}]}  # fmt: skip
    funnel = Funnel()
    grounded, log = generate_demonstrations(FakeTeacher(), [task], USER_TEXTS[:1], ip, funnel)
    assert grounded == {(0, 0): []} and len(log) == 3
    assert funnel["demonstrations"].dropped == {"answer_not_two_pairs": 3}


def test_demonstration_draws_are_deterministic_per_seed():
    task = {"cluster_id": 0, "task_index": 0, "task_name": "rate", "definition": "Rate it.",
            "demos": [{"input": f"text {i}", "output": str(i)} for i in range(5)]}  # fmt: skip

    class Recorder(FakeTeacher):
        def generate(self, requests, desc="teacher"):
            self.prompts = [r.messages for r in requests]
            return [""] * len(requests)

    a, b, c = Recorder(), Recorder(), Recorder()
    for t, seed in ((a, 1), (b, 1), (c, 2)):
        ip = InstructionsParams(demo_requests_per_task=4, demos={"seed": seed})
        generate_demonstrations(t, [task], USER_TEXTS, ip, Funnel())
    assert len(a.prompts) == 4 and len({m for m in a.prompts}) > 1  # the draws differ between requests
    assert a.prompts == b.prompts and a.prompts != c.prompts


def test_junk_teacher_gives_counted_drops_and_a_clear_empty_pool_error():
    ip = InstructionsParams(min_examples=1)
    with pytest.raises(EmptyPoolError) as err:
        run_pipeline(FakeTeacher(junk=True), ip)
    msg = str(err.value)
    assert "step 'analysis' kept 0" in msg and "step 'ideation' kept 0" in msg
    assert "ideation: 2 requests, 0 answers parsed" in msg and "unparsed_answer 2" in msg


@pytest.mark.slow
def test_dedup_threshold_with_the_kit_embedder(ci_params):
    """The default threshold (0.9, MiniLM cosine) removes a spelling variant but keeps related tasks apart."""
    from compeffdist_utils.models import embed_texts

    texts = [
        "Please analyze how the author uses humour to shape the reader's impression of the subject.",
        "Please analyze how the author uses humor to shape the reader's impression of the subject.",
        "Rate how frustrated the author is on a scale from 1 to 5.",
        "Rate how angry the author is on a scale from 1 to 5.",
        "Extract the phrases that express frustration.",
    ]
    vectors = embed_texts(ci_params.models.embedder, texts, ci_params)
    assert near_duplicates(vectors, InstructionsParams().dedup_threshold) == [None, 0, None, None, None]
