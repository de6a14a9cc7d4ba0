"""Tasks from the ideation answer's JSON items (docs/METHOD.md, step 4b): the name, description and type
of each task, whatever key spellings the teacher used, and the task type inferred when it gave none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from compeffdist_utils.instructions.text import echoes_worked_example, normalise_text

TASK_NAME_KEYS = ("task_name", "name", "task", "title")
TASK_DESC_KEYS = ("task_description", "description", "desc", "details")
TASK_TYPE_KEYS = ("task_type", "type", "category")


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
    name, desc = _first(lowered, TASK_NAME_KEYS), _first(lowered, TASK_DESC_KEYS)
    if not desc:
        return None, "missing_description"
    if not name:  # a described task without a name (seen when a list is flattened into one object)
        name = " ".join(normalise_text(desc).split()[:NAME_WORDS])
    if echoes_worked_example(name) or echoes_worked_example(desc):
        return None, "echoes_worked_example"
    return {"task_name": name, "task_description": desc, "task_type": _first(lowered, TASK_TYPE_KEYS)}, None


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
