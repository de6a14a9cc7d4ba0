"""Stage 07's scores: gold and predicted answers in the form each dataset's metric takes, and the metric.

Scores are in [0, 1] here (the result rows show them x100). One place for reading answers, so a score
and its bootstrap interval (:mod:`.significance`) read them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.sentibench import Example, Prompt, TaskSpec
from compeffdist_utils.sentibench.metrics import (
    macro_f1,
    normalise_tuple,
    opener_f1,
    opinion_from_spans,
    opinion_from_strings,
    tuple_f1,
)


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


def same_tuples(spec: TaskSpec, gold: Sequence[dict[str, str]], pred: Sequence[dict[str, str]]) -> bool:
    """Exact agreement of the normalised tuple sets (a per-answer flag for inspection; scores use the
    dataset's metric)."""

    def norm(recs: Sequence[dict[str, str]]) -> set[tuple[str, ...]]:
        return {normalise_tuple(r[f] for f in spec.fields) for r in recs}

    return norm(gold) == norm(pred)
