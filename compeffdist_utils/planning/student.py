"""The student side of the plan (stages 05-08): scorer, training and evaluation tokens.

Token counts use the scorer's / student's tokenizer on stage 04's dataset when it exists (and on stage
05's selection for 06); before that they are estimated from stage 04's plan (its prompt tokens and its
expected, else maximal, completion tokens per sample). Forward tokens count every token a model reads or
generates (scoring: the conditioned pass on x + y plus IFD's unconditioned pass on y; evaluation: each
prompt, cut to ``evaluation.max_prompt_tokens``, so an upper bound, plus the generated answer); training
tokens count the tokens of every example each time an optimiser step sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from compeffdist_utils.core.config import EvaluationParams, Params, TrainingParams
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.data_efficiency.points import BASE, grid_params, grid_points
from compeffdist_utils.difficulty_selection.selection import target_count
from compeffdist_utils.planning.context import PlanContext, StagePlan
from compeffdist_utils.planning.teacher import plan_04
from compeffdist_utils.student_training.sft_data import split_train_eval

# Test-set sizes of SentiBench (docs/METHOD.md, step 8), used when evaluation.n_test is None.
SENTIBENCH_TEST_SIZES = {
    "sc/imdb": 1000, "sc/yelp2": 1000, "sc/sst2": 1821, "sc/twitter": 1000,
    "multifaced/irony18": 784, "multifaced/tweeteval": 1421, "multifaced/pstance": 2157,
    "multifaced/intimacy": 396, "absa/atsa_rest16": 676, "absa/acsa_rest16": 676,
    "absa/asqp_rest16": 544, "absa/opener": 499,
}  # fmt: skip


@dataclass
class Samples:
    """Per-sample token counts of the distillation data (x = instruction, y = teacher output)."""

    x: list[int]
    y: list[int]
    template: int  # chat-template tokens around one (user, assistant) exchange
    basis: str

    @property
    def n(self) -> int:
        return len(self.x)

    def example_tokens(self, max_length: int, rows: list[int] | None = None) -> list[int]:
        """Tokens of each training example (chat template applied, cut to ``max_length``)."""
        idx = range(self.n) if rows is None else rows
        return [min(self.x[i] + self.y[i] + self.template, max_length) for i in idx]


def samples(ctx: PlanContext, spec: str) -> Samples:
    """Token counts of stage 04's samples on ``spec``'s tokenizer: counted, or estimated from 04's plan."""

    counter = ctx.counter(spec)
    template = counter.chats([(("user", ""), ("assistant", ""))], add_generation_prompt=False)[0]
    done = ctx.run_file("distill/dataset.jsonl")
    if done is not None:
        recs = read_jsonl(done)
        x = counter.texts([r["instruction"] for r in recs])
        y = counter.texts([r["output"] for r in recs])
        return Samples(x, y, template, f"counted on the run's distill/dataset.jsonl ({counter.basis})")
    p04 = ctx.plans.get("04") or plan_04(ctx)
    n = max(p04.teacher_requests, 0)
    if not n:
        return Samples([], [], template, "no distillation samples planned")
    completion = p04.completion_tokens_expected
    which = "expected"
    if completion is None:
        completion, which = p04.completion_tokens_max, "maximal"
    x_mean = max(p04.prompt_tokens / n - template, 1)
    basis = f"estimated from stage 04's plan: {n} samples, its prompt tokens and {which} completion tokens"
    return Samples([round(x_mean)] * n, [round(completion / n)] * n, template, basis)


def _selected_count(params: Params, budget: float, n: int) -> int:

    return round(target_count(budget, n)) if n else 0


def _steps_samples(tp: TrainingParams, n_train: int) -> int:
    """How many examples the optimiser steps see: max_steps x batch, or epochs x the training set."""
    if tp.max_steps > 0:
        return tp.max_steps * tp.per_device_batch_size * tp.gradient_accumulation_steps
    return math.ceil(tp.epochs * n_train)


def training_tokens(tp: TrainingParams, example_tokens: list[int], seed: int) -> tuple[int, int]:
    """(examples trained on, training tokens) for one training run on these examples."""

    if not example_tokens:
        return 0, 0
    train, _ = split_train_eval(list(range(len(example_tokens))), tp.eval_fraction, seed)
    seen = _steps_samples(tp, len(train))
    mean = sum(example_tokens[i] for i in train) / len(train) if train else 0.0
    return len(train), round(seen * mean)


UNCAPPED_PROMPT_ESTIMATE = 512


def generated_tokens(ev: EvaluationParams, n_models: int) -> int:
    """Of :func:`eval_tokens`, the tokens generated (at most): extraction answers and one per classification."""
    total = 0
    for name in ev.datasets:
        n = min(ev.n_test or SENTIBENCH_TEST_SIZES.get(name, 1000), SENTIBENCH_TEST_SIZES.get(name, 10**9))
        gen = 1
        if name.startswith("absa/"):
            gen = ev.max_new_tokens_opener if name == "absa/opener" else ev.max_new_tokens
        total += n * gen * len(ev.seeds)
    return total * n_models


def eval_tokens(ev: EvaluationParams, n_models: int) -> tuple[int, str]:
    """Forward tokens of evaluating ``n_models`` models (an upper bound: prompts at their cap)."""
    total = items = 0
    # Unset cap: prompts are not cut, so no bound without the model; 4-shot SentiBench prompts measured
    # ~200-450 tokens with the SmolLM2 tokenizer, so 512 a prompt is the estimate.
    cap = ev.max_prompt_tokens or UNCAPPED_PROMPT_ESTIMATE
    for name in ev.datasets:
        n = ev.n_test or SENTIBENCH_TEST_SIZES.get(name, 1000)
        if ev.n_test is not None:
            n = min(n, SENTIBENCH_TEST_SIZES.get(name, n))
        gen = 1
        if name.startswith("absa/"):
            gen = ev.max_new_tokens_opener if name == "absa/opener" else ev.max_new_tokens
        per_seed = n * (cap + gen)
        total += per_seed * len(ev.seeds)
        items += n * len(ev.seeds)
    basis = (
        f"upper bound: {n_models} model(s) x {items} prompts ({len(ev.datasets)} datasets x "
        f"{len(ev.seeds)} seed(s)) at "
        + (
            f"evaluation.max_prompt_tokens = {cap}"
            if ev.max_prompt_tokens
            else f"an estimated {cap} tokens a prompt (evaluation.max_prompt_tokens unset)"
        )
        + ", plus the answers"
    )
    return total * n_models, basis


def plan_05(ctx: PlanContext) -> StagePlan:
    dp = ctx.params.difficulty
    s = samples(ctx, dp.scorer or ctx.params.models.student)
    cond = sum(min(x + y, dp.max_length) for x, y in zip(s.x, s.y, strict=True))
    uncond = sum(min(y, dp.max_length) for y in s.y)
    return StagePlan(
        "05_difficulty_selection",
        student_forward_tokens=cond + uncond,
        student_basis=f"scorer reads x + y, and y alone for IFD, of {s.n} samples; {s.basis}",
        details={"samples": s.n, "conditioned_tokens": cond, "unconditioned_tokens": uncond},
    )


def plan_06(ctx: PlanContext) -> StagePlan:
    p = ctx.params
    s = samples(ctx, p.models.student)
    rows: list[int] | None = None
    chosen = ctx.run_file("selection/selected.jsonl")
    if chosen is not None and s.basis.startswith("counted"):
        wanted = {r["sample_id"] for r in read_jsonl(chosen)}
        data = read_jsonl(ctx.run_file("distill/dataset.jsonl"))  # type: ignore[arg-type]
        rows = [i for i, r in enumerate(data) if r["sample_id"] in wanted]
        sel_basis = f"the run's selection ({len(rows)} samples)"
    else:
        n_sel = _selected_count(p, p.selection.budget, s.n)
        rows = list(range(n_sel))
        sel_basis = (
            f"{n_sel} selected of {s.n} (selection.budget = {p.selection.budget}), at the mean sample size"
        )
    examples = s.example_tokens(p.training.max_length, rows)
    n_train, tokens = training_tokens(p.training, examples, p.training.seed)
    return StagePlan(
        "06_student_training",
        student_training_tokens=tokens,
        student_basis=f"{sel_basis}; {n_train} train examples; {s.basis}",
        details={"train_examples": n_train, "examples_seen": _steps_samples(p.training, n_train)},
    )


def plan_07(ctx: PlanContext) -> StagePlan:
    ev = ctx.params.evaluation
    tokens, basis = eval_tokens(ev, len(ev.models))
    return StagePlan("07_evaluation", student_forward_tokens=tokens, student_basis=basis,
                     details={"models": sorted(ev.models),
                              "generated_tokens": generated_tokens(ev, len(ev.models))})  # fmt: skip


def plan_08(ctx: PlanContext) -> StagePlan:

    p = ctx.params
    gp = grid_params(p)
    s = samples(ctx, p.models.student)
    points = grid_points(p)
    train_total = 0
    per_budget: dict[str, int] = {}
    for point in points:
        if point.selector == BASE:
            continue
        n_sel = _selected_count(p, point.budget, s.n)
        _, tokens = training_tokens(
            gp.training, s.example_tokens(gp.training.max_length, list(range(n_sel))), 0
        )
        train_total += tokens
        per_budget[f"{point.budget:g}"] = tokens
    per_point, basis = eval_tokens(gp.evaluation, 1)
    return StagePlan(
        "08_data_efficiency",
        student_forward_tokens=per_point * len(points),
        student_training_tokens=train_total,
        student_basis=f"{len(points)} grid points; training at the mean sample size, {s.basis}; evaluation per point: {basis}",
        details={
            "points": len(points),
            "training_tokens_per_point_by_budget": per_budget,
            "generated_tokens": generated_tokens(gp.evaluation, 1) * len(points),
        },  # fmt: skip
    )
