"""SentiBench's 12 tasks: what each dataset asks, how it is scored, and its gold read from the files.

The gold is what the kit SCORES against (the authors' demo answers, rendered from the same raw
records, live in :mod:`sentibench_protocol`):

- Classification gold labels are compared case-insensitively (MINT stores "Not Intimate", P-Stance
  "AGAINST"), so every label is normalised with :func:`metrics.normalise_label`.
- ATSA: gold = set of (aspect_term, sentiment) pairs. Aspects whose target is ``NULL`` (implicit
  aspects, 209 of 859 in the test file) are skipped: they have no term to extract, and the authors'
  label sequences skip them too. A sentence left without aspects has the gold ``[]``.
- ACSA: gold = set of (aspect_category, sentiment) pairs; the 12 SemEval-2016 categories
  ``FOOD#QUALITY`` are written ``food quality``, the form ASQP uses, so the two tasks share a vocabulary.
- ASQP: gold = set of (aspect_term, aspect_category, opinion, sentiment) quads; the term may be ``NULL``.
- OpeNER: gold = list of (holder, target, sentiment_expression, sentiment_polarity); a missing holder or
  target is ``NULL``, several spans of one element are joined with `` AND ``. The character spans are
  kept (``meta["spans"]``) because the metric scores token overlap against the real positions.

``TaskSpec.instruction`` is the kit's own wording of each task (``evaluation.protocol: kit``); the
default protocol uses the authors' instruction strings instead (:mod:`sentibench_protocol`).
Every :class:`Example` keeps its source record (``raw``) so a protocol can render it its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compeffdist_utils.sentibench.metrics import normalise_label

GROUPS = ("basic", "multifaceted", "fine-grained")
FALLBACK_GROUP = "fallback"


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset is asked and scored."""

    name: str
    group: str
    kind: Literal["classification", "extraction"]
    metric: Literal["macro_f1", "tuple_f1", "opener_f1"]
    instruction: str  # the kit's wording; P-Stance: contains "{target}"
    labels: tuple[str, ...] = ()  # classification: normalised labels; verbaliser = " " + label
    fields: tuple[str, ...] = ()  # extraction: JSON keys of one answer object, in tuple order


@dataclass
class Example:
    uid: str
    sentence: str
    gold: Any  # classification: normalised label; extraction: list of {field: value}
    target: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # the record as read from the data file


@dataclass
class BenchDataset:
    spec: TaskSpec
    test: list[Example]
    demos: list[Example]
    source: Literal["sentibench", "fallback"]
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.spec.name


# -- task definitions (the kit's wording) -----------------------------------------------------------


def _choose(task: str, question: str, labels: Sequence[str]) -> str:
    return f"{task}: {question} Choose one label from [{', '.join(labels)}] and answer with the label only."


def _extract(task: str, what: str, keys: str, extra: str = "") -> str:
    return (
        f"{task}: {what} Answer with a JSON array of objects with the keys {keys}.{extra} "
        "Answer [] when there is nothing to extract."
    )


SENTIMENT_Q = "what is the overall sentiment polarity of the sentence?"
ACSA_CATEGORIES = (
    "ambience general", "drinks prices", "drinks quality", "drinks style_options", "food prices",
    "food quality", "food style_options", "location general", "restaurant general",
    "restaurant miscellaneous", "restaurant prices", "service general",
)  # fmt: skip
_CATS = ", ".join(ACSA_CATEGORIES)
_POL3 = "positive, negative or neutral"


def classification_spec(name: str, group: str, task: str, question: str, labels: Sequence[str]) -> TaskSpec:
    return TaskSpec(name, group, "classification", "macro_f1", _choose(task, question, labels), tuple(labels))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        classification_spec("sc/imdb", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        classification_spec("sc/yelp2", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        classification_spec("sc/sst2", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        classification_spec(
            "sc/twitter", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive", "neutral")
        ),
        classification_spec(
            "multifaced/irony18", "multifaceted", "Irony detection", "is the sentence ironic?",
            ("irony", "non-irony"),
        ),
        classification_spec(
            "multifaced/tweeteval", "multifaceted", "Emotion recognition",
            "which emotion does the sentence mainly express?", ("anger", "joy", "sadness", "optimism"),
        ),
        classification_spec(
            "multifaced/pstance", "multifaceted", "Stance detection",
            'what stance does the author of the sentence take towards "{target}"?', ("against", "favor"),
        ),
        classification_spec(
            "multifaced/intimacy", "multifaceted", "Intimacy estimation", "how intimate is the sentence?",
            ("not intimate", "moderately intimate", "highly intimate"),
        ),
        TaskSpec(
            "absa/atsa_rest16", "fine-grained", "extraction", "tuple_f1",
            _extract(
                "Aspect term sentiment analysis",
                f"extract every aspect term the sentence evaluates, copied exactly from the sentence, with its "
                f"sentiment polarity ({_POL3}).",
                '"aspect_term" and "sentiment"',
            ),
            fields=("aspect_term", "sentiment"),
        ),
        TaskSpec(
            "absa/acsa_rest16", "fine-grained", "extraction", "tuple_f1",
            _extract(
                "Aspect category sentiment analysis",
                f"list every aspect category the sentence discusses, chosen from [{_CATS}], with its "
                f"sentiment polarity ({_POL3}).",
                '"aspect_category" and "sentiment"',
            ),
            fields=("aspect_category", "sentiment"),
        ),
        TaskSpec(
            "absa/asqp_rest16", "fine-grained", "extraction", "tuple_f1",
            _extract(
                "Aspect sentiment quad prediction",
                "extract every (aspect term, aspect category, opinion, sentiment polarity) quad. Aspect term "
                "and opinion are copied from the sentence; the aspect term is \"NULL\" when the aspect is "
                f"implicit; the category is one of [{_CATS}]; the polarity is {_POL3}.",
                '"aspect_term", "aspect_category", "opinion" and "sentiment"',
            ),
            fields=("aspect_term", "aspect_category", "opinion", "sentiment"),
        ),
        TaskSpec(
            "absa/opener", "fine-grained", "extraction", "opener_f1",
            _extract(
                "Structured sentiment analysis",
                "extract every opinion as (holder, target, sentiment expression, sentiment polarity). Holder, "
                "target and expression are copied from the sentence; use \"NULL\" for a holder or target "
                "that is not stated; join several spans of one element with \" AND \"; the polarity is "
                "positive or negative.",
                '"holder", "target", "sentiment_expression" and "sentiment_polarity"',
            ),
            fields=("holder", "target", "sentiment_expression", "sentiment_polarity"),
        ),
    )
}  # fmt: skip


# -- gold extraction per file format ----------------------------------------------------------------


def _dedup(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for it in items:
        key = tuple(it.values())
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def _gold_label(rec: dict[str, Any]) -> Any:
    return normalise_label(rec["label"])


def _gold_atsa(rec: dict[str, Any]) -> Any:
    aspects = sorted(
        (a for a in rec["aspects"] if a["target"] not in ("NULL", None, "")),
        key=lambda a: int(a["from"] or 0),
    )
    return _dedup([{"aspect_term": a["target"], "sentiment": a["polarity"].lower()} for a in aspects])


def _gold_acsa(rec: dict[str, Any]) -> Any:
    return _dedup(
        [
            {"aspect_category": a["category"].lower().replace("#", " "), "sentiment": a["polarity"].lower()}
            for a in rec["aspects"]
        ]
    )


def _gold_asqp(rec: dict[str, Any]) -> Any:
    return _dedup(
        [
            {
                "aspect_term": q["aspect"],
                "aspect_category": q["category"],
                "opinion": q["opinion"],
                "sentiment": q["sentiment"].lower(),
            }
            for q in rec["quards"]
        ]
    )


def _join(spans: list[list[str]]) -> str:
    return " AND ".join(spans[0]) if spans[0] else "NULL"


def _gold_opener(rec: dict[str, Any]) -> Any:
    return _dedup(
        [
            {
                "holder": _join(o["Source"]),
                "target": _join(o["Target"]),
                "sentiment_expression": _join(o["Polar_expression"]),
                "sentiment_polarity": o["Polarity"].lower(),
            }
            for o in rec["opinions"]
        ]
    )


def _opener_spans(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "holder": o["Source"][1],
            "target": o["Target"][1],
            "expression": o["Polar_expression"][1],
            "polarity": o["Polarity"].lower(),
        }
        for o in rec["opinions"]
    ]


_GOLD: dict[str, Callable[[dict[str, Any]], Any]] = {
    "absa/atsa_rest16": _gold_atsa,
    "absa/acsa_rest16": _gold_acsa,
    "absa/asqp_rest16": _gold_asqp,
    "absa/opener": _gold_opener,
}


def to_example(name: str, rec: dict[str, Any], uid: str) -> Example:
    gold = _GOLD.get(name, _gold_label)(rec)
    meta = {"spans": _opener_spans(rec)} if name == "absa/opener" else {}
    return Example(uid=uid, sentence=rec["sentence"], gold=gold, target=rec.get("target"), meta=meta, raw=rec)
