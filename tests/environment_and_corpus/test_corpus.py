import pytest

from compeffdist_utils.core.config import CorpusFile, CorpusParams
from compeffdist_utils.environment_and_corpus.corpus import CorpusError, load_corpus


def test_embedded_corpus_is_seeded_tagged_deduplicated_and_disjoint():
    cp = CorpusParams(per_domain={"imdb": 5, "rotten_tomatoes": 5, "tweets": 5}, holdout_per_domain=6)
    texts, holdout, report = load_corpus(cp)
    again, _, _ = load_corpus(cp)
    assert texts.equals(again)
    assert texts.groupby("domain").size().to_dict() == {"imdb": 5, "rotten_tomatoes": 5, "tweets": 5}
    assert texts["text"].is_unique and texts["text_id"].is_unique
    assert not set(texts["text"]) & set(holdout["text"])
    assert set(holdout["label"]) <= {"negative", "positive", "neutral"}
    assert report["tweets"]["holdout"] == 6
    assert not texts["text"].str.contains("<br", regex=False).any()
    other, _, _ = load_corpus(cp.model_copy(update={"seed": 7}))
    assert set(other["text"]) != set(texts["text"])


def _files(tmp_path, *specs):
    return CorpusParams(source="files", files=[CorpusFile(**s) for s in specs], min_chars=1)


def test_user_files_csv_jsonl_txt(tmp_path):
    (tmp_path / "a.csv").write_text("review,stars\nGreat food,5\nAwful service,1\nGreat food,5\n")
    (tmp_path / "b.jsonl").write_text('{"body": "I love it"}\n\n{"body": "meh"}\n')
    (tmp_path / "c.txt").write_text("first line\n\nsecond line\n")
    cp = _files(
        tmp_path,
        {"path": str(tmp_path / "a.csv"), "text_column": "review", "label_column": "stars"},
        {"path": "b.jsonl", "text_column": "body", "domain": "forum"},
        {"path": str(tmp_path / "c.txt")},
    )
    texts, _, report = load_corpus(cp, base_dir=tmp_path)
    assert report["a"]["texts"] == 2  # the duplicate is dropped
    assert texts.groupby("domain").size().to_dict() == {"a": 2, "forum": 2, "c": 2}


@pytest.mark.parametrize(
    ("content", "spec", "message"),
    [
        (None, {"path": "missing.csv"}, "corpus file not found"),
        (
            b"x,y\n1,2\n",
            {"path": "f.csv", "text_column": "text"},
            r"no column 'text'; columns are \['x', 'y'\]",
        ),
        (b"text\n\n", {"path": "f.csv"}, "no text left after cleaning"),
        (b"text\ncaf\xe9 ok\n", {"path": "f.csv"}, r"not UTF-8 text \(undecodable byte at offset 8\)"),
        (b'{"text": "a"}\n{oops\n', {"path": "f.jsonl"}, r"f.jsonl:2: not valid JSON"),
        (b"abc", {"path": "f.parquet"}, "cannot tell the format"),
    ],
)
def test_bad_corpus_files_name_the_file_and_problem(tmp_path, content, spec, message):
    if content is not None:
        (tmp_path / spec["path"]).write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(_files(tmp_path, spec), base_dir=tmp_path)


def test_a_jsonl_line_that_is_not_an_object_is_named(tmp_path):
    (tmp_path / "f.jsonl").write_text('{"text": "fine"}\n42\n')
    with pytest.raises(CorpusError, match=r"f.jsonl:2: expected a JSON object per line, got int"):
        load_corpus(_files(tmp_path, {"path": "f.jsonl"}), base_dir=tmp_path)


def test_rows_without_text_are_counted_as_skips(tmp_path):
    (tmp_path / "f.jsonl").write_text(
        '{"text": "one good text"}\n{"text": null}\n{"other": 1}\n{"text": "   "}\n{"text": "another text"}\n'
    )
    (tmp_path / "g.csv").write_text("text,label\nfine words,pos\n,neg\n")
    cp = _files(tmp_path, {"path": "f.jsonl"}, {"path": "g.csv", "label_column": "label"})
    cp = cp.model_copy(update={"min_chars": 0})
    texts, _, report = load_corpus(cp, base_dir=tmp_path)
    assert report["f"]["skipped_no_text"] == 3 and report["f"]["texts"] == 2
    assert report["g"]["skipped_no_text"] == 1 and report["g"]["texts"] == 1
    assert "nan" not in set(texts["text"]) and "<NA>" not in set(texts["text"])
