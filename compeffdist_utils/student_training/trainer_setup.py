"""Stage 06's trainer setup: the ``TrainingArguments`` from ``params.training``, the LoRA adapter (or full
fine-tuning), the callback that writes ``train_log.jsonl``, where the Trainer reports (``training.report_to``:
TensorBoard event files in ``student/tensorboard/`` by default) and the saved adapter's base name.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import Params, TrainingParams
from compeffdist_utils.core.io import read_json, read_jsonl, write_json, write_jsonl
from compeffdist_utils.models import peft_quietly

if TYPE_CHECKING:
    from transformers import TrainerCallback


def log_callback_class() -> type[TrainerCallback]:
    """The ``train_log.jsonl`` callback's class, defined on first use so that transformers loads only then."""
    from transformers import TrainerCallback  # deferred: heavy, only when training

    class TrainLogCallback(TrainerCallback):
        """Writes train and eval loss per step to ``train_log.jsonl`` (one row per step, rewritten whole).

        On a resumed run the rows up to the checkpoint's step are kept, so the curve stays continuous.
        """

        def __init__(self, path: Path):
            self.path = path
            self.rows: dict[int, dict[str, Any]] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and self.path.exists():
                self.rows = {r["step"]: r for r in read_jsonl(self.path) if r["step"] <= state.global_step}

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any
        ):
            keys = ("loss", "eval_loss", "learning_rate")
            if not state.is_world_process_zero or not logs or not any(k in logs for k in keys):
                return
            empty = {"step": state.global_step, "epoch": None, **dict.fromkeys(keys)}
            row = self.rows.setdefault(state.global_step, empty)
            for k in keys:
                if k in logs:
                    row[k] = float(logs[k])
            row["epoch"] = round(float(state.epoch or 0.0), 4)
            write_jsonl(self.path, [self.rows[s] for s in sorted(self.rows)])

    return TrainLogCallback


TENSORBOARD_DIR = "tensorboard"  # beside model/ and train_log.jsonl in the training's output folder
# training.report_to -> the package it needs (importable name, pip name)
REPORT_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
                   "mlflow": ("mlflow", "mlflow")}  # fmt: skip


def check_report_to(tp: TrainingParams) -> None:
    """Fail before any model is loaded when ``training.report_to`` names a package that is not installed."""
    if tp.report_to == "none":
        return
    module, dist = REPORT_PACKAGES[tp.report_to]
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"training.report_to is {tp.report_to!r} but the package {dist!r} is not installed in this "
            f"environment: `.venv/bin/pip install {dist}`, or set training.report_to to tensorboard or none"
        )


def report_callbacks(tp: TrainingParams, out_dir: Path) -> list[TrainerCallback]:
    """The TensorBoard callback writing into ``<out_dir>/tensorboard/`` (not the checkpoints' folder, which a
    fresh start deletes); wandb and mlflow go through ``TrainingArguments.report_to`` instead."""
    if tp.report_to != "tensorboard":
        return []
    from transformers.integrations import TensorBoardCallback  # deferred: heavy, only when training

    callback = TensorBoardCallback()
    callback.logging_dir = str(out_dir / TENSORBOARD_DIR)  # read at train begin (transformers 5.x)
    return [callback]


def checkpointing_kwarg(args_class: type) -> str:
    """The name TrainingArguments gives gradient (activation) checkpointing in the installed transformers.

    transformers 5.17 has only ``gradient_checkpointing``; 5.24 renamed it ``activation_checkpointing``
    and keeps the old name as a deprecated alias (to go in v6). Asking the signature, not the version,
    keeps the kit working on every 5.x from 5.17 to the pin (issue 23: 5.17 raised a TypeError here).
    """
    names = inspect.signature(args_class.__init__).parameters
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def optimizer_name(device: str) -> str:
    """AdamW, fused into one kernel per step on CUDA (same update rule, fewer launches); plain on CPU."""
    return "adamw_torch_fused" if device.startswith("cuda") else "adamw_torch"


def training_arguments(tp: TrainingParams, ckpt_dir: Path, has_eval: bool, device: str) -> Any:
    """TrainingArguments carrying the method's optimiser/schedule settings from ``params.training``."""
    from transformers import TrainingArguments  # deferred: heavy, only when training

    eval_steps = tp.eval_steps or tp.logging_steps
    checkpointing = {checkpointing_kwarg(TrainingArguments): tp.gradient_checkpointing}
    return TrainingArguments(
        **checkpointing,
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=tp.per_device_batch_size,
        per_device_eval_batch_size=tp.per_device_batch_size,
        gradient_accumulation_steps=tp.gradient_accumulation_steps,
        num_train_epochs=tp.epochs,
        max_steps=tp.max_steps,
        learning_rate=tp.learning_rate,
        lr_scheduler_type=tp.lr_scheduler,
        warmup_steps=tp.warmup_ratio,  # a float in [0, 1) is read as a fraction of the total steps
        optim=optimizer_name(device),
        weight_decay=tp.weight_decay,
        adam_beta1=tp.adam_beta1,
        adam_beta2=tp.adam_beta2,
        max_grad_norm=tp.max_grad_norm,
        bf16=tp.bf16,
        logging_strategy="steps",
        logging_steps=tp.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=tp.save_steps,
        save_total_limit=tp.save_total_limit,
        seed=tp.seed,
        data_seed=tp.seed,
        use_cpu=device == "cpu",
        report_to=[tp.report_to] if tp.report_to in ("wandb", "mlflow") else "none",  # tensorboard: ours
        remove_unused_columns=False,
        label_names=["labels"],
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable weight (adapter or full) takes part in each step
    )


def wrap_model(model: Any, params: Params) -> Any:
    """Attach a LoRA adapter (default) or leave every weight trainable (``method: full``)."""
    tp = params.training
    if tp.gradient_checkpointing:
        model.config.use_cache = False
    if tp.method == "full":
        return model
    from peft import LoraConfig, get_peft_model  # deferred: heavy, only for a LoRA run

    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=tp.lora_r,
        lora_alpha=tp.lora_alpha,
        lora_dropout=tp.lora_dropout,
        target_modules=list(tp.target_modules),
    )
    try:
        with peft_quietly():
            peft_model = get_peft_model(model, config)
    except ValueError as err:
        raise ValueError(
            f"training.target_modules {tp.target_modules} do not match the student's layers: {err}"
        ) from None
    if tp.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model


def name_base_by_spec(model_dir: Path, spec: str) -> None:
    """Make the saved adapter name its base by the params spec (e.g. ``embedded:...``) rather than a
    machine-specific cache path, so ``models.load_causal_lm`` finds the base on any machine."""
    cfg_path = model_dir / "adapter_config.json"
    if cfg_path.exists():
        cfg = read_json(cfg_path)
        cfg["base_model_name_or_path"] = spec
        write_json(cfg_path, cfg)


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
