"""Bad input through the CLI and the readers: a clear error naming the thing, never a silent acceptance
(issue 21, cases 3, 4, 8, 9 and the "also seen" checks of `validate`)."""

import json
import re

import pytest

from compeffdist_utils.attributes.enumeration import enumerate_attributes
from compeffdist_utils.cli import main
from compeffdist_utils.clustering.inventory import InventoryError, load_inventory
from compeffdist_utils.core.config import AttributesParams, CorpusFile, CorpusParams, Params
from compeffdist_utils.core.io import DataFileError, read_jsonl
from compeffdist_utils.environment_and_corpus.corpus import CorpusError, load_corpus
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.base import TeacherFailuresError
from tests.fake_server import completion, serve

NOT_UTF8 = b"caf\xe9"


def _validate(tmp_path, capsys, text: str | bytes) -> tuple[int, str]:
    p = tmp_path / "p.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    rc = main(["validate", str(p)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def test_a_count_above_what_a_domain_holds_is_refused_by_validate_naming_the_number(tmp_path, capsys):
    """Case 4: imdb: 100000 was silently cut to what imdb has, and the holdout silently emptied."""
    rc, err = _validate(tmp_path, capsys, "corpus: {per_domain: {imdb: 100000, tweets: 4}}\n")
    assert rc == 2 and "corpus.per_domain.imdb: 100000 texts asked" in err
    most = int(re.search(r"ask at most (\d+)", err).group(1))
    held = int(re.search(r"holds (\d+) usable texts", err).group(1))
    assert most == held - 40 and most > 20_000  # the holdout (40) stays, the number is named
    assert "'all'" in err and "tweets" not in err


def test_all_takes_everything_but_keeps_the_holdout():
    texts, holdout, report = load_corpus(CorpusParams(per_domain={"rotten_tomatoes": "all"}))
    row = report["rotten_tomatoes"]
    assert row["holdout"] == 40 and len(holdout) == 40
    assert row["texts"] == row["after_cleaning"] - 40 == len(texts)
    assert not set(texts["text"]) & set(holdout["text"])


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        ({"api_key_env": "CDK_SURELY_UNSET_KEY"}, "environment variable CDK_SURELY_UNSET_KEY is not set"),
        ({"base_url": "localhost:8000/v1"}, "is not an http(s) URL with a host"),
        ({"base_url": "http:// 127.0.0.1/v1"}, "is not an http(s) URL with a host"),
    ],
)
def test_validate_checks_the_key_variable_and_the_url(tmp_path, capsys, monkeypatch, teacher, message):
    monkeypatch.delenv("CDK_SURELY_UNSET_KEY", raising=False)
    tp = {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m", **teacher}
    rc, err = _validate(tmp_path, capsys, json.dumps({"models": {"teacher": tp}}))
    assert rc == 2 and message in err, err


def test_a_params_file_that_is_not_utf8_is_named(tmp_path, capsys):
    """Case 8: a UnicodeDecodeError without the file's name."""
    rc, err = _validate(tmp_path, capsys, b"run_name: " + NOT_UTF8 + b"\n")
    assert rc == 2 and str(tmp_path / "p.yaml") in err and "not UTF-8" in err


def test_a_duplicated_yaml_key_is_an_error(tmp_path, capsys):
    """Case 9: the second of two equal keys silently won."""
    rc, err = _validate(tmp_path, capsys, "seed: 1\nrun_name: a\nseed: 2\n")
    assert rc == 2 and "the key 'seed' is written twice (lines 1 and 3)" in err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_an_inventory_that_is_not_utf8_is_named(tmp_path, suffix):
    """Case 8: an inventory file with non-UTF-8 bytes."""
    path = tmp_path / f"inventory{suffix}"
    body = {".jsonl": b'{"attr": "' + NOT_UTF8 + b'", "count": 3}\n', ".csv": b"attr,count\n" + NOT_UTF8 + b",3\n",
            ".json": b'[{"attr": "' + NOT_UTF8 + b'", "count": 3}]'}[suffix]  # fmt: skip
    path.write_bytes(body)
    with pytest.raises(InventoryError, match=re.escape(str(path)) + ".*not UTF-8"):
        load_inventory(path)


def test_a_run_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_bytes(b'{"text": "' + NOT_UTF8 + b'"}\n')
    with pytest.raises(DataFileError, match=re.escape(str(path)) + ".*not UTF-8"):
        read_jsonl(path)


def test_run_dir_naming_a_file_is_one_clear_line(tmp_path, capsys, repo_root, monkeypatch):
    """Case 8: `--run-dir` naming an existing file gave a FileExistsError traceback."""
    monkeypatch.chdir(repo_root)
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    assert main(["run", "tests/params/ci.yaml", "--run-dir", str(target), "--stages", "00"]) == 1
    err = capsys.readouterr().err
    assert f"run folder {target} exists and is not a folder" in err and "Traceback" not in err
    assert target.read_text() == "not a folder"


def test_a_dict_valued_text_is_refused_naming_the_line(tmp_path):
    """Case 9: {"text": {"a": 1}} entered the corpus as the string "{'a': 1}"."""
    (tmp_path / "f.jsonl").write_text(
        '{"text": "a real text here"}\n\n{"text": {"title": "x", "body": "y"}}\n'
    )
    cp = CorpusParams(source="files", files=[CorpusFile(path="f.jsonl")], min_chars=1)
    with pytest.raises(CorpusError, match=r"f.jsonl: 1 value\(s\) of 'text' are JSON objects.*line 3"):
        load_corpus(cp, base_dir=tmp_path)


def test_stage_01_fails_when_no_answer_parses(tmp_path):
    """Case 3, the parse side: answers that are all prose must not leave stage 01 "ok" and empty."""
    texts = [{"text_id": f"t{i}", "domain": "d", "text": f"text {i}"} for i in range(4)]
    reply = completion("I am sorry, I cannot help with that request.")
    with serve(lambda h: (200, "application/json", reply)) as (url, _):
        params = Params.model_validate(
            {"cache_dir": str(tmp_path), "models": {"teacher": {"backend": "openai", "base_url": url}}}
        )
        with pytest.raises(TeacherFailuresError, match="4 of 4 failed.*I am sorry"):
            enumerate_attributes(make_teacher(params), texts, AttributesParams())
