"""KerasTuner's chief and two workers on 127.0.0.1, started by one command: a worker killed
mid-trial is restarted under its ID and its trial resumes; every trial runs once and COMPLETED,
and both workers ran trials (one search checks both: an unbroken search is the same search
without the kill)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests import helpers
from tests.helpers import ROOT, subprocess_env

pytestmark = pytest.mark.slow
TRIALS = 4


def _cmd(results):
    return [
        sys.executable,
        "-m",
        "tuning.search",
        "mlp",
        "--max-trials",
        str(TRIALS),
        "--epochs",
        "2",
        "--workers",
        "2",
        "--results-dir",
        str(results),
        "--only",
        "learning_rate,model.dropout_rate",
        "--set",
        "batch_size=64",
        "--set",
        "checkpoint_every=5",
        "--no-retrain",
        "--timeout",
        "500",
    ]


def _finished_trials(project):
    """Trial ids each worker reports finishing, across all worker logs (one line per finished trial)."""
    ids = []
    for log in sorted((project / "logs").glob("tuner*.log")):
        ids += re.findall(r"run folder \S+/trial_(\d+)/run", log.read_text(errors="replace"))
    return ids


def _check(project):
    frame = pd.read_csv(project / "trials.csv")
    assert len(frame) == TRIALS and (frame["status"] == "COMPLETED").all() and frame["trial_id"].is_unique
    finished = _finished_trials(project)
    assert sorted(finished) == sorted(str(t) for t in frame["trial_id"]), (
        finished
    )  # each trial ran to its end once
    return frame


def test_a_killed_worker_is_restarted_and_its_trial_resumes(tmp_path):
    project = tmp_path / "mlp_digits_random"
    proc = helpers.start(
        _cmd(tmp_path),
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed, deadline = None, time.time() + 300
    while time.time() < deadline and proc.poll() is None and killed is None:
        launcher = project / "launcher.json"
        running = [
            p
            for p in project.glob("trial_*/run/checkpoints/ckpt-*.npz")
            if not (p.parents[2] / "record.json").exists()
        ]
        if launcher.is_file() and running and "workers" in (info := json.loads(launcher.read_text())):
            os.kill(info["workers"]["tuner0"], signal.SIGKILL)  # mid-trial, after a checkpoint
            killed = info["workers"]["tuner0"]
        time.sleep(0.05)
    assert killed is not None, "the search ended before a worker could be killed"
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    assert "worker tuner0 exited with status -9 (SIGKILL); restarting it under the same ID" in stdout
    assert json.loads((project / "launcher.json").read_text())["restarts"]["tuner0"] == 1
    assert f"{TRIALS} trials ({TRIALS} completed)" in stdout
    _check(project)  # nothing lost, nothing run twice
    logs = {p.stem: p.read_text(errors="replace") for p in (project / "logs").glob("tuner*.log")}
    assert sorted(logs) == ["tuner0", "tuner1"] and all("run folder" in text for text in logs.values()), (
        "a worker ran no trial"
    )


def test_an_exit_status_names_the_signal_that_ended_the_process():
    from tuning.search import exit_text

    assert exit_text(-signal.SIGSEGV) == "-11 (SIGSEGV)" and exit_text(-signal.SIGKILL) == "-9 (SIGKILL)"
    assert exit_text(1) == "1" and exit_text(-200) == "-200"  # no such signal: the number alone
