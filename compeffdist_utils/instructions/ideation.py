"""Step 4b of the method (docs/METHOD.md): a JSON list of single-text tasks per cluster, built from its
most frequent attribute, each task typed as classification, scoring, extraction or structured output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.funnel import Funnel, StepCounts, Teacher, ask_teacher
from compeffdist_utils.instructions.inputs import attributes_by_count
from compeffdist_utils.instructions.json_repair import extract_json_list
from compeffdist_utils.instructions.prompts import IDEATION_EXAMPLE, ideation_prompt
from compeffdist_utils.instructions.task_items import assign_task_type, read_task_item
from compeffdist_utils.teacher.backends import Messages, conversation


def ideation_chats(clusters: Sequence[dict[str, Any]], ip: InstructionsParams) -> list[Messages]:
    """One task-ideation request per cluster, from its most frequent attribute."""
    example = IDEATION_EXAMPLE if ip.worked_example else None
    tops = [attributes_by_count(c)[0] for c in clusters]
    return [conversation(ideation_prompt(a["attr"], a.get("top_description") or ""), example) for a in tops]


def _cluster_tasks(
    cluster: dict[str, Any], attribute: str, items: Sequence[Any], ip: InstructionsParams, step: StepCounts
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tasks kept from one cluster's parsed JSON items, and the dropped items with their reasons."""
    kept: list[dict[str, Any]] = []
    names: set[str] = set()  # lower-cased names of the kept tasks
    drops: list[dict[str, Any]] = []
    for raw in items:
        task, reason = read_task_item(raw)
        if task and task["task_name"].lower() in names:
            task, reason = None, "duplicate_in_cluster"
        if task and ip.max_tasks_per_cluster and len(kept) >= ip.max_tasks_per_cluster:
            task, reason = None, "over_limit"
        if task is None:
            step.dropped[str(reason)] += 1
            drops.append({"item": raw, "reason": reason})
            continue
        task_type, source = assign_task_type(task["task_name"], task["task_description"], task["task_type"])
        step.notes[f"type_from_{source}"] += 1
        names.add(task["task_name"].lower())
        kept.append(
            {
                "cluster_id": cluster["cluster_id"],
                "task_index": len(kept),
                "task_name": task["task_name"],
                "task_description": task["task_description"],
                "task_type": task_type,
                "type_source": source,
                "attribute": attribute,
            }
        )
    return kept, drops


def ideate_tasks(
    teacher: Teacher, clusters: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ask for a JSON task list per cluster from its most frequent attribute; return (tasks, log).

    Each task gets a ``task_type`` (see :func:`task_items.assign_task_type`; the funnel notes
    where types came from). Dropped: items that are not objects or lack a name or description, echoes of
    the worked example, a repeated task name within the cluster, and tasks beyond
    ``max_tasks_per_cluster``. An answer with no readable JSON list counts as ``unparsed_answer``.
    """
    step = funnel["ideation"]
    tops = [attributes_by_count(c)[0] for c in clusters]
    chats = ideation_chats(clusters, ip)
    answers = ask_teacher(teacher, chats, ip.ideation, "03b task ideation")
    step.requests += len(chats)
    tasks, log = [], []
    for c, top, answer in zip(clusters, tops, answers, strict=True):
        parsed = extract_json_list(answer)
        step.notes[f"json_{parsed.status}"] += 1
        if parsed.status == "failed":
            step.dropped["unparsed_answer"] += 1
        else:
            step.answers_parsed += 1
        step.items_parsed += len(parsed.items)
        kept, drops = _cluster_tasks(c, top["attr"], parsed.items, ip, step)
        step.items_kept += len(kept)
        tasks += kept
        log.append(
            {
                "cluster_id": c["cluster_id"],
                "attribute": top["attr"],
                "response": answer,
                "json_status": parsed.status,
                "tasks": kept,
                "dropped": drops,
            }
        )
    return tasks, log
