"""Stage 07: evaluate causal LMs on SentiBench (or its fallback) with the paper's 4-shot protocol.

- Classification: ONE forward pass per prompt, batched with left padding, reading only the last
  position's logits restricted to the first token of each " label" verbaliser; the argmax is the
  prediction, so there is never an unparsable answer. Position ids are computed from the attention
  mask, so a left-padded prompt gets the same logits as the same prompt alone.
- Extraction (ATSA/ACSA/ASQP/OpeNER): greedy generation (``max_new_tokens``, OpeNER its own limit),
  stopped early at a blank line or the next ``Sentence:``, parsed as a JSON array with a fallback to
  the outermost ``[...]``, then with the authors' repair of a cut-off array (keep it up to its last
  ``}`` and close it with ``]``); an answer that still does not parse counts as a parse failure and as
  the empty prediction (it costs recall, never crashes). Answer objects missing a field are dropped
  and counted. Every other answer tuple is scored as given: a term that is not in the sentence or a
  label outside the label set is a false positive. How this compares with the authors'
  ``parse_utils/*_json.py``, case by case, is in ``docs/AUTHORS_DIFFERENCES.md``.
- Prompts follow ``evaluation.protocol`` (default: the authors', :mod:`sentibench_protocol`) and are cut
  only when one exceeds :func:`sentibench_prompts.prompt_limit`; cut prompts are counted (``truncated_prompts``).
- Every prediction goes to ``<out_dir>/predictions/<model>/<dataset>__seed<S>.jsonl`` with the full
  prompt text the model was given (``prompt``), so errors can be inspected; scores are x100
  per (model, dataset, seed); :func:`summarise` gives means over seeds, group means and the overall
  mean (plain mean of the dataset means, as in the paper).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import EvaluationParams, Params
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.evaluation.heldout import write_heldout_loss
from compeffdist_utils.evaluation.predictions import prediction_path, settings_key, write_settings
from compeffdist_utils.models import ModelSpecError, load_causal_lm, resolve_alias
from compeffdist_utils.sentibench import (
    GROUPS,
    BenchDataset,
    Example,
    Prompt,
    TaskSpec,
    build_prompts,
    prompt_limit,
    test_subset,
)
from compeffdist_utils.sentibench.metrics import (
    macro_f1,
    normalise_label,
    normalise_tuple,
    opener_f1,
    opinion_from_spans,
    opinion_from_strings,
    tuple_f1,
)

STOP_STRINGS = ("\n\n", "\nSentence:")
RESULT_COLUMNS = ["model", "dataset", "group", "seed", "score"]


class VerbaliserError(ValueError):
    """Two labels of a dataset start with the same token, so first-token logits cannot tell them apart."""


class ModelUnavailable(RuntimeError):
    """A model listed in evaluation.models cannot be loaded in this run (reported as a counted skip)."""


# -- model calls ------------------------------------------------------------------------------------


def label_token_ids(tokenizer: Any, labels: Sequence[str], dataset: str = "") -> list[int]:
    """First token of " label" for each label; raises :class:`VerbaliserError` on a collision."""
    ids = []
    for label in labels:
        toks = tokenizer.encode(" " + label, add_special_tokens=False)
        if not toks:
            raise VerbaliserError(f"{dataset}: the label {label!r} encodes to no tokens")
        ids.append(toks[0])
    if len(set(ids)) < len(ids):
        shown = ", ".join(
            f"{lab!r} -> {tokenizer.decode([i])!r} ({i})" for lab, i in zip(labels, ids, strict=True)
        )
        raise VerbaliserError(
            f"{dataset}: labels share a first token, so first-token classification is ambiguous: {shown}"
        )
    return ids


@contextmanager
def _left_padding(tokenizer: Any) -> Iterator[None]:
    old = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = old


def _length_batches(tokenizer: Any, texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Index batches of similar token length (longest first), so little compute goes to padding."""
    lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def classify(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    token_ids: Sequence[int],
    batch_size: int = 8,
    progress: bool = False,
    desc: str = "classify",
) -> tuple[list[int], list[list[float]]]:
    """Index of the best label per prompt and the label logits, in input order."""
    import torch

    device = next(model.parameters()).device
    preds: list[int] = [0] * len(texts)
    scores: list[list[float]] = [[] for _ in texts]
    cols = torch.tensor(list(token_ids), device=device)
    with _left_padding(tokenizer), torch.inference_mode():
        for idx in tqdm(
            _length_batches(tokenizer, texts, batch_size), desc=desc, disable=not progress, leave=False
        ):
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
            position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            out = model(**enc, position_ids=position_ids, logits_to_keep=1, use_cache=False)
            logits = out.logits[:, -1, :].index_select(-1, cols).float().cpu()
            for row, i in enumerate(idx):
                preds[i] = int(logits[row].argmax())
                scores[i] = [round(float(x), 4) for x in logits[row]]
    return preds, scores


def generate(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 8,
    progress: bool = False,
    desc: str = "generate",
) -> list[str]:
    """Greedy continuations (new text only), cut at the first stop string, in input order."""
    import torch
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=model.generation_config.eos_token_id,
        stop_strings=list(STOP_STRINGS),
    )
    out_texts = [""] * len(texts)
    with _left_padding(tokenizer), torch.inference_mode():
        for idx in tqdm(
            _length_batches(tokenizer, texts, batch_size), desc=desc, disable=not progress, leave=False
        ):
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
            seqs = model.generate(**enc, generation_config=config, tokenizer=tokenizer)
            new = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, text in zip(idx, new, strict=True):
                out_texts[i] = cut_at_stop(text)
    return out_texts


def cut_at_stop(text: str) -> str:
    cut = min((text.find(s) for s in STOP_STRINGS if s in text), default=len(text))
    return text[:cut]


# -- parsing extraction answers -----------------------------------------------------------------------


_FAILED = object()  # "did not parse" (``None`` is a valid JSON value)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return _FAILED


def parse_json_array(text: str) -> tuple[list[Any], str]:
    """(items, status): status "ok" (the whole answer parsed), "fallback" (the outermost [...] parsed),
    "repaired" (an array cut off mid-way, kept up to its last ``}`` and closed with ``]``, as the
    authors' answer extraction does) or "failed" (nothing parsed; items = []). A lone JSON object is
    taken as a one-item array."""
    s = text.strip()
    start, end, last_obj = s.find("["), s.rfind("]"), s.rfind("}")
    candidates = [("ok", s)]
    if 0 <= start < end:
        candidates.append(("fallback", s[start : end + 1]))
    if 0 <= start < last_obj:
        candidates.append(("repaired", s[start : last_obj + 1] + "]"))
    status, value = next(
        ((st, v) for st, c in candidates if (v := _loads(c)) is not _FAILED), ("failed", _FAILED)
    )
    if value is _FAILED:
        return [], "failed"
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [], "failed"
    return value, status


def items_to_records(items: Sequence[Any], fields: Sequence[str]) -> tuple[list[dict[str, str]], int]:
    """Keep answer objects that have every field (values as strings, null -> "NULL"); count the rest."""
    kept, invalid = [], 0
    for it in items:
        if isinstance(it, dict) and all(f in it for f in fields):
            kept.append({f: "NULL" if it[f] is None else str(it[f]) for f in fields})
        else:
            invalid += 1
    return kept, invalid


# -- scoring -------------------------------------------------------------------------------------------


def metric_inputs(
    spec: TaskSpec, examples: Sequence[Example], predictions: Sequence[Any]
) -> tuple[list, list]:
    """(gold, pred) per example in the form the dataset's metric takes: labels, tuples or opinions.

    One place for it, so the score (:func:`score_predictions`) and its bootstrap interval
    (``uncertainty``) read answers the same way.
    """
    if spec.metric == "macro_f1":
        return [e.gold for e in examples], list(predictions)
    if spec.metric == "tuple_f1":
        gold = [[tuple(r[f] for f in spec.fields) for r in e.gold] for e in examples]
        return gold, [[tuple(r[f] for f in spec.fields) for r in recs] for recs in predictions]
    gold_ops = [
        [
            opinion_from_spans(e.sentence, s["holder"], s["target"], s["expression"], s["polarity"])
            for s in e.meta["spans"]
        ]
        for e in examples
    ]
    pred_ops = [
        [
            op
            for r in recs
            if (op := opinion_from_strings(e.sentence, *(r[f] for f in spec.fields))) is not None
        ]
        for e, recs in zip(examples, predictions, strict=True)
    ]
    return gold_ops, pred_ops


def score_predictions(spec: TaskSpec, prompts: Sequence[Prompt], predictions: Sequence[Any]) -> float:
    """The dataset's metric in [0, 1]; ``predictions`` are labels or lists of answer records."""
    gold, pred = metric_inputs(spec, [p.example for p in prompts], predictions)
    if spec.metric == "macro_f1":
        return macro_f1(gold, pred)
    if spec.metric == "tuple_f1":
        return tuple_f1(gold, pred)["f1"]
    return opener_f1(gold, pred)["f1"]


def _same_tuples(spec: TaskSpec, gold: Sequence[dict[str, str]], pred: Sequence[dict[str, str]]) -> bool:
    """Exact agreement of the normalised tuple sets (a per-answer flag for inspection; scores use the
    dataset's metric)."""

    def norm(recs: Sequence[dict[str, str]]) -> set[tuple[str, ...]]:
        return {normalise_tuple(r[f] for f in spec.fields) for r in recs}

    return norm(gold) == norm(pred)


def _base_record(p: Prompt) -> dict[str, Any]:
    rec = {"prompt_id": p.prompt_id, "uid": p.example.uid, "sentence": p.example.sentence, "prompt": p.text}
    if p.example.target is not None:
        rec["target"] = p.example.target
    return rec


def evaluate_dataset(
    model: Any,
    tokenizer: Any,
    ds: BenchDataset,
    seed: int,
    ep: EvaluationParams,
    out_dir: Path,
    model_name: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate one dataset with one demo seed; writes its predictions file and returns a result row."""
    t0 = time.time()
    spec = ds.spec
    examples = test_subset(ds, ep.n_test, ep.subset_seed)
    max_new = ep.max_new_tokens_opener if spec.metric == "opener_f1" else ep.max_new_tokens
    limit = prompt_limit(model, tokenizer, ep, max_new if spec.kind == "extraction" else 1)
    prompts = build_prompts(ds, examples, seed, ep.shots, tokenizer, limit, ep.protocol)
    texts = [p.text for p in prompts]
    desc = f"{model_name} {ds.name} s{seed}"
    records: list[dict[str, Any]] = []
    parse_failures = invalid_items = 0
    if spec.kind == "classification":
        ids = label_token_ids(tokenizer, spec.labels, ds.name)
        idx, scores = classify(model, tokenizer, texts, ids, ep.batch_size, progress, desc)
        predictions: list[Any] = [spec.labels[i] for i in idx]
        for p, pred, sc in zip(prompts, predictions, scores, strict=True):
            records.append(
                _base_record(p)
                | {
                    "gold": p.example.gold,
                    "prediction": pred,
                    "correct": normalise_label(p.example.gold) == pred,
                }
                | {"label_logits": dict(zip(spec.labels, sc, strict=True))}
                | {"demo_uids": p.demo_uids, "truncation": p.truncation}
            )
    else:
        raws = generate(model, tokenizer, texts, max_new, ep.batch_size, progress, desc)
        predictions = []
        for p, raw in zip(prompts, raws, strict=True):
            items, status = parse_json_array(raw)
            recs, n_bad = items_to_records(items, spec.fields)
            parse_failures += status == "failed"
            invalid_items += n_bad
            predictions.append(recs)
            records.append(
                _base_record(p)
                | {
                    "gold": p.example.gold,
                    "prediction": recs,
                    "correct": _same_tuples(spec, p.example.gold, recs),
                }
                | {"raw": raw, "parse_status": status}
                | {"invalid_items": n_bad, "demo_uids": p.demo_uids, "truncation": p.truncation}
            )
    score = score_predictions(spec, prompts, predictions)
    write_jsonl(prediction_path(out_dir, model_name, ds.name, seed), records)
    return {
        "model": model_name,
        "dataset": ds.name,
        "group": spec.group,
        "seed": seed,
        "score": round(100 * score, 4),
        "metric": spec.metric,
        "n_examples": len(prompts),
        "parse_failures": parse_failures,
        "invalid_items": invalid_items,
        "truncated_prompts": sum(bool(p.truncation) for p in prompts),
        "protocol": ep.protocol,
        "source": ds.source,
        "seconds": round(time.time() - t0, 2),
    }


def evaluate_model(
    model: Any,
    tokenizer: Any,
    datasets: Sequence[BenchDataset],
    ep: EvaluationParams,
    out_dir: Path,
    model_name: str,
    progress: bool = True,
) -> pd.DataFrame:
    """Every dataset x demo seed for one loaded model: a DataFrame with one row per (dataset, seed),
    columns model, dataset, group, seed, score (x100) then diagnostics (n_examples, parse_failures,
    invalid_items, truncated_prompts, source, seconds)."""
    rows = []
    jobs = [(ds, seed) for ds in datasets for seed in ep.seeds]
    for ds, seed in tqdm(jobs, desc=f"evaluate {model_name}", disable=not progress):
        rows.append(evaluate_dataset(model, tokenizer, ds, seed, ep, Path(out_dir), model_name, progress))
    return pd.DataFrame(rows)


# -- models of this run ----------------------------------------------------------------------------------


def load_eval_model(spec: str, params: Params, run_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) for an evaluation.models entry; :class:`ModelUnavailable` when this run
    cannot provide it (no trained student yet, a teacher served over HTTP, a missing folder)."""

    try:
        resolved = resolve_alias(spec, params, run_dir)
        if spec == "distilled" and not Path(resolved).exists():
            raise ModelUnavailable(f"no trained student in {resolved}: run stage 06_student_training first")
        return load_causal_lm(resolved, params)
    except ModelSpecError as err:
        raise ModelUnavailable(str(err)) from None


def evaluate_models(
    params: Params, run_dir: Path, datasets: Sequence[BenchDataset], out_dir: Path, progress: bool = True
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Evaluate every model in ``evaluation.models``, one loaded at a time. Returns the results and the
    models skipped (name -> reason), so a missing model is reported rather than crashing the stage."""

    frames, skipped = [], {}
    for name, spec in params.evaluation.models.items():
        try:
            model, tok = load_eval_model(spec, params, run_dir)
        except ModelUnavailable as err:
            skipped[name] = str(err)
            continue
        frames.append(evaluate_model(model, tok, datasets, params.evaluation, out_dir, name, progress))
        write_heldout_loss(model, tok, params, run_dir, out_dir, name)
        write_settings(out_dir, name, settings_key(params, spec, run_dir))  # lets stage 08 reuse them
        del model, tok
        gc.collect()
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    return results, skipped


# -- tables ------------------------------------------------------------------------------------------------


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Datasets x models (mean score over seeds), then one row per group mean and the overall mean.

    Group and overall means are plain means of the dataset means, as in the paper.
    """
    if results.empty:
        return pd.DataFrame(columns=["group"])
    models = list(dict.fromkeys(results["model"]))
    per = results.groupby(["dataset", "group", "model"], sort=False)["score"].mean().unstack("model")[models]
    per = per.reset_index().set_index("dataset")
    groups = [g for g in (*GROUPS, *sorted(set(per["group"]) - set(GROUPS))) if g in set(per["group"])]
    means = [per[per["group"] == g][models].mean().rename(f"mean: {g}") for g in groups]
    overall = per[models].mean().rename("overall")
    tail = pd.DataFrame([*means, overall])
    tail.insert(0, "group", [*groups, "all"])
    return pd.concat([per, tail]).round(2).rename_axis("row")
