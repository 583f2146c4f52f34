"""Divergence: a non-finite loss stops the run before any checkpoint holds the model it came
from; the rerun with a lower learning rate continues from the last finite checkpoint at that rate."""

import json

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes.checkpoint import latest_step, steps
from recipes.tasks.classify import train
from recipes.train import main

POISONED_AFTER = 5  # the weights turn to NaN after this step: step 6's loss is the first non-finite


class Poison(keras.callbacks.Callback):
    """After step 5 (and its checkpoint), every weight of the output layer's kernel becomes NaN
    (not the first layer's: the ReLU after it turns NaN into 0 on this CPU)."""

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == POISONED_AFTER:
            kernel = self.model.get_layer("output").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def _config(run_dir, **extra):
    overrides = {"epochs": 2, "checkpoint_every": 1, "verbose": 0, "run_dir": str(run_dir), **extra}
    return config_lib.resolve("mlp", overrides=overrides)


def test_a_non_finite_loss_stops_the_run_and_the_rerun_continues_at_a_lower_rate(tmp_path, capsys):
    summary = train(_config(tmp_path), callbacks=[Poison()])
    assert summary["completed"] is False and summary["stopped_by"] == "divergence"
    assert (
        summary["diverged_at_step"] == POISONED_AFTER + 1 and summary["resumes_from_step"] == POISONED_AFTER
    )
    assert summary["loss"] == "nan" and summary["exit_status"] == 3
    said = capsys.readouterr().out
    assert "training diverged at step 6: loss nan; the newest checkpoint (step 5) is from before it" in said
    assert latest_step(tmp_path / "checkpoints") == POISONED_AFTER
    for step in steps(tmp_path / "checkpoints"):  # no checkpoint holds a diverged model
        with np.load(tmp_path / "checkpoints" / f"ckpt-{step}.npz") as saved:
            assert all(np.isfinite(saved[k]).all() for k in saved.files if k.startswith("model/"))

    resumed = train(_config(tmp_path, learning_rate=0.0001))
    assert resumed["completed"] and resumed["steps"] == 2 * resumed["steps_per_epoch"]
    assert (
        "learning rate 0.001 in the checkpoint; continuing at the config's 0.0001" in capsys.readouterr().out
    )


@pytest.mark.slow
def test_the_measured_runaway_is_stopped_by_the_factor_and_the_command_exits_3(tmp_path, capsys):
    # the run: learning rate 1000 on the MLP, loss 3.8e12 over epoch 1, reported completed
    argv = [
        "mlp",
        "--learning-rate",
        "1000",
        "--epochs",
        "6",
        "--run-dir",
        str(tmp_path),
        "--set",
        "verbose=0",
    ]
    assert main([*argv, "--set", "divergence_factor=10"]) == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped_by"] == "divergence" and summary["diverged_at_step"] <= 5  # 2 here: 2.7e13
    assert summary["resumes_from_step"] is None  # before the first checkpoint: the rerun starts afresh
    said = capsys.readouterr().out
    assert (
        "10 x the first step's); it had no checkpoint yet. Rerun with a lower learning rate than 1000" in said
    )
