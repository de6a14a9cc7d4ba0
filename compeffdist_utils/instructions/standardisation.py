"""Step 4c of the method (docs/METHOD.md): each task rewritten as a definition with the exact output
format and example (input, output) pairs; tasks with too few examples, or on two texts, are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.cleaning import clean_pair, compares_two_texts
from compeffdist_utils.instructions.funnel import Funnel, Teacher, ask_teacher
from compeffdist_utils.instructions.parsing import parse_standardisation
from compeffdist_utils.instructions.prompts import standardisation_example, standardisation_prompt
from compeffdist_utils.instructions.text import echoes_worked_example, normalise_text, task_statement
from compeffdist_utils.teacher.backends import conversation


def standardise_tasks(
    teacher: Teacher, tasks: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rewrite each task into a definition with examples; return (standardised tasks, log).

    Examples are cleaned like demonstrations (:func:`cleaning.clean_pair`: quotes, first
    paragraph of the output, JSON brackets); those left empty, whose input repeats the worked example's,
    or whose input repeats an earlier example's are discarded first. A task is then dropped when its
    answer has no definition (``no_definition``) or no example left (``no_examples``), when the
    definition's task statement (the part before "Output format") repeats the worked example's, when it works on two texts (``two_text_task``, see
    :func:`cleaning.compares_two_texts`), or when fewer than ``min_examples`` distinct examples
    remain (``too_few_examples``). The worked example is one of the task's own type
    (:func:`prompts.standardisation_example`). The method asks for at least 8; tiny params ask for fewer because a
    135M teacher rarely writes 8 before its token limit. Kept tasks keep their first ``max_demos``.
    """
    step = funnel["standardisation"]
    chats = [
        conversation(
            standardisation_prompt(t["task_name"], t["task_type"], t["task_description"], ip.min_examples),
            standardisation_example(t["task_type"]) if ip.worked_example else None,
        )
        for t in tasks
    ]
    answers = ask_teacher(teacher, chats, ip.standardisation, "03c standardisation")
    step.requests += len(chats)
    kept, log = [], []
    for task, answer in zip(tasks, answers, strict=True):
        std = parse_standardisation(answer)
        unique: dict[str, tuple[str, str]] = {}  # by normalised input: a repeated input is one example
        for i, o in (clean_pair(i, o) for i, o in std.examples):
            if i and o and not echoes_worked_example(i):
                unique.setdefault(normalise_text(i), (i, o))
        examples = list(unique.values())
        step.notes["examples_parsed"] += len(std.examples)
        step.notes["examples_dropped_empty_echo_or_repeat"] += len(std.examples) - len(examples)
        step.answers_parsed += bool(std.definition and std.examples)
        step.items_parsed += 1
        reason = None
        if not std.definition:
            reason = "no_definition"
        elif echoes_worked_example(task_statement(std.definition)):
            reason = "echoes_worked_example"
        elif not examples:
            reason = "no_examples"
        elif compares_two_texts(std.definition, examples):
            reason = "two_text_task"
        elif len(examples) < ip.min_examples:
            reason = "too_few_examples"
        record = {**task, "definition": std.definition, "n_examples": len(examples), "response": answer}
        if reason:
            step.dropped[reason] += 1
            log.append({**record, "status": reason})
            continue
        demos = [{"input": i, "output": o} for i, o in examples[: ip.max_demos]]
        step.items_kept += 1
        kept.append({**{k: v for k, v in record.items() if k != "response"}, "demos": demos})
        log.append({**record, "status": "kept"})
    return kept, log
