"""The model card (``README.md``) of the exported student: YAML metadata, the SentiBench scores with their
95% bootstrap intervals (stage 07's tables, the base student beside it), the recipe that made it (teacher,
data, selection, training) and its provenance, and how to use or upload it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import yaml

from compeffdist_utils.export.model import ModelExport
from compeffdist_utils.export.provenance import EMBEDDED_MODELS, Provenance, model_note, provenance_lines
from compeffdist_utils.export.run_files import ExportError, RunFolder


def distilled_name(run: RunFolder) -> str:
    """The name stage 07 evaluated this run's trained student under (the model whose spec is ``distilled``)."""
    names = [n for n, spec in run.params.evaluation.models.items() if spec == "distilled"]
    if not names:
        raise ExportError(
            "evaluation.models names no 'distilled' model, so stage 07 did not score the trained student; "
            "add `distilled_student: distilled` to evaluation.models and rerun stage 07"
        )
    return names[0]


def reference_name(run: RunFolder) -> str | None:
    return next((n for n, spec in run.params.evaluation.models.items() if spec == "student"), None)


def _ci(row: pd.Series, value: str = "score") -> str:
    return f"{row[value]:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"


def scores_table(run: RunFolder) -> list[str]:
    """Markdown: per dataset (and overall), the student's score with its CI, the base's, and the difference."""
    scores = pd.read_csv(run.need("tables/07_evaluation_scores_ci.csv"))
    me, base = distilled_name(run), reference_name(run)
    mine = scores[scores["model"] == me].set_index("dataset")
    if mine.empty:
        raise ExportError(f"tables/07_evaluation_scores_ci.csv has no scores of {me!r}; rerun stage 07")
    theirs = scores[scores["model"] == base].set_index("dataset") if base else pd.DataFrame()
    diffs = pd.DataFrame()
    if base and run.has("tables/07_evaluation_differences_ci.csv"):
        d = pd.read_csv(run.need("tables/07_evaluation_differences_ci.csv"))
        diffs = d[(d["model"] == me) & (d["versus"] == base)].set_index("measure")
    head = f"| dataset | n | this model ({me}) | base student ({base}) | difference | significant |"
    lines = [head, "|---|---|---|---|---|---|"]
    for dataset, row in mine.iterrows():
        other = _ci(theirs.loc[dataset]) if dataset in theirs.index else "-"
        diff = _ci(diffs.loc[dataset], "difference") if dataset in diffs.index else "-"
        sig = ("yes" if bool(diffs.loc[dataset, "significant"]) else "no") if dataset in diffs.index else "-"
        lines.append(f"| {dataset} | {int(row['n'])} | {_ci(row)} | {other} | {diff} | {sig} |")
    return lines


def benchmark_line(run: RunFolder) -> str:
    entry = run.stage_entry("07_evaluation") or {}
    notes = entry.get("notes") or {}
    ev = run.params.evaluation
    subset = (
        f"a seeded subset of {ev.n_test} test examples per dataset" if ev.n_test else "the full test sets"
    )
    if notes.get("fallback"):
        return (
            "**Not SentiBench**: SentiBench was not found, so stage 07 scored the packaged corpora's held-out "
            f"labelled texts with the same protocol ({subset}); these numbers are not comparable with the paper's."
        )
    return (
        f"SentiBench, `{ev.protocol}` protocol, {ev.shots}-shot, demo seeds {list(ev.seeds)}, on {subset}; "
        "scores in points (0-100), 95% bootstrap intervals over test examples, differences paired."
    )


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "none"


def recipe_lines(run: RunFolder, made: ModelExport) -> list[str]:
    params, t = run.params, made.training
    sel, tp = params.selection, params.training
    method = (
        f"LoRA r={tp.lora_r}, alpha={tp.lora_alpha}, dropout={tp.lora_dropout} on {', '.join(tp.target_modules)}"
        f", merged into the base"
        if tp.method == "lora"
        else "full fine-tuning"
    )
    return [
        f"- {model_note(made.base, 'Base model')}",
        f"- {made.kind}; {made.n_params / 1e6:.1f} M parameters, saved as {made.dtype}",
        f"- {model_note(params.models.teacher.model, 'Teacher')}",
        *(
            [f"- {model_note(params.models.writer.model, 'Writer of attributes and instructions')}"]
            if params.models.writer
            else []
        ),
        f"- Data: stage 05's selection, {sel.method} selection by `{sel.score}` at budget {sel.budget:g} "
        f"(stratified `{sel.stratify}`, seed {sel.seed}): {t.get('n_records')} samples, "
        f"{t.get('n_train')} trained on, {t.get('n_eval')} held out for the eval loss",
        f"- Training: {method}; lr {tp.learning_rate:g} ({tp.lr_scheduler}, warmup {tp.warmup_ratio:g}), "
        f"{tp.epochs:g} epoch(s), max_steps {tp.max_steps}, batch {tp.per_device_batch_size} x "
        f"{tp.gradient_accumulation_steps} accumulation x {t.get('num_processes', 1)} process(es), "
        f"max_length {tp.max_length}, seed {tp.seed}; loss on the teacher's answer only (chat template)",
        f"- Ran {t.get('global_step')} steps ({t.get('epochs_done')} epochs, {t.get('train_tokens')} training "
        f"tokens); final train loss {_num(t.get('final_train_loss'))}, eval loss {_num(t.get('final_eval_loss'))}",
    ]


def card_metadata(run: RunFolder, made: ModelExport) -> dict[str, Any]:
    base = run.params.models.student
    hub_id, licence = EMBEDDED_MODELS[base][:2] if base in EMBEDDED_MODELS else (None, "other")
    if hub_id is None and "/" in base and not base.startswith(("/", ".", "~")):
        hub_id = base  # a hub id such as meta-llama/Llama-3.2-3B-Instruct
    meta: dict[str, Any] = {"library_name": "transformers", "license": licence, "language": ["en"]}
    if hub_id:
        meta["base_model"] = hub_id
    meta |= {"pipeline_tag": "text-generation", "tags": ["sentiment-analysis", "distillation", "compeffdist"]}
    return meta


def model_card(run: RunFolder, made: ModelExport, prov: Provenance) -> str:
    """The whole ``README.md`` of the model folder."""
    header = yaml.safe_dump(card_metadata(run, made), sort_keys=False, allow_unicode=True)
    body = [
        f"# CompEffDist distilled student: `{prov.run_name}`",
        "",
        f"`{made.base}` fine-tuned on sentiment-analysis instructions written and answered by the teacher "
        f"`{prov.teacher}`, selected by difficulty (CompEffDist, Xie et al., EMNLP 2025, arXiv 2510.24425), "
        "made with the CompEffDist study kit. A standalone transformers folder: no adapter, no kit needed.",
        "",
        "## SentiBench scores",
        benchmark_line(run),
        "",
        *scores_table(run),
        "",
        "A run on the kit's embedded default (a 135M teacher, a handful of test examples) is a smoke test: "
        "its intervals are wide and its differences mean little.",
        "",
        "## Recipe",
        *recipe_lines(run, made),
        "",
        "## Provenance",
        *provenance_lines(prov),
        "",
        "## Use",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'model = AutoModelForCausalLM.from_pretrained("path/to/model")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/model")',
        'chat = [{"role": "user", "content": "Classify the sentiment as positive or negative.\\n\\nInput: '
        'A warm, funny film."}]',
        'inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", '
        "return_dict=True)",
        'answer = model.generate(**inputs, max_new_tokens=32)[0][inputs["input_ids"].shape[1] :]',
        "print(tokenizer.decode(answer, skip_special_tokens=True))",
        "```",
        "Nothing was uploaded by the kit. To share it on the Hugging Face Hub (after checking the licence "
        "notes above):",
        "```bash",
        "hf auth login",
        "hf upload YOUR_NAME/compeffdist-student path/to/model .",
        "```",
        "(`huggingface-cli upload YOUR_NAME/compeffdist-student path/to/model .` with older versions of "
        "`huggingface_hub`.)",
        "",
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)
