"""Parsers of the teacher's free-text answers in stage 03 (docs/METHOD.md, step 4): numbered lists of
analysis prompts (4a) and ``Input:`` / ``Output:`` pairs with the definition before them (4c, 4d).

Every function here is pure (text in, values out) so the rules can be tested on realistic well-formed
and malformed answers without a model. Parsers never raise on junk: they return what they could read
plus a reason when they read nothing, and the steps (:mod:`.analysis` ...) count the reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compeffdist_utils.instructions.text import echoes_worked_example, strip_markdown, strip_quotes

# -- (a) numbered lists of analysis prompts ------------------------------------------------------------

_NUMBERED = re.compile(r"^\s*(?:\*\*)?\(?(\d{1,3})\s*[.):]\s*(?:\*\*)?\s*(.*\S)\s*$")
_EXTRA_NUMBER = re.compile(r"^(?:\d{1,3}\s*[.)]\s+)+")
MIN_PROMPT_WORDS = 4


def parse_numbered_list(answer: str) -> list[str]:
    """The items of lines that start with a number (``1.``, ``2)``, ``(3)``, ``**4.**``), as the method says.

    Prose before, between and after the list is ignored; markdown bold, surrounding quotes and a doubled
    number (``1. 1. What ...``, seen from small teachers) are removed.
    """
    items = []
    for line in answer.splitlines():
        m = _NUMBERED.match(line)
        if m:
            item = strip_quotes(strip_markdown(_EXTRA_NUMBER.sub("", m.group(2))))
            if item:
                items.append(item)
    return items


_PROMPT_START = re.compile(
    r"^(?:please|what|which|how|why|when|where|who|whose|in what|to what|does|do|is|are|can|could|would"
    r"|describe|analy[sz]e|identify|explain|discuss|examine|assess|evaluate|determine|consider|list|find)\b",
    re.I,
)


def analysis_item_problem(item: str) -> str | None:
    """Why a parsed analysis prompt is not usable (a funnel drop reason), or None when it is.

    An analysis prompt is a request or a question (docs/METHOD.md, step 4a: "Please analyze ...", "What/Which/How
    ...?"): it must start with such a word or end with "?" - small teachers also number statements
    ("I'm going to analyze ...") and unfinished sentences.
    """
    if len(item.split()) < MIN_PROMPT_WORDS:
        return "too_short"
    if not (_PROMPT_START.match(item) or item.rstrip().endswith("?")):
        return "not_a_question_or_request"
    if echoes_worked_example(item):
        return "echoes_worked_example"
    return None


# -- Input/Output pairs (standardisation examples and demonstrations) -----------------------------------

_LABEL = re.compile(
    r"^\s*(?:[-*>#]+\s*)?(?:\*\*)?\s*(?:example\s*\d*\s*[-:.]?\s*)?(?:task\s+)?"
    r"(input|output|answer|label)(?:\s*\d+)?\s*(?:\*\*)?\s*[:=]\s*(?:\*\*)?\s*(.*)$",
    re.I,
)
_EXAMPLE = re.compile(r"^\s*(?:[-*#]+\s*)?(?:\*\*)?\s*example\s*\d*\s*[:.)-]?\s*(?:\*\*)?\s*(.*)$", re.I)


def _line_label(line: str) -> tuple[str, str] | None:
    """("input" | "output" | "heading", text after the label) for a line that starts a field, else None.

    ``Input:``, ``Output:`` (also ``Answer:``, ``Label:``), optionally bold, numbered or after
    ``Example 3:``; a bare ``Example 2:`` is a heading; ``Example: some text`` (small teachers write it)
    starts an input.
    """
    if m := _LABEL.match(line):
        return ("input" if m.group(1).lower() == "input" else "output"), m.group(2)
    if m := _EXAMPLE.match(line):
        return ("input", m.group(1)) if m.group(1) else ("heading", "")
    return None


def parse_io_pairs(text: str) -> list[tuple[str, str]]:
    """``Input:`` / ``Output:`` pairs in order; a field runs until the next label or example heading.

    See :func:`_line_label` for the labels read. An input without an output (e.g. cut off by the token
    limit) and an output without an input are not returned.
    """
    pairs: list[tuple[str, str]] = []
    current: dict[str, list[str]] = {}
    field_name: str | None = None

    def flush() -> None:
        if "input" in current and "output" in current:
            inp, out = ("\n".join(current[k]).strip() for k in ("input", "output"))
            if inp and out:
                pairs.append((inp, out))

    for line in text.splitlines():
        label = _line_label(line)
        if label is None:
            if field_name:
                current[field_name].append(line)
            continue
        kind, content = label
        if kind != "output" or "output" in current:
            flush()
            current, field_name = {}, None
        if kind == "heading" or (kind == "output" and "input" not in current):
            field_name = None  # a heading, or an output with no input before it
            continue
        current[kind] = [content]
        field_name = kind
    flush()
    return pairs


_DEFINITION = re.compile(
    r"^\s*(?:[-*#]+\s*)?(?:\*\*)?\s*(?:task\s+)?definition\s*(?:\*\*)?\s*:\s*(?:\*\*)?", re.I | re.M
)


@dataclass
class Standardised:
    """A parsed standardisation answer: the definition paragraph(s) and the example pairs."""

    definition: str
    examples: list[tuple[str, str]]


def parse_standardisation(answer: str) -> Standardised:
    """Split an answer into its definition (the text before the first example) and its examples.

    The definition starts after a ``Definition:`` label when there is one, else at the answer's start; it
    ends at the first ``Input:`` or ``Example`` line, so an ``Output format: ...`` line stays part of it.
    """
    m = _DEFINITION.search(answer)
    body = answer[m.end() :] if m else answer
    lines = body.splitlines()
    cut = next((i for i, ln in enumerate(lines) if _line_label(ln)), len(lines))
    head = [
        ln for ln in lines[:cut] if not re.match(r"^\s*(?:\*\*)?examples?\s*:?\s*(?:\*\*)?\s*$", ln, re.I)
    ]
    definition = strip_markdown(" ".join(" ".join(head).split()))
    return Standardised(definition=definition, examples=parse_io_pairs("\n".join(lines[cut:])))
