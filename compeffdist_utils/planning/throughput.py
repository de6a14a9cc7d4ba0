"""Hours per student stage (05-08) on one GPU, from measured throughputs: ``compeffdist plan PARAMS
--throughput FILE`` (the JSON ``benchmarks/bench_gpu.py`` writes) or ``--gpu NAME`` (:data:`GPU_PRESETS`).

Why: the plan counts the tokens each stage reads, trains on or generates; the wall time of a stage
follows from the rate of that kind of work on the device, which differs by an order of magnitude
between a prefill and a decode step. Each kind is priced at its own measured rate:

- 05: scoring forward tokens (x + y, and y alone for IFD) at the scorer's rate;
- 06: training tokens at the full fine-tuning or LoRA rate (``training.method``);
- 07/08: prompt tokens at the prefill rate, generated tokens at the generation rate (when measured;
  else that part is left out and the line says so); 08 adds its grid's training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.planning.context import PlanError


@dataclass
class Throughput:
    """Tokens per second of each kind of student work on one device, and where the figures come from."""

    source: str
    score: float  # scoring forward tokens/s (both passes)
    prefill: float  # prompt tokens/s of classification
    train_full: float  # training tokens/s, full fine-tuning
    train_lora: float  # training tokens/s, LoRA
    generate: float | None = None  # generated tokens/s (None: not measured)

    @classmethod
    def from_bench(cls, path: str | Path) -> Throughput:
        """The figures of ``benchmarks/bench_gpu.py``'s JSON summary."""
        try:
            data = json.loads(Path(path).read_text())
            r = data["results"]
            gen = r.get("generation", {}).get("tokens_per_s")
            return cls(
                source=f"{path}: measured by bench_gpu.py on {data['device']} ({data['shape']}, {data['dtype']})",
                score=float(r["scoring"]["tokens_per_s"]),
                prefill=float(r["prefill"]["tokens_per_s"]),
                train_full=float(r["train_full"]["tokens_per_s"]),
                train_lora=float(r["train_lora"]["tokens_per_s"]),
                generate=float(gen) if gen else None,
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise PlanError(
                f"--throughput {path}: not a bench_gpu.py summary ({type(err).__name__}: {err})"
            ) from None


# Issue 23's probe: one NVIDIA H200, torch 2.11+cu130, transformers 5.17, Llama-3.2-3B shape, random
# weights, bf16 forward / fp32 weights + bf16 autocast training. Scoring: 109 samples/s at batch 64 with
# 200 response tokens; the probe did not record the instruction length, ~100 tokens is assumed, so a
# sample is ~500 forward tokens (x + y, then y). Prefill: 230 prompts/s of ~206 tokens at batch 64.
# Training: 8 x 512 tokens a step. Generation was not measured.
GPU_PRESETS: dict[str, Throughput] = {
    "h200": Throughput(
        source="--gpu h200: issue 23's probe on one H200 (scoring 109 samples/s at batch 64, ~500 tokens a "
        "sample assumed; prefill 230 prompts/s x 206 tokens at batch 64; full fine-tuning 14.4k tokens/s and "
        "LoRA r=16 20.1k tokens/s at 8 x 512; generation not measured)",
        score=109 * 500,
        prefill=230 * 206,
        train_full=14_400,
        train_lora=20_100,
    )
}


def load_throughput(throughput_file: str | None, gpu: str | None) -> Throughput | None:
    """The rates named on the command line: a bench JSON, a preset, or none."""
    if throughput_file and gpu:
        raise PlanError("give --throughput FILE or --gpu NAME, not both")
    if throughput_file:
        return Throughput.from_bench(throughput_file)
    if gpu:
        if gpu.lower() not in GPU_PRESETS:
            raise PlanError(
                f"--gpu {gpu}: no preset; available: {sorted(GPU_PRESETS)} (or --throughput FILE)"
            )
        return GPU_PRESETS[gpu.lower()]
    return None


def _eval_hours(st: dict[str, Any], tp: Throughput) -> tuple[float, str]:
    gen = int(st["details"].get("generated_tokens", 0))
    prompt = max(st["student_forward_tokens"] - gen, 0)
    hours = prompt / tp.prefill / 3600
    if tp.generate:
        return hours + gen / tp.generate / 3600, f"{prompt:,} prompt + {gen:,} generated tokens"
    return hours, f"{prompt:,} prompt tokens; {gen:,} generated tokens NOT counted (generation not measured)"


def stage_hours(plan: dict[str, Any], params: Params, tp: Throughput) -> list[dict[str, Any]]:
    """One row per planned student stage: {stage, hours, what}."""
    train = tp.train_full if params.training.method == "full" else tp.train_lora
    rows = []
    for st in plan["stages"]:
        number = st["stage"][:2]
        if number == "05":
            hours, what = (
                st["student_forward_tokens"] / tp.score / 3600,
                f"{st['student_forward_tokens']:,} scoring tokens",
            )
        elif number == "06":
            hours, what = (
                st["student_training_tokens"] / train / 3600,
                f"{st['student_training_tokens']:,} training tokens",
            )
        elif number in ("07", "08"):
            hours, what = _eval_hours(st, tp)
            if number == "08":
                hours += st["student_training_tokens"] / train / 3600
                what += f"; {st['student_training_tokens']:,} training tokens"
        else:
            continue
        rows.append({"stage": st["stage"], "hours": hours, "what": what})
    return rows


def format_hours(rows: list[dict[str, Any]], tp: Throughput, method: str) -> str:
    """The hours table ``compeffdist plan`` prints below the plan."""
    lines = [
        f"Hours on one GPU ({tp.source}; training at the {method} rate). A projection: every model is priced "
        "at the measured model's rates (a 70B teacher in evaluation.models costs ~20x more per token):"
    ]
    lines += [f"  {r['stage']:<26} {r['hours']:>8.2f} h   {r['what']}" for r in rows]
    lines.append(f"  {'total 05-08':<26} {sum(r['hours'] for r in rows):>8.2f} h")
    return "\n".join(lines)
