"""Tables of the plan: the bill before a run (``compeffdist plan``), planned vs actual after it, and what
difficulty filtering saved.

- :func:`plan_table` / :func:`format_plan`: the plan of :func:`plan.make_plan`, one row per stage and a total.
- :func:`cost_table`: from ``manifest.json``, per stage the plan made before the run, the plan made just
  before the stage (its inputs then existed, so its prompt tokens are counted) and what the teacher
  really used (cached answers included), with seconds.
- :func:`filtering_savings`: training tokens of the subset the run's selector keeps at each budget of the
  efficiency grid vs the full pool (counted with the student's tokenizer on the run's dataset and scores).
- :func:`cost_markdown`: both tables (markdown with HTML tables), for the HTML report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import params_from_dict
from compeffdist_utils.core.io import read_json, read_jsonl
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.planning.context import TokenCounter
from compeffdist_utils.planning.student import Samples
from compeffdist_utils.teacher.budget import usage_tokens

_PLAN_COLUMNS = {
    "teacher_requests": "requests",
    "cached_requests": "cached",
    "prompt_tokens": "prompt tok",
    "completion_tokens_max": "completion tok <=",
    "completion_tokens_expected": "completion tok ~",
    "usd_max": "USD <=",
    "usd_expected": "USD ~",
    "teacher_hours": "teacher h",
    "student_forward_tokens": "student fwd tok",
    "student_training_tokens": "student train tok",
    "student_hours": "student h",
}


def plan_table(plan: dict[str, Any]) -> pd.DataFrame:
    """One row per stage plus ``total``; columns named as printed (``<=`` upper bound, ``~`` expected)."""
    rows = [{k: st[k] for k in _PLAN_COLUMNS} | {"stage": st["stage"]} for st in plan["stages"]]
    rows.append({k: plan["totals"][k] for k in _PLAN_COLUMNS} | {"stage": "total"})
    return pd.DataFrame(rows).set_index("stage").rename(columns=_PLAN_COLUMNS)


def _fmt(v: Any, col: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if col.startswith("USD"):
        return f"{v:,.2f}"
    if col.endswith(" h"):
        return f"{v:,.2f}"
    return f"{int(v):,}"


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as readable text: the table, then how each stage's numbers were obtained."""
    table = plan_table(plan)
    table = table.loc[:, [c for c in table.columns if table[c].notna().any()]]
    shown = table.apply(lambda col: [_fmt(v, col.name) for v in col])
    rates = plan["rates"]
    lines = [
        f"Plan for teacher {plan['teacher']} (no model was called). '<=': upper bound from max_new_tokens; "
        "'~': expected from answers already in the cache; 'cached': requests a run would not pay for again.",
        shown.to_string(),
        "",
        "prices (USD per 1M tokens) in/out: "
        f"{rates['price_in']}/{rates['price_out']}; throughput (tokens/s) teacher {rates['teacher_tokens_per_s']}, "
        f"student {rates['student_tokens_per_s']} (a training token counts as three forward tokens)",
        "",
    ]
    for st in plan["stages"]:
        for label, basis in (("teacher", st["teacher_basis"]), ("student", st["student_basis"])):
            if basis:
                lines.append(f"{st['stage']} [{label}]: {basis}")
    return "\n".join(lines)


def _planned(plan: dict[str, Any] | None, stage: str) -> dict[str, Any]:
    for st in (plan or {}).get("stages", []):
        if st.get("stage") == stage:
            return st
    return {}


def cost_table(run_dir: Path) -> pd.DataFrame | None:
    """Planned vs actual per stage from the run's manifest (None when the run has no plan yet)."""
    path = run_dir / "manifest.json"
    if not path.is_file():
        return None
    manifest = read_json(path)
    before = manifest.get("plan")
    if not before or "stages" not in before:
        return None
    rows = []
    for entry in manifest.get("stages", []):
        first = _planned(before, entry["name"])
        at_start = entry.get("planned") or {}
        usage = entry.get("teacher_usage") or {}
        prompt, completion = usage_tokens(usage)
        rows.append(
            {
                "stage": entry["name"],
                "status": entry["status"] + (f": {entry['stopped']}" if entry.get("stopped") else ""),
                "requests planned": at_start.get("teacher_requests", first.get("teacher_requests")),
                "requests actual": int(usage.get("requests", 0)),
                "prompt tok planned (before run)": first.get("prompt_tokens"),
                "prompt tok planned (stage start)": at_start.get("prompt_tokens"),
                "prompt tok actual": prompt,
                "completion tok <= planned": at_start.get(
                    "completion_tokens_max", first.get("completion_tokens_max")
                ),
                "completion tok actual": completion,
                "seconds planned": at_start.get("seconds", first.get("seconds")),
                "seconds actual": entry.get("seconds"),
            }
        )
    return pd.DataFrame(rows).set_index("stage") if rows else None


def filtering_savings(run_dir: Path) -> pd.DataFrame | None:
    """Per budget of the efficiency grid: training tokens (one epoch) of the subset the run's selector
    keeps vs the full pool. None until stages 04-05 have written the dataset and the scores."""

    data_file, score_file = run_dir / "distill/dataset.jsonl", run_dir / "difficulty/scores.jsonl"
    manifest = run_dir / "manifest.json"
    if not (data_file.is_file() and score_file.is_file() and manifest.is_file()):
        return None
    params = params_from_dict(read_json(manifest)["params"], source=str(manifest))
    records, scores = read_jsonl(data_file), read_jsonl(score_file)
    counter = TokenCounter(params.models.student, params)
    template = counter.chats([(("user", ""), ("assistant", ""))], add_generation_prompt=False)[0]
    s = Samples(counter.texts([r["instruction"] for r in records]), counter.texts([r["output"] for r in records]),
                template, counter.basis)  # fmt: skip
    tokens = s.example_tokens(params.training.max_length)
    by_id = {str(r["sample_id"]): t for r, t in zip(records, tokens, strict=True)}
    full = sum(tokens)
    rows = []
    for budget in params.efficiency.budgets:
        settings = params.selection.model_copy(update={"budget": budget})
        selected, _ = select_samples(records, scores, settings)
        kept = sum(by_id[str(r["sample_id"])] for r in selected)
        rows.append(
            {
                "budget": budget,
                "selector": f"{settings.method} by {settings.score}",
                "samples kept": len(selected),
                "samples in pool": len(records),
                "training tokens kept": kept,
                "training tokens full pool": full,
                "tokens saved": full - kept,
                "saved %": round(100 * (full - kept) / full, 1) if full else None,
            }
        )
    return pd.DataFrame(rows).set_index("budget")


def table_html(df: pd.DataFrame) -> str:
    """A plan table as HTML for the report; a missing planned value (no throughput given) shows '-'."""
    shown = df.map(lambda v: "-" if v is None else v)  # a plan without throughputs has no seconds
    return shown.to_html(na_rep="-", float_format=lambda v: f"{v:,.2f}", border=0)
