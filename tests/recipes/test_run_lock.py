"""One run per run folder: a second run into a locked folder is one line (exit 2) and touches
nothing; a lock left by a process that is gone is taken over; a run leaves no lock behind."""

import json
import os
import socket
import subprocess

import pytest

from recipes import config as config_lib
from recipes.run_lock import LOCK
from recipes.tasks.classify import train
from recipes.train import main
from tests import helpers


def _lock(run_dir, pid, host=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    content = {"pid": pid, "host": host or socket.gethostname(), "started": 0}
    (run_dir / LOCK).write_text(json.dumps(content))


def _argv(run_dir):
    return ["mlp", "--epochs", "1", "--run-dir", str(run_dir), "--set", "verbose=0"]


def test_a_second_run_into_a_locked_folder_is_one_line_and_changes_nothing(tmp_path, capsys):
    holder = helpers.start(["sleep", "60"])  # a live process holding the folder
    try:
        _lock(tmp_path, holder.pid)
        assert main(_argv(tmp_path)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is in use by process {holder.pid}" in err[0], err
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]  # nothing written beside it
        _lock(tmp_path, 12345, host="another-host")
        assert main(_argv(tmp_path)) == 2
        assert "on host 'another-host'; if no run is writing it, delete" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_whose_process_is_gone_is_taken_over_and_a_run_leaves_none(tmp_path, capsys):
    gone = subprocess.Popen(["true"])
    gone.wait()
    _lock(tmp_path, gone.pid)
    summary = train(
        config_lib.resolve("mlp", overrides={"epochs": 1, "verbose": 0, "run_dir": str(tmp_path)})
    )
    assert summary["completed"] and not (tmp_path / LOCK).exists()
    assert f"taking over the lock of {str(tmp_path)!r} from process {gone.pid}, which is gone" in (
        capsys.readouterr().out
    )


def test_the_lock_names_its_holder_and_is_gone_after(tmp_path):
    from recipes.run_lock import locked

    with locked(tmp_path):
        holder = json.loads((tmp_path / LOCK).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(ValueError, match="is in use by process"), locked(tmp_path):
            pass
    assert not (tmp_path / LOCK).exists()
