"""Depth-pruned students: the layer rule, the spec syntax, the cached build and its reload.

The build tests use a tiny random Llama (4 layers, hidden size 32) saved into tmp_path, so they run in
seconds; the embedded SmolLM2 goes through the same code path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compeffdist_utils.core.config import ParamsError, params_from_dict
from compeffdist_utils.core.model_spec import PruneSpecError, normalise_spec, parse_pruned_spec
from compeffdist_utils.models import ModelSpecError, load_causal_lm, pruning, resolve_model_path
from compeffdist_utils.models.pruning import kept_layers


def test_spread_keeps_first_and_last_and_spaces_the_rest_evenly():
    assert kept_layers(30, 15) == [0, 2, 4, 6, 8, 10, 12, 15, 17, 19, 21, 23, 25, 27, 29]
    assert kept_layers(30, 2) == [0, 29]
    assert kept_layers(30, 1) == [0]
    assert kept_layers(4, 3) == [0, 2, 3]
    for n in range(2, 40):
        for k in range(1, n):
            got = kept_layers(n, k)
            assert len(got) == k and got == sorted(set(got)) and got[0] == 0
            if k > 1:
                assert got[-1] == n - 1
                gaps = [b - a for a, b in zip(got, got[1:], strict=False)]
                assert max(gaps) - min(gaps) <= 1  # as even as whole layers allow


def test_front_drops_one_block_of_deep_layers_but_keeps_the_last():
    assert kept_layers(30, 15, "front") == [*range(14), 29]
    assert kept_layers(4, 1, "front") == [3]


def test_layer_rule_rejects_nonsense():
    with pytest.raises(PruneSpecError, match="between 1 and 29"):
        kept_layers(30, 30)
    with pytest.raises(PruneSpecError, match="between 1 and 29"):
        kept_layers(30, 0)
    with pytest.raises(PruneSpecError, match="rule must be one of"):
        kept_layers(30, 10, "middle")


def test_spec_syntax_string_and_mapping_give_one_canonical_form():
    ps = parse_pruned_spec("embedded:smollm2-135m-instruct#keep_layers=15")
    assert (ps.base, ps.keep_layers, ps.rule) == ("embedded:smollm2-135m-instruct", 15, "spread")
    assert parse_pruned_spec("embedded:smollm2-135m-instruct") is None
    assert parse_pruned_spec("a/b#rule=front, keep_layers=3").spec == "a/b#keep_layers=3,rule=front"
    mapping = {"base": "embedded:smollm2-135m-instruct", "keep_layers": 15}
    assert normalise_spec(mapping) == ps.spec
    p = params_from_dict({"models": {"student": mapping}, "evaluation": {"models": {"small": mapping}}})
    assert p.models.student == ps.spec
    assert p.evaluation.models["small"] == ps.spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("m#keep_layers=x", "whole number"),
        ("m#keep_layers=2.5", "whole number"),
        ("m#keep_layers=0", ">= 1"),
        ("m#rule=front", "keep_layers is missing"),
        ("m#keep_layers=3,rule=middle", "rule must be one of"),
        ("m#keep=3", "cannot read 'keep=3'"),
        ("#keep_layers=3", "'base' must be"),
    ],
)
def test_bad_specs_fail_when_params_load_naming_the_field(spec, message):
    with pytest.raises(ParamsError, match=rf"(?s)models\.student.*{message}"):
        params_from_dict({"models": {"student": spec}})


def test_bad_mapping_names_the_unknown_key():
    with pytest.raises(ParamsError, match=r"unknown: \['layers'\]"):
        params_from_dict({"models": {"student": {"base": "m", "layers": 3}}})


def test_build_keeps_the_chosen_layers_and_reloads_like_any_folder(tiny_llama, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    cache = tmp_path / "cache"
    spec = f"{tiny_llama}#keep_layers=3"
    folder = resolve_model_path(spec, cache)
    recipe = json.loads(Path(folder, pruning.RECIPE_FILE).read_text())
    assert recipe["kept_layers"] == [0, 2, 3] and recipe["base_layers"] == 4
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    small = AutoModelForCausalLM.from_pretrained(folder)
    assert small.config.num_hidden_layers == 3
    base_sd, small_sd = base.state_dict(), small.state_dict()
    for new, old in enumerate([0, 2, 3]):
        w = "self_attn.q_proj.weight"
        assert torch.equal(small_sd[f"model.layers.{new}.{w}"], base_sd[f"model.layers.{old}.{w}"])
    assert torch.equal(small_sd["model.embed_tokens.weight"], base_sd["model.embed_tokens.weight"])
    # Through the params path: the KV cache works with the renumbered layers (cached = uncached greedy).
    params = params_from_dict({"cache_dir": str(cache), "models": {"student": spec}})
    model, tok = load_causal_lm(params.models.student, params, device="cpu")
    enc = tok(["The film was"], return_tensors="pt")
    with torch.inference_mode():
        cached = model.generate(**enc, max_new_tokens=6, do_sample=False, use_cache=True)
        uncached = model.generate(**enc, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def test_build_is_deterministic_cached_and_follows_the_base(tiny_llama, tmp_path, monkeypatch):
    spec = f"{tiny_llama}#keep_layers=3,rule=front"
    a = resolve_model_path(spec, tmp_path / "c1")
    b = resolve_model_path(spec, tmp_path / "c2")
    assert Path(a, "model.safetensors").read_bytes() == Path(b, "model.safetensors").read_bytes()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("a built folder must be reused")

    monkeypatch.setattr(pruning, "_build", no_rebuild)
    assert resolve_model_path(spec, tmp_path / "c1") == a
    # A different rule, or a changed base model, is a different folder (here: it would build).
    with pytest.raises(AssertionError, match="reused"):
        resolve_model_path(f"{tiny_llama}#keep_layers=3", tmp_path / "c1")
    cfg = json.loads((tiny_llama / "config.json").read_text())
    (tiny_llama / "config.json").write_text(json.dumps(cfg | {"rms_norm_eps": 1e-5}))
    with pytest.raises(AssertionError, match="reused"):
        resolve_model_path(spec, tmp_path / "c1")


def test_interrupted_build_leaves_nothing_that_loads(tiny_llama, tmp_path, monkeypatch):
    import transformers

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        resolve_model_path(f"{tiny_llama}#keep_layers=2", tmp_path / "c")
    assert list((tmp_path / "c" / "models" / "pruned").iterdir()) == []


def test_build_errors_name_the_spec(tiny_llama, tmp_path):
    with pytest.raises(ModelSpecError, match=r"keep_layers=4'.*between 1 and 3"):
        resolve_model_path(f"{tiny_llama}#keep_layers=4", tmp_path)
    with pytest.raises(ModelSpecError, match="model folder not found"):
        resolve_model_path("./no/such/model#keep_layers=2", tmp_path)


def test_non_llama_models_are_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(PruneSpecError, match="Llama-family decoder"):
        pruning.prune_model(model, [0])
