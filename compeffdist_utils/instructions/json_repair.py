"""Reading a JSON list from a teacher's answer (docs/METHOD.md, step 4b), and closing the brackets of a
JSON output cut off by the token limit (step 4d): what models write is rarely valid JSON as it stands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from compeffdist_utils.instructions.task_items import TASK_DESC_KEYS, TASK_NAME_KEYS

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
    if not any(k in obj for k in (*TASK_NAME_KEYS, *TASK_DESC_KEYS)):
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
