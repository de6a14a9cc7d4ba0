"""SentiBench metrics: macro-F1, micro tuple-F1 and OpeNER's weighted-overlap sentiment F1.

Conventions (each one is tested in tests/sentibench/test_metrics.py):

- Labels are compared after :func:`normalise_label` (case-folded, whitespace collapsed), so MINT's
  "Not Intimate" equals the verbaliser "not intimate".
- Macro-F1 is scikit-learn's ``f1_score(average="macro", zero_division=0)`` over the labels that occur
  in the gold or the predictions: a class absent from both does not enter the mean (it has no
  defined F1); a class that is predicted but absent from the gold scores 0 and pulls the mean down.
- Tuple F1 is micro-averaged over the whole test set: per sentence the gold and the predicted tuples
  are SETS of normalised tuples (a tuple predicted twice counts once, a gold tuple listed twice counts
  once), TP = sum of set intersections, F1 = 2 TP / (#pred + #gold). No predictions and no gold at all
  is perfect agreement (1.0); otherwise an empty side gives 0.
- OpeNER uses the "sentiment F1" of SemEval-2022 Task 10 (structured sentiment analysis); see
  :func:`opener_f1` for how it is read here.
- The authors' ``parse_utils/*_json.py`` count LISTS (a repeated tuple counts again), compare exact
  strings and treat invalid answer objects differently per task; every difference, and why the kit
  differs, is in ``docs/AUTHORS_DIFFERENCES.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\S+")
NULL = "null"


def normalise_label(text: Any) -> str:
    """Case-folded text with runs of whitespace collapsed (labels and tuple fields)."""
    return _WS.sub(" ", str(text).casefold()).strip()


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Macro-F1 in [0, 1] over normalised labels (see the module docstring for absent classes)."""
    from sklearn.metrics import f1_score  # deferred: heavy, only when scoring

    if len(gold) != len(pred):
        raise ValueError(f"macro_f1: {len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        raise ValueError("macro_f1: no examples")
    g = [normalise_label(x) for x in gold]
    p = [normalise_label(x) for x in pred]
    return float(f1_score(g, p, average="macro", zero_division=0))


def normalise_tuple(values: Iterable[Any]) -> tuple[str, ...]:
    """A tuple of normalised fields; ``#`` becomes a space so ``FOOD#QUALITY`` equals ``food quality``."""
    return tuple(normalise_label(str(v).replace("#", " ")) for v in values)


def tuple_f1(
    gold: Sequence[Iterable[Sequence[Any]]], pred: Sequence[Iterable[Sequence[Any]]]
) -> dict[str, float]:
    """Micro precision/recall/F1 over per-sentence sets of normalised tuples."""
    if len(gold) != len(pred):
        raise ValueError(f"tuple_f1: {len(gold)} gold sentences but {len(pred)} predicted")
    tp = n_pred = n_gold = 0
    for g, p in zip(gold, pred, strict=True):
        gs = {normalise_tuple(t) for t in g}
        ps = {normalise_tuple(t) for t in p}
        tp += len(gs & ps)
        n_pred += len(ps)
        n_gold += len(gs)
    return _prf(tp, tp, n_pred, n_gold)


def _prf(tp_p: float, tp_r: float, n_pred: int, n_gold: int) -> dict[str, float]:
    if n_pred == 0 and n_gold == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n_pred": 0, "n_gold": 0}
    p = tp_p / n_pred if n_pred else 0.0
    r = tp_r / n_gold if n_gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "n_pred": n_pred, "n_gold": n_gold}


# -- OpeNER: SemEval-2022 Task 10 sentiment F1 -------------------------------------------------------

ABSENT = frozenset({-1})  # an element the sentence does not state (holder/target "NULL")
UNLOCATED = frozenset({-2})  # a predicted span that does not occur in the sentence


@dataclass(frozen=True)
class Opinion:
    """One opinion as token-index sets of its sentence (whitespace tokens) plus a polarity."""

    holder: frozenset[int]
    target: frozenset[int]
    expression: frozenset[int]
    polarity: str


def token_offsets(sentence: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN.finditer(sentence)]


def chars_to_tokens(sentence: str, spans: Sequence[str]) -> frozenset[int]:
    """Token indices overlapped by character spans written ``"start:end"`` (the OpeNER format)."""
    offsets = token_offsets(sentence)
    out: set[int] = set()
    for span in spans:
        a, b = (int(x) for x in span.split(":"))
        out.update(i for i, (s, e) in enumerate(offsets) if s < b and e > a)
    return frozenset(out)


def occurrences(sentence: str, phrase: str) -> list[frozenset[int]]:
    """Token-index sets of every occurrence of ``phrase`` in ``sentence``: whole-token matches (exact,
    else case-folded), else the tokens overlapping substring matches (exact, else case-folded)."""
    words = phrase.split()
    if not words:
        return []
    toks = [sentence[s:e] for s, e in token_offsets(sentence)]
    k = len(words)
    for fold in (False, True):
        w = [x.casefold() for x in words] if fold else words
        t = [x.casefold() for x in toks] if fold else toks
        found = [frozenset(range(i, i + k)) for i in range(len(t) - k + 1) if t[i : i + k] == w]
        if found:
            return found
    needle = " ".join(words)
    for flags in (0, re.IGNORECASE):
        matches = re.finditer(re.escape(needle), sentence, flags)
        found = [chars_to_tokens(sentence, [f"{m.start()}:{m.end()}"]) for m in matches]
        if found:
            return found
    return []


def _gap(a: frozenset[int], b: frozenset[int]) -> int:
    return min(abs(i - j) for i in a for j in b)


def _parts(value: Any) -> list[str] | None:
    """The " AND "-joined spans of an answer field; ``None`` when the field says NULL or is empty."""
    text = "" if value is None else str(value).strip()
    if normalise_label(text) in ("", NULL):
        return None
    return [p for p in (x.strip() for x in text.split(" AND ")) if p]


def opinion_from_strings(
    sentence: str, holder: Any, target: Any, expression: Any, polarity: Any
) -> Opinion | None:
    """A predicted opinion located in its sentence; ``None`` for the "no opinion" marker (expression
    and polarity both NULL or empty).

    A phrase can occur several times ("nice hotel ... rooms are nice"), and answers carry strings, not
    positions: the expression takes the occurrence nearest to the target, every other span the
    occurrence nearest to that expression. A stated holder/target that does not occur in the sentence
    is UNLOCATED (matches nothing); an expression that does not occur is empty (matches nothing).
    """
    pol = normalise_label(polarity if polarity is not None else "")
    fields = {"holder": _parts(holder), "target": _parts(target), "expression": _parts(expression)}
    if fields["expression"] is None and pol in ("", NULL):
        return None
    occ = {name: [occurrences(sentence, p) for p in parts or []] for name, parts in fields.items()}
    e_first = next((o for o in occ["expression"] if o), [])
    t_first = next((o for o in occ["target"] if o), [])
    anchor = min(e_first, key=lambda o: min((_gap(o, t) for t in t_first), default=0), default=None)

    def pick(name: str, optional: bool) -> frozenset[int]:
        if fields[name] is None:
            return ABSENT if optional else frozenset()
        chosen: set[int] = set()
        for options in occ[name]:
            if options:
                chosen |= options[0] if anchor is None else min(options, key=lambda o: _gap(o, anchor))
        if chosen:
            return frozenset(chosen)
        return UNLOCATED if optional else frozenset()

    return Opinion(pick("holder", True), pick("target", True), pick("expression", False), pol)


def opinion_from_spans(
    sentence: str, holder: Sequence[str], target: Sequence[str], expression: Sequence[str], polarity: str
) -> Opinion:
    """A gold opinion from its character spans; an element with no span is ABSENT."""
    h = chars_to_tokens(sentence, holder) or ABSENT
    t = chars_to_tokens(sentence, target) or ABSENT
    return Opinion(h, t, chars_to_tokens(sentence, expression), normalise_label(polarity))


def _weight(a: Opinion, b: Opinion) -> float:
    """Overlap of ``a`` with ``b`` measured on a's tokens, averaged over holder, target, expression;
    0 unless the two share a token in all three elements and have the same polarity."""
    parts = ((a.holder, b.holder), (a.target, b.target), (a.expression, b.expression))
    if a.polarity != b.polarity or any(not (x & y) for x, y in parts):
        return 0.0
    return sum(len(x & y) / len(x) for x, y in parts) / 3


def opener_f1(gold: Sequence[Iterable[Opinion]], pred: Sequence[Iterable[Opinion]]) -> dict[str, float]:
    """SemEval-2022 Task 10 "sentiment F1" (weighted tuple overlap), as read here:

    - A predicted opinion is a true positive when a gold opinion of the same sentence shares at least
      one token with it in holder, target AND expression and has the same polarity. It is credited
      with its best weight over such gold opinions, the weight being the mean over the three elements
      of |pred ∩ gold| / |pred| (the share of its predicted tokens that are right).
    - Precision = sum of the predicted opinions' weights / number of predicted opinions. Recall is the
      mirror image: each gold opinion's best weight |gold ∩ pred| / |gold| over matching predictions,
      summed, / number of gold opinions. F1 = 2PR / (P + R).
    - An absent holder or target (NULL) is a special token that matches only another absent one, so
      "no holder" predicted for "no holder" is a full match. Opinions are sets per sentence
      (duplicates count once).
    - Differences from the task's reference scorer, all deliberate: the best weight is taken only over
      gold opinions with the same polarity (the scorer takes it over any overlapping one; this matters
      only when two overlapping gold opinions disagree in polarity); a predicted holder/target that
      does not occur in the sentence matches nothing (the scorer treats it as absent); and no
      opinions at all on both sides scores 1.0 instead of 0.
    """
    if len(gold) != len(pred):
        raise ValueError(f"opener_f1: {len(gold)} gold sentences but {len(pred)} predicted")
    w_p = w_r = 0.0
    n_pred = n_gold = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(g), set(p)
        n_pred += len(ps)
        n_gold += len(gs)
        w_p += sum(max((_weight(x, y) for y in gs), default=0.0) for x in ps)
        w_r += sum(max((_weight(y, x) for x in ps), default=0.0) for y in gs)
    return _prf(w_p, w_r, n_pred, n_gold)
