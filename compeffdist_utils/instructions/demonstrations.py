"""Step 4d of the method (docs/METHOD.md): new demonstrations per task, written in the style of two real
user texts, cleaned by the method's rules (:mod:`.cleaning`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.cleaning import clean_demo_pair
from compeffdist_utils.instructions.funnel import Funnel, Teacher, ask_teacher
from compeffdist_utils.instructions.inputs import cut_reference
from compeffdist_utils.instructions.parsing import parse_io_pairs
from compeffdist_utils.instructions.prompts import DEMONSTRATION_EXAMPLE, demonstration_prompt
from compeffdist_utils.instructions.text import normalise_text
from compeffdist_utils.teacher.backends import Messages, conversation

DemoRequest = tuple[dict[str, Any], int, list[dict[str, str]], list[str]]  # (task, k, shown demos, refs)


def demonstration_requests(
    tasks: Sequence[dict[str, Any]], user_texts: Sequence[str], ip: InstructionsParams
) -> tuple[list[Messages], list[str], list[DemoRequest]]:
    """The chats, their sample tags and what each shows, ``demo_requests_per_task`` per task.

    Each request shows 1-2 of the task's demos and 2 random user texts, drawn with a generator seeded
    by ``instructions.demos.seed``, the cluster and the task, so adding a task does not change the draws
    of the others.
    """
    example = DEMONSTRATION_EXAMPLE if ip.worked_example else None
    chats: list[Messages] = []
    tags: list[str] = []
    meta: list[DemoRequest] = []
    for t in tasks:
        rng = random.Random(f"{ip.demos.seed}|{t['cluster_id']}|{t['task_index']}|{t['task_name']}")
        for k in range(ip.demo_requests_per_task):
            shown = rng.sample(t["demos"], min(len(t["demos"]), rng.randint(1, 2)))
            refs = [cut_reference(x) for x in rng.sample(list(user_texts), min(2, len(user_texts)))]
            request = demonstration_prompt(t["definition"], [(d["input"], d["output"]) for d in shown], refs)
            chats.append(conversation(request, example))
            tags.append(f"demo{k}")  # repeats of one prompt stay separate samples
            meta.append((t, k, shown, refs))
    return chats, tags, meta


def generate_demonstrations(
    teacher: Teacher,
    tasks: Sequence[dict[str, Any]],
    user_texts: Sequence[str],
    ip: InstructionsParams,
    funnel: Funnel,
) -> tuple[dict[tuple[Any, int], list[dict[str, str]]], list[dict[str, Any]]]:
    """Ask for new demos in the style of real texts; return ({(cluster_id, task_index): demos}, log).

    ``demo_requests_per_task`` requests per task (see :func:`demonstration_requests`). Only answers that parse into exactly two pairs are used
    (``answer_not_two_pairs`` otherwise); their pairs are cleaned by
    :func:`cleaning.clean_demo_pair`, and a pair whose input repeats an earlier one of the
    same task is dropped as ``duplicate``.
    """
    step = funnel["demonstrations"]
    if ip.demo_requests_per_task == 0 or not user_texts:
        step.notes["skipped"] += 1
        return {}, []
    chats, tags, meta = demonstration_requests(tasks, user_texts, ip)
    answers = ask_teacher(teacher, chats, ip.demos, "03d demonstrations", tags)
    step.requests += len(chats)
    grounded: dict[tuple[Any, int], list[dict[str, str]]] = {}
    # Per task, the normalised inputs of its demos and of the pairs kept so far: one set grown as pairs
    # are kept, instead of re-normalising every earlier demo for each candidate pair.
    seen_inputs: dict[tuple[Any, int], set[str]] = {}
    log = []
    for (t, k, shown, refs), answer in zip(meta, answers, strict=True):
        pairs = parse_io_pairs(answer)
        key = (t["cluster_id"], t["task_index"])
        have = grounded.setdefault(key, [])
        seen = seen_inputs.setdefault(key, {normalise_text(d["input"]) for d in t["demos"]})
        entry = {
            "cluster_id": t["cluster_id"],
            "task_index": t["task_index"],
            "task_name": t["task_name"],
            "request": k,
            "references": refs,
            "response": answer,
            "kept": [],
            "dropped": [],
        }
        log.append(entry)
        if len(pairs) != 2:
            step.dropped["answer_not_two_pairs"] += 1
            step.notes[f"answers_with_{min(len(pairs), 3)}{'+' if len(pairs) >= 3 else ''}_pairs"] += 1
            continue
        step.answers_parsed += 1
        step.items_parsed += 2
        for inp, out in pairs:
            pair, reason = clean_demo_pair(inp, out, refs, [d["input"] for d in shown])
            if pair and normalise_text(pair[0]) in seen:
                pair, reason = None, "duplicate"
            if pair is None:
                step.dropped[str(reason)] += 1
                entry["dropped"].append({"input": inp, "output": out, "reason": reason})
                continue
            have.append({"input": pair[0], "output": pair[1]})
            seen.add(normalise_text(pair[0]))
            entry["kept"].append(have[-1])
            step.items_kept += 1
    return grounded, log
