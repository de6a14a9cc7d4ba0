"""The specialist teacher's training records, built from the labelled texts the packages ship.

Each record is ``{kind, domain, style, instruction, output}``. ``style`` says how it is rendered:

- ``raw``: a plain few-shot prompt (``instruction`` is the whole prompt, ending ``Label:``; ``output`` is
  `` <label>``), the shape in which in-context classification is asked of a base or instruct model alike;
  its instruction wording, label order and label words vary, and a share uses arbitrary label symbols
  defined only by the demonstrations, so what is learnt is "read the label set and the demos", not one
  prompt;
- ``chat``: one user turn answered by the assistant (rendered with the chat template), for the task types
  the method's teacher is asked: classification over a label set, 1-5 scoring, aspect/opinion extraction
  as JSON, a structured JSON verdict, and a short analysis quoting the text.

Labels are the corpora's own (movie reviews: negative/positive; tweets: negative/neutral/positive). The
1-5 score, the opinion words and the quoted evidence are derived by rule from the label and a small
opinion lexicon (:data:`LEXICON`): weak, but never invented by a model. Texts that match any SentiBench
sentence are removed first (:mod:`.overlap`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence

from compeffdist_utils.models.specialist import SpecialistRecipe

# A small opinion lexicon: enough to point at the words that carry a text's sentiment.
_POS = "good great excellent amazing wonderful love loved best brilliant enjoy enjoyed fun funny beautiful perfect"
_NEG = (
    "bad worst awful terrible boring hate hated poor waste dull stupid horrible annoying disappointing mess"
)
_STRONG = {
    "amazing",
    "wonderful",
    "best",
    "brilliant",
    "perfect",
    "love",
    "worst",
    "awful",
    "terrible",
    "hate",
}
LEXICON = {w: "positive" for w in _POS.split()} | {w: "negative" for w in _NEG.split()}

KINDS = ("fewshot", "classify", "score", "extract", "json", "analysis")
RAW_TEMPLATES = (
    "Please perform the {task} task. Given the sentence, assign a {what} label from {labels}. "
    "Return label only without any other text.",
    "Classify the {what} of each sentence. Possible labels: {labels}. Answer with one label.",
    "Read the sentence and choose its {what} label from {labels}.",
    "Task: {task}. Labels: {labels}. Give only the label.",
)
ALT_WORDS = {"negative": ["bad", "unfavorable", "negative"], "positive": ["good", "favorable", "positive"]}
SYMBOLS = (["A", "B", "C"], ["x", "y", "z"], ["first", "second", "third"])


Pool = dict[str, list[tuple[str, str]]]  # domain -> [(text, label)]


def _domain_noun(domain: str) -> str:
    return "tweet" if domain == "tweets" else "review"


def _labels_of(pool: Pool, domain: str) -> list[str]:
    return sorted({lab for _, lab in pool[domain]})


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " ..."


def opinion_words(text: str) -> list[tuple[str, str]]:
    """(word, polarity) for each lexicon word in ``text``, in order of first occurrence."""
    seen: dict[str, str] = {}
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in LEXICON and w not in seen:
            seen[w] = LEXICON[w]
    return list(seen.items())


def score_of(text: str, label: str) -> int:
    """A 1-5 score by rule: neutral 3; positive 4 (5 with a strong positive word); negative 2 (1 likewise)."""
    if label not in ("positive", "negative"):
        return 3
    strong = any(w in _STRONG and p == label for w, p in opinion_words(text))
    return (5 if strong else 4) if label == "positive" else (1 if strong else 2)


def evidence(text: str) -> str:
    """The clause of ``text`` holding its first opinion word (else its first clause), at most 120 chars."""
    clauses = [c.strip() for c in re.split(r"(?<=[.!?;])\s+", text) if c.strip()] or [text]
    words = [w for w, _ in opinion_words(text)]
    hit = next((c for c in clauses if words and words[0] in c.lower()), clauses[0])
    return _cut(hit, 120)


def _fewshot(rng: random.Random, pool: Pool, domain: str, recipe: SpecialistRecipe) -> dict[str, str]:
    labels = _labels_of(pool, domain)
    mode = rng.choices(["gold", "words", "symbols"], weights=[70, 15, 15])[0]
    if mode == "words" and len(labels) == 2:
        pick = rng.randrange(3)
        names = {lab: ALT_WORDS[lab][pick] for lab in labels}
    elif mode == "symbols":
        syms = rng.choice(SYMBOLS)
        order = rng.sample(labels, len(labels))
        names = {lab: syms[i] for i, lab in enumerate(order)}
    else:
        names = {lab: lab for lab in labels}
    k = rng.randint(2 if mode == "symbols" else 0, max(recipe.max_demos, 2))
    demos = rng.sample(pool[domain], k)
    text, label = rng.choice(pool[domain])
    shown = rng.sample(list(names.values()), len(names))
    instruction = rng.choice(RAW_TEMPLATES).format(
        task="Sentiment Analysis" if mode == "gold" else "Text Classification",
        what="sentiment polarity" if mode == "gold" else "category",
        labels=str(shown),
    )
    blocks = [f"Sentence: {_cut(t, recipe.demo_chars)}\nLabel: {names[lab]}\n" for t, lab in demos]
    prompt = "\n".join([instruction, "", *blocks, f"Sentence: {_cut(text, recipe.query_chars)}\nLabel:"])
    return {"style": "raw", "instruction": prompt, "output": " " + names[label]}


def _chat(kind: str, rng: random.Random, pool: Pool, domain: str, recipe: SpecialistRecipe) -> dict[str, str]:
    noun = _domain_noun(domain)
    text, label = rng.choice(pool[domain])
    text = _cut(text, recipe.query_chars)
    labels = rng.sample(_labels_of(pool, domain), len(_labels_of(pool, domain)))
    words = opinion_words(text)
    if kind == "classify":
        ask = f"What is the sentiment of this {noun}? Choose one of: {', '.join(labels)}. Answer with the label."
        answer = label
    elif kind == "score":
        ask = f"Rate the sentiment of this {noun} from 1 (very negative) to 5 (very positive). Reply with the number."
        answer = str(score_of(text, label))
    elif kind == "extract":
        ask = (
            f"List the opinion words in this {noun} with their polarity as a JSON array of objects "
            'with keys "opinion" and "polarity". Output only the JSON.'
        )
        answer = json.dumps([{"opinion": w, "polarity": p} for w, p in words])
    elif kind == "json":
        ask = (
            f'Return a JSON object for this {noun} with keys "sentiment" (one of {", ".join(labels)}), '
            '"score" (1-5) and "evidence" (a short quote from the text).'
        )
        answer = json.dumps({"sentiment": label, "score": score_of(text, label), "evidence": evidence(text)})
    else:
        ask = (
            f"In two sentences, explain the overall sentiment of this {noun}, quoting the words that show it."
        )
        cue = ", ".join(f'"{w}"' for w, p in words if p == label) or f'"{evidence(text)}"'
        answer = f"The {noun} is {label} overall. The clearest sign is {cue}, which sets its tone."
        if label == "neutral":
            answer = f'The {noun} is neutral overall: it reports rather than judges ("{evidence(text)}").'
    return {"style": "chat", "instruction": f"{ask}\n\n{noun.capitalize()}: {text}", "output": answer}


def build_records(pool: Pool, recipe: SpecialistRecipe) -> list[dict[str, str]]:
    """The training records: the recipe's count per kind, domains in turn, shuffled with its seed."""
    empty = [d for d, rows in pool.items() if len(rows) < 5]
    if empty:
        raise ValueError(f"specialist data: domains {empty} have fewer than 5 usable texts")
    rng = random.Random(recipe.seed)
    domains = sorted(pool)
    records = []
    for kind, n in recipe.kinds().items():
        for i in range(n):
            domain = domains[i % len(domains)]
            body = (
                _fewshot(rng, pool, domain, recipe)
                if kind == "fewshot"
                else _chat(kind, rng, pool, domain, recipe)
            )
            records.append({"kind": kind, "domain": domain} | body)
    rng.shuffle(records)
    return records


def count_by(records: Sequence[dict[str, str]], *fields: str) -> dict[str, int]:
    """How many records per value of ``fields`` (joined with ``/``), sorted by key."""
    out: dict[str, int] = {}
    for r in records:
        key = "/".join(r[f] for f in fields)
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
