"""Classification evaluation throughput: batched vs one prompt at a time, SmolLM2-135M on this CPU.

The prompts are real 4-shot SentiBench prompts (default: SST-2 and Twitter, the short-sentence sets).
Three ways of reading the label logits are timed, all on the same prompts:

- ``generate 1-by-1``: the literal approach of the authors' script, ``model.generate(max_new_tokens=1,
  output_logits=True)`` per prompt, label columns read from the first step's logits;
- ``forward 1-by-1``: the kit's :func:`evaluation.classify` with batch_size=1 (one forward pass,
  last position's logits only);
- ``forward batched``: :func:`evaluation.classify` with ``--batch-size`` (left padding, length-sorted).

Runs alternate between the modes ``--repeats`` times and the best time of each is reported (other
work on a shared machine slows runs down, never speeds them up). Prints prompts/s, the speedups
(target: batched >= 3x one at a time) and asserts that all three give identical predictions. All modes
run in ``--dtype`` (default float32; bfloat16 uses AMX matrix units where the CPU has them).

    .venv/bin/python benchmarks/bench_eval.py [--prompts 24] [--batch-size 16] [--repeats 2]
        [--datasets sc/sst2 sc/twitter] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import machine_line, peak_rss_mb

from compeffdist_utils import sentibench as sb
from compeffdist_utils.core.config import Params
from compeffdist_utils.evaluation import generation as ev
from compeffdist_utils.models import load_causal_lm

SENTIBENCH = Path(__file__).resolve().parents[2] / "shared" / "sentibench"


def generate_one_by_one(model, tok, texts, ids) -> list[int]:
    import torch

    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tok(text, return_tensors="pt")
            res = model.generate(
                **enc, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True,
                pad_token_id=tok.pad_token_id,
            )  # fmt: skip
            out.append(int(res.logits[0][0, ids].argmax()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=24, help="prompts per dataset")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--datasets", nargs="+", default=["sc/sst2", "sc/twitter"])
    ap.add_argument("--sentibench", default=str(SENTIBENCH))
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = ap.parse_args()

    import torch

    params = Params()
    model, tok = load_causal_lm("embedded:smollm2-135m-instruct", params, dtype=args.dtype, device="cpu")
    jobs = []
    for ds in sb.load_sentibench(args.sentibench, args.datasets):
        prompts = sb.build_prompts(ds, sb.test_subset(ds, args.prompts, 42), 42, 4, tok, 2048)
        jobs.append(([p.text for p in prompts], ev.label_token_ids(tok, ds.spec.labels, ds.name)))
    n = sum(len(t) for t, _ in jobs)
    n_tokens = sum(len(tok.encode(x)) for t, _ in jobs for x in t)

    modes = {
        "generate 1-by-1": lambda t, i: generate_one_by_one(model, tok, t, i),
        "forward 1-by-1": lambda t, i: ev.classify(model, tok, t, i, batch_size=1)[0],
        "forward batched": lambda t, i: ev.classify(model, tok, t, i, batch_size=args.batch_size)[0],
    }
    best = dict.fromkeys(modes, float("inf"))
    preds: dict[str, list[int]] = {}
    ev.classify(model, tok, jobs[0][0][:2], jobs[0][1], batch_size=2)  # warm-up
    for _ in range(args.repeats):
        for name, fn in modes.items():
            t0 = time.perf_counter()
            preds[name] = [p for texts, ids in jobs for p in fn(texts, ids)]
            best[name] = min(best[name], time.perf_counter() - t0)

    print(
        f"machine: {machine_line()}; torch threads {torch.get_num_threads()}; load average {os.getloadavg()}"
    )
    print(f"{n} prompts ({', '.join(args.datasets)}), 4-shot, {n_tokens / n:.0f} tokens/prompt on average")
    print(f"batch size {args.batch_size}, {args.dtype}, best of {args.repeats} alternating runs")
    for name, secs in best.items():
        print(f"  {name:16s} {n / secs:7.2f} prompts/s  ({secs:6.1f} s)")
    base = best["forward batched"]
    print(f"speedup batched vs forward 1-by-1:  {best['forward 1-by-1'] / base:.2f}x")
    print(f"speedup batched vs generate 1-by-1: {best['generate 1-by-1'] / base:.2f}x  (target >= 3x)")
    same = preds["forward batched"] == preds["forward 1-by-1"] == preds["generate 1-by-1"]
    print(f"identical predictions in all three modes: {same}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    assert same, "batched and one-at-a-time predictions differ"


if __name__ == "__main__":
    main()
