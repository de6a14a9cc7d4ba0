"""Stage 06's `training.report_to`: TensorBoard event files beside the learning curve, or nothing, and a
clear error for a reporter whose package is missing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.student_training import trainer_setup
from compeffdist_utils.student_training.checkpoints import fingerprint
from compeffdist_utils.student_training.plots import read_train_log
from compeffdist_utils.student_training.training import train_student
from tests.student_training.test_training import RECORDS


def _params(ci_params: Params, **training: Any) -> Params:
    data = ci_params.model_dump(mode="json")
    data["training"].update(
        {"max_length": 96, "per_device_batch_size": 2, "max_steps": 3, "logging_steps": 1,
         "eval_fraction": 0.25, "save_steps": 100, **training}
    )  # fmt: skip
    return params_from_dict(data)


@pytest.mark.slow
def test_training_writes_tensorboard_events_with_the_loss(
    smol: tuple[Any, Any], ci_params: Params, tmp_path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    base_model, tok = smol
    params = _params(ci_params)
    assert params.training.report_to == "tensorboard"  # the default
    out = tmp_path / "student"
    train_student(RECORDS, params, out, base=(copy.deepcopy(base_model), tok))

    logdir = out / trainer_setup.TENSORBOARD_DIR
    assert list(logdir.rglob("events.out.tfevents.*")), f"no event file under {logdir}"
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert {"train/loss", "eval/loss"} <= set(acc.Tags()["scalars"]), acc.Tags()["scalars"]
    events = acc.Scalars("train/loss")
    curve = read_train_log(out)  # the notebook's learning curve is still written, and agrees
    assert [e.step for e in events] == [r["step"] for r in curve] == [1, 2, 3]
    assert [e.value for e in events] == pytest.approx([r["loss"] for r in curve], rel=1e-5)


@pytest.mark.slow
def test_report_to_none_writes_no_event_files(smol: tuple[Any, Any], ci_params: Params, tmp_path) -> None:
    base_model, tok = smol
    out = tmp_path / "student"
    params = _params(ci_params, report_to="none", max_steps=1, eval_fraction=0.0)
    train_student(RECORDS, params, out, base=(copy.deepcopy(base_model), tok))
    assert read_train_log(out) and not (out / trainer_setup.TENSORBOARD_DIR).exists()
    assert not list(out.rglob("events.out.tfevents.*"))


def test_a_reporter_that_is_not_installed_fails_before_training(ci_params: Params, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_setup.importlib.util, "find_spec", lambda name: None)
    for reporter in ("wandb", "mlflow", "tensorboard"):
        params = _params(ci_params, report_to=reporter)
        with pytest.raises(ValueError, match=rf"training.report_to is '{reporter}'.*pip install {reporter}"):
            train_student(RECORDS, params, tmp_path / "student")  # no model is loaded first
    trainer_setup.check_report_to(_params(ci_params, report_to="none").training)  # needs nothing


def test_where_the_trainer_reports_does_not_change_the_weights_fingerprint(ci_params: Params) -> None:
    fps = {fingerprint(RECORDS, _params(ci_params, report_to=r)) for r in ("tensorboard", "none", "wandb")}
    assert len(fps) == 1
    assert fingerprint(RECORDS, _params(ci_params, learning_rate=1e-2)) not in fps


def test_an_unknown_reporter_is_a_params_error(ci_params: Params) -> None:
    from compeffdist_utils.core.config import ParamsError

    with pytest.raises(ParamsError, match="report_to"):
        _params(ci_params, report_to="comet")
