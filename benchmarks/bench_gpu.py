"""The kit's own GPU benchmark: stages 05-07's hot paths through the kit's functions, at a named shape.

Measures, each in its own section (warm-up first, CUDA synchronised, peak memory reset):
- scoring: ``score_dataset`` (the kit's stage 05 scorer, both passes: rank/PPL and IFD's PPL(y)) against
  the authors' literal batch-1 loop (``difficulty_selection/reference.py``) on the first
  ``--ref-samples`` of the same samples: speedup and the largest |rank score difference|;
- prefill: ``evaluation.generation.classify`` (one forward per prompt, first-token label logits);
- generation: ``evaluation.generation.generate`` (greedy, ``--new-tokens``);
- training: optimiser steps of the transformers Trainer built with the kit's ``training_arguments`` and
  ``wrap_model`` (full fine-tuning and LoRA), ``--train-batch`` x ``--train-length`` tokens a step.

The default shape is Llama-3.2-3B's (random weights from a config: timing only, no download); ``--model
PATH`` loads a real folder instead. Texts are made of a synthetic word-level tokenizer's words, so
token counts are exact. FLOPs: a forward pass costs 2 x (matmul parameters) per token plus attention
(4 x layers x attended context x heads x head size per token; the attended context is half the
length in a causal prefill), a training step 3x the forward (LoRA: 2x, no weight
gradients for the frozen base), and the LM head only where logits are computed. Achieved TFLOP/s are
compared with the device's bf16 dense peak from :data:`PEAK_TFLOPS` (or ``--peak-tflops``).

    python benchmarks/bench_gpu.py --out benchmarks/bench_gpu.json          # on a GPU, ~5 min on an H200
    python benchmarks/bench_gpu.py --tiny --out /tmp/bench_gpu_tiny.json     # CPU smoke, < 2 min

``compeffdist plan PARAMS --throughput FILE`` turns the JSON into hours per stage.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import machine_line, peak_rss_mb  # noqa: E402

from compeffdist_utils.core.config import DifficultyParams, params_from_dict  # noqa: E402
from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset  # noqa: E402
from compeffdist_utils.difficulty_selection.reference import (  # noqa: E402
    reference_rank_score,
    reference_token_scores,
)
from compeffdist_utils.evaluation.generation import classify, generate, label_token_ids  # noqa: E402
from compeffdist_utils.models.batching import batch_reports  # noqa: E402
from compeffdist_utils.student_training.sft_data import SFTCollator  # noqa: E402
from compeffdist_utils.student_training.trainer_setup import training_arguments, wrap_model  # noqa: E402

# bf16 dense tensor-core peaks (TFLOP/s) from the vendors' spec sheets (the sparsity figures halved);
# matched by substring of torch.cuda.get_device_name, most specific first.
PEAK_TFLOPS = {"H200 NVL": 835.0, "H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
               "L40S": 362.0, "L4": 121.0, "A10": 125.0}  # fmt: skip
SHAPES = {
    "llama-3.2-3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                         num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=4096, tie_word_embeddings=True),
}  # fmt: skip
FULL = dict(samples=512, ref_samples=32, response=200, instruction=100, prompts=1000, prompt_len=206,
            gen_prompts=64, new_tokens=64, train_batch=8, train_length=512, train_steps=10)  # fmt: skip
TINY = dict(samples=16, ref_samples=4, response=24, instruction=16, prompts=32, prompt_len=40,
            gen_prompts=8, new_tokens=8, train_batch=2, train_length=64, train_steps=3)  # fmt: skip
LABELS = ["positive", "negative", "neutral"]


def synthetic_tokenizer(vocab: int) -> Any:
    """A word-level tokenizer (words ``w0``..), with BOS/EOS/pad and a chat template: exact token counts."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # "abcdef", "\\n", "\\nSentence:": what transformers' stop-string matcher needs; LABELS: the verbalisers
    words = ["<pad>", "<s>", "</s>", "<unk>", "abcdef", "\n", "\nSentence:", *LABELS]
    words += [f"w{i}" for i in range(vocab - len(words))]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", padding_side="left")  # fmt: skip
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tok


def words(rng: random.Random, n: int, vocab: int) -> str:
    return " ".join(f"w{rng.randrange(vocab - 10)}" for _ in range(n))


def build(args: argparse.Namespace, device: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, shape name): a real folder, or random weights at a named shape."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    dtype = getattr(torch, args.dtype)
    if args.model:
        tok = AutoTokenizer.from_pretrained(args.model, padding_side="left")
        tok.pad_token = tok.pad_token or tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device)
        return model.eval(), tok, Path(args.model).name
    shape = SHAPES[args.shape]
    tok = synthetic_tokenizer(min(shape["vocab_size"], 32000))
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**shape, max_position_embeddings=8192))
    return model.to(dtype).eval(), tok, f"{args.shape} (random weights)"


def matmul_params(model: Any) -> tuple[int, int]:
    """(parameters in the decoder's matmuls, in the LM head): embeddings are lookups, norms negligible."""
    cfg = model.config
    head = cfg.hidden_size * cfg.vocab_size
    body = sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.dim() == 2 and "embed" not in n and "lm_head" not in n
    )
    return body, head


def flops(model: Any, tokens: int, ctx: float, head_rows: int, mult: float = 1.0) -> float:
    """FLOPs of ``tokens`` forward tokens at mean context ``ctx`` with ``head_rows`` LM-head rows, times ``mult``."""
    body, head = matmul_params(model)
    cfg = model.config
    # QK^T and AV: 2 x 2 FLOPs per attended position and attention dimension, per layer
    attn = (
        4
        * cfg.num_hidden_layers
        * ctx
        * cfg.num_attention_heads
        * (cfg.hidden_size // cfg.num_attention_heads)
    )
    return mult * (tokens * (2 * body + attn) + 2 * head * head_rows)


def timed(device: str, fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(result, seconds, peak GPU memory in GB or None on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None
    return out, seconds, peak


def figures(
    n: int, tokens: int, seconds: float, work: float, peak: float | None, mem: float | None
) -> dict[str, Any]:
    tflops = work / seconds / 1e12
    return {
        "seconds": round(seconds, 3), "samples_per_s": round(n / seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
        "tflops": round(tflops, 6), "peak_share": round(tflops / peak, 4) if peak else None,
        "gpu_peak_memory_gb": round(mem, 2) if mem is not None else None,
    }  # fmt: skip


def bench_scoring(
    model: Any, tok: Any, c: dict, args: argparse.Namespace, device: str, peak: float | None
) -> dict:
    rng = random.Random(1)
    vocab = len(tok)
    recs = [{"sample_id": f"s{i}", "instruction": words(rng, c["instruction"] + rng.randrange(c["instruction"]), vocab),
             "output": words(rng, c["response"], vocab)} for i in range(c["samples"])]  # fmt: skip
    settings = DifficultyParams(batch_size=args.score_batch, max_length=4096)
    score_dataset(recs[:2], model, tok, settings, None, progress=False)  # warm-up
    scores, secs, mem = timed(device, lambda: score_dataset(recs, model, tok, settings, None, progress=False))
    n_x = sum(len(tok(r["instruction"])["input_ids"]) for r in recs)
    n_y = c["response"] * len(recs)
    work = flops(model, n_x + n_y, (n_x + n_y) / len(recs) / 2, n_y + len(recs)) + flops(
        model, n_y, c["response"] / 2, n_y
    )
    out = figures(len(recs), n_x + 2 * n_y, secs, work, peak, mem)
    ref = recs[: c["ref_samples"]]

    def reference_loop() -> list[float]:
        return [
            reference_rank_score(reference_token_scores(model, tok, r["instruction"], r["output"]))
            for r in ref
        ]

    ref_ranks, ref_secs, _ = timed(device, reference_loop)
    diff = max(abs(a - s["rank"]) for a, s in zip(ref_ranks, scores, strict=False))
    out |= {"reference_samples_per_s": round(len(ref) / ref_secs, 3), "max_rank_difference": diff,
            "speedup": round(out["samples_per_s"] / (len(ref) / ref_secs), 1), "batch": _batch("score")}  # fmt: skip
    return out


def _batch(job: str) -> str | None:
    lines = [r["line"] for k, r in batch_reports().items() if k.split()[0] == job]
    return lines[-1] if lines else None


def prompts(tok: Any, n: int, mean: int) -> list[str]:
    rng = random.Random(2)
    return [words(rng, max(8, int(rng.gauss(mean, mean * 0.2))), len(tok)) for _ in range(n)]


def bench_prefill(
    model: Any, tok: Any, c: dict, args: argparse.Namespace, device: str, peak: float | None
) -> dict:
    texts = prompts(tok, c["prompts"], c["prompt_len"])
    ids = label_token_ids(tok, LABELS[:2])
    classify(model, tok, texts[:2], ids, batch_size=2)  # warm-up
    _, secs, mem = timed(device, lambda: classify(model, tok, texts, ids, batch_size=args.eval_batch))
    n_tok = sum(len(tok(t)["input_ids"]) for t in texts)
    work = flops(model, n_tok, n_tok / len(texts) / 2, len(texts))
    return figures(len(texts), n_tok, secs, work, peak, mem) | {"batch": _batch("prefill")}


def bench_generation(
    model: Any, tok: Any, c: dict, args: argparse.Namespace, device: str, peak: float | None
) -> dict:
    texts = prompts(tok, c["gen_prompts"], c["prompt_len"])
    generate(model, tok, texts[:2], 2, batch_size=2)  # warm-up
    outs, secs, mem = timed(
        device, lambda: generate(model, tok, texts, c["new_tokens"], batch_size=args.eval_batch)
    )
    new = sum(len(tok(o, add_special_tokens=False)["input_ids"]) for o in outs)
    n_prompt = sum(len(tok(t)["input_ids"]) for t in texts)
    work = flops(model, n_prompt, n_prompt / len(texts) / 2, len(texts)) + flops(
        model, new, n_prompt / len(texts), new
    )
    return figures(len(texts), new, secs, work, peak, mem) | {"new_tokens": new, "batch": _batch("generate")}


def bench_training(model: Any, c: dict, method: str, device: str, peak: float | None) -> dict:
    """Optimiser steps of the Trainer the kit builds (its TrainingArguments and LoRA/full wrapping)."""
    from transformers import Trainer, TrainerCallback

    bf16 = device.startswith("cuda")
    params = params_from_dict({"training": {"method": method, "lora_r": 16, "bf16": bf16, "save_steps": 10**6,
                                            "max_steps": c["train_steps"] + 2, "per_device_batch_size": c["train_batch"],
                                            "logging_steps": 10**6, "eval_fraction": 0.0}})  # fmt: skip
    rng = random.Random(3)
    n = c["train_batch"] * (c["train_steps"] + 2)
    data = [{"input_ids": ids, "labels": ids} for ids in
            ([rng.randrange(10, len_vocab(model)) for _ in range(c["train_length"])] for _ in range(n))]  # fmt: skip
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    wrapped = wrap_model(model, params)
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(params.training, Path(tmp), False, device)
        trainer = Trainer(
            model=wrapped, args=args, data_collator=SFTCollator(0), train_dataset=data, callbacks=[Clock()]
        )
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    secs = (marks[-1] - marks[1]) / (len(marks) - 2)  # two warm-up steps left out
    tokens = c["train_batch"] * c["train_length"]
    work = flops(model, tokens, c["train_length"] / 2, tokens, 3.0 if method == "full" else 2.0)
    mem = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None
    out = figures(c["train_batch"], tokens, secs, work, peak, mem)
    return out | {"seconds_per_step": round(secs, 4), "tokens_per_step": tokens, "bf16_autocast": bf16}


def len_vocab(model: Any) -> int:
    return min(model.config.vocab_size, 32000)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a real model folder (default: random weights at --shape)")
    ap.add_argument("--shape", default="llama-3.2-3b", choices=sorted(SHAPES))
    ap.add_argument("--tiny", action="store_true", help="tiny shape and counts on CPU (< 2 min)")
    ap.add_argument("--dtype", default=None, help="default bfloat16 on CUDA, float32 on CPU")
    ap.add_argument("--score-batch", default="16", help="difficulty.batch_size: a number or auto")
    ap.add_argument("--eval-batch", default="16", help="evaluation.batch_size: a number or auto")
    ap.add_argument("--peak-tflops", type=float, help="the device's peak (default: PEAK_TFLOPS by name)")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["scoring", "prefill", "generation", "train_full", "train_lora"],
    )
    ap.add_argument("--out", default="bench_gpu.json", help="the JSON summary")
    args = ap.parse_args(argv)
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    args.shape = "tiny" if args.tiny else args.shape
    args.dtype = args.dtype or ("bfloat16" if device == "cuda" else "float32")
    args.score_batch = args.score_batch if args.score_batch == "auto" else int(args.score_batch)
    args.eval_batch = args.eval_batch if args.eval_batch == "auto" else int(args.eval_batch)
    c = TINY if args.tiny else FULL
    name = torch.cuda.get_device_name(0) if device == "cuda" else machine_line()
    peak = args.peak_tflops or next(
        (v for k, v in PEAK_TFLOPS.items() if device == "cuda" and k in name), None
    )
    model, tok, shape = build(args, device)
    results: dict[str, Any] = {}
    sections = {"scoring": lambda: bench_scoring(model, tok, c, args, device, peak),
                "prefill": lambda: bench_prefill(model, tok, c, args, device, peak),
                "generation": lambda: bench_generation(model, tok, c, args, device, peak)}  # fmt: skip
    for key, fn in sections.items():
        if key not in args.skip:
            results[key] = fn()
            print(f"{key}: {results[key]}", flush=True)
    for method in ("full", "lora"):
        if f"train_{method}" not in args.skip:
            fresh, _, _ = build(args, device)
            fresh = fresh.float() if method == "full" else fresh  # full: fp32 weights, bf16 autocast
            results[f"train_{method}"] = bench_training(fresh.train(), c, method, device, peak)
            print(f"train_{method}: {results[f'train_{method}']}", flush=True)
            del fresh
    summary = {
        "device": name, "machine": machine_line(), "shape": shape, "dtype": args.dtype, "peak_tflops": peak,
        "peak_source": "--peak-tflops" if args.peak_tflops else "PEAK_TFLOPS (bf16 dense, spec sheet)" if peak else None,
        "versions": {"torch": torch.__version__, "transformers": _version("transformers"), "python": platform.python_version()},
        "settings": {k: v for k, v in c.items()} | {"score_batch": args.score_batch, "eval_batch": args.eval_batch},
        "peak_rss_mb": round(peak_rss_mb(), 1), "results": results,
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print_table(summary)
    return summary


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def print_table(summary: dict[str, Any]) -> None:
    print(
        f"\n{summary['device']} · {summary['shape']} · {summary['dtype']} · peak {summary['peak_tflops']} TFLOP/s"
    )
    print(f"{'section':<12} {'samples/s':>10} {'tokens/s':>11} {'TFLOP/s':>9} {'of peak':>8} {'GPU GB':>7}")
    for key, r in summary["results"].items():
        share = f"{100 * r['peak_share']:.1f}%" if r["peak_share"] is not None else "-"
        mem = f"{r['gpu_peak_memory_gb']:.1f}" if r["gpu_peak_memory_gb"] is not None else "-"
        print(
            f"{key:<12} {r['samples_per_s']:>10.2f} {r['tokens_per_s']:>11.0f} {r['tflops']:>9.3g} {share:>8} {mem:>7}"
        )
    if "scoring" in summary["results"]:
        s = summary["results"]["scoring"]
        print(
            f"scoring vs the authors' batch-1 loop: {s['speedup']}x, max |rank difference| {s['max_rank_difference']:.2e}"
        )


if __name__ == "__main__":
    main()
