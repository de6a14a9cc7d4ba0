"""``models.writer``: a second teacher for the writing stages (01, 03), the answering teacher everywhere else.

The study presets need it (issue 22): the sentiment specialist answers well but only repeats its worked
example when asked to list attributes, so the plain instruction model writes and the specialist answers.
"""

from pathlib import Path

import pytest

from compeffdist_utils.core.config import (
    EMBEDDED_CAUSAL_LM,
    EMBEDDED_SPECIALIST,
    load_params,
    params_from_dict,
)
from compeffdist_utils.planning.context import cache_identity
from compeffdist_utils.stage.fingerprints import discover_stages, stage_fingerprints
from compeffdist_utils.teacher.backends import check_teacher_settings, make_teacher
from compeffdist_utils.teacher.hf import hf_identity

ROOT = Path(__file__).resolve().parents[2]
TWO = {
    "models": {
        "teacher": {"backend": "hf", "model": EMBEDDED_SPECIALIST},
        "writer": {"backend": "hf", "model": EMBEDDED_CAUSAL_LM, "batch_size": 4},
    }
}


def test_the_writer_writes_in_stages_01_and_03_and_the_teacher_answers_elsewhere(tmp_path):
    params = params_from_dict({**TWO, "cache_dir": str(tmp_path)})
    for stage, spec in [
        ("01_attributes", EMBEDDED_CAUSAL_LM),
        ("03_instructions", EMBEDDED_CAUSAL_LM),
        ("04_distillation_data", EMBEDDED_SPECIALIST),
        ("07_evaluation", EMBEDDED_SPECIALIST),
    ]:
        backend = make_teacher(params, stage=stage)  # lazy: no model is loaded
        assert backend.model == spec, stage
        assert cache_identity(params, stage) == hf_identity(spec) == backend.identity
    assert make_teacher(params, stage="01_attributes").batch_size == 4


def test_without_a_writer_the_teacher_does_everything(tmp_path):
    params = params_from_dict({"models": TWO["models"] | {"writer": None}, "cache_dir": str(tmp_path)})
    assert {make_teacher(params, stage=s).model for s in ("01_attributes", "03_instructions")} == {
        EMBEDDED_SPECIALIST
    }


def test_a_new_writer_reruns_the_writing_stages_only_from_their_own_fingerprint():
    stages = discover_stages(ROOT / "notebooks")
    one = stage_fingerprints(stages, params_from_dict({"models": {"teacher": TWO["models"]["teacher"]}}))
    two = stage_fingerprints(stages, params_from_dict(TWO))
    changed = {name for name in one if one[name] != two[name]}
    assert {"01_attributes", "03_instructions"} <= changed
    assert "00_environment_and_corpus" in changed  # stage 00 lists the run's models in its table
    assert "02_clustering" in changed  # downstream of 01: fingerprints chain


def test_a_writers_missing_api_key_is_named_before_the_run(monkeypatch):
    monkeypatch.delenv("CDK_TEST_WRITER_KEY", raising=False)
    params = params_from_dict(
        {
            "models": {
                "writer": {
                    "backend": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key_env": "CDK_TEST_WRITER_KEY",
                }
            }
        }
    )
    (problem,) = check_teacher_settings(params)
    assert problem.startswith("models.writer.api_key_env") and "CDK_TEST_WRITER_KEY" in problem


def test_a_writer_is_checked_like_a_teacher():
    with pytest.raises(ValueError, match="models.writer"):
        params_from_dict({"models": {"writer": {"backend": "openai"}}})  # no base_url


@pytest.mark.parametrize("preset", ["study", "workshop"])
def test_the_study_presets_write_with_the_instruction_model_and_answer_with_the_specialist(preset):
    params = load_params(ROOT / "params" / f"{preset}.yaml")
    assert params.models.teacher.model == EMBEDDED_SPECIALIST
    assert params.models.teacher_for("01_attributes").model == EMBEDDED_CAUSAL_LM
    assert params.models.teacher_for("04_distillation_data").model == EMBEDDED_SPECIALIST
    for preset_name in ("tiny", "paper"):
        assert load_params(ROOT / "params" / f"{preset_name}.yaml").models.writer is None
