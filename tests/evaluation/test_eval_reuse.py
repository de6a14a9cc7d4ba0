"""Stage 08's base point reuses stage 07's predictions only when the settings that made them match."""

from __future__ import annotations

from compeffdist_utils.core.config import params_from_dict
from compeffdist_utils.core.io import read_jsonl, write_jsonl
from compeffdist_utils.data_efficiency.reuse import reuse_evaluation
from compeffdist_utils.distillation_data.heldout_split import HELDOUT_FILE
from compeffdist_utils.evaluation.heldout import heldout_path
from compeffdist_utils.evaluation.predictions import prediction_path, settings_key, write_settings


def test_key_follows_what_decides_predictions(tmp_path):
    p = params_from_dict({"evaluation": {"n_test": 200, "datasets": ["sc/sst2"]}})
    key = settings_key(p, "student", tmp_path)
    same = params_from_dict(
        {"evaluation": {"n_test": 200, "datasets": ["sc/sst2", "sc/twitter"], "batch_size": 2}}
    )
    assert settings_key(same, "student", tmp_path) == key  # the dataset list and batch size do not matter
    for change in (
        {"evaluation": {"n_test": 100}},
        {"models": {"student": "embedded:smollm2-135m-instruct#keep_layers=9"}},
    ):
        assert settings_key(params_from_dict(change), "student", tmp_path) != key
    write_jsonl(tmp_path / HELDOUT_FILE, [{"sample_id": "h1"}])
    assert settings_key(p, "student", tmp_path) != key  # new held-out samples


def test_reuse_copies_only_a_complete_matching_evaluation(tmp_path):
    src, dst = tmp_path / "eval", tmp_path / "point" / "eval"
    for seed in (42, 52):
        write_jsonl(
            prediction_path(src, "base_student", "sc/sst2", seed), [{"uid": "u1", "prediction": "positive"}]
        )
    write_jsonl(heldout_path(src, "base_student"), [{"sample_id": "h1", "nll_sum": 2.0, "n_tokens": 1}])
    write_settings(src, "base_student", "k1")
    assert not reuse_evaluation(src, "base_student", dst, "base", ["sc/sst2"], [42, 52], "other")
    assert not reuse_evaluation(src, "base_student", dst, "base", ["sc/sst2", "sc/twitter"], [42], "k1")
    assert not dst.exists()
    assert reuse_evaluation(src, "base_student", dst, "base", ["sc/sst2"], [42, 52], "k1")
    assert read_jsonl(prediction_path(dst, "base", "sc/sst2", 52)) == [
        {"uid": "u1", "prediction": "positive"}
    ]
    assert heldout_path(dst, "base").exists()
