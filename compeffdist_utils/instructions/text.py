"""Text rules shared by the stage-03 parsers (docs/METHOD.md, step 4): normalising, quote and markdown
stripping, and spotting an item that merely repeats a worked example (a small teacher copying it).

Pure functions (text in, values out), testable on realistic answers without a model.
"""

from __future__ import annotations

import re

from compeffdist_utils.instructions.prompts import (
    ANALYSIS_EXAMPLE_ITEMS,
    DEMONSTRATION_EXAMPLE_PAIRS,
    IDEATION_EXAMPLE_TASKS,
    STANDARDISATION_EXAMPLE_ANSWER,
    STANDARDISATION_EXAMPLES,
)

_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}


def normalise_text(s: str) -> str:
    """Lower-case, drop punctuation, collapse whitespace: the form used for copy/echo comparisons."""
    return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())


def strip_quotes(s: str) -> str:
    """Remove quotes around the whole string (straight, curly, backticks), repeatedly; also a lone
    opening or closing quote that has no partner in the string (a quote the model never closed)."""
    s = s.strip()
    while len(s) >= 2 and s[0] in _QUOTE_PAIRS and s[-1] == _QUOTE_PAIRS[s[0]]:
        s = s[1:-1].strip()
    if s and s[0] in _QUOTE_PAIRS and _QUOTE_PAIRS[s[0]] not in s[1:]:
        s = s[1:].strip()
    closers = {v: k for k, v in _QUOTE_PAIRS.items()}
    if s and s[-1] in closers and closers[s[-1]] not in s[:-1]:
        s = s[:-1].strip()
    return s


def strip_markdown(s: str) -> str:
    """``s`` without markdown bold/underline markers and a leading heading marker."""
    return re.sub(r"\*\*|__|^#+\s*", "", s).strip()


_STOPWORDS = frozenset(
    "a all an and are as at be by do does for from has have how in is it its not of on one or please that the "
    "their them they this to what which with text texts task".split()
)
ECHO_SHARE = 0.8
ECHO_MIN_WORDS = 3


def content_words(s: str) -> frozenset[str]:
    """Normalised words of ``s`` without numbers and stop words (and "text", which every prompt says)."""
    return frozenset(w for w in normalise_text(s).split() if w not in _STOPWORDS and not w.isdigit())


def task_statement(definition: str) -> str:
    """A definition without its ``Output format: ...`` part, which definitions of any topic share."""
    return re.split(r"\boutput format\b", definition, maxsplit=1, flags=re.I)[0].strip() or definition


_ECHO_KEYS = tuple(
    content_words(x)
    for x in (
        *ANALYSIS_EXAMPLE_ITEMS,
        *(t["task_name"] for t in IDEATION_EXAMPLE_TASKS),
        *(t["task_description"] for t in IDEATION_EXAMPLE_TASKS),
        *re.findall(r"(?m)^Input: (.+)$", STANDARDISATION_EXAMPLE_ANSWER),
        *(i for i, _ in DEMONSTRATION_EXAMPLE_PAIRS),
        *(
            task_statement(answer.split("\n\n")[0].removeprefix("Definition: "))
            for _, answer in STANDARDISATION_EXAMPLES.values()
        ),
    )
)


def echoes_worked_example(s: str) -> bool:
    """True when ``s`` repeats an item of a worked example (a small teacher copying it).

    Small teachers copy with small edits ("humor" for "humour", a clause added), so this is not an exact
    match: at least 80% of the content words of ``s`` come from one example item, or ``s`` contains at
    least 80% of that item's content words (for fewer than three content words in ``s``, only the same
    words count). An adaptation that swaps the topic ("Decide whether the author is frustrated" for
    "... sarcastic") stays below that.
    """
    words = content_words(s)
    if len(words) < ECHO_MIN_WORDS:  # too few words to judge by share: only an identical set counts
        return bool(words) and words in _ECHO_KEYS
    for key in _ECHO_KEYS:
        shared = len(words & key)
        if shared / len(words) >= ECHO_SHARE or (len(key) >= 2 and shared / len(key) >= ECHO_SHARE):
            return True
    return False
