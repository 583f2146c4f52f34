"""Checkpoints that cannot be trusted: a truncated newest one is passed over for the one before
(the run ends as one resumed from that step, and as one never interrupted); a folder's checkpoints
under a config that makes them another run's are refused in one line. Each step is written once."""

import shutil

import pytest

from recipes import config as config_lib
from recipes.checkpoint import TrainingState, steps
from recipes.tasks.classify import train


def _config(run_dir, epochs=2, **extra):
    overrides = {"epochs": epochs, "checkpoint_every": 5, "verbose": 0, "run_dir": str(run_dir), **extra}
    return config_lib.resolve("mlp", overrides=overrides)


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    train(_config(tmp_path / "truncated", epochs=1))  # then asked for a second epoch: a resume
    shutil.copytree(tmp_path / "truncated", tmp_path / "removed")
    before, newest = steps(tmp_path / "truncated" / "checkpoints")[-2:]
    bad = tmp_path / "truncated" / "checkpoints" / f"ckpt-{newest}.npz"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    (tmp_path / "removed" / "checkpoints" / f"ckpt-{newest}.npz").unlink()
    for name in ("truncated", "removed"):
        (tmp_path / name / "summary.json").unlink()
    capsys.readouterr()
    truncated = train(_config(tmp_path / "truncated"))
    out = capsys.readouterr().out
    assert f"warning: checkpoint {str(bad)!r} cannot be read" in out and f"at step {before} " in out
    removed = train(_config(tmp_path / "removed"))
    unbroken = train(_config(tmp_path / "unbroken"))
    assert truncated["weights_sha256"] == removed["weights_sha256"] == unbroken["weights_sha256"]
    assert steps(tmp_path / "truncated" / "checkpoints")[-1] == truncated["steps"]  # the bad file is gone


def test_checkpoints_of_another_config_are_refused_in_one_line(tmp_path):
    train(_config(tmp_path, epochs=1))
    (tmp_path / "summary.json").unlink()
    with pytest.raises(
        ValueError, match=r"holds checkpoints of a run with batch_size=32; this config has batch_size=64"
    ):
        train(_config(tmp_path, batch_size=64))
    resumed = train(_config(tmp_path, learning_rate=0.0005))  # a rate may change on resume
    assert resumed["completed"]


def test_each_step_is_written_once_the_epoch_end_after_validation(tmp_path, monkeypatch):
    written, save = [], TrainingState.save

    def recorded(self, again=False):
        written.append((self.step, again))
        save(self, again)

    monkeypatch.setattr(TrainingState, "save", recorded)
    train(_config(tmp_path, checkpoint_every=20))  # 40 steps an epoch
    assert written == [(20, False), (40, True), (60, False), (80, True)]
