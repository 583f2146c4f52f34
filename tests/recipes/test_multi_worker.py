"""Two workers on 127.0.0.1 under ``multi_worker_mirrored``: they agree bit for bit, SIGTERM to one
stops both at one step, and a cluster that lost a worker mid-epoch resumes from the chief's
checkpoint to the weights of an unbroken run.

These guard the Keras overrides in ``recipes/runtime/distributed.py``.
"""

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest

from recipes.preemption import CHECK_EVERY
from tests import helpers
from tests.helpers import ROOT, free_ports, kill_mid_epoch, sigterm_one, subprocess_env

EPOCHS, BATCH = 3, 32
STEPS_PER_EPOCH = 1293 // BATCH  # digits train split

pytestmark = pytest.mark.slow


def _launch(run_dir, extra=()):
    """Start the two workers of a fresh cluster (new ports each time) training into ``run_dir``."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    cmd = [
        sys.executable,
        "-m",
        "recipes.train",
        "lenet5",
        "--strategy",
        "multi_worker_mirrored",
        "--run-dir",
        str(run_dir),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--set",
        "checkpoint_every=3",
        "--set",
        "verbose=0",
        *extra,
    ]
    procs = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = subprocess_env(TF_CONFIG=json.dumps(tf_config))
        procs.append(
            helpers.start(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    return procs


def _finish(procs, timeout=600):
    return helpers.finish_all(procs, timeout=timeout)  # a failed worker fails the test within seconds


def _digests(run_dir):
    chief = json.loads((run_dir / "summary.json").read_text())
    other = json.loads((run_dir / "workers" / "worker_1.json").read_text())
    return chief, other


@pytest.fixture(scope="module")
def unbroken_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("multi_worker") / "unbroken"
    outputs = _finish(_launch(run))
    return run, outputs


def test_two_workers_train_together_and_end_identical(unbroken_run):
    run, outputs = unbroken_run
    chief, other = _digests(run)
    assert chief["strategy"] == "multi_worker_mirrored" and chief["replicas"] == 2
    assert chief["steps"] == other["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert chief["weights_sha256"] == other["weights_sha256"]  # bit-identical weights on both workers
    losses = pd.read_csv(run / "metrics.csv")["loss"].tolist()
    assert len(losses) == EPOCHS and losses[-1] < losses[0] * 0.5
    assert chief["test_accuracy"] > 0.8
    # only the chief writes checkpoints; the other worker's scratch copies are gone
    assert not list((run / "checkpoints").glob("worker_scratch_*"))
    assert all("test accuracy" in out for out in outputs)


def test_sigterm_stops_both_workers_at_one_step_and_a_killed_one_resumes_to_the_unbroken_weights(
    unbroken_run, tmp_path
):
    """SIGTERM to worker 1 alone: both stop after one same step with its checkpoint, exit 143
    (``helpers.sigterm_one``); restarted, worker 1 is SIGKILLed mid-epoch; restarted again, the
    cluster ends at the unbroken run's very weights."""
    reference, _ = unbroken_run
    run = tmp_path / "broken"
    stopped_at = sigterm_one(_launch(run), run, "worker_1")
    assert stopped_at % CHECK_EVERY == 0  # the workers agree at every CHECK_EVERY-th step
    procs = _launch(run)
    killed_at = kill_mid_epoch(procs[1], run, STEPS_PER_EPOCH, watch=procs[0], after=stopped_at)
    assert killed_at is not None, "the cluster finished before a worker could be killed mid-epoch"
    try:  # the chief cannot go on without its peer: it fails or hangs; the cluster is restarted
        procs[0].wait(timeout=30)
    except subprocess.TimeoutExpired:
        procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate()
    assert json.loads((run / "summary.json").read_text())["steps"] == stopped_at  # the stop's, still

    outputs = _finish(_launch(run))
    assert "resuming" in outputs[0] and "resuming" in outputs[1]
    chief, other = _digests(run)
    assert chief["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert chief["weights_sha256"] == other["weights_sha256"]
    # the data order is seeded and the all-reduce is deterministic on CPU: the same bits as unbroken
    assert chief["weights_sha256"] == _digests(reference)[0]["weights_sha256"]
