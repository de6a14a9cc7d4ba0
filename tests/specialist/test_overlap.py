"""The SentiBench overlap check: what counts as the same text, and that every match is excluded."""

from __future__ import annotations

import json

import pytest

from compeffdist_utils.specialist.overlap import (
    drop_overlapping,
    keys,
    normalise,
    overlap_report,
    sentibench_sentences,
)


def test_tokenisation_case_and_brackets_do_not_hide_a_match():
    sst2 = "it 's a charming -lrb- and often funny -rrb- film ."
    packaged = "It's a charming (and often funny) film."
    assert normalise(sst2) == normalise(packaged)
    assert keys(sst2) & keys(packaged)


def test_a_review_cut_at_another_length_still_matches_by_its_prefix():
    review = "This film was a long and winding road through the worst dialogue I have heard in years. " * 3
    assert keys(review) & keys(review[:150])
    assert not keys("a different review entirely, about something else") & keys(review)


def test_every_split_is_read_and_counted(tmp_path):
    for split, rows in {"train": ["shared text one", "only in train"], "test": ["Shared text ONE!"]}.items():
        folder = tmp_path / "sc" / "toy"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}.json").write_text(
            json.dumps([{"sentence": s, "label": "positive"} for s in rows])
        )
    bench = sentibench_sentences(tmp_path)
    assert sorted(bench) == ["sc/toy/test", "sc/toy/train"]
    banned, counts = overlap_report({"reviews": ["shared text one.", "unrelated"]}, bench)
    assert counts["sc/toy/test"] == {"sentences": 1, "reviews": 1}
    assert counts["sc/toy/train"] == {"sentences": 2, "reviews": 1}
    kept, dropped = drop_overlapping(["shared  text one", "only in train", "fresh text"], banned)
    assert (kept, dropped) == (["fresh text"], 2)


def test_a_folder_without_split_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SentiBench split files"):
        sentibench_sentences(tmp_path)
