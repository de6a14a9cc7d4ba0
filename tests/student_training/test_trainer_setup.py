"""TrainingArguments across the transformers range: both names of gradient checkpointing, fused AdamW."""

import inspect

import pytest

from compeffdist_utils.core.config import TrainingParams
from compeffdist_utils.student_training import trainer_setup
from compeffdist_utils.student_training.trainer_setup import checkpointing_kwarg, optimizer_name


class Args517:
    """TrainingArguments' signature as transformers 5.17 has it: no activation_checkpointing (a TypeError)."""

    seen: dict = {}

    def __init__(self, output_dir: str, gradient_checkpointing: bool = False, **kw):
        if "activation_checkpointing" in kw:
            raise TypeError("unexpected keyword argument 'activation_checkpointing'")
        type(self).seen = {"gradient_checkpointing": gradient_checkpointing, **kw}


class Args524:
    """5.24: activation_checkpointing, with gradient_checkpointing kept as a deprecated alias."""

    seen: dict = {}

    def __init__(
        self, output_dir: str, activation_checkpointing: bool = False, gradient_checkpointing=None, **kw
    ):
        type(self).seen = {"activation_checkpointing": activation_checkpointing, **kw}
        if gradient_checkpointing is not None:
            type(self).seen["gradient_checkpointing"] = gradient_checkpointing


def test_the_checkpointing_kwarg_follows_the_signature():
    assert checkpointing_kwarg(Args517) == "gradient_checkpointing"
    assert checkpointing_kwarg(Args524) == "activation_checkpointing"
    from transformers import TrainingArguments

    assert checkpointing_kwarg(TrainingArguments) in inspect.signature(TrainingArguments.__init__).parameters


@pytest.mark.parametrize(
    "cls,name", [(Args517, "gradient_checkpointing"), (Args524, "activation_checkpointing")]
)
def test_training_arguments_pass_checkpointing_under_either_name(cls, name, monkeypatch, tmp_path):
    import transformers

    monkeypatch.setattr(transformers, "TrainingArguments", cls)
    trainer_setup.training_arguments(TrainingParams(gradient_checkpointing=True), tmp_path, False, "cpu")
    assert cls.seen[name] is True
    other = {"gradient_checkpointing", "activation_checkpointing"} - {name}
    assert not other & set(cls.seen), "the other name is a TypeError (5.17) or a deprecated alias (5.24)"


def test_the_real_training_arguments_accept_the_kits_settings(tmp_path):
    args = trainer_setup.training_arguments(
        TrainingParams(gradient_checkpointing=True), tmp_path, True, "cpu"
    )
    assert args.optim == "adamw_torch"
    assert getattr(args, checkpointing_kwarg(type(args))) is True


def test_fused_adamw_on_cuda_only():
    assert optimizer_name("cuda") == optimizer_name("cuda:1") == "adamw_torch_fused"
    assert optimizer_name("cpu") == "adamw_torch"
