"""SentiBench (the paper's 12 evaluation datasets) and the in-context prompts the method evaluates with.

What this module decides, read from the data files (``../shared/sentibench``, the ``datasets/``
folder of HITSZ-HLT/Sentiment-Distillation):

- Classification gold labels are compared case-insensitively (MINT stores "Not Intimate", P-Stance
  "AGAINST"), so every label is normalised with :func:`metrics.normalise_label`.
- ATSA: gold = set of (aspect_term, sentiment) pairs. Aspects whose target is ``NULL`` (implicit
  aspects, 209 of 859 in the test file) are skipped: they have no term to extract, and the authors'
  scripts drop them too. A sentence left without aspects has the gold ``[]``.
- ACSA: gold = set of (aspect_category, sentiment) pairs; the 12 SemEval-2016 categories
  ``FOOD#QUALITY`` are written ``food quality``, the form ASQP uses, so the two tasks share a vocabulary.
- ASQP: gold = set of (aspect_term, aspect_category, opinion, sentiment) quads; the term may be ``NULL``.
- OpeNER: gold = list of (holder, target, sentiment_expression, sentiment_polarity); a missing holder or
  target is ``NULL``, several spans of one element are joined with `` AND ``. The character spans are
  kept (``meta["spans"]``) because the metric scores token overlap against the real positions.

Prompts follow the method page (stage 8): the task instruction, a blank line, ``shots`` demo blocks
``Sentence: ...`` / ``Label: ...`` separated by blank lines, then ``Sentence: <test>`` and ``Label:``.
No chat template. Demos are drawn per test example from ``train.json`` with a generator seeded by
(dataset, seed, example id), so a prompt does not depend on which other examples are evaluated.
P-Stance names the test example's target in the instruction and draws its demos from training
examples with the same target, so the instruction is true of every demo block. Extraction demos show
their gold as compact one-line JSON (fewer tokens than indented JSON, and one line per answer) after
the same ``Label:`` cue the method page prescribes for every task (the authors' JSON script wrote
``Output:``). A sentence without opinions/aspects has the answer ``[]`` in every extraction task.
The instructions are the kit's own wording of the same task definitions and label sets.

Without SentiBench (``evaluation.sentibench_dir`` unset) :func:`load_for_run` builds the flagged
fallback from stage 00's labelled holdout; a set but wrong folder is an error, never a silent fallback.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import SENTIBENCH_DATASETS
from .io import DataFileError, read_jsonl
from .metrics import normalise_label

SENTIBENCH_REPO = "https://github.com/HITSZ-HLT/Sentiment-Distillation"
GROUPS = ("basic", "multifaceted", "fine-grained")
FALLBACK_GROUP = "fallback"
MIN_DEMO_TOKENS = 32  # below this a shortened demo stops showing the task; drop it instead


class SentiBenchError(FileNotFoundError):
    """SentiBench is missing, incomplete or could not be fetched; the message names the folder."""


@dataclass(frozen=True)
class TaskSpec:
    """How one dataset is asked and scored."""

    name: str
    group: str
    kind: Literal["classification", "extraction"]
    metric: Literal["macro_f1", "tuple_f1", "opener_f1"]
    instruction: str  # P-Stance: contains "{target}"
    labels: tuple[str, ...] = ()  # classification: normalised labels; verbaliser = " " + label
    fields: tuple[str, ...] = ()  # extraction: JSON keys of one answer object, in tuple order


@dataclass
class Example:
    uid: str
    sentence: str
    gold: Any  # classification: normalised label; extraction: list of {field: value}
    target: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class Prompt:
    prompt_id: str
    dataset: str
    seed: int
    example: Example
    demo_uids: list[str]
    text: str
    truncation: dict[str, Any] = field(default_factory=dict)  # empty when nothing was cut


# -- task definitions -------------------------------------------------------------------------------


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


def _classification(name: str, group: str, task: str, question: str, labels: Sequence[str]) -> TaskSpec:
    return TaskSpec(name, group, "classification", "macro_f1", _choose(task, question, labels), tuple(labels))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _classification("sc/imdb", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        _classification("sc/yelp2", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        _classification("sc/sst2", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive")),
        _classification(
            "sc/twitter", "basic", "Sentiment analysis", SENTIMENT_Q, ("negative", "positive", "neutral")
        ),
        _classification(
            "multifaced/irony18", "multifaceted", "Irony detection", "is the sentence ironic?",
            ("irony", "non-irony"),
        ),
        _classification(
            "multifaced/tweeteval", "multifaceted", "Emotion recognition",
            "which emotion does the sentence mainly express?", ("anger", "joy", "sadness", "optimism"),
        ),
        _classification(
            "multifaced/pstance", "multifaceted", "Stance detection",
            'what stance does the author of the sentence take towards "{target}"?', ("against", "favor"),
        ),
        _classification(
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


def _to_example(name: str, rec: dict[str, Any], uid: str) -> Example:
    gold = _GOLD.get(name, _gold_label)(rec)
    meta = {"spans": _opener_spans(rec)} if name == "absa/opener" else {}
    return Example(uid=uid, sentence=rec["sentence"], gold=gold, target=rec.get("target"), meta=meta)


# -- loading --------------------------------------------------------------------------------------------


def resolve_sentibench_dir(path: str | Path, root: Path | None = None) -> Path:
    """The ``datasets/`` folder: accepts it directly or a clone of the repository that contains it.

    Relative paths are taken from ``root`` (the project root; notebooks run from ``notebooks/``).
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and root is not None:
        p = root / p
    if (p / "datasets" / "sc").is_dir():
        p = p / "datasets"
    return Path(os.path.abspath(p))  # normalises "..", keeps symlinks as the user named them


def _how_to_get(folder: Path) -> str:
    return (
        f"get SentiBench with `compeffdist fetch-sentibench` (a git clone of {SENTIBENCH_REPO}) and set "
        f"evaluation.sentibench_dir to its datasets/ folder, or unset it for the fallback; looked in {folder}"
    )


def check_sentibench(folder: Path, names: Sequence[str]) -> None:
    """Raise :class:`SentiBenchError` listing every missing file, so one fix repairs the folder."""
    if not folder.is_dir():
        raise SentiBenchError(f"SentiBench folder not found: {folder}; " + _how_to_get(folder))
    missing = [
        f"{n}/{split}.json"
        for n in names
        for split in ("train", "test")
        if not (folder / n / f"{split}.json").is_file()
    ]
    if missing:
        raise SentiBenchError(
            f"SentiBench folder {folder} is incomplete; missing: {', '.join(missing)}; " + _how_to_get(folder)
        )


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # the files start with a BOM
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a JSON list of records")
    return data


def load_dataset(folder: Path, name: str) -> BenchDataset:
    """One SentiBench dataset: its test examples and its demo pool (train.json)."""
    if name not in TASKS:
        raise ValueError(f"unknown SentiBench dataset {name!r}; available: {list(TASKS)}")
    check_sentibench(folder, [name])
    splits = {}
    for split in ("test", "train"):
        path = folder / name / f"{split}.json"
        recs = _read_json_list(path)
        try:
            splits[split] = [_to_example(name, r, f"{split}:{i}") for i, r in enumerate(recs)]
        except (KeyError, TypeError, AttributeError) as err:
            raise DataFileError(f"{path}: a record lacks the fields {name} needs ({err!r})") from None
    return BenchDataset(TASKS[name], splits["test"], splits["train"], "sentibench", folder / name)


def load_sentibench(
    sentibench_dir: str | Path, names: Sequence[str] = SENTIBENCH_DATASETS, root: Path | None = None
) -> list[BenchDataset]:
    folder = resolve_sentibench_dir(sentibench_dir, root)
    check_sentibench(folder, names)
    return [load_dataset(folder, n) for n in names]


def load_fallback(
    holdout_path: Path, shots: int, demo_fraction: float = 0.25, seed: int = 42
) -> tuple[list[BenchDataset], dict[str, int]]:
    """Sentiment-classification stand-ins built from stage 00's labelled held-out texts.

    One dataset per domain (``fallback/imdb``, ``fallback/rotten_tomatoes``, ``fallback/tweets``), the
    label set read from the data. A seeded ``demo_fraction`` of each domain (at least ``shots`` texts)
    becomes the demo pool; the rest is the test set, so no test text is its own demo. Returns the
    datasets and the counts of records skipped for a missing text or label.
    """
    if not holdout_path.is_file():
        raise DataFileError(
            f"the SentiBench fallback needs {holdout_path} (stage 00_environment_and_corpus writes it); "
            "run stage 00 or set evaluation.sentibench_dir"
        )
    by_domain: dict[str, list[dict[str, Any]]] = {}
    skipped = {"no_text": 0, "no_label": 0}
    for rec in read_jsonl(holdout_path):
        if not str(rec.get("text") or "").strip():
            skipped["no_text"] += 1
        elif not str(rec.get("label") or "").strip():
            skipped["no_label"] += 1
        else:
            by_domain.setdefault(str(rec.get("domain") or "unknown"), []).append(rec)
    out = []
    for domain in sorted(by_domain):
        recs = sorted(by_domain[domain], key=lambda r: str(r.get("text_id")))
        random.Random(f"fallback|{domain}|{seed}").shuffle(recs)
        n_demo = max(shots, round(demo_fraction * len(recs)))
        if len(recs) - n_demo < 1:
            raise DataFileError(
                f"{holdout_path}: domain {domain!r} has {len(recs)} labelled texts, too few for {shots} demos "
                "plus a test set; raise corpus.holdout_per_domain"
            )
        examples = [
            Example(
                uid=str(r.get("text_id", i)), sentence=str(r["text"]), gold=normalise_label(str(r["label"]))
            )
            for i, r in enumerate(recs)
        ]
        labels = tuple(sorted({e.gold for e in examples}))
        if len(labels) < 2:
            raise DataFileError(
                f"{holdout_path}: domain {domain!r} has a single label {labels}; nothing to classify"
            )
        spec = _classification(
            f"fallback/{domain}", FALLBACK_GROUP, "Sentiment analysis", SENTIMENT_Q, labels
        )
        out.append(BenchDataset(spec, examples[n_demo:], examples[:n_demo], "fallback", holdout_path))
    if not out:
        raise DataFileError(f"{holdout_path}: no labelled texts for the fallback evaluation")
    return out, skipped


@dataclass
class Benchmark:
    """What stage 07 evaluates on, and whether it is the real benchmark."""

    datasets: list[BenchDataset]
    fallback: bool
    note: str
    skipped: dict[str, int] = field(default_factory=dict)


def load_for_run(
    sentibench_dir: str | None, names: Sequence[str], shots: int, run_dir: Path, root: Path | None = None
) -> Benchmark:
    """SentiBench when its folder is there, else the clearly flagged fallback on ``corpus/holdout.jsonl``.

    A folder that exists but lacks a requested dataset is an error (a half-copied benchmark must not
    pass for the real one). A folder that is not there at all (e.g. ``params/tiny.yaml``'s
    ``../shared/sentibench`` on a machine without it) means "SentiBench is absent": the fallback runs and
    its note, shown in the notebook and the report, says so and why.
    """
    why = "evaluation.sentibench_dir is not set"
    if sentibench_dir:
        folder = resolve_sentibench_dir(sentibench_dir, root)
        if folder.exists():
            ds = load_sentibench(folder, names, root)
            return Benchmark(ds, False, f"SentiBench from {folder}")
        why = f"the SentiBench folder {folder} (evaluation.sentibench_dir) does not exist"
    ds, skipped = load_fallback(run_dir / "corpus" / "holdout.jsonl", shots)
    note = (
        f"FALLBACK: {why}, so these scores are NOT SentiBench. They come from "
        f"{sum(len(d.test) for d in ds)} held-out labelled corpus texts ({', '.join(d.name for d in ds)}) with the "
        "same 4-shot protocol. Set evaluation.sentibench_dir to the SentiBench datasets/ folder for the real benchmark."
    )
    return Benchmark(ds, True, note, skipped)


def fetch_sentibench(dest: str | Path) -> Path:
    """Clone HITSZ-HLT/Sentiment-Distillation into ``dest`` and return its checked ``datasets/`` folder.

    Idempotent: a ``dest`` that already holds the datasets is only checked.
    """
    dest = Path(dest).expanduser()
    if not (dest / "datasets").is_dir():
        git = shutil.which("git")
        if git is None:
            raise SentiBenchError(f"git is not installed; clone {SENTIBENCH_REPO} into {dest} by hand")
        if dest.exists() and any(dest.iterdir()):
            raise SentiBenchError(
                f"{dest} exists, is not empty and holds no datasets/ folder; choose another folder"
            )
        try:
            proc = subprocess.run(
                [git, "clone", "--depth", "1", SENTIBENCH_REPO, str(dest)],
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired:
            raise SentiBenchError(
                f"git clone of {SENTIBENCH_REPO} into {dest} timed out after 15 minutes"
            ) from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise SentiBenchError(
                f"git clone of {SENTIBENCH_REPO} into {dest} failed (exit {proc.returncode}): {' | '.join(tail)}; "
                "check the network, or clone it elsewhere and set evaluation.sentibench_dir"
            )
    folder = dest / "datasets"
    check_sentibench(folder, SENTIBENCH_DATASETS)
    return folder


# -- test subsets and prompts --------------------------------------------------------------------------


def test_subset(ds: BenchDataset, n_test: int | None, seed: int) -> list[Example]:
    """A seeded subset in file order, the same for every model and demo seed (``None`` = all)."""
    if n_test is None or n_test >= len(ds.test):
        return list(ds.test)
    idx = sorted(random.Random(f"{ds.name}|subset|{seed}").sample(range(len(ds.test)), n_test))
    return [ds.test[i] for i in idx]


def render_label(spec: TaskSpec, gold: Any) -> str:
    return gold if spec.kind == "classification" else json.dumps(gold, ensure_ascii=False)


def sample_demos(ds: BenchDataset, example: Example, seed: int, shots: int) -> list[Example]:
    pool = ds.demos
    if example.target is not None:  # P-Stance: demos about the target the instruction names
        same = [d for d in pool if d.target == example.target]
        pool = same if len(same) >= shots else pool
    if shots > len(pool):
        raise ValueError(f"{ds.name}: {shots} shots requested but the demo pool has {len(pool)} examples")
    return random.Random(f"{ds.name}|{seed}|{example.uid}").sample(pool, shots)


def render_prompt(
    spec: TaskSpec, sentence: str, demos: Sequence[tuple[str, str]], target: str | None = None
) -> str:
    """The exact prompt text: instruction, blank line, demo blocks, test sentence, ``Label:``."""
    instruction = (
        spec.instruction.format(target=target) if "{target}" in spec.instruction else spec.instruction
    )
    parts = [instruction, ""]
    for demo_sentence, demo_label in demos:
        parts += [f"Sentence: {demo_sentence}", f"Label: {demo_label}", ""]
    parts += [f"Sentence: {sentence}", "Label:"]
    return "\n".join(parts)


def _cut(tokenizer: Any, ids: list[int], n: int) -> str:
    return tokenizer.decode(ids[: max(n, 0)]).rstrip() + " ..."


def _water_cap(lengths: Sequence[int], budget: int) -> int:
    """The largest per-demo cap c with sum(min(L, c)) <= budget (so short demos stay whole)."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_prompt(
    spec: TaskSpec, example: Example, demos: list[Example], tokenizer: Any, max_tokens: int
) -> tuple[str, list[Example], dict[str, Any]]:
    """Render the prompt within ``max_tokens`` (counted with ``tokenizer``) without losing its shape.

    Order of sacrifice, chosen so the test sentence survives longest: (1) shorten the longest demo
    sentences to a common cap (marked " ..."), (2) when the cap would fall below MIN_DEMO_TOKENS, drop
    demos from the end, (3) only then cut the test sentence's tail. Demo labels, the instruction and
    the final ``Label:`` are never cut. Returns the text, the demos used and what was cut.
    """

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=True))

    def labels(ds_: list[Example]) -> list[str]:
        return [render_label(spec, d.gold) for d in ds_]

    text = render_prompt(
        spec,
        example.sentence,
        list(zip([d.sentence for d in demos], labels(demos), strict=True)),
        example.target,
    )
    n_full = count(text)
    if n_full <= max_tokens:
        return text, demos, {}
    test_ids = tokenizer.encode(example.sentence, add_special_tokens=False)
    demo_ids = [tokenizer.encode(d.sentence, add_special_tokens=False) for d in demos]
    kept = list(demos)
    slack = 4

    def rooms() -> tuple[int, int]:
        """(tokens left for the sentences, of which for the demos) with the demos in ``kept``."""
        overhead = count(render_prompt(spec, "", [("", lab) for lab in labels(kept)], example.target))
        room = max_tokens - overhead - slack
        return room, room - len(test_ids)

    for _attempt in range(6):
        room, demo_room = rooms()
        while kept and demo_room < MIN_DEMO_TOKENS * len(kept):
            kept.pop()
            room, demo_room = rooms()
        ids_kept = demo_ids[: len(kept)]
        cap = _water_cap([len(i) for i in ids_kept], demo_room) if kept else 0
        demo_sents = [
            d.sentence if len(i) <= cap else _cut(tokenizer, i, cap)
            for d, i in zip(kept, ids_kept, strict=True)
        ]
        test_budget = room if not kept else len(test_ids)
        test_sent = (
            example.sentence if len(test_ids) <= test_budget else _cut(tokenizer, test_ids, test_budget)
        )
        text = render_prompt(
            spec, test_sent, list(zip(demo_sents, labels(kept), strict=True)), example.target
        )
        excess = count(text) - max_tokens
        if excess <= 0:
            info = {
                "tokens_before": n_full,
                "demos_dropped": len(demos) - len(kept),
                "demo_cap_tokens": cap if any(len(i) > cap for i in ids_kept) else None,
                "test_cut_to_tokens": test_budget if len(test_ids) > test_budget else None,
            }
            return text, kept, info
        slack += excess + 2  # decode/encode boundary effects: retry with more headroom
    raise ValueError(
        f"{spec.name}: cannot fit a prompt for example {example.uid} into {max_tokens} tokens "
        "(the instruction alone is too long); raise evaluation.max_prompt_tokens"
    )


def build_prompts(
    ds: BenchDataset,
    examples: Sequence[Example],
    seed: int,
    shots: int,
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
) -> list[Prompt]:
    """One prompt per example; with a tokenizer and a limit, long prompts are fitted by :func:`fit_prompt`."""
    out = []
    for ex in examples:
        demos = sample_demos(ds, ex, seed, shots)
        if tokenizer is not None and max_prompt_tokens is not None:
            text, used, info = fit_prompt(ds.spec, ex, demos, tokenizer, max_prompt_tokens)
        else:
            pairs = [(d.sentence, render_label(ds.spec, d.gold)) for d in demos]
            text, used, info = render_prompt(ds.spec, ex.sentence, pairs, ex.target), demos, {}
        out.append(
            Prompt(f"{ds.name}:{ex.uid}:seed{seed}", ds.name, seed, ex, [d.uid for d in used], text, info)
        )
    return out
