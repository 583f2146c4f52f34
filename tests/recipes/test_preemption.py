"""Preemption: SIGTERM mid-epoch ends the run at the end of that step, with its checkpoint and a
summary saying so, exit status 143; the same command resumes to the unbroken run's very weights."""

import json
import signal
import subprocess
import sys
import time

import pytest

from recipes.checkpoint import latest_step
from recipes.preemption import Preempted
from tests import helpers
from tests.helpers import ROOT, subprocess_env

STEPS_PER_EPOCH = 1293 // 32  # digits' training split in whole batches of 32


def _cmd(run_dir):
    # no step checkpoints inside an epoch: the one a stopped run leaves there is preemption's own
    flags = ["--epochs", "3", "--batch-size", "32", "--set", "checkpoint_every=100000", "--set", "verbose=0"]
    return [sys.executable, "-m", "recipes.train", "lenet5", "--run-dir", str(run_dir), *flags]


@pytest.mark.slow
def test_sigterm_checkpoints_the_step_it_is_in_and_the_rerun_resumes_bit_identically(tmp_path):
    env = subprocess_env()
    reference = tmp_path / "reference"
    helpers.run(_cmd(reference), env=env, check=True, timeout=600, cwd=ROOT)

    run = tmp_path / "stopped"
    proc = helpers.start(
        _cmd(run), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 300
    while (latest_step(run / "checkpoints") or 0) < STEPS_PER_EPOCH and proc.poll() is None:
        assert time.time() < deadline, "no first-epoch checkpoint in 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # in epoch 2 (or its validation: then at epoch 3's first step)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["completed"] is False and summary["stopped_by"] == "SIGTERM"
    step = summary["steps"]
    assert latest_step(run / "checkpoints") == step and step % STEPS_PER_EPOCH, step  # mid-epoch, saved
    assert "stopped by SIGTERM at step" in out and "run the same command to resume" in out

    again = helpers.run(_cmd(run), env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    assert f"at step {step}" in again.stdout
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["completed"] and resumed["steps"] == 3 * STEPS_PER_EPOCH
    assert resumed["weights_sha256"] == json.loads((reference / "summary.json").read_text())["weights_sha256"]


def test_the_exit_status_is_the_shells_for_the_signal():
    assert Preempted("SIGTERM", 7).exit_status == 143 and Preempted("SIGINT", 7).exit_status == 130


def _fit_with(preemption, steps=10):
    """A one-layer model fitted for ``steps`` steps of one sample, under ``preemption``."""
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    preemption.training_state.bind(model)
    x = np.ones((steps, 2), "float32")
    model.fit(x, x[:, :1], batch_size=1, epochs=1, verbose=0, callbacks=[preemption])


class _State:
    """The part of ``recipes.checkpoint.TrainingState`` preemption uses: the steps it saved at."""

    def __init__(self):
        self.saved = []

    def bind(self, model):
        self.model = model

    def save(self):
        self.saved.append(int(self.model.optimizer.iterations.numpy()))


def test_several_processes_stop_at_the_step_they_agree_on_not_at_their_own_signal():
    """Between processes (``agreed``: the coordinator's sync point) a local signal alone does not
    stop the run; every process stops, with its checkpoint, after the agreed call."""
    from recipes.preemption import Preemption

    state = _State()
    waiting = Preemption(state, agreed=lambda call, caught: False)
    waiting.caught = "SIGINT"  # told the coordinator; no sync point yet
    _fit_with(waiting)
    assert state.saved == []

    agreeing = Preemption(state, agreed=lambda call, caught: call == 4)
    with pytest.raises(Preempted) as stop:
        _fit_with(agreeing)
    assert (stop.value.signal_name, stop.value.step, state.saved) == ("SIGTERM", 4, [4])
