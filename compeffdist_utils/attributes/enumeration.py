"""Stage 1-2 of the method: ask the teacher for a text's sentiment attributes, parse and aggregate them.

The teacher answers in free text. The paper's teachers (70B-class models) write a tidy numbered list
``N. **Name**: Attribute Description - ... Attribute Value - ...``; small teachers and sampled answers
drift from it (no bold, fields on their own lines, bullets, chatty preambles, answers cut off at the
token limit). The parser therefore reads the answer line by line and recognises items and fields by
their markers rather than by one strict pattern, and every answer is classified so that losses are
counted, never silent:

- ``parsed``: at least one item, and every item has a name, a description and a value;
- ``partly``: at least one item, but some item lacks its name, description or value;
- ``unparsed``: no item at all (empty answer, or prose with no list and no fields).

Only items with a name become attribute records (a nameless item cannot be aggregated); items with a
name but a missing description or value are kept, with ``None`` in the missing field.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from compeffdist_utils.core.config import AttributesParams
from compeffdist_utils.teacher.backends import ChatRequest, TeacherBackend, conversation

ParseStatus = Literal["parsed", "partly", "unparsed"]
PARSE_STATUSES: tuple[ParseStatus, ...] = ("parsed", "partly", "unparsed")

# A name longer than this is a sentence of prose, not an attribute name.
MAX_NAME_WORDS = 8
# Unlabelled text after a name: this short, it reads as the value ("**Tone**: sarcastic"); longer, as
# the description ("**Tone**: how the writer addresses the reader").
MAX_BARE_VALUE_WORDS = 4

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
    """The enumeration prompt of method stage 1: requirements 1-5, the format, the text, an 'Attribute:' cue."""
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


# ---------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------


class Item(BaseModel):
    """One attribute as the teacher wrote it (fields cleaned, name not yet normalised)."""

    name: str | None = None
    description: str | None = None
    value: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.name and self.description and self.value)


class ParseResult(BaseModel):
    items: list[Item]

    @property
    def status(self) -> ParseStatus:
        if not self.items:
            return "unparsed"
        return "parsed" if all(i.complete for i in self.items) else "partly"


class Enumeration(BaseModel):
    """One teacher answer with its parse; a line of ``attributes/enumerations.jsonl``."""

    text_id: str
    domain: str
    response: str
    parse_status: ParseStatus
    n_items: int
    n_complete: int
    items: list[Item]


class ParsedAttribute(BaseModel):
    """One normalised attribute occurrence; a line of ``attributes/parsed.jsonl``."""

    text_id: str
    domain: str
    name: str
    raw_name: str
    description: str | None
    value: str | None


class AttributeStats(BaseModel):
    """All occurrences of one normalised name; a line of ``attributes/inventory.jsonl``."""

    attr: str
    count: int
    variants: list[str]
    descriptions: list[str]
    values: list[str]
    top_description: str | None
    domains: dict[str, int]


# ---------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------

# "1." "1)" "(1)" "- " "* " "• ", optionally after a markdown heading "### ".
_LIST_MARKER = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\(?\d{1,3}[.)]|[-*•+·])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
# "Attribute:" / "Attribute 3:" before a name (not before "Description"/"Value": those are fields).
_ATTRIBUTE_PREFIX = re.compile(r"^attribute\s*\d*\s*[:.\-]\s*(?!(?:description|value)\b)", re.I)
_SEP = r"\s*(?::|[-–—=](?:\s|$))"
# A field label: "Attribute Description -", "Value:", ... either with the word "Attribute" in front
# or at the start of a clause, so that a name such as "Perceived value: ..." is not read as a label.
_FIELD = re.compile(
    rf"(?:\battribute\s+|(?:^|(?<=[\n.;,|(])|(?<=\s[-–—]))\s*)(description|value){_SEP}",
    re.I | re.M,
)
_FIELD_AT_START = re.compile(rf"^\s*(?:attribute\s+)?(description|value){_SEP}", re.I)
_BOLD_NAME = re.compile(r"^\*\*(.+?)\*\*")
_LEADING_JUNK = re.compile(r"^[\s\-–—:;,.*•|=>]+")
_TRAILING_JUNK = re.compile(r"[\s\-–—:;,.*|=]+$")


def clean_field(text: str | None) -> str | None:
    """Description/value text with markdown and leading punctuation stripped; ``None`` when empty.

    Trailing separators and a final full stop go too, so 'negative.' and 'negative' count as one value.
    """
    if text is None:
        return None
    text = " ".join(text.replace("**", "").split())
    text = _TRAILING_JUNK.sub("", _LEADING_JUNK.sub("", text))
    return text or None


def _strip_marker(line: str) -> tuple[bool, str]:
    m = _LIST_MARKER.match(line)
    if m:
        return True, line[m.end() :]
    return False, _HEADING.sub("", line)


def _field_kind(line: str) -> str | None:
    """'description' / 'value' when the line starts with a field label (after any list marker)."""
    _, rest = _strip_marker(line)
    m = _FIELD_AT_START.match(rest.replace("*", "").replace("_", " ").lstrip())
    return m.group(1).lower() if m else None


def _word_count(text: str) -> int:
    return len(text.split())


def _split_header(header: str) -> tuple[str | None, str]:
    """(raw name, rest of the line) for an item's first line, marker already removed."""
    header = _ATTRIBUTE_PREFIX.sub("", header.strip())
    bold = _BOLD_NAME.match(header)
    if bold:
        name, rest = bold.group(1), header[bold.end() :]
    else:
        plain = header.replace("*", "")
        cuts = [m.start() for m in (_FIELD.search(plain),) if m and m.start() > 0]
        cuts += [plain.find(sep) for sep in (":", " - ", " – ", " — ") if plain.find(sep) > 0]
        cut = min(cuts) if cuts else len(plain)
        name, rest = plain[:cut], plain[cut:]
    name = clean_field(name.strip("\"'`“”"))
    if name is None or _word_count(name) > MAX_NAME_WORDS:
        return None, header.replace("*", "")
    return name, rest


def _fields(body: str) -> tuple[str | None, str | None]:
    """(description, value) from the text after an item's name (unlabelled text: see MAX_BARE_VALUE_WORDS)."""
    body = _LEADING_JUNK.sub("", body.replace("*", ""))
    found: dict[str, str | None] = {}
    matches = list(_FIELD.finditer(body))
    ends = [m.start() for m in matches[1:]] + [len(body)] if matches else []
    for m, end in zip(matches, ends, strict=True):
        kind = m.group(1).lower()
        content = clean_field(body[m.end() : end])
        if found.get(kind) is None:
            found[kind] = content
    unlabelled = clean_field(body[: matches[0].start()] if matches else body)
    if not matches and unlabelled and _word_count(unlabelled) <= MAX_BARE_VALUE_WORDS:
        return None, unlabelled  # "**Tone**: sarcastic": a bare value, as small models often write
    return found.get("description") or unlabelled, found.get("value")


class _Block:
    """An item while its lines are being collected."""

    def __init__(self, header: str | None):
        self.header = header
        self.lines: list[str] = []
        self.has_value = False

    def to_item(self) -> Item | None:
        name, rest = _split_header(self.header) if self.header is not None else (None, "")
        body = "\n".join([rest, *self.lines])
        labelled = bool(_FIELD.search(body.replace("*", "")))
        if name is None and not labelled:
            return None  # a numbered sentence of prose, not an attribute
        description, value = _fields(body)
        return Item(name=name, description=description, value=value)


def _starts_item(line: str) -> bool:
    if _LIST_MARKER.match(line):
        return True
    s = _HEADING.sub("", line).lstrip()
    return s.startswith("**") or bool(_ATTRIBUTE_PREFIX.match(s))


def _inline_item(line: str) -> bool:
    """An unmarked line such as 'Tone: Attribute Description - ...' (a name, then labelled fields)."""
    plain = line.replace("*", "")
    m = _FIELD.search(plain)
    return bool(m and m.start() > 0 and _word_count(plain[: m.start()]) <= MAX_NAME_WORDS + 1)


def parse_answer(answer: str) -> ParseResult:
    """Split a teacher answer into attribute items (see the module docstring for the shapes handled)."""
    lines = (answer or "").splitlines()
    nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
    next_nonblank = {a: nonblank[k + 1] if k + 1 < len(nonblank) else None for k, a in enumerate(nonblank)}
    blocks: list[_Block] = []
    current: _Block | None = None
    after_blank = False
    for i, line in enumerate(lines):
        if not line.strip():
            after_blank = True
            continue
        kind = _field_kind(line)
        if kind is not None:
            if current is None:
                current = _Block(None)
                blocks.append(current)
            current.lines.append(_strip_marker(line)[1])
            current.has_value |= kind == "value"
        elif _starts_item(line):
            current = _Block(_strip_marker(line)[1])
            blocks.append(current)
        else:
            free = current is None or after_blank or current.has_value
            nxt = next_nonblank[i]
            heads_fields = (
                nxt is not None
                and _field_kind(lines[nxt]) is not None
                and _word_count(line) <= MAX_NAME_WORDS
                and not line.rstrip().endswith((".", ",", ";"))
            )
            if free and (heads_fields or _inline_item(line)):
                current = _Block(line)
                blocks.append(current)
            elif current is not None and not after_blank:
                current.lines.append(line)  # a wrapped line of the current item
            else:
                current = None  # prose before or after the list
        after_blank = False
    items = [item for b in blocks if (item := b.to_item()) is not None]
    return ParseResult(items=items)


# ---------------------------------------------------------------------------------------------------
# Normalisation and aggregation (method stage 2)
# ---------------------------------------------------------------------------------------------------

_NAME_PREFIX = re.compile(r"^attribute\s*\d*\s*:\s*")
_USE_OF = re.compile(r"^use of\s+")


def normalise_name(raw: str) -> list[str]:
    """The normalised names for a raw item name (usually one; 'a/b' gives two).

    Lower-case; strip markdown, quotes and a leading 'attribute:'; keep what precedes ':'
    ('tone: sarcastic' -> 'tone'); split on '/' ('regret/anger' -> 'regret', 'anger'); strip a
    leading 'use of ' ('use of sarcasm' -> 'sarcasm').
    """
    name = " ".join(raw.lower().replace("*", "").replace("`", "").split())
    name = _NAME_PREFIX.sub("", name.strip("\"'“” "))
    name = name.split(":", 1)[0]
    out: list[str] = []
    for part in name.split("/"):
        part = clean_field(_USE_OF.sub("", part.strip().strip("\"'“”")))
        if part and part not in out:
            out.append(part)
    return out


def attribute_records(text_id: str, domain: str, items: Iterable[Item]) -> list[ParsedAttribute]:
    """One record per (named item, normalised name); nameless items are counted in :func:`yield_counts`."""
    return [
        ParsedAttribute(
            text_id=text_id,
            domain=domain,
            name=name,
            raw_name=item.name,
            description=item.description,
            value=item.value,
        )
        for item in items
        if item.name
        for name in normalise_name(item.name)
    ]


def aggregate(records: Iterable[ParsedAttribute]) -> list[AttributeStats]:
    """Group occurrences by normalised name; most frequent first (ties: alphabetical)."""
    groups: dict[str, list[ParsedAttribute]] = defaultdict(list)
    for r in records:
        groups[r.name].append(r)
    stats = []
    for name, recs in groups.items():
        descriptions = [r.description for r in recs if r.description]
        # Counter.most_common keeps first-seen order among ties, so the choice is deterministic.
        top = Counter(descriptions).most_common(1)
        stats.append(
            AttributeStats(
                attr=name,
                count=len(recs),
                variants=[v for v, _ in Counter(r.raw_name for r in recs).most_common()],
                descriptions=descriptions,
                values=[r.value for r in recs if r.value],
                top_description=top[0][0] if top else None,
                domains=dict(Counter(r.domain for r in recs).most_common()),
            )
        )
    stats.sort(key=lambda s: (-s.count, s.attr))
    return stats


def frequency_cut(stats: Sequence[AttributeStats], min_count: int) -> list[AttributeStats]:
    """Keep names seen MORE than ``min_count`` times (paper: > 10)."""
    return [s for s in stats if s.count > min_count]


# ---------------------------------------------------------------------------------------------------
# Running the stage
# ---------------------------------------------------------------------------------------------------


def enumeration_requests(texts: Sequence[dict[str, Any]], params: AttributesParams) -> list[ChatRequest]:
    """One request per text; the plan (:mod:`compeffdist_utils.plan`) counts the same requests."""
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
