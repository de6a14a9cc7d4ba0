"""Reading the teacher's attribute answers (docs/METHOD.md, step 2): free text into named items with fields.

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
from typing import Literal

from pydantic import BaseModel

ParseStatus = Literal["parsed", "partly", "unparsed"]
PARSE_STATUSES: tuple[ParseStatus, ...] = ("parsed", "partly", "unparsed")

# A name longer than this is a sentence of prose, not an attribute name.
MAX_NAME_WORDS = 8
# Unlabelled text after a name: this short, it reads as the value ("**Tone**: sarcastic"); longer, as
# the description ("**Tone**: how the writer addresses the reader").
MAX_BARE_VALUE_WORDS = 4


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
