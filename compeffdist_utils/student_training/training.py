"""Stage 06: supervised fine-tuning (SFT) of the student on the selected distillation data.

The method trains the student on (instruction, teacher output) pairs with the chat template applied
and the loss on the output only (../shared/method.md, stage 7). The kit does it with the transformers
``Trainer`` (AdamW, schedule, warmup, clipping, accumulation, checkpointing and multi-GPU all come from
transformers/accelerate, so there is no hand-written loop to get subtly wrong) and a peft LoRA adapter by
default; ``training.method: full`` fine-tunes every weight as the paper does.

How records become training examples (chat template, loss on the output only, packing) is
:mod:`.sft_data`; the trained student's answers are :mod:`.inference`'s, its learning curve
:mod:`.training_report`'s.

Files written under the output folder (``student/`` in a run): ``model/`` (adapter or full model plus
tokenizer, reload with ``models.load_causal_lm(str(folder), params)``, which handles both kinds),
``train_log.jsonl`` {step, epoch, loss, eval_loss, learning_rate}, ``checkpoints/`` and ``summary.json``.
An interrupted training resumes from its last checkpoint when rerun with the same params and data; a
change of params or data starts afresh (the old checkpoints are deleted, with a log message).

Paper-scale training on several GPUs (data parallel, one process per GPU)::

    accelerate launch --multi_gpu --num_processes 8 -m compeffdist_utils.student_training.training \\
        --params params/paper.yaml --run-dir reports/paper

The same command with ``--num_processes 2`` on a machine without GPUs runs two CPU processes over gloo
(tests/student_training/test_training_ddp.py). ``--cpu --num_processes 2`` does NOT: accelerate then starts a single
process (multi-CPU needs mpirun). The main process alone writes ``train_log.jsonl``, ``summary.json``
(with ``num_processes``) and the model; each process saves its RNG state in the checkpoints. A run whose
process was killed resumes from its last complete checkpoint when relaunched with the same command;
relaunching with another number of processes is refused (other samples would be skipped).

On one GPU or CPU: ``python -m compeffdist_utils.student_training.training --params params/tiny.yaml``. Full fine-tuning of
a 3-4B student does not fit plain data parallelism on small GPUs; add an FSDP accelerate config
(``accelerate config``, then ``accelerate launch --config_file fsdp.yaml -m compeffdist_utils.student_training.training
...``). Afterwards notebook 06 finds the finished run (same params, same data) and only reports on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import (
    Params,
    ParamsError,
    TrainingParams,
    load_params,
    parse_set_overrides,
)
from compeffdist_utils.core.io import read_json, read_jsonl, write_json, write_jsonl
from compeffdist_utils.models import load_causal_lm, peft_quietly, pick_device, resolve_dtype
from compeffdist_utils.student_training.sft_data import (
    SFTCollator,
    pack_examples,
    split_train_eval,
    tokenize_records,
)

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
LOG_FILE = "train_log.jsonl"
FINGERPRINT_FILE = "fingerprint.json"


# -- logging and bookkeeping -------------------------------------------------------------------------


def _log_callback_class() -> type[TrainerCallback]:
    from transformers import TrainerCallback

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


@dataclass
class TrainResult:
    """What a training run did; saved as ``summary.json`` next to the model.

    Token counts: ``tokens_per_epoch`` sums the training examples' tokens (prompt + output, no
    padding); ``train_tokens`` = that x ``epochs_done`` (exact for whole epochs, an estimate for a
    partial one); ``processed_tokens`` counts every position the model processed, padding included
    (the Trainer's count over all processes), so 1 - train/processed is the share spent on padding.
    ``train_seconds`` covers this session only (a resumed run does not add the earlier sessions).
    """

    out_dir: str
    model_dir: str
    method: str
    base_model: str
    fingerprint: str
    completed: bool
    n_records: int
    n_train: int
    n_eval: int
    n_truncated: int
    skipped: dict[str, int]
    packing: bool
    n_sequences: int
    tokens_per_epoch: int
    train_tokens: int
    processed_tokens: int
    global_step: int
    max_steps: int
    epochs_done: float
    train_seconds: float
    resumed_from_step: int
    trainable_params: int
    total_params: int
    final_train_loss: float | None
    final_eval_loss: float | None
    reused: bool = False
    num_processes: int = 1  # data-parallel processes (accelerate launch); the effective batch scales with it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(records: Sequence[dict[str, Any]], params: Params) -> str:
    """What decides the trained weights: data, student spec, dtype and training settings."""
    h = hashlib.sha256()
    meta = {
        "student": params.models.student,
        "dtype": params.models.dtype,
        "training": params.training.model_dump(mode="json"),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for rec in records:
        h.update(json.dumps([rec.get("instruction"), rec.get("output")]).encode())
    return h.hexdigest()[:16]


def _prepare_checkpoints(
    ckpt_dir: Path, fp: str, resume: bool, is_main: bool, world_size: int = 1
) -> str | None:
    """The checkpoint to resume from, after dropping checkpoints that belong to other params or data.

    Every process first checks the world size (so all of them stop, none waits forever); only the main
    process deletes; the others wait for it, then all agree on the same checkpoint.
    """
    from accelerate import PartialState

    if resume:
        _refuse_other_world_size(ckpt_dir, fp, world_size)
    if is_main:
        _drop_stale_checkpoints(ckpt_dir, fp, resume, world_size)
    PartialState().wait_for_everyone()
    return _last_complete_checkpoint(ckpt_dir) if resume else None


def _refuse_other_world_size(ckpt_dir: Path, fp: str, world_size: int) -> None:
    """Resuming with another number of processes would skip other samples than were trained on (the
    Trainer skips whole steps of the old effective batch): refuse it rather than train on a silent mix."""
    fp_file = ckpt_dir / FINGERPRINT_FILE
    saved = read_json(fp_file) if fp_file.exists() else {}
    old = saved.get("world_size", 1)
    if saved.get("fingerprint") == fp and old != world_size and any(ckpt_dir.glob("checkpoint-*")):
        raise RuntimeError(
            f"the checkpoints in {ckpt_dir} were written by a {old}-process training and this one has "
            f"{world_size}: resume with `accelerate launch --num_processes {old} ...`, or start afresh "
            "with --no-resume"
        )


def _last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint whose trainer state was written: the main process writes it last, so a
    checkpoint cut short by a killed process is passed over for the one before."""
    steps = [
        int(p.name.split("-")[-1])
        for p in ckpt_dir.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(ckpt_dir / f"checkpoint-{max(steps)}") if steps else None


def _drop_stale_checkpoints(ckpt_dir: Path, fp: str, resume: bool, world_size: int = 1) -> None:
    fp_file = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists():
        old = read_json(fp_file).get("fingerprint") if fp_file.exists() else None
        if old != fp or not resume:
            if any(ckpt_dir.glob("checkpoint-*")):
                why = "params or data changed" if old != fp else "resume is off"
                log.warning("deleting old checkpoints in %s (%s); training starts afresh", ckpt_dir, why)
            shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(fp_file, {"fingerprint": fp, "world_size": world_size})


def training_arguments(tp: TrainingParams, ckpt_dir: Path, has_eval: bool, device: str) -> Any:
    """TrainingArguments carrying the method's optimiser/schedule settings from ``params.training``."""
    from transformers import TrainingArguments

    eval_steps = tp.eval_steps or tp.logging_steps
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=tp.per_device_batch_size,
        per_device_eval_batch_size=tp.per_device_batch_size,
        gradient_accumulation_steps=tp.gradient_accumulation_steps,
        num_train_epochs=tp.epochs,
        max_steps=tp.max_steps,
        learning_rate=tp.learning_rate,
        lr_scheduler_type=tp.lr_scheduler,
        warmup_steps=tp.warmup_ratio,  # a float in [0, 1) is read as a fraction of the total steps
        optim="adamw_torch",
        weight_decay=tp.weight_decay,
        adam_beta1=tp.adam_beta1,
        adam_beta2=tp.adam_beta2,
        max_grad_norm=tp.max_grad_norm,
        bf16=tp.bf16,
        activation_checkpointing=tp.gradient_checkpointing,
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
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable weight (adapter or full) takes part in each step
    )


def _wrap_model(model: Any, params: Params) -> Any:
    """Attach a LoRA adapter (default) or leave every weight trainable (``method: full``)."""
    tp = params.training
    if tp.gradient_checkpointing:
        model.config.use_cache = False
    if tp.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

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


def _name_base_by_spec(model_dir: Path, spec: str) -> None:
    """Make the saved adapter name its base by the params spec (e.g. ``embedded:...``) rather than a
    machine-specific cache path, so ``models.load_causal_lm`` finds the base on any machine."""
    cfg_path = model_dir / "adapter_config.json"
    if cfg_path.exists():
        cfg = read_json(cfg_path)
        cfg["base_model_name_or_path"] = spec
        write_json(cfg_path, cfg)


def _count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def _last(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return vals[-1] if vals else None


# -- the run -----------------------------------------------------------------------------------------


def completed_run(
    records: Sequence[dict[str, Any]], params: Params, out_dir: str | Path
) -> TrainResult | None:
    """The summary (``reused=True``) of a finished run in ``out_dir`` on the same params and data, else None.

    Callers that only need the trained model check this first, so a finished run costs one model load.
    """
    out = Path(out_dir)
    model_dir, summary_path = out / "model", out / SUMMARY_FILE
    saved = (model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()
    if not (saved and summary_path.exists()):
        return None
    done = read_json(summary_path)
    if done.get("fingerprint") != fingerprint(records, params) or not done.get("completed"):
        return None
    done["reused"] = True
    return TrainResult(**done)


def train_student(
    records: Sequence[dict[str, Any]],
    params: Params,
    out_dir: str | Path,
    *,
    base: tuple[Any, Any] | None = None,
    resume: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Fine-tune the student on ``records`` ({instruction, output}); write model, log and summary.

    ``base`` = (model, tokenizer) to train instead of loading ``params.models.student`` (the model is
    modified in place, so after the call it IS the trained model). If ``out_dir`` already holds a completed
    run with the same fingerprint (params and data), its summary is returned without training
    (``reused=True``); an unfinished one resumes from its last checkpoint unless ``resume`` is off.
    ``callbacks`` are extra ``TrainerCallback`` objects (tests use one to simulate a crash).
    """
    from transformers import Trainer, set_seed

    tp = params.training
    out = Path(out_dir)
    model_dir, ckpt_dir, log_path = out / "model", out / "checkpoints", out / LOG_FILE
    fp = fingerprint(records, params)
    if resume and (done := completed_run(records, params, out)) is not None:
        return done

    train_recs, eval_recs = split_train_eval(records, tp.eval_fraction, tp.seed)
    set_seed(tp.seed)
    if base is None:  # dtype auto trains fp32 weights (bf16 training is training.bf16)
        base = load_causal_lm(
            params.models.student, params, dtype=resolve_dtype(params.models.dtype, training=True)
        )
    model, tokenizer = base
    train_ex, report = tokenize_records(train_recs, tokenizer, tp.max_length)
    eval_ex, eval_report = tokenize_records(eval_recs, tokenizer, tp.max_length)
    if not train_ex:
        raise ValueError(
            f"no usable training examples among {len(train_recs)} records (skipped: {report.skipped})"
        )
    for reason, n in eval_report.skipped.items():
        report.skipped[f"eval: {reason}"] = n
    train_ds = pack_examples(train_ex, tp.max_length) if tp.packing else train_ex
    tokens_per_epoch = sum(len(ex["input_ids"]) for ex in train_ex)

    model = _wrap_model(model, params)
    trainable, total = _count_params(model)
    device = pick_device(params.models.device)
    args = training_arguments(tp, ckpt_dir, bool(eval_ex), device)
    resume_from = _prepare_checkpoints(ckpt_dir, fp, resume, args.process_index == 0, args.world_size)
    if resume_from is None and args.process_index == 0:
        log_path.unlink(missing_ok=True)

    trainer = Trainer(
        model=model,
        args=args,
        data_collator=SFTCollator(tokenizer.pad_token_id),
        train_dataset=train_ds,
        eval_dataset=eval_ex or None,
        processing_class=tokenizer,
        callbacks=[_log_callback_class()(log_path), *callbacks],
    )
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.time() - t0
    state = trainer.state
    completed = state.global_step >= state.max_steps
    trainer.save_model(str(model_dir))
    if trainer.is_world_process_zero():
        _name_base_by_spec(model_dir, params.models.student)

    rows = read_jsonl(log_path) if log_path.exists() else []
    result = TrainResult(
        out_dir=str(out),
        model_dir=str(model_dir),
        method=tp.method,
        base_model=params.models.student,
        fingerprint=fp,
        completed=completed,
        n_records=len(records),
        n_train=report.n_examples,
        n_eval=len(eval_ex),
        n_truncated=report.n_truncated,
        skipped=report.skipped,
        packing=tp.packing,
        n_sequences=len(train_ds),
        tokens_per_epoch=tokens_per_epoch,
        train_tokens=round(tokens_per_epoch * float(state.epoch or 0.0)),
        processed_tokens=int(state.num_input_tokens_seen),
        global_step=state.global_step,
        max_steps=state.max_steps,
        epochs_done=round(float(state.epoch or 0.0), 4),
        train_seconds=round(seconds, 2),
        resumed_from_step=int(Path(resume_from).name.split("-")[-1]) if resume_from else 0,
        trainable_params=trainable,
        total_params=total,
        final_train_loss=_last(rows, "loss"),
        final_eval_loss=_last(rows, "eval_loss"),
        num_processes=args.world_size,
    )
    if trainer.is_world_process_zero():
        write_json(out / SUMMARY_FILE, result.as_dict())
    model.eval()
    return result


# -- command line (accelerate launch -m compeffdist_utils.student_training.training ...) -------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m compeffdist_utils.student_training.training",
        description="Stage 06: fine-tune the student on the selected data (works under accelerate launch).",
    )
    ap.add_argument("--params", required=True, help="params YAML, e.g. params/paper.yaml")
    ap.add_argument("--run-dir", default=None, help="run folder (default: reports/<run_name>)")
    ap.add_argument(
        "--data", default=None, help="training JSONL (default: <run-dir>/selection/selected.jsonl)"
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted-key overrides")
    ap.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        params = load_params(ns.params, parse_set_overrides(ns.set))
    except ParamsError as err:
        raise SystemExit(str(err)) from None
    run_dir = Path(ns.run_dir) if ns.run_dir else params.run_dir(Path.cwd())
    data = Path(ns.data) if ns.data else run_dir / "selection" / "selected.jsonl"
    if not data.is_file():
        raise SystemExit(f"training data not found: {data} (run stage 05 first, or pass --data)")
    result = train_student(read_jsonl(data), params, run_dir / "student", resume=not ns.no_resume)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
