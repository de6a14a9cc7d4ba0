"""Asking the teacher for a text's sentiment attributes (docs/METHOD.md, step 2): the prompt, one request
per text, and each answer kept with its parse (:mod:`.parsing`) and counted by parse status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from compeffdist_utils.attributes.parsing import PARSE_STATUSES, Item, ParseStatus, parse_answer
from compeffdist_utils.core.config import AttributesParams
from compeffdist_utils.teacher.backends import ChatRequest, TeacherBackend, conversation
from compeffdist_utils.teacher.base import check_failed_fraction

# ---------------------------------------------------------------------------------------------------
# The prompt
# ---------------------------------------------------------------------------------------------------

_REQUIREMENTS = """\
Requirements:
1. Brainstorm as many attributes as possible.
2. Be creative: look beyond the most obvious attributes.
3. Each attribute reflects one single characteristic of the text.
4. Give each attribute an Attribute Description (what the attribute represents) and an \
Attribute Value (the value of the attribute in this text).
5. Ignore tedious specifics of this particular text; focus on general textual attributes that \
other texts could have too."""

_FORMAT = """\
Answer with a numbered list, one attribute per item, in exactly this format:
1. **Attribute name**: Attribute Description - what the attribute represents. \
Attribute Value - its value in this text."""

# The worked example is one earlier exchange (the prompt for an example text, then a model answer)
# placed before the real prompt. Tried on SmolLM2-135M-Instruct with real texts: an example pasted
# inside the prompt made it analyse the example text instead of the real one and drop the field
# labels, while the same example as a previous chat turn gave answers in the exact format. Small
# models also copy the example's attribute names, so the example uses general ones that fit most texts
# and short values that the model has to re-derive from its own text.
WORKED_EXAMPLE_TEXT = (
    "The hotel room was spotless and the staff were lovely, but the wifi kept dropping. Would stay again."
)
WORKED_EXAMPLE_ANSWER = """\
1. **Overall sentiment**: Attribute Description - the general polarity of the text. \
Attribute Value - positive.
2. **Emotional intensity**: Attribute Description - how strongly the feelings are expressed. \
Attribute Value - moderate.
3. **Mixed feelings**: Attribute Description - whether praise and criticism appear together. \
Attribute Value - yes.
4. **Recommendation**: Attribute Description - whether the writer recommends the subject. \
Attribute Value - yes, would stay again.
5. **Formality**: Attribute Description - how formal the language is. Attribute Value - informal."""


def build_prompt(text: str) -> str:
    """The enumeration prompt (docs/METHOD.md, step 2): requirements 1-5, the format, the text, an 'Attribute:' cue."""
    return "\n\n".join(
        [
            "Which sentiment-related attributes does the following text have?",
            _REQUIREMENTS,
            _FORMAT,
            f"Text: {text.strip()}\nAttribute:",
        ]
    )


def build_messages(text: str, worked_example: bool) -> tuple[tuple[str, str], ...]:
    """The chat messages for one text: the prompt, preceded by the worked example when asked for."""
    example = (build_prompt(WORKED_EXAMPLE_TEXT), WORKED_EXAMPLE_ANSWER) if worked_example else None
    return conversation(build_prompt(text), example)


class Enumeration(BaseModel):
    """One teacher answer with its parse; a line of ``attributes/enumerations.jsonl``."""

    text_id: str
    domain: str
    response: str
    parse_status: ParseStatus
    n_items: int
    n_complete: int
    items: list[Item]


# ---------------------------------------------------------------------------------------------------
# Running the stage
# ---------------------------------------------------------------------------------------------------


def enumeration_requests(texts: Sequence[dict[str, Any]], params: AttributesParams) -> list[ChatRequest]:
    """One request per text; the plan (:mod:`compeffdist_utils.planning`) counts the same requests."""
    return [ChatRequest(build_messages(t["text"], params.worked_example), params.decoding) for t in texts]


def enumerate_attributes(
    teacher: TeacherBackend, texts: Sequence[dict[str, Any]], params: AttributesParams
) -> list[Enumeration]:
    """Ask the teacher for each text's attributes (one request per text) and parse every answer.

    ``texts`` are corpus records with ``text_id``, ``domain`` and ``text``.
    """
    requests = enumeration_requests(texts, params)
    answers = teacher.generate(requests, desc="01 attribute enumeration")
    if len(answers) != len(texts):
        raise RuntimeError(f"the teacher returned {len(answers)} answers for {len(texts)} requests")
    out = []
    for t, answer in zip(texts, answers, strict=True):
        result = parse_answer(answer)
        out.append(
            Enumeration(
                text_id=str(t["text_id"]),
                domain=str(t["domain"]),
                response=answer,
                parse_status=result.status,
                n_items=len(result.items),
                n_complete=sum(i.complete for i in result.items),
                items=result.items,
            )
        )
    # No answer parsed: the stage fails here with the counts (not at stage 02's min_count). Some
    # unparsed answers are counted in the yield table and the record: a small teacher's yield varies.
    unparsed = [e for e in out if e.parse_status == "unparsed"]
    if unparsed:
        check_failed_fraction(
            "01 attribute enumeration: teacher answers with no attribute that could be parsed",
            len(unparsed), len(out), f"{unparsed[0].text_id}: {unparsed[0].response[:200]!r}", limit=1.0,
        )  # fmt: skip
    return out


def yield_counts(enumerations: Sequence[Enumeration]) -> dict[str, int]:
    """Answers per parse status plus item totals, for the yield table and the stage record."""
    counts: dict[str, int] = {s: 0 for s in PARSE_STATUSES}
    for e in enumerations:
        counts[e.parse_status] += 1
    counts["answers"] = len(enumerations)
    counts["items"] = sum(e.n_items for e in enumerations)
    counts["complete_items"] = sum(e.n_complete for e in enumerations)
    counts["nameless_items"] = sum(1 for e in enumerations for i in e.items if not i.name)
    return counts


def best_example(enumerations: Sequence[Enumeration]) -> Enumeration | None:
    """The answer to show as an example: fully parsed first, then the most complete and most items."""
    return max(
        enumerations, key=lambda e: (e.parse_status == "parsed", e.n_complete, e.n_items), default=None
    )
