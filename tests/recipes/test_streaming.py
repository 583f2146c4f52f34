"""Image folders larger than the memory budget stream from their files, batch by batch, in the same
seeded order (and so with the same exact resume) as the in-memory path."""

import numpy as np
import pytest

from recipes import config as config_lib
from recipes import trainer
from recipes.data import base, pipeline, preprocess, sources
from recipes.tasks import classify
from tests import helpers
from tests.helpers import write_image_folder

PRE = preprocess.Preprocess(image_size=(16, 16), channels=3, crop=True, flip=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("stream") / "imgs", classes=3, per_class=60)


def test_a_folder_over_the_budget_streams_its_files(folder):
    # 180 images of 16x16x3 decode to 180 * 3 KiB as float32: a 0.0001 GiB (105 KiB) budget is exceeded.
    streamed = sources.load("folder", path=str(folder), memory_budget_gb=0.0001)
    assert streamed.train.files and streamed.val.files and streamed.test.files
    assert isinstance(streamed.train.x[0], str) and streamed.train.x[0].endswith(".jpg")
    assert streamed.feature_shape == (16, 16, 3)
    held = sources.load("folder", path=str(folder))  # auto, under a quarter of RAM: decoded into memory
    assert not held.train.files and held.train.x.dtype == np.float32
    forced = sources.load("folder", path=str(folder), streaming=True)
    assert forced.train.files
    # The same files in the same splits, either way.
    assert [p.rsplit("/", 2)[-2] for p in streamed.test.x] == [held.class_names[y] for y in held.test.y]
    np.testing.assert_array_equal(streamed.test.y, held.test.y)


def test_streamed_batches_are_the_in_memory_batches_and_resume_exactly(folder):
    streamed = sources.load("folder", path=str(folder), streaming=True)
    held = sources.load("folder", path=str(folder), streaming=False)
    options = dict(batch_size=8, epochs=2, seed=5, pre=PRE)
    full = [(x.numpy(), y.numpy()) for x, y in pipeline.train_batches(streamed.train, **options)]
    same = [(x.numpy(), y.numpy()) for x, y in pipeline.train_batches(held.train, **options)]
    tail = [
        (x.numpy(), y.numpy()) for x, y in pipeline.train_batches(streamed.train, start_step=9, **options)
    ]
    steps = len(streamed.train) // 8
    assert len(full) == 2 * steps and len(tail) == 2 * steps - 9
    for (a, ya), (b, yb) in zip(full, same):  # one decoder, one order, one augmentation
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    for (a, ya), (b, yb) in zip(full[9:], tail):  # resume skips indices, before any file is read
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    x, _ = next(iter(pipeline.eval_batches(streamed.test, batch_size=4, pre=PRE)))
    y, _ = next(iter(pipeline.eval_batches(held.test, batch_size=4, pre=PRE)))
    np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_a_run_streams_a_folder_and_learns_its_classes(folder, tmp_path):
    overrides = {
        "dataset": "folder",
        "data_path": str(folder),
        "streaming": True,
        "epochs": 4,
        "batch_size": 8,
        "learning_rate": 0.05,
        "verbose": 0,
        "run_dir": str(tmp_path / "run"),
    }
    cfg = config_lib.resolve("lenet5", overrides=overrides)
    data, _ = trainer.load_data(cfg)
    assert data.train.files
    summary = classify.train(cfg)
    assert summary["test_accuracy"] > 0.8, summary  # three colour classes; chance is 1/3


@pytest.mark.parametrize("budget, medium", [(0.0001, "streamed"), (100.0, "memory")])
def test_a_run_says_and_records_whether_it_streams_and_why(folder, tmp_path, capsys, budget, medium):
    # issue 31: with streaming: auto a run said nothing of the medium it chose
    overrides = {
        "dataset": "folder",
        "data_path": str(folder),
        "memory_budget_gb": budget,
        "epochs": 1,
        "batch_size": 32,
        "verbose": 0,
        "run_dir": str(tmp_path / "run"),
    }
    summary = classify.train(config_lib.resolve("lenet5", overrides=overrides))
    recorded = summary["data_medium"]
    assert recorded["medium"] == medium and recorded["budget_gib"] == budget
    assert recorded["size_gib"] == round(180 * 16 * 16 * 3 * 4 / 2**30, 4)  # 180 images, float32
    verdict = "over" if medium == "streamed" else "within"
    line = f"180 decoded images 0.0005 GiB, {verdict} the budget of {budget:g} GiB"
    assert recorded["why"] == f"streaming: auto; {line}"
    where = "streamed from its files" if medium == "streamed" else "held in memory"
    assert f"data: {where} (streaming: auto; {line})" in capsys.readouterr().out.splitlines()


def test_folder_errors_name_what_is_missing(tmp_path):
    write_image_folder(tmp_path / "imgs", classes=2, per_class=3)
    (tmp_path / "imgs" / "class_002").mkdir()
    with pytest.raises(base.DataError, match="class folder.*'class_002' hold no images"):
        sources.load("folder", path=str(tmp_path / "imgs"))
    with pytest.raises(ValueError, match="streaming='yes' is invalid: one of \\[True, False, 'auto'\\]"):
        config_lib.resolve("lenet5", overrides={"streaming": "yes"}).validate()
    config_lib.resolve("bert_tiny", overrides={"streaming": True}).validate("pretrain")  # corpora stream too
    with pytest.raises(ValueError, match="pretrain does not apply config field bad_images"):
        config_lib.resolve("bert_tiny", overrides={"bad_images": "skip"}).validate("pretrain")


def test_replica_shares_read_disjoint_files_and_rebuild_the_global_batches(folder):
    streamed = sources.load("folder", path=str(folder), streaming=True)
    options = dict(batch_size=8, epochs=2, seed=5, pre=PRE, start_step=3)
    full = [x.numpy() for x, _ in pipeline.train_batches(streamed.train, **options)]
    # Two workers of two replicas each: worker 1 holds replicas 2 and 3, a quarter of each batch apiece.
    shares = {
        ids: [x.numpy() for x, _ in pipeline.train_batches(streamed.train, replicas=(4, ids), **options)]
        for ids in ((0, 1), (2, 3))
    }
    assert all(len(s) == 2 * len(full) for s in shares.values())
    for step, whole in enumerate(full):  # replica r's share is rows 2r, 2r+1, augmented as in the whole batch
        parts = [shares[ids][2 * step + j] for ids in ((0, 1), (2, 3)) for j in range(2)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(base.DataError, match="batch_size 8 does not split evenly over 3 replicas"):
        pipeline.train_batches(streamed.train, replicas=(3, [0]), **options)


@pytest.mark.slow
def test_two_workers_stream_their_own_rows_and_follow_a_one_worker_run(folder, tmp_path):
    import json
    import sys

    import pandas as pd

    from tests.helpers import ROOT, subprocess_env
    from tests.recipes.test_multi_worker import BATCH, EPOCHS, _digests, _finish, _launch

    data = ["--set", "dataset=folder", "--set", f"data_path={folder}", "--set", "streaming=true"]
    outputs = _finish(_launch(tmp_path / "two", data))
    assert all(
        "each input pipeline reads only its replicas' rows" in out for out in outputs
    )  # not TF's auto-shard
    chief, other = _digests(tmp_path / "two")
    assert chief["replicas"] == 2 and chief["weights_sha256"] == other["weights_sha256"]
    one = [
        sys.executable,
        "-m",
        "recipes.train",
        "lenet5",
        "--run-dir",
        str(tmp_path / "one"),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--set",
        "verbose=0",
        *data,
    ]
    helpers.run(one, env=subprocess_env(), cwd=ROOT, check=True, timeout=600, capture_output=True)
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["replicas"] == 1
    # The same global batches, split in two: the losses of a one-worker run (up to the all-reduce's sums).
    two_losses = pd.read_csv(tmp_path / "two" / "metrics.csv")["loss"].to_numpy()
    one_losses = pd.read_csv(tmp_path / "one" / "metrics.csv")["loss"].to_numpy()
    print("two workers", two_losses, "one worker", one_losses)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4)


@pytest.mark.slow
def test_sigkill_mid_epoch_of_a_streamed_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    import json
    import subprocess
    import sys

    from tests.helpers import ROOT, kill_mid_epoch, subprocess_env

    folder = write_image_folder(tmp_path / "imgs", classes=3, per_class=200)
    batch, train_size = 16, 432  # 72% of 600 images (test 20%, then validation 10% of the rest)

    def cmd(run):
        return [
            sys.executable,
            "-m",
            "recipes.train",
            "lenet5",
            "--run-dir",
            str(run),
            "--epochs",
            "3",
            "--batch-size",
            str(batch),
            "--set",
            "checkpoint_every=3",
            "--set",
            "verbose=0",
            "--set",
            "dataset=folder",
            "--set",
            f"data_path={folder}",
            "--set",
            "streaming=true",
        ]

    env = subprocess_env()
    helpers.run(cmd(tmp_path / "reference"), env=env, check=True, timeout=600, cwd=ROOT, capture_output=True)
    reference = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert reference["steps_per_epoch"] == train_size // batch
    run = tmp_path / "killed"
    proc = helpers.start(cmd(run), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_mid_epoch(proc, run, train_size // batch)
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed mid-epoch"
    out = helpers.run(
        cmd(run), env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
    ).stdout
    assert "resuming" in out
    # Each batch's files are chosen by (seed, epoch) alone and skipped on indices: the same bits.
    assert json.loads((run / "summary.json").read_text())["weights_sha256"] == reference["weights_sha256"]


def test_listing_a_large_folder_reports_progress(folder, monkeypatch, capsys):
    monkeypatch.setattr(base.Progress, "EVERY", 0.0)  # a line at every class folder, not every 5 s
    sources.load("folder", path=str(folder), streaming=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("listing")]
    assert lines[-1].endswith(": 3/3 class folders, 180 images"), lines
    assert len(lines) == 3
    monkeypatch.setattr(base.Progress, "EVERY", 5.0)
    sources.load("folder", path=str(folder), streaming=True)
    assert "listing" not in capsys.readouterr().out  # quick work prints nothing


def test_progress_on_a_terminal_is_one_bar_redrawn_in_place(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(base.Progress, "EVERY", 0.0)
    out = Terminal()
    with base.Progress("writing train records", 4, "examples", stream=out) as progress:
        for done in range(1, 5):
            progress.update(done)
    text = out.getvalue()
    assert (
        text.startswith("\r[")
        and text.endswith("] writing train records: 4/4 examples\n")
        and text.count("\n") == 1
    )
    assert "[" + "#" * 30 + "]" in text  # the bar is full at the end
