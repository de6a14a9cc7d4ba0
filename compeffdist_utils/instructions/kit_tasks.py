"""The kit's fixed sentiment tasks (``instructions.kit_tasks``): one task instruction per chosen task type,
about a text's overall sentiment, added to stage 03's pool beside the tasks the teacher wrote.

Why it exists: the method has the teacher write every task, and a writer of 135M parameters (the embedded
default) writes label sets such as {emotional, enhanced} or {grammatical structure, syntactical analysis}:
in the study run of 2026-12-05 none of the pool's classification tasks asked for polarity, so the student
never met the question SentiBench asks. These tasks put that question into the pool; the teacher still
writes every answer (stage 04), so the student learns the teacher's answers, as in the method. Off by
default and in the paper preset: a deviation from the paper (docs/AUTHORS_DIFFERENCES.md).

Each definition follows the standardised form of stage 03's step c (task statement, then ``Output format:``)
and carries no demos: stage 04 appends ``"\\n\\nInput: {text}"`` as for every task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KIT_CLUSTER = -1  # no perspective: these tasks are the kit's, not written for a stage 02 cluster

# task type -> (task name, definition with its exact output format)
KIT_TASKS: dict[str, tuple[str, str]] = {
    "classification": (
        "overall polarity",
        "Decide the overall sentiment of the input text. Output format: exactly one label from "
        "{negative, neutral, positive}, in lower case, with nothing else.",
    ),
    "scoring": (
        "sentiment strength",
        "Rate the overall sentiment of the input text. Output format: one whole number from 1 (very "
        "negative) to 5 (very positive), with nothing else.",
    ),
    "extraction": (
        "opinion phrases",
        "Copy the phrases of the input text that express the writer's opinion, word for word. Output "
        'format: the phrases separated by " | ", or "none" when there is none.',
    ),
    "structured_output": (
        "sentiment record",
        "Describe the sentiment of the input text as JSON. Output format: one JSON object with the keys "
        '"polarity" (negative, neutral or positive), "score" (a whole number from 1 to 5) and "evidence" '
        "(a short quote from the text).",
    ),
}


def cluster_label(cluster_id: int | str) -> str:
    """How a figure names a cluster: its id, or ``kit`` for the kit's fixed tasks, which have no perspective
    (a bare ``-1`` on an axis reads as a cluster a reader cannot find on the attribute map). Stage 05's tables
    hold ids as text, hence ``int | str``."""
    return "kit" if str(cluster_id) == str(KIT_CLUSTER) else str(cluster_id)


def kit_instructions(task_types: Sequence[str]) -> list[dict[str, Any]]:
    """Pool records (the pool's fields) for the chosen kit task types, in the order given."""
    unknown = [t for t in task_types if t not in KIT_TASKS]
    if unknown:
        raise ValueError(f"instructions.kit_tasks: unknown task types {unknown}; known: {sorted(KIT_TASKS)}")
    return [
        {
            "instruction_id": f"kit-{t}",
            "cluster_id": KIT_CLUSTER,
            "task_name": f"kit: {KIT_TASKS[t][0]}",
            "task_type": t,
            "prompt": KIT_TASKS[t][1],
            "demos": [],
        }
        for t in dict.fromkeys(task_types)
    ]
