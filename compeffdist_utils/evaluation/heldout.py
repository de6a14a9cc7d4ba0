"""Two measures that can see a small distillation effect, beside the SentiBench scores.

1. The student's loss on held-out teacher answers: ``distill_data.heldout_samples`` distillation samples
   are set apart in stage 04 (``distill/heldout.jsonl``) before any selection, so no selector, budget or
   training run ever sees them. The loss is the token-level mean NLL of the teacher's answer given its
   instruction, formatted exactly as in training (chat template, loss on the answer only). Distillation
   is meant to lower exactly this, so it moves long before a benchmark score does.
2. Agreement with the teacher's own predictions on the evaluation prompts: the share of test prompts
   (over demo seeds) on which a model gives the teacher's answer, read from the prediction files that
   stage 07 (and each grid point) writes.

Both come with bootstrap intervals from :mod:`.uncertainty` (over held-out samples / test examples).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.distillation_data.heldout_split import read_heldout
from compeffdist_utils.models.batching import Batcher, BatchSize
from compeffdist_utils.sentibench.metrics import normalise_label, normalise_tuple
from compeffdist_utils.stats.uncertainty import Stats, loss_stats, rate_stats
from compeffdist_utils.student_training.sft_data import IGNORE_INDEX, SFTCollator, tokenize_records


def teacher_answer_nll(
    model: Any, tokenizer: Any, records: Sequence[dict[str, Any]], max_length: int, batch_size: BatchSize = 8
) -> list[dict[str, Any]]:
    """Per held-out sample: {sample_id, nll_sum, n_tokens} of the teacher's answer under ``model``.

    Samples that cannot be tokenized (no answer, prompt too long) are left out; compare models on the
    returned sample ids, which do not depend on the model as long as the tokenizer is the same.
    """
    import torch  # deferred: heavy, only when a model scores answers

    items = []
    for rec in records:
        examples, _ = tokenize_records([rec], tokenizer, max_length)
        if examples:
            items.append((str(rec.get("sample_id")), examples[0]))
    device = next(model.parameters()).device
    collate = SFTCollator(tokenizer.pad_token_id)
    was_training = model.training
    model.eval()

    def nll_rows(chunk: list[int]) -> list[dict[str, Any]]:
        batch = {k: v.to(device) for k, v in collate([items[i][1] for i in chunk]).items()}
        labels = batch.pop("labels")
        logits = model(**batch, use_cache=False).logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
        mask = target != IGNORE_INDEX
        return [
            {
                "sample_id": items[i][0],
                "nll_sum": round(float((nll[row] * mask[row]).sum()), 6),
                "n_tokens": int(mask[row].sum()),
            }
            for row, i in enumerate(chunk)
        ]

    lengths = [len(ex["input_ids"]) for _, ex in items]
    order = sorted(range(len(items)), key=lambda i: -lengths[i])
    rows: dict[int, dict[str, Any]] = {}
    with torch.inference_mode():
        for chunk, got in Batcher(batch_size, model, "score").run(order, lengths, nll_rows):
            rows.update(zip(chunk, got, strict=True))
    model.train(was_training)
    return [rows[i] for i in range(len(items))]


def heldout_loss_stats(rows: Sequence[dict[str, Any]]) -> Stats:
    """Bootstrap statistics of the held-out loss (rows from :func:`teacher_answer_nll`)."""
    rows = sorted(rows, key=lambda r: r["sample_id"])
    return loss_stats(
        "heldout teacher answers",
        [r["sample_id"] for r in rows],
        [r["nll_sum"] for r in rows],
        [r["n_tokens"] for r in rows],
    )


def _answer_key(prediction: Any) -> Any:
    """A comparable form of one prediction: the label, or the set of normalised answer tuples."""
    if isinstance(prediction, list):
        return frozenset(normalise_tuple(r.values()) for r in prediction if isinstance(r, dict))
    return normalise_label(prediction)


def agreement_stats(
    name: str,
    model_runs: Sequence[Sequence[dict[str, Any]]],
    teacher_runs: Sequence[Sequence[dict[str, Any]]],
) -> Stats:
    """Agreement (in %) of a model's predictions with the teacher's, per demo seed (one run each).

    Runs are prediction-file records (``uid``, ``prediction``), model and teacher listed seed by seed;
    each pair must cover the same test examples.
    """
    if len(model_runs) != len(teacher_runs) or not model_runs:
        raise ValueError(
            f"{name}: need one teacher run per model run ({len(teacher_runs)} vs {len(model_runs)})"
        )
    uids = sorted(r["uid"] for r in model_runs[0])
    hits = []
    for mine, theirs in zip(model_runs, teacher_runs, strict=True):
        a = {r["uid"]: _answer_key(r["prediction"]) for r in mine}
        b = {r["uid"]: _answer_key(r["prediction"]) for r in theirs}
        if sorted(a) != uids or sorted(b) != uids:
            raise ValueError(f"{name}: the model and the teacher were not evaluated on the same examples")
        hits.append([a[u] == b[u] for u in uids])
    return rate_stats(name, uids, hits)


def heldout_path(out_dir: str | Path, model_name: str) -> Path:
    return Path(out_dir) / "heldout" / f"{model_name}.jsonl"


def write_heldout_loss(
    model: Any, tokenizer: Any, params: Any, run_dir: str | Path, out_dir: str | Path, model_name: str
) -> float | None:
    """Score a loaded model on the run's held-out teacher answers into ``<out_dir>/heldout/<model>.jsonl``
    (formatted as in training, ``training.max_length``); returns the mean token loss, ``None`` when the
    run sets no samples apart."""

    records = read_heldout(run_dir)
    if not records:
        return None
    rows = teacher_answer_nll(
        model, tokenizer, records, params.training.max_length, params.evaluation.batch_size
    )
    write_jsonl(heldout_path(out_dir, model_name), rows)
    n_tokens = sum(r["n_tokens"] for r in rows)
    return round(sum(r["nll_sum"] for r in rows) / n_tokens, 6) if n_tokens else None
