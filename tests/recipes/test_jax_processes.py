"""Several JAX processes (issue 15): two processes on 127.0.0.1 with 4 simulated CPU devices each,
joined from Keras's environment variables, train data-parallel over 8 devices through the recipe
CLI: the same global batches as one process with 8 devices, so the same losses and weights; a
SIGKILL of one process, then a restart of both, resumes to the unbroken run's weights."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests import helpers
from tests.helpers import ROOT, finish_all, free_ports, kill_mid_epoch, subprocess_env

pytestmark = pytest.mark.slow
STEPS_PER_EPOCH = 1293 // 32  # digits' training split, global batch 32


def _cmd(run_dir, *extra):
    return [
        sys.executable,
        "-m",
        "recipes.train",
        "lenet5",
        "--backend",
        "jax",
        "--distribution",
        "data_parallel",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--run-dir",
        str(run_dir),
        "--set",
        "checkpoint_every=3",
        "--set",
        "verbose=0",
        *extra,
    ]


def _launch(run_dir) -> list:
    """The two processes of a fresh cluster (a new coordinator port each time)."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    procs = []
    for i in range(2):
        env = subprocess_env(
            JAX_NUM_CPU_DEVICES="4",
            KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
            KERAS_DISTRIBUTION_NUM_PROCESSES="2",
            KERAS_DISTRIBUTION_PROCESS_ID=str(i),
            MODELZOO_JAX_STARTUP_TIMEOUT="60",
            MODELZOO_JAX_HEARTBEAT_TIMEOUT="10",
        )
        procs.append(helpers.start(_cmd(run_dir), env=env, cwd=ROOT, stdout=-1, stderr=-2, text=True))
    return procs


def test_two_processes_train_as_one_and_resume_after_a_kill(tmp_path):
    env = subprocess_env(JAX_NUM_CPU_DEVICES="8")
    helpers.run(_cmd(tmp_path / "one"), env=env, cwd=ROOT, check=True, timeout=600)
    outputs = finish_all(_launch(tmp_path / "two"), timeout=600)
    one, two = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "two"))
    assert two["processes"] == 2 and two["mesh"] == [8] and one["mesh"] == [8]
    assert "rows of batch-axis places [0, 1, 2, 3] of 8" in outputs[0], outputs[0][-2000:]
    assert "rows of batch-axis places [4, 5, 6, 7] of 8" in outputs[1], outputs[1][-2000:]
    curves = [pd.read_csv(tmp_path / n / "metrics.csv") for n in ("one", "two")]
    for col in ("loss", "val_loss", "accuracy"):  # the same global batches: the one-process run's
        np.testing.assert_allclose(curves[1][col], curves[0][col], rtol=1e-5)
    procs = _launch(tmp_path / "killed")
    assert kill_mid_epoch(procs[1], tmp_path / "killed", STEPS_PER_EPOCH, watch=procs[0]) is not None
    for proc in procs:  # the survivor aborts when its peer's heartbeat stops (10 s) or is killed
        helpers.kill_group(proc)
        proc.wait(timeout=60)
    outputs = finish_all(_launch(tmp_path / "killed"), timeout=600)
    assert "resuming" in outputs[0]
    resumed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert resumed["weights_sha256"] == two["weights_sha256"] and resumed["steps"] == two["steps"]
