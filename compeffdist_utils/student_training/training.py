"""Stage 06: supervised fine-tuning (SFT) of the student on the selected distillation data.

The method trains the student on (instruction, teacher output) pairs with the chat template applied
and the loss on the output only (docs/METHOD.md, step 7). The kit does it with the transformers
``Trainer`` (AdamW, schedule, warmup, clipping, accumulation, checkpointing and multi-GPU all come from
transformers/accelerate, so there is no hand-written loop to get subtly wrong) and a peft LoRA adapter by
default; ``training.method: full`` fine-tunes every weight as the paper does.

How records become training examples (chat template, loss on the output only, packing) is
:mod:`.sft_data`; the Trainer's settings, the LoRA adapter and the loss log :mod:`.trainer_setup`; which
checkpoint a run resumes from :mod:`.checkpoints`; the trained student's answers are :mod:`.inference`'s,
its learning curve :mod:`.plots`'.

Files written under the output folder (``student/`` in a run): ``model/`` (adapter or full model plus
tokenizer, reload with ``models.load_causal_lm(str(folder), params)``, which handles both kinds),
``train_log.jsonl`` {step, epoch, loss, eval_loss, learning_rate}, ``checkpoints/``, ``summary.json`` and,
with ``training.report_to: tensorboard`` (the default), TensorBoard event files in ``tensorboard/``
(``tensorboard --logdir reports/<run>/student/tensorboard``).
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
a 3-4B student does not fit plain data parallelism on small GPUs; the shipped FSDP config shards it over
2 x 40 GB (``accelerate launch --config_file configs/accelerate/fsdp_2x40gb.yaml -m
compeffdist_utils.student_training.training ...``, the full command in the README, *Paper scale*).
Afterwards notebook 06 finds the finished run (same params, same data) and only reports on it.
"""

from __future__ import annotations

import argparse
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
from compeffdist_utils.core.io import read_json, read_jsonl, write_json
from compeffdist_utils.models import load_causal_lm, pick_device, resolve_dtype
from compeffdist_utils.student_training.checkpoints import fingerprint, prepare_checkpoints
from compeffdist_utils.student_training.sft_data import (
    SFTCollator,
    TokenizeReport,
    pack_examples,
    split_train_eval,
    tokenize_records,
)
from compeffdist_utils.student_training.trainer_setup import (
    TENSORBOARD_DIR,
    check_report_to,
    count_params,
    log_callback_class,
    name_base_by_spec,
    report_callbacks,
    training_arguments,
    wrap_model,
)

if TYPE_CHECKING:
    from transformers import Trainer, TrainerCallback

SUMMARY_FILE = "summary.json"
LOG_FILE = "train_log.jsonl"


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


@dataclass
class TrainingData:
    """The tokenised examples of one run: what is trained on (packed or not), the held-out ones, and the
    tokenising report (skipped records, the held-out ones' under ``eval: <reason>``)."""

    train: list[dict[str, list[int]]]
    eval: list[dict[str, list[int]]]
    report: TokenizeReport
    tokens_per_epoch: int  # prompt + output tokens of the training examples, no padding


def tokenize_for_training(
    train_recs: Sequence[dict[str, Any]],
    eval_recs: Sequence[dict[str, Any]],
    tokenizer: Any,
    tp: TrainingParams,
) -> TrainingData:
    """Tokenise the training and held-out records and pack the training ones when ``training.packing``."""
    train_ex, report = tokenize_records(train_recs, tokenizer, tp.max_length)
    eval_ex, eval_report = tokenize_records(eval_recs, tokenizer, tp.max_length)
    if not train_ex:
        raise ValueError(
            f"no usable training examples among {len(train_recs)} records (skipped: {report.skipped})"
        )
    for reason, n in eval_report.skipped.items():
        report.skipped[f"eval: {reason}"] = n
    train = pack_examples(train_ex, tp.max_length) if tp.packing else train_ex
    return TrainingData(train, eval_ex, report, sum(len(ex["input_ids"]) for ex in train_ex))


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
    from transformers import Trainer, set_seed  # deferred: heavy, only when training

    tp = params.training
    out = Path(out_dir)
    model_dir, log_path = out / "model", out / LOG_FILE
    if resume and (done := completed_run(records, params, out)) is not None:
        return done
    check_report_to(tp)

    train_recs, eval_recs = split_train_eval(records, tp.eval_fraction, tp.seed)
    set_seed(tp.seed)
    if base is None:  # fp32 weights unless training.weights_dtype says bf16 (bf16 compute is training.bf16)
        dtype = (
            "bfloat16"
            if tp.weights_dtype == "bfloat16"
            else resolve_dtype(params.models.dtype, training=True)
        )
        base = load_causal_lm(params.models.student, params, dtype=dtype)
    model, tokenizer = base
    data = tokenize_for_training(train_recs, eval_recs, tokenizer, tp)
    model = wrap_model(model, params)
    device = pick_device(params.models.device)
    args = training_arguments(tp, out / "checkpoints", bool(data.eval), device)
    fp = fingerprint(records, params)
    resume_from = prepare_checkpoints(
        out / "checkpoints", fp, resume, args.process_index == 0, args.world_size
    )
    if resume_from is None and args.process_index == 0:  # a fresh start: no curve of an earlier training
        log_path.unlink(missing_ok=True)
        shutil.rmtree(out / TENSORBOARD_DIR, ignore_errors=True)

    trainer = Trainer(
        model=model,
        args=args,
        data_collator=SFTCollator(tokenizer.pad_token_id),
        train_dataset=data.train,
        eval_dataset=data.eval or None,
        processing_class=tokenizer,
        callbacks=[log_callback_class()(log_path), *report_callbacks(tp, out), *callbacks],
    )
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.time() - t0
    trainer.save_model(str(model_dir))
    result = _result(trainer, records, params, out, data, fp, seconds, resume_from)
    if trainer.is_world_process_zero():
        name_base_by_spec(model_dir, params.models.student)
        write_json(out / SUMMARY_FILE, result.as_dict())
    model.eval()
    return result


def _result(
    trainer: Trainer,
    records: Sequence[dict[str, Any]],
    params: Params,
    out: Path,
    data: TrainingData,
    fp: str,
    seconds: float,
    resume_from: str | None,
) -> TrainResult:
    """What the finished ``trainer`` did, read from its state, its model and the loss log."""
    state, tp = trainer.state, params.training
    rows = read_jsonl(out / LOG_FILE) if (out / LOG_FILE).exists() else []
    trainable, total = count_params(trainer.model)
    return TrainResult(
        out_dir=str(out),
        model_dir=str(out / "model"),
        method=tp.method,
        base_model=params.models.student,
        fingerprint=fp,
        completed=state.global_step >= state.max_steps,
        n_records=len(records),
        n_train=data.report.n_examples,
        n_eval=len(data.eval),
        n_truncated=data.report.n_truncated,
        skipped=data.report.skipped,
        packing=tp.packing,
        n_sequences=len(data.train),
        tokens_per_epoch=data.tokens_per_epoch,
        train_tokens=round(data.tokens_per_epoch * float(state.epoch or 0.0)),
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
        num_processes=trainer.args.world_size,
    )


def _last(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return vals[-1] if vals else None


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
    from accelerate import PartialState  # deferred: heavy

    if PartialState().is_main_process:
        print(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
