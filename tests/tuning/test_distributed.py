"""KerasTuner's chief and two workers on 127.0.0.1, started by one command: a worker killed
mid-trial is restarted under its ID and its trial resumes; one that crashed has its trial recorded
FAILED and the search goes on; every other trial runs once and COMPLETED, and both workers ran
trials (one search checks all of it: an unbroken search is the same search without the signals)."""

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


def _check(project, failed_trial):
    frame = pd.read_csv(project / "trials.csv")
    assert len(frame) == TRIALS and frame["trial_id"].is_unique
    failed = frame[frame["status"] != "COMPLETED"]
    assert [str(t) for t in failed["trial_id"]] == [failed_trial] and (failed["status"] == "FAILED").all()
    assert "ended its worker tuner1's process with SIGSEGV" in failed["error"].iloc[0]
    finished = _finished_trials(project)
    completed = frame[frame["status"] == "COMPLETED"]["trial_id"]
    assert sorted(finished) == sorted(str(t) for t in completed), finished  # each ran to its end once
    return frame


def _mid_trial(project, tuner_id):
    """(pid, trial id) of ``tuner_id``'s process while its trial has a checkpoint, else None."""
    marker = project / "running" / f"{tuner_id}.json"
    try:
        running = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    trial = project / f"trial_{running['trial_id']}"
    if any(trial.glob("run/checkpoints/ckpt-*.npz")) and not (trial / "record.json").exists():
        return running["pid"], running["trial_id"]
    return None


def test_a_killed_worker_resumes_its_trial_and_a_crashed_one_fails_it(tmp_path):
    """Both workers mid-trial: tuner0 killed (SIGKILL: a user, the OOM killer, a preempted machine)
    is restarted and its trial resumes; tuner1 crashed (SIGSEGV, as a native fault would) is
    restarted and its trial recorded FAILED with the signal, and the search goes on."""
    project = tmp_path / "mlp_digits_random"
    proc = helpers.start(
        _cmd(tmp_path),
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    hit, deadline = None, time.time() + 300
    while time.time() < deadline and proc.poll() is None and hit is None:
        running = {tid: _mid_trial(project, tid) for tid in ("tuner0", "tuner1")}
        if all(running.values()):
            os.kill(running["tuner0"][0], signal.SIGKILL)
            os.kill(running["tuner1"][0], signal.SIGSEGV)
            hit = running
        time.sleep(0.05)
    assert hit is not None, "the search ended before both workers were mid-trial"
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-3000:]
    assert "worker tuner0 exited with status -9 (SIGKILL); restarting it under the same ID" in stdout
    assert "worker tuner1 exited with status -11 (SIGSEGV); restarting it under the same ID" in stdout
    assert json.loads((project / "launcher.json").read_text())["restarts"] == {"tuner0": 1, "tuner1": 1}
    assert f"{TRIALS} trials ({TRIALS - 1} completed)" in stdout, stdout[-3000:]
    _check(project, failed_trial=hit["tuner1"][1])  # nothing lost, nothing run twice
    logs = {p.stem: p.read_text(errors="replace") for p in (project / "logs").glob("tuner*.log")}
    assert sorted(logs) == ["tuner0", "tuner1"] and all("run folder" in text for text in logs.values()), (
        "a worker ran no trial"
    )


def test_an_exit_status_names_the_signal_that_ended_the_process():
    from tuning.launcher import exit_text

    assert exit_text(-signal.SIGSEGV) == "-11 (SIGSEGV)" and exit_text(-signal.SIGKILL) == "-9 (SIGKILL)"
    assert exit_text(1) == "1" and exit_text(-200) == "-200"  # no such signal: the number alone
