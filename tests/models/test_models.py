import pytest

from compeffdist_utils.core.config import Params
from compeffdist_utils.models import (
    ModelSpecError,
    embed_texts,
    load_causal_lm,
    resolve_alias,
    resolve_model_path,
)
from compeffdist_utils.models import specs as models


def test_unknown_embedded_spec_lists_what_is_available(tmp_path):
    with pytest.raises(
        ModelSpecError, match=r"(?s)unknown embedded model 'embedded:gpt5'.*embedded:smollm2-135m-instruct"
    ):
        resolve_model_path("embedded:gpt5", tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSpecError, match="model folder not found: './no/such/model'"):
        resolve_model_path("./no/such/model", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSpecError, match="not a model folder"):
        resolve_model_path(str(tmp_path / "empty"), tmp_path)


def test_hub_id_offline_names_the_spec_and_the_alternatives(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what the error message reads
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import time
    p = Params(cache_dir=str(tmp_path))
    with pytest.raises(
        ModelSpecError,
        match=r"(?s)cannot load model 'nobody-here/not-a-model'.*HF_HUB_OFFLINE.*available specs",
    ):
        load_causal_lm("nobody-here/not-a-model", p)


def test_aliases():
    p = Params()
    assert resolve_alias("student", p) == p.models.student
    assert resolve_alias("teacher", p) == p.models.teacher.model
    assert resolve_alias("some/model", p) == "some/model"
    p2 = Params.model_validate({"models": {"teacher": {"backend": "openai", "base_url": "http://h:1/v1"}}})
    with pytest.raises(ModelSpecError, match="http://h:1/v1"):
        resolve_alias("teacher", p2)


def test_interrupted_conversion_leaves_no_cache_that_would_load(tmp_path, monkeypatch):
    """A conversion that dies halfway must not leave a folder that later counts as converted."""

    class Boom(RuntimeError):
        pass

    import transformers

    def explode(*a, **k):
        raise Boom("killed halfway")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", explode)
    with pytest.raises(Boom):
        models.embedded_smollm_dir(tmp_path)
    models_dir = tmp_path / "models"
    assert not (models_dir / "smollm2-135m-instruct").exists()
    assert list(models_dir.iterdir()) == []  # the temporary folder was cleaned up too


def test_incomplete_cache_folder_is_converted_again(tmp_path, monkeypatch):
    target = tmp_path / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # e.g. left by a copy that was cut short
    calls = []
    monkeypatch.setattr(models, "_convert_gguf", lambda d, n, t: calls.append(t))
    models.embedded_smollm_dir(tmp_path)
    assert calls == [target]


@pytest.mark.slow
def test_embedded_models_load_and_run(smol, ci_params):
    import torch

    model, tok = smol
    assert tok.pad_token is not None and tok.padding_side == "left"
    with torch.no_grad():
        logits = model(**tok(["Hello"], return_tensors="pt")).logits
    assert logits.shape[-1] == model.config.vocab_size
    vecs = embed_texts("embedded:minilm-l6", ["sarcasm", "irony", "value for money"], ci_params)
    assert vecs.shape == (3, 384)
    assert abs(float((vecs**2).sum(1).mean()) - 1.0) < 1e-4
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]  # related names lie closer
