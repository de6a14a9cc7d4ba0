"""Parsers and cleaning rules for the teacher's answers in stage 03 (method.md, stage 4 a-d).

Every function here is pure (text in, values out) so the rules can be tested on realistic well-formed
and malformed answers without a model. Parsers never raise on junk: they return what they could read
plus a reason when they read nothing, and the pipeline (``instructions.py``) counts the reasons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compeffdist_utils.instructions.prompts import (
    ANALYSIS_EXAMPLE_ITEMS,
    DEMONSTRATION_EXAMPLE_PAIRS,
    IDEATION_EXAMPLE_TASKS,
    STANDARDISATION_EXAMPLE_ANSWER,
)

# -- shared text helpers -----------------------------------------------------------------------------

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


def _strip_markdown(s: str) -> str:
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
        task_statement(STANDARDISATION_EXAMPLE_ANSWER.split("\n\n")[0].removeprefix("Definition: ")),
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
            item = strip_quotes(_strip_markdown(_EXTRA_NUMBER.sub("", m.group(2))))
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

    An analysis prompt is a request or a question (method.md 4a: "Please analyze ...", "What/Which/How
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


# -- (b) JSON task lists -------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
# A value that ends a line followed by a key or object on the next line, with the comma forgotten.
_MISSING_COMMA = re.compile(r'("|\d|true|false|null|[}\]])(\s*\n\s*)(["{])')


def _fix_commas(text: str) -> str:
    """Commas added where a line ends a value and the next starts a key, trailing commas removed."""
    return _TRAILING_COMMA.sub(r"\1", _MISSING_COMMA.sub(r"\1,\2\3", text))


@dataclass
class JsonListResult:
    """Items read from an answer and how: ``ok``, ``repaired`` (fixes applied) or ``failed``."""

    items: list[Any] = field(default_factory=list)
    status: str = "failed"


class _SplitObject(list):
    """The objects an object with repeated keys stands for (see :func:`_split_repeated_keys`)."""


def _split_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _SplitObject:
    """``json.loads`` hook: an object whose keys repeat is several objects written as one.

    Small teachers flatten a list of tasks into one object (``{"task_name": .., "task_description": ..,
    "task_description": ..}``); plain ``json.loads`` would keep only the last value of each key. Here a
    new object starts whenever a key repeats.
    """
    objects: list[dict[str, Any]] = [{}]
    for key, value in pairs:
        if key in objects[-1]:
            objects.append({})
        objects[-1][key] = value
    return objects[0] if len(objects) == 1 else _SplitObject(objects)


def _json_brackets(s: str) -> tuple[list[tuple[int, str]], bool]:
    """The brackets of ``s`` outside JSON strings, with their index, and whether a string is left open."""
    brackets: list[tuple[int, str]] = []
    in_str = esc = False
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{]}":
            brackets.append((i, ch))
    return brackets, in_str


def _scan_closing(s: str) -> int:
    """Index just after the last complete top-level object of a list that starts at ``s[0]``."""
    depth, last_end = 0, -1
    for i, ch in _json_brackets(s)[0]:
        depth += 1 if ch in "[{" else -1
        if depth == 1 and ch == "}":
            last_end = i
    return last_end + 1


def _candidates(answer: str) -> list[str]:
    fenced = _FENCE.search(answer)
    body = (fenced.group(1) if fenced else answer).strip()
    out = [body]
    for open_, close in (("[", "]"), ("{", "}")):
        start, end = body.find(open_), body.rfind(close)
        if start >= 0 and end > start:
            out.append(body[start : end + 1])
    start = body.find("[")
    if start >= 0 and (cut := _scan_closing(body[start:])) > 0:
        out.append(body[start : start + cut] + "]")  # a list cut off by the token limit
    return out


def _unwrap(obj: dict[str, Any]) -> list[Any]:
    """``{"tasks": [{...}, ...]}`` -> its list; any other object (a task itself) -> a list of one."""
    if not any(k in obj for k in (*_NAME_KEYS, *_DESC_KEYS)):
        lists = [v for v in obj.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        if len(lists) == 1:
            return lists[0]
    return [obj]


def extract_json_list(answer: str) -> JsonListResult:
    """Read a JSON list from a teacher answer, surviving what models write.

    Tried in order: the answer's first code fence (or the whole answer), the text from the first ``[`` to
    the last ``]``, from the first ``{`` to the last ``}``, and a list cut off by the token limit (kept up to
    its last complete object); each as written, then with trailing commas removed, then also with commas
    added where a line ends a value and the next starts a key. An object holding one list
    (``{"tasks": [...]}``) yields that list; a single object yields a list of one; an object whose keys
    repeat is split into several (:func:`_split_repeated_keys`). When nothing parses as a whole, every
    flat ``{...}`` (no braces inside) that parses on its own is kept (``salvaged``). Status ``ok`` means
    the answer parsed as written; ``repaired`` that a fix was needed.
    """
    for n, text in enumerate(_candidates(answer)):
        no_trailing = _TRAILING_COMMA.sub(r"\1", text)
        for k, variant in enumerate((text, no_trailing, _fix_commas(text))):
            try:
                value = json.loads(variant, object_pairs_hook=_split_repeated_keys)
            except (json.JSONDecodeError, ValueError):
                continue
            if isinstance(value, dict):
                value = _unwrap(value)
            if not isinstance(value, list):
                continue
            split = isinstance(value, _SplitObject) or any(isinstance(v, _SplitObject) for v in value)
            items = [x for v in value for x in (v if isinstance(v, _SplitObject) else [v])]
            return JsonListResult(items, "ok" if n == k == 0 and not split else "repaired")
    salvaged = [obj for m in _FLAT_OBJECT.finditer(answer) if (obj := _loads_object(m.group(0))) is not None]
    return JsonListResult(salvaged, "salvaged") if salvaged else JsonListResult()


_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")


def _loads_object(text: str) -> dict[str, Any] | None:
    for variant in (text, _fix_commas(text)):
        try:
            value = json.loads(variant)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(value, dict):
            return value
    return None


_NAME_KEYS = ("task_name", "name", "task", "title")
_DESC_KEYS = ("task_description", "description", "desc", "details")
_TYPE_KEYS = ("task_type", "type", "category")


def _first(d: dict[str, Any], keys: Sequence[str]) -> str:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


NAME_WORDS = 6


def read_task_item(item: Any) -> tuple[dict[str, str] | None, str | None]:
    """A ``{task_name, task_description, task_type?}`` dict from one list item, or (None, drop reason).

    Key spellings vary (``name``, ``description``, ``type``, capitalised). A task needs a description;
    one without a name is named by the first six words of its description.
    """
    if not isinstance(item, dict):
        return None, "not_an_object"
    lowered = {str(k).strip().lower().replace(" ", "_"): v for k, v in item.items()}
    name, desc = _first(lowered, _NAME_KEYS), _first(lowered, _DESC_KEYS)
    if not desc:
        return None, "missing_description"
    if not name:  # a described task without a name (seen when a list is flattened into one object)
        name = " ".join(normalise_text(desc).split()[:NAME_WORDS])
    if echoes_worked_example(name) or echoes_worked_example(desc):
        return None, "echoes_worked_example"
    return {"task_name": name, "task_description": desc, "task_type": _first(lowered, _TYPE_KEYS)}, None


# -- task types ------------------------------------------------------------------------------------------

_TYPE_SYNONYMS = {
    "classification": "classification",
    "classify": "classification",
    "label": "classification",
    "labeling": "classification",
    "labelling": "classification",
    "detection": "classification",
    "scoring": "scoring",
    "score": "scoring",
    "rating": "scoring",
    "regression": "scoring",
    "extraction": "extraction",
    "information_extraction": "extraction",
    "span_extraction": "extraction",
    "structured_output": "structured_output",
    "structured": "structured_output",
    "structured_prediction": "structured_output",
    "json": "structured_output",
    "table": "structured_output",
}

# Keyword inference, checked in this order: a task that returns JSON is structured output even when it
# also "extracts"; one that extracts spans is extraction even when it "identifies"; a scale is scoring.
_TYPE_KEYWORDS = (
    ("structured_output", r"\bjson\b|\btable\b|\bschema\b|\bfields?\b|\bstructured\b|\bkey[- ]value\b"),
    (
        "extraction",
        r"\bextract|\bspans?\b|\bkeywords?\b|\bkey (?:sentence|phrase)s?\b|\btriggers?\b|\bcauses?\b"
        r"|\bcopy\b|\bquote\b",
    ),
    ("scoring", r"\bscor(?:e|es|ing)\b|\brat(?:e|es|ing)\b|\bscale\b|\b\d\s*(?:-|to)\s*\d+\b|\bdegree\b"),
    ("classification", r"\bclassif|\blabels?\b|\bcategor|\bdetect|\bwhether\b|\bdetermine\b|\bidentify\b"),
)


def canonical_task_type(raw: str) -> str | None:
    """Map a teacher-given type ('Rating', 'information extraction', 'JSON') to one of classification, scoring, extraction, structured_output."""
    key = re.sub(r"[\s/-]+", "_", raw.strip().lower())
    if key in _TYPE_SYNONYMS:
        return _TYPE_SYNONYMS[key]
    for word in key.split("_"):
        if word in _TYPE_SYNONYMS:
            return _TYPE_SYNONYMS[word]
    return None


def assign_task_type(task_name: str, task_description: str, given: str) -> tuple[str, str]:
    """The task's type and where it came from: ``answer``, ``keywords`` or ``default``.

    The teacher's own ``task_type`` wins when it maps to one of the four types; otherwise the first type
    whose keywords appear in the name + description (order in ``_TYPE_KEYWORDS``); otherwise
    ``classification``, the broadest single-text type (every decision about a text is a label).
    """
    canon = canonical_task_type(given) if given else None
    if canon:
        return canon, "answer"
    text = f"{task_name} {task_description}".lower()
    for task_type, pattern in _TYPE_KEYWORDS:
        if re.search(pattern, text):
            return task_type, "keywords"
    return "classification", "default"


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
    definition = _strip_markdown(" ".join(" ".join(head).split()))
    return Standardised(definition=definition, examples=parse_io_pairs("\n".join(lines[cut:])))


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


def close_json_brackets(s: str) -> str:
    """Close the brackets (and a string) left open in an output that starts as JSON; others unchanged.

    Brackets inside JSON strings are ignored. A dangling comma before the added closers is removed, so
    ``{"a": 1, "b": [2, 3`` becomes ``{"a": 1, "b": [2, 3]}``.
    """
    t = s.strip()
    if not t.startswith(("{", "[")):
        return s
    stack: list[str] = []
    brackets, in_str = _json_brackets(t)
    for _, ch in brackets:
        if ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif stack and stack[-1] == ch:
            stack.pop()
    if not stack and not in_str:
        return t
    if in_str:
        t += '"'
    t = t.rstrip().rstrip(",")
    return t + "".join(reversed(stack))


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
