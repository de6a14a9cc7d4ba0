"""The plan of a run: each stage's planner (stages 01/03/04 in :mod:`.teacher`, 05-08 in :mod:`.student`),
priced with the rates given, and the totals; what ``compeffdist plan`` prints and the runner records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.planning.context import PlanContext, Rates, StagePlan, plan_no_teacher
from compeffdist_utils.planning.student import plan_05, plan_06, plan_07, plan_08
from compeffdist_utils.planning.teacher import plan_01, plan_03, plan_04
from compeffdist_utils.stage.fingerprints import discover_stages


def plan_stage(ctx: PlanContext, name: str) -> StagePlan:
    """The plan of one stage (by its notebook name); downstream stages reuse the plans made before them."""
    planners: dict[str, Callable[[PlanContext], StagePlan]] = {
        "01": plan_01, "03": plan_03, "04": plan_04, "05": plan_05, "06": plan_06, "07": plan_07, "08": plan_08,
    }  # fmt: skip
    number = name[:2]
    if number in planners:
        plan = planners[number](ctx)
        plan.stage = name
    elif number == "00":
        plan = plan_no_teacher(name, "no model: reads and samples the corpus")
    elif number == "02":
        plan = plan_no_teacher(name, "no teacher: embeds the attribute names (a few thousand short strings)")
    else:
        plan = plan_no_teacher(name, "not a stage the planner knows")
    ctx.plans[number] = plan
    return plan


def price(plan: StagePlan, rates: Rates) -> StagePlan:
    """Fill dollars, hours and seconds from the rates that are set."""
    if rates.price_in is not None and rates.price_out is not None and plan.teacher_requests:
        plan.usd_max = (
            plan.prompt_tokens * rates.price_in + plan.completion_tokens_max * rates.price_out
        ) / 1e6
        if plan.completion_tokens_expected is not None:
            plan.usd_expected = (
                plan.prompt_tokens * rates.price_in + plan.completion_tokens_expected * rates.price_out
            ) / 1e6
    seconds = 0.0
    if rates.teacher_tokens_per_s and plan.teacher_requests:
        gen = (
            plan.completion_tokens_expected
            if plan.completion_tokens_expected is not None
            else plan.completion_tokens_max
        )
        seconds += gen / rates.teacher_tokens_per_s
        plan.teacher_hours = gen / rates.teacher_tokens_per_s / 3600
    if rates.student_tokens_per_s and (plan.student_forward_tokens or plan.student_training_tokens):
        # a training token costs about three forward tokens (forward pass + backward pass)
        work = plan.student_forward_tokens + 3 * plan.student_training_tokens
        seconds += work / rates.student_tokens_per_s
        plan.student_hours = work / rates.student_tokens_per_s / 3600
    plan.seconds = seconds if (rates.teacher_tokens_per_s or rates.student_tokens_per_s) else None
    return plan


def make_plan(
    params: Params,
    root: Path,
    run_dir: Path | None = None,
    stages: Sequence[str] | None = None,
    rates: Rates | None = None,
) -> dict[str, Any]:
    """The plan of the named stages (notebook names; default all) as a JSON-able dict with totals."""
    names = list(stages) if stages is not None else [s.name for s in discover_stages(root / "notebooks")]
    rates = rates or Rates.from_params(params)
    ctx = PlanContext(params, run_dir, root)
    planned = [price(plan_stage(ctx, n), rates).as_dict() for n in names]
    totals: dict[str, Any] = {}
    for key in ("teacher_requests", "cached_requests", "prompt_tokens", "completion_tokens_max",
                "student_forward_tokens", "student_training_tokens"):  # fmt: skip
        totals[key] = sum(p[key] for p in planned)
    for key in (
        "completion_tokens_expected",
        "usd_max",
        "usd_expected",
        "teacher_hours",
        "student_hours",
        "seconds",
    ):
        vals = [p[key] for p in planned if p[key] is not None]
        totals[key] = sum(vals) if vals else None
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "teacher": params.models.teacher.model,
        "writer": params.models.writer.model if params.models.writer else None,
        "rates": asdict(rates),
        "stages": planned,
        "totals": totals,
    }
