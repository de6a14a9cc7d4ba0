from pathlib import Path

import pytest

from compeffdist_utils.core.config import ParamsError, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name", ["params/tiny.yaml", "params/paper.yaml", "params/study.yaml", "tests/params/ci.yaml"]
)
def test_shipped_params_validate(name):
    p = load_params(ROOT / name)
    assert p.run_name


def test_paper_params_follow_the_method():
    p = load_params(ROOT / "params/paper.yaml")
    assert p.models.teacher.backend == "openai"
    assert "Llama-3.1-70B-Instruct" in p.models.teacher.model
    assert "Llama-3.2-3B-Instruct" in p.models.student
    assert p.corpus.source == "files" and len(p.corpus.files) == 5  # the paper's five domains ...
    assert all(f.limit == 4000 for f in p.corpus.files)  # ... 4,000 texts each
    assert p.attributes.min_count == 10 and p.attributes.decoding.temperature == 1.0
    assert p.attributes.worked_example is False
    c = p.clustering
    assert (c.method, c.damping, c.max_iter, c.random_state, c.preference_percentile) == (
        "affinity",
        0.9,
        1000,
        42,
        0.5,
    )
    assert p.instructions.demo_requests_per_task == 16 and p.instructions.max_demos == 7
    assert p.instructions.min_examples == 8
    assert p.difficulty.nucleus_p == 0.95 and p.selection.budget == 0.1
    t = p.training
    assert (t.epochs, t.learning_rate, t.weight_decay, t.lr_scheduler, t.warmup_ratio) == (
        4,
        5e-5,
        0.1,
        "cosine",
        0.0,
    )
    assert t.max_length == 2048 and t.bf16 and t.max_grad_norm == 1.0
    assert p.evaluation.seeds == [42, 52, 62] and p.evaluation.shots == 4 and len(p.evaluation.datasets) == 12
    assert p.evaluation.protocol == "authors" and p.evaluation.max_prompt_tokens is None  # never cut
    assert p.difficulty.dtype == "float32"  # the authors' scoring script runs in fp32
    assert "random" in p.efficiency.selectors  # the authors' global random baseline


def test_unknown_field_is_named():
    with pytest.raises(ParamsError, match=r"corpus\.per_dommain: unknown field"):
        params_from_dict({"corpus": {"per_dommain": {"imdb": 3}}})


def test_bad_literal_lists_allowed_values():
    with pytest.raises(ParamsError, match=r"clustering\.method: must be one of .*affinity"):
        params_from_dict({"clustering": {"method": "dbscan"}})


def test_unknown_embedded_domain_lists_available():
    with pytest.raises(ParamsError, match="available: \\['imdb', 'rotten_tomatoes', 'tweets'\\]"):
        params_from_dict({"corpus": {"per_domain": {"amazon": 3}}})


def test_dotted_overrides_apply_and_validate():
    p = params_from_dict({}, {"corpus.per_domain": {"imdb": 2}, "training.max_steps": 3})
    assert p.corpus.per_domain == {"imdb": 2} and p.training.max_steps == 3
    with pytest.raises(ParamsError, match="training.max_steps"):
        params_from_dict({}, {"training.max_steps": "many"})


def test_openai_backend_needs_url_and_a_variable_name_not_a_key():
    with pytest.raises(ParamsError, match="base_url"):
        params_from_dict({"models": {"teacher": {"backend": "openai"}}})
    with pytest.raises(ParamsError, match="NAME of an environment variable"):
        params_from_dict(
            {
                "models": {
                    "teacher": {"backend": "openai", "base_url": "http://x/v1", "api_key_env": "sk-abc123"}
                }
            }
        )


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_top_level_seed_is_the_default_of_every_seed():
    p = params_from_dict({"seed": 7, "training": {"seed": 3}, "instructions": {"demos": {"seed": 5}}})
    assert (
        p.corpus.seed == p.selection.seed == p.distill_data.decoding.seed == p.attributes.decoding.seed == 7
    )
    assert (
        p.clustering.random_state == 7 and p.evaluation.subset_seed == 7 and p.instructions.analysis.seed == 7
    )
    assert p.training.seed == 3 and p.instructions.demos.seed == 5  # a seed set in its section wins
    assert p.attributes.decoding.max_new_tokens == 1000  # the section's other defaults are untouched
    assert p.evaluation.seeds == [42, 52, 62]  # the demo-seed list is the protocol's, not a default
    assert params_from_dict({}).model_dump() == params_from_dict({"seed": 42}).model_dump()
