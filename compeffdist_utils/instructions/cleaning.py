"""The method's filtering and cleaning rules for standardised tasks and grounded demonstrations
(docs/METHOD.md, steps 4c-4d): tasks on two texts, pairs that mention or copy a reference text, and the
text cleaning of a kept pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from compeffdist_utils.instructions.json_repair import close_json_brackets
from compeffdist_utils.instructions.text import normalise_text, strip_quotes

# -- two-text tasks -------------------------------------------------------------------------------------

_TEXT_NOUN = r"(?:text|review|tweet|sentence|passage|document|post|comment|statement|message)"
_TWO_TEXT_DEFINITION = re.compile(
    rf"\btwo {_TEXT_NOUN}s\b|\bpair of {_TEXT_NOUN}s\b|\bboth {_TEXT_NOUN}s\b"
    rf"|\bcompar\w* (?:the |two |each )?{_TEXT_NOUN}s\b|\bwhich of the (?:two|{_TEXT_NOUN}s)\b"
    rf"|\b{_TEXT_NOUN} a and {_TEXT_NOUN} b\b|\b{_TEXT_NOUN} 1 and {_TEXT_NOUN} 2\b",
    re.I,
)
_ENUMERATED_TEXT = re.compile(rf"\b{_TEXT_NOUN}\s*(1|2|a|b|one|two)\s*[:)\-]", re.I)


def compares_two_texts(definition: str, examples: Sequence[tuple[str, str]]) -> bool:
    """True when a task works on two texts, which the method excludes.

    Detected when the definition speaks of two texts ("two reviews", "compare the texts", "which of the
    two", "text A and text B"), or when any example input enumerates texts, i.e. carries labels for at
    least two different texts such as ``Text 1: ... Text 2: ...`` or ``Review A: ... Review B: ...``.
    """
    if _TWO_TEXT_DEFINITION.search(definition):
        return True
    for inp, _ in examples:
        marks = {m.group(1).lower() for m in _ENUMERATED_TEXT.finditer(inp)}
        if len(marks) >= 2:
            return True
    return False


# -- (d) cleaning of grounded demonstrations ------------------------------------------------------------


def first_paragraph(s: str) -> str:
    """The text up to the first blank line (the method keeps only an output's first paragraph)."""
    return re.split(r"\n\s*\n", s.strip(), maxsplit=1)[0].strip()


_MENTIONS_REFERENCE = re.compile(
    rf"\breferences?\b|\bstyle reference|\b(?:above|previous|given|original) {_TEXT_NOUN}s?\b"
    rf"|\b(?:first|second) {_TEXT_NOUN}\b|\b{_TEXT_NOUN}s? above\b",
    re.I,
)
MIN_COPY_CHARS = 30


def copies_text(candidate: str, texts: Sequence[str]) -> bool:
    """True when ``candidate`` and one of ``texts`` contain each other (normalised, >= 30 chars)."""
    c = normalise_text(candidate)
    for t in texts:
        n = normalise_text(t)
        shorter = min(len(c), len(n))
        if shorter >= MIN_COPY_CHARS and (c in n or n in c):
            return True
        if shorter and c == n:
            return True
    return False


def clean_pair(inp: str, out: str) -> tuple[str, str]:
    """The method's text cleaning of a demo: quotes stripped from both sides; the output keeps its first
    paragraph (models append explanations) and gets unbalanced JSON brackets closed."""
    return strip_quotes(inp), close_json_brackets(strip_quotes(first_paragraph(out)))


def clean_demo_pair(
    inp: str, out: str, reference_texts: Sequence[str], shown_inputs: Sequence[str]
) -> tuple[tuple[str, str] | None, str | None]:
    """Apply the method's cleaning rules to one generated pair: ((input, output), None) or (None, reason).

    The text is cleaned by :func:`clean_pair`. Dropped: an empty side (``empty``), a pair that mentions the reference texts
    or copies one (``mentions_reference``), and one whose input repeats a shown demo
    (``copies_shown_demo``) - a copy adds no new demonstration.
    """
    inp, out = clean_pair(inp, out)
    if not inp or not out:
        return None, "empty"
    if (
        _MENTIONS_REFERENCE.search(inp)
        or _MENTIONS_REFERENCE.search(out)
        or copies_text(inp, reference_texts)
    ):
        return None, "mentions_reference"
    if copies_text(inp, shown_inputs):
        return None, "copies_shown_demo"
    return (inp, out), None
