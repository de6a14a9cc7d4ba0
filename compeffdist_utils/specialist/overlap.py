"""Which packaged corpus texts also occur in SentiBench, so the specialist teacher never trains on them.

The packaged corpora and SentiBench share sources (SST-2 is built from Rotten Tomatoes snippets; SentiBench's
IMDB is IMDB), so a text can sit in both with different tokenisation: SST-2 writes ``it 's`` and ``-lrb-``.
Texts are compared after :func:`normalise`: lower-cased, the PTB bracket tokens dropped, and every
character that is not a letter or digit removed (so spacing, punctuation and tokenisation differences
vanish). Two keys per text: the whole normalised string, and its first :data:`PREFIX_CHARS` characters
when it is at least that long (a review cut at a different length in the two copies still matches).
Every split (train, val, test) of every SentiBench dataset is checked; the counts are reported per split.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

PREFIX_CHARS = 80
_PTB = re.compile(r"-(lrb|rrb|lsb|rsb|lcb|rcb)-")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """The comparison form of a text: lower case, PTB bracket tokens dropped, letters and digits only."""
    return _NOT_ALNUM.sub("", _PTB.sub("", str(text).lower()))


def keys(text: str) -> set[str]:
    """The match keys of a text (see the module docstring); empty for a text with no letters or digits."""
    norm = normalise(text)
    if not norm:
        return set()
    return {norm, "prefix:" + norm[:PREFIX_CHARS]} if len(norm) >= PREFIX_CHARS else {norm}


def sentibench_sentences(folder: Path) -> dict[str, list[str]]:
    """``{"<group>/<dataset>/<split>": [sentence, ...]}`` for every split file of every dataset."""
    out: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*/*/*.json")):
        if path.stem not in ("train", "val", "test"):
            continue
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
        name = f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"
        out[name] = [str(r.get("sentence", "")) for r in rows if isinstance(r, dict)]
    if not out:
        raise FileNotFoundError(f"no SentiBench split files (<group>/<dataset>/<split>.json) under {folder}")
    return out


def overlap_report(
    corpus: dict[str, Sequence[str]], bench: dict[str, list[str]]
) -> tuple[set[str], dict[str, dict[str, int]]]:
    """(the match keys to exclude, counts): for each SentiBench split, how many of its sentences match a
    text of each packaged domain. Every key of every SentiBench sentence is excluded, whether or not a
    corpus text matched it, so the exclusion does not depend on the corpus sample."""
    banned: set[str] = set()
    bench_keys: dict[str, list[set[str]]] = {}
    for name, sentences in bench.items():
        bench_keys[name] = [keys(s) for s in sentences]
        for k in bench_keys[name]:
            banned |= k
    counts: dict[str, dict[str, int]] = {}
    for domain, texts in corpus.items():
        domain_keys: set[str] = set()
        for t in texts:
            domain_keys |= keys(t)
        for name, per_sentence in bench_keys.items():
            counts.setdefault(name, {"sentences": len(per_sentence)})[domain] = sum(
                bool(k & domain_keys) for k in per_sentence
            )
    return banned, counts


def drop_overlapping(texts: Iterable[str], banned: set[str]) -> tuple[list[str], int]:
    """(the texts with no key in ``banned``, how many were dropped)."""
    kept, dropped = [], 0
    for t in texts:
        if keys(t) & banned:
            dropped += 1
        else:
            kept.append(t)
    return kept, dropped
