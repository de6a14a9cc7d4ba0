"""Stage 06: label masking, packing, a real (tiny) LoRA run, reload and resume."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.core.io import read_json, write_json
from compeffdist_utils.student_training.checkpoints import FINGERPRINT_FILE, drop_stale_checkpoints
from compeffdist_utils.student_training.plots import read_train_log
from compeffdist_utils.student_training.sft_data import (
    IGNORE_INDEX,
    SFTCollator,
    pack_examples,
    render_prompt,
    split_train_eval,
    tokenize_records,
)
from compeffdist_utils.student_training.training import train_student

RECORDS = [
    {
        "instruction": f"Classify the sentiment of the review as positive or negative.\n\nInput: {text}",
        "output": label,
    }
    for text, label in [
        ("A warm, funny and moving film.", "positive"),
        ("Dull plot and wooden acting.", "negative"),
        ("I loved every minute of it.", "positive"),
        ("A waste of two hours.", "negative"),
        ("Brilliant performances all round.", "positive"),
        ("The worst sequel so far.", "negative"),
        ("Charming and clever.", "positive"),
        ("Painfully slow and boring.", "negative"),
    ]
]


def _params(ci_params: Params, **training: Any) -> Params:
    data = ci_params.model_dump(mode="json")
    data["training"].update(
        {
            "max_length": 96,
            "per_device_batch_size": 2,
            "learning_rate": 2e-3,
            "warmup_ratio": 0.0,
            "eval_fraction": 0.25,
            "save_steps": 100,
            **training,
        }
    )
    return params_from_dict(data)


def _mean_output_loss(model: Any, tokenizer: Any, examples: list[dict[str, list[int]]]) -> float:
    import torch

    batch = SFTCollator(tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        return float(model(**batch, use_cache=False).loss)


@pytest.mark.slow
def test_labels_cover_only_the_output(smol: tuple[Any, Any]) -> None:
    _, tok = smol
    rec = RECORDS[0]
    (ex,), report = tokenize_records([rec], tok, max_length=256)
    prompt_ids = tok(render_prompt(tok, rec["instruction"]), add_special_tokens=False)["input_ids"]
    n_prompt = len(prompt_ids)
    assert ex["input_ids"][:n_prompt] == prompt_ids
    assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    answer = [t for t in ex["labels"] if t != IGNORE_INDEX]
    assert answer == ex["input_ids"][n_prompt:]
    # The supervised part is exactly the teacher output plus the end-of-turn marker.
    assert tok.decode(answer).startswith(rec["output"])
    assert tok.eos_token in tok.decode(answer)
    assert rec["instruction"] in tok.decode(ex["input_ids"][:n_prompt])
    assert report.n_examples == 1 and report.skipped == {}


@pytest.mark.slow
def test_bad_and_long_records_are_counted(smol: tuple[Any, Any]) -> None:
    _, tok = smol
    recs = [
        {"instruction": "Say hi.", "output": "hi " * 200},  # truncated
        {"instruction": "", "output": "x"},
        {"instruction": "Say hi.", "output": None},
        {"instruction": "word " * 300, "output": "x"},  # prompt alone exceeds max_length
    ]
    examples, report = tokenize_records(recs, tok, max_length=64)
    assert len(examples) == 1 and len(examples[0]["input_ids"]) == 64
    assert report.n_truncated == 1
    assert report.skipped == {
        "missing instruction": 1,
        "missing output": 1,
        "prompt longer than max_length": 1,
    }


def test_packing_keeps_examples_whole_and_masks_right() -> None:
    examples = [
        {"input_ids": list(range(10, 10 + n)), "labels": [IGNORE_INDEX] * 2 + list(range(12, 10 + n))}
        for n in (5, 7, 3, 10, 4)
    ]
    blocks = pack_examples(examples, max_length=12)
    assert [len(b["input_ids"]) for b in blocks] == [12, 3, 10, 4]  # exact fill, then overflow
    # Labels and tokens of every example come back unchanged and in order; positions restart per example.
    flat_ids = [t for b in blocks for t in b["input_ids"]]
    flat_labels = [t for b in blocks for t in b["labels"]]
    assert flat_ids == [t for e in examples for t in e["input_ids"]]
    assert flat_labels == [t for e in examples for t in e["labels"]]
    assert blocks[0]["position_ids"] == list(range(5)) + list(range(7))
    assert blocks[1]["position_ids"] == list(range(3))
    # No loss crosses a seam: the token that starts an example (position 0) is never a target, so no
    # example's first token is predicted from the previous example's last one.
    for b in blocks:
        assert all(
            lab == IGNORE_INDEX for pos, lab in zip(b["position_ids"], b["labels"], strict=True) if pos == 0
        )
    with pytest.raises(ValueError, match="does not fit"):
        pack_examples([{"input_ids": [1] * 13, "labels": [1] * 13}], max_length=12)


@pytest.mark.slow
def test_packed_forward_matches_unpacked(smol: tuple[Any, Any]) -> None:
    """No attention across example boundaries: packed logits equal each example's own logits."""
    import torch

    model, tok = smol
    examples, _ = tokenize_records(RECORDS[:3], tok, max_length=96)
    (block,) = pack_examples(examples, max_length=96 * 3)
    packed = SFTCollator(tok.pad_token_id)([block])
    assert "attention_mask" not in packed
    with torch.no_grad():
        logits = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits
        start = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex["input_ids"]]), use_cache=False).logits
            n = len(ex["input_ids"])
            torch.testing.assert_close(logits[0, start : start + n], alone[0], atol=2e-4, rtol=1e-4)
            start += n
        # ... so the packed loss is the unpacked loss over the same output tokens.
        unpacked = SFTCollator(tok.pad_token_id)(examples)
        loss_packed = model(**packed, use_cache=False).loss
        loss_unpacked = model(**unpacked, use_cache=False).loss
    torch.testing.assert_close(loss_packed, loss_unpacked, atol=1e-4, rtol=1e-4)


def test_split_is_seeded_and_disjoint() -> None:
    recs = [{"i": i} for i in range(20)]
    train, held = split_train_eval(recs, 0.1, seed=3)
    assert len(held) == 2 and len(train) == 18
    assert {r["i"] for r in train} | {r["i"] for r in held} == set(range(20))
    assert split_train_eval(recs, 0.1, seed=3) == (train, held)
    assert split_train_eval(recs[:2], 0.01, seed=0)[1] != []  # at least one held-out record
    assert split_train_eval(recs, 0.0, seed=0) == (recs, [])


@pytest.mark.slow
def test_lora_training_lowers_loss_and_reloads(smol: tuple[Any, Any], ci_params: Params, tmp_path) -> None:
    import torch

    from compeffdist_utils.models import load_causal_lm

    base_model, tok = smol
    params = _params(ci_params, max_steps=6, logging_steps=2)
    examples, _ = tokenize_records(RECORDS, tok, max_length=96)
    before = _mean_output_loss(base_model, tok, examples)

    trained = copy.deepcopy(base_model)  # peft injects the adapter into this model's layers
    result = train_student(RECORDS, params, tmp_path / "student", base=(trained, tok))
    assert result.completed and result.global_step == 6
    assert result.n_train == 6 and result.n_eval == 2
    assert 0 < result.trainable_params < result.total_params / 10
    rows = read_train_log(tmp_path / "student")
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(r["loss"] is not None and r["eval_loss"] is not None for r in rows)
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"]
    after = _mean_output_loss(trained, tok, examples)
    assert after < 0.7 * before, (before, after)

    # The saved adapter, reloaded the way every later stage loads it, gives the trained logits.
    reloaded, _ = load_causal_lm(result.model_dir, params, device="cpu")  # as the trained model
    batch = SFTCollator(tok.pad_token_id)(examples[:3])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        got = reloaded(**inputs).logits
        want = trained(**inputs).logits
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert not torch.allclose(got, base_model(**inputs).logits, atol=1e-3)


def _step_recorder(stop_at: int | None = None) -> Any:
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        """Records the steps run in this session; optionally stops there, like a crash after a save."""

        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.steps.append(state.global_step)
            if state.global_step == stop_at:
                control.should_training_stop = True

    return StepRecorder()


@pytest.mark.slow
def test_interrupted_training_resumes_from_last_checkpoint(
    smol: tuple[Any, Any], ci_params: Params, tmp_path
) -> None:
    base_model, tok = smol
    params = _params(ci_params, max_steps=4, save_steps=2, eval_fraction=0.0, learning_rate=1e-3)
    out = tmp_path / "student"

    first = _step_recorder(stop_at=2)
    r1 = train_student(RECORDS, params, out, base=(copy.deepcopy(base_model), tok), callbacks=[first])
    assert first.steps == [1, 2] and not r1.completed
    assert (out / "checkpoints" / "checkpoint-2").is_dir()

    second = _step_recorder()
    r2 = train_student(RECORDS, params, out, base=(copy.deepcopy(base_model), tok), callbacks=[second])
    assert second.steps == [3, 4], "the rerun must continue after the saved step, not start again"
    assert r2.resumed_from_step == 2 and r2.global_step == 4 and r2.completed
    assert [r["step"] for r in read_train_log(out)] == [1, 2, 3, 4]

    # A finished run with the same params and data is not trained again.
    r3 = train_student(RECORDS, params, out, base=(copy.deepcopy(base_model), tok))
    assert r3.reused and r3.global_step == 4


def test_checkpoints_of_other_params_are_dropped(tmp_path) -> None:
    ckpt = tmp_path / "checkpoints"
    (ckpt / "checkpoint-2").mkdir(parents=True)
    write_json(ckpt / FINGERPRINT_FILE, {"fingerprint": "old"})
    drop_stale_checkpoints(ckpt, "old", resume=True)
    assert (ckpt / "checkpoint-2").is_dir()  # same params and data: kept for resuming
    drop_stale_checkpoints(ckpt, "new", resume=True)
    assert not (ckpt / "checkpoint-2").exists()
    assert read_json(ckpt / FINGERPRINT_FILE) == {"fingerprint": "new", "world_size": 1}


@pytest.mark.slow
def test_full_fine_tuning_saves_a_reloadable_model(
    smol: tuple[Any, Any], ci_params: Params, tmp_path
) -> None:
    import torch

    from compeffdist_utils.models import load_causal_lm

    base_model, tok = smol
    params = _params(ci_params, method="full", max_steps=1, eval_fraction=0.0, learning_rate=1e-4)
    trained = copy.deepcopy(base_model)
    result = train_student(RECORDS, params, tmp_path / "student", base=(trained, tok))
    assert result.trainable_params == result.total_params
    assert (tmp_path / "student" / "model" / "config.json").is_file()
    reloaded, _ = load_causal_lm(result.model_dir, params, device="cpu")  # as the trained model
    batch = SFTCollator(tok.pad_token_id)(tokenize_records(RECORDS[:2], tok, 96)[0])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        got, want = reloaded(**inputs).logits, trained(**inputs).logits
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert not torch.allclose(got, base_model(**inputs).logits, atol=1e-3)
