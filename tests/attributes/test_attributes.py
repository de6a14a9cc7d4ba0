"""Stage 01: the enumeration prompt, the answer parser, normalisation, aggregation and the frequency cut."""

from __future__ import annotations

import pytest

from compeffdist_utils.attributes.enumeration import (
    WORKED_EXAMPLE_TEXT,
    build_messages,
    build_prompt,
    enumerate_attributes,
    yield_counts,
)
from compeffdist_utils.attributes.inventory import (
    ParsedAttribute,
    aggregate,
    attribute_records,
    frequency_cut,
    normalise_name,
)
from compeffdist_utils.attributes.parsing import Item, clean_field, parse_answer
from compeffdist_utils.core.config import AttributesParams

WELL_FORMED = """\
1. **Overall sentiment**: Attribute Description - the general polarity of the text. Attribute Value - negative.
2. **Sarcasm**: Attribute Description - whether the writer says the opposite of what they mean. \
Attribute Value - strong, "great job, guys".
3. **Value for money**: Attribute Description - whether the product was worth its price. Attribute Value - poor.
4. **Frustration level**: Attribute Description - how annoyed the writer is. Attribute Value - high."""


def triples(answer: str) -> list[tuple[str | None, str | None, str | None]]:
    return [(i.name, i.description, i.value) for i in parse_answer(answer).items]


# -- the prompt --------------------------------------------------------------------------------------


def test_prompt_states_the_requirements_and_ends_with_the_text_and_cue():
    text = "Loved the soundtrack, hated the ending."
    prompt = build_prompt(text)
    for requirement in ("as many attributes as possible", "creative", "one single characteristic",
                        "Attribute Description", "Attribute Value", "general textual attributes"):  # fmt: skip
        assert requirement in prompt
    assert prompt.endswith(f"Text: {text}\nAttribute:")
    assert build_messages(text, worked_example=False) == (("user", prompt),)


def test_worked_example_is_an_earlier_turn_in_the_parsable_format():
    messages = build_messages("Loved it.", worked_example=True)
    assert [role for role, _ in messages] == ["user", "assistant", "user"]
    assert messages[0][1] == build_prompt(WORKED_EXAMPLE_TEXT)
    assert messages[-1][1] == build_prompt("Loved it.")
    parsed = parse_answer(messages[1][1])
    # The example must itself be a fully parsed answer: it is the shape we ask the teacher to copy.
    assert parsed.status == "parsed" and len(parsed.items) >= 4


# -- the parser --------------------------------------------------------------------------------------


def test_well_formed_answer():
    result = parse_answer(WELL_FORMED)
    assert result.status == "parsed"
    assert triples(WELL_FORMED) == [
        ("Overall sentiment", "the general polarity of the text", "negative"),
        ("Sarcasm", "whether the writer says the opposite of what they mean", 'strong, "great job, guys"'),
        ("Value for money", "whether the product was worth its price", "poor"),
        ("Frustration level", "how annoyed the writer is", "high"),
    ]


def test_missing_bold_and_colon_labels():
    answer = (
        "1. Overall sentiment: Attribute Description - the general polarity. Attribute Value - negative\n"
        "2. Perceived value - Attribute Description: worth against price. Attribute Value: poor\n"
    )
    assert triples(answer) == [
        ("Overall sentiment", "the general polarity", "negative"),
        ("Perceived value", "worth against price", "poor"),  # 'value' inside a name is not a label
    ]


def test_fields_on_their_own_lines_with_prose_before_and_after():
    answer = """Sure! Here are the attributes I found in the text:

1. **Tone**
   - Description: the manner in which the writer addresses the reader
   - Value: sarcastic
2. **Emotional intensity**
   Attribute Description: how strongly the feelings
   are expressed.
   Attribute Value: high

I hope this helps! Let me know if you need anything else."""
    result = parse_answer(answer)
    assert result.status == "parsed"
    assert triples(answer) == [
        ("Tone", "the manner in which the writer addresses the reader", "sarcastic"),
        ("Emotional intensity", "how strongly the feelings are expressed", "high"),
    ]


def test_bullets_instead_of_numbers():
    answer = (
        "- **Tone**: Attribute Description - manner of writing. Attribute Value - bitter\n"
        "* Frustration level: Attribute Description - how annoyed. Attribute Value - very\n"
        "• **Regret/Anger**: Attribute Description - feelings about the purchase. Attribute Value - both\n"
    )
    assert [t[0] for t in triples(answer)] == ["Tone", "Frustration level", "Regret/Anger"]
    assert parse_answer(answer).status == "parsed"


def test_truncated_last_item_is_kept_and_counted_as_partly():
    answer = WELL_FORMED + "\n5. **Irony**: Attribute Description - whether the te"
    result = parse_answer(answer)
    assert result.status == "partly"
    assert len(result.items) == 5
    assert (result.items[-1].name, result.items[-1].description, result.items[-1].value) == (
        "Irony",
        "whether the te",
        None,
    )


def test_truncated_inside_the_bold_name():
    result = parse_answer("1. **Tone**: Attribute Description - manner. Attribute Value - calm\n2. **Sarc")
    assert result.status == "partly"
    assert [(i.name, i.value) for i in result.items] == [("Tone", "calm"), ("Sarc", None)]


def test_names_without_list_markers_followed_by_field_lines():
    # Small models often continue the "Attribute:" cue with a bare name and put the fields below it.
    answer = """Emotional intensity
Attribute Description - how strongly feelings are expressed. Attribute Value - high

Use of sarcasm
Description: irony aimed at the company
Value: present"""
    assert triples(answer) == [
        ("Emotional intensity", "how strongly feelings are expressed", "high"),
        ("Use of sarcasm", "irony aimed at the company", "present"),
    ]


def test_answer_that_continues_the_cue_on_one_line():
    answer = " Overall sentiment: Attribute Description - polarity of the text. Attribute Value - negative"
    assert triples(answer) == [("Overall sentiment", "polarity of the text", "negative")]


def test_attribute_prefixed_items_and_markdown_headings():
    answer = """Attribute: Tone
Description: manner of writing
Value: bitter
Attribute 2: Sarcasm - Description: irony - Value: yes
### 3. Politeness
Description: courtesy towards others
Value: low"""
    assert triples(answer) == [
        ("Tone", "manner of writing", "bitter"),
        ("Sarcasm", "irony", "yes"),
        ("Politeness", "courtesy towards others", "low"),
    ]


def test_unlabelled_text_after_the_name():
    # SmolLM2's most common drift: "**Name**: ..." with no labels. A few words read as the value,
    # a longer text as the description; either way the item is incomplete.
    answer = "1. **Tone**: This is about how the writer sounds.\n2. **Overall sentiment**: Negative"
    result = parse_answer(answer)
    assert result.status == "partly"
    assert triples(answer) == [("Tone", "This is about how the writer sounds", None),
                               ("Overall sentiment", None, "Negative")]  # fmt: skip


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   \n\n ",
        "The text expresses a negative opinion about the product. The author is disappointed.",
        "1. The author is really angry about the delivery and wants a refund quickly from the shop.",
    ],
    ids=["empty", "blank", "prose", "numbered-prose"],
)
def test_unparsed_answers(answer):
    result = parse_answer(answer)
    assert result.status == "unparsed"
    assert result.items == []


def test_nameless_item_is_counted_but_yields_no_attribute():
    result = parse_answer("Description: how strongly feelings are expressed\nValue: high")
    assert result.status == "partly"
    assert result.items == [Item(name=None, description="how strongly feelings are expressed", value="high")]
    assert attribute_records("t1", "imdb", result.items) == []


def test_clean_field_strips_leading_punctuation_and_markdown():
    assert clean_field(" - : **the tone** of the text.") == "the tone of the text"
    assert clean_field(" -- ") is None
    assert clean_field(None) is None


# -- normalisation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tone", ["tone"]),
        ("Tone: sarcastic", ["tone"]),
        ("Regret/Anger", ["regret", "anger"]),
        ("Use of sarcasm", ["sarcasm"]),
        ("Attribute: Emotional Intensity", ["emotional intensity"]),
        ("attribute 3: Politeness", ["politeness"]),
        ("**Overall  Sentiment**", ["overall sentiment"]),
        ('"Value for money"', ["value for money"]),
        ("use of irony / use of sarcasm", ["irony", "sarcasm"]),
        ("anger/anger", ["anger"]),
        ("/", []),
    ],
)
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


# -- aggregation and the frequency cut ---------------------------------------------------------------


def _rec(text_id, domain, raw, description=None, value=None):
    return [
        ParsedAttribute(
            text_id=text_id, domain=domain, name=n, raw_name=raw, description=description, value=value
        )
        for n in normalise_name(raw)
    ]


def test_attribute_records_normalise_and_split_names():
    answer = (
        "1. **Regret/Anger**: Attribute Description - feelings. Attribute Value - both\n"
        "2. **Use of sarcasm**: Attribute Description - irony. Attribute Value - heavy\n"
    )
    recs = attribute_records("t7", "tweets", parse_answer(answer).items)
    assert [(r.name, r.raw_name, r.description, r.value) for r in recs] == [
        ("regret", "Regret/Anger", "feelings", "both"),
        ("anger", "Regret/Anger", "feelings", "both"),
        ("sarcasm", "Use of sarcasm", "irony", "heavy"),
    ]
    assert {(r.text_id, r.domain) for r in recs} == {("t7", "tweets")}


def test_aggregate_counts_variants_descriptions_and_domains():
    records = [
        *_rec("1", "imdb", "Tone", "how the writer sounds", "angry"),
        *_rec("2", "imdb", "Tone: sarcastic", "the voice of the text", "sarcastic"),
        *_rec("3", "tweets", "tone", "how the writer sounds", None),
        *_rec("3", "tweets", "Regret/Anger", "feelings", "strong"),
        *_rec("4", "imdb", "Use of sarcasm", None, "yes"),
    ]
    stats = {s.attr: s for s in aggregate(records)}
    assert set(stats) == {"tone", "regret", "anger", "sarcasm"}
    tone = stats["tone"]
    assert tone.count == 3
    assert tone.variants == ["Tone", "Tone: sarcastic", "tone"]
    assert tone.descriptions == ["how the writer sounds", "the voice of the text", "how the writer sounds"]
    assert tone.values == ["angry", "sarcastic"]  # missing values are not padded with blanks
    assert tone.top_description == "how the writer sounds"
    assert tone.domains == {"imdb": 2, "tweets": 1}
    assert stats["regret"].count == stats["anger"].count == 1
    assert stats["sarcasm"].top_description is None
    # Most frequent first, ties alphabetical.
    assert [s.attr for s in aggregate(records)] == ["tone", "anger", "regret", "sarcasm"]


def test_top_description_tie_goes_to_the_first_seen():
    records = [*_rec("1", "d", "tone", "b first"), *_rec("2", "d", "tone", "a second")]
    assert aggregate(records)[0].top_description == "b first"


def test_frequency_cut_keeps_strictly_more_than_min_count():
    records = [r for i in range(11) for r in _rec(str(i), "d", "tone")]
    records += [r for i in range(10) for r in _rec(str(i), "d", "sarcasm")]
    stats = aggregate(records)
    assert [s.attr for s in frequency_cut(stats, 10)] == ["tone"]
    assert [s.attr for s in frequency_cut(stats, 9)] == ["tone", "sarcasm"]
    assert frequency_cut(stats, 11) == []


# -- the stage over a (fake) teacher ------------------------------------------------------------------


class ScriptedTeacher:
    """Returns fixed answers and records the requests, like TeacherBackend.generate."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def generate(self, requests, desc="teacher"):
        self.calls.append((list(requests), desc))
        return self.answers[: len(requests)]


def test_enumerate_attributes_classifies_every_answer():
    texts = [
        {"text_id": "a", "domain": "imdb", "text": "Great film."},
        {"text_id": "b", "domain": "tweets", "text": "ugh, delayed again"},
        {"text_id": "c", "domain": "tweets", "text": "ok"},
    ]
    teacher = ScriptedTeacher([WELL_FORMED, "1. **Tone**: bitter", "I cannot help with that."])
    params = AttributesParams(worked_example=False)
    enums = enumerate_attributes(teacher, texts, params)
    requests, _ = teacher.calls[0]
    assert requests[1].messages == build_messages("ugh, delayed again", worked_example=False)
    assert all(r.decoding == params.decoding for r in requests)
    assert [(e.text_id, e.parse_status, e.n_items, e.n_complete) for e in enums] == [
        ("a", "parsed", 4, 4),
        ("b", "partly", 1, 0),
        ("c", "unparsed", 0, 0),
    ]
    assert enums[1].items == [Item(name="Tone", description=None, value="bitter")]
    counts = yield_counts(enums)
    assert counts == {
        "parsed": 1, "partly": 1, "unparsed": 1, "answers": 3, "items": 5, "complete_items": 4,
        "nameless_items": 0,
    }  # fmt: skip


def test_enumerate_attributes_sends_the_worked_example_when_asked():
    teacher = ScriptedTeacher([WELL_FORMED])
    enumerate_attributes(teacher, [{"text_id": "a", "domain": "d", "text": "t"}], AttributesParams())
    requests, _ = teacher.calls[0]
    assert requests[0].messages == build_messages("t", worked_example=True)


def test_enumerate_attributes_rejects_a_short_answer_list():
    teacher = ScriptedTeacher([WELL_FORMED])
    texts = [{"text_id": str(i), "domain": "d", "text": "t"} for i in range(2)]
    with pytest.raises(RuntimeError, match="1 answers for 2 requests"):
        enumerate_attributes(teacher, texts, AttributesParams())
