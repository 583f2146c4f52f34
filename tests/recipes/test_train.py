"""End to end: a run folder a person can read, evaluate/predict from it, and exact resume after SIGKILL."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from recipes import config as config_lib
from recipes.checkpoint import latest_step
from recipes.evaluate import evaluate
from recipes.predict import predict
from recipes.tasks.classify import train
from tests import helpers
from tests.helpers import ROOT, installed, kill_mid_epoch, subprocess_env

FAST = {"epochs": 2, "batch_size": 64, "learning_rate": 0.05, "checkpoint_every": 5, "verbose": 0}


def test_run_folder_evaluate_and_predict(tmp_path, capsys):
    cfg = config_lib.resolve("lenet5", overrides={**FAST, "run_dir": str(tmp_path / "run")})
    summary = train(cfg)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "curves.png", "model.keras", "summary.json"):
        assert (run / name).is_file(), name
    assert (run / "export" / "savedmodel" / "saved_model.pb").is_file()
    assert list((run / "logs").rglob("events.out.tfevents*"))
    assert latest_step(run / "checkpoints") == summary["steps"]
    assert summary["completed"] and summary["steps"] == 2 * summary["steps_per_epoch"] == 2 * (1293 // 64)
    assert summary["test_accuracy"] > 0.5  # two epochs of LeNet-5 on digits; chance is 0.1
    assert json.loads((run / "summary.json").read_text())["test_accuracy"] == summary["test_accuracy"]
    # evaluate from the folder gives the same number
    assert evaluate(run)["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    # predict an 8x8 digit image saved as .npy and as PNG
    from recipes.data.sources import load

    digit = load("digits").test
    np.save(tmp_path / "d.npy", digit.x[0])
    tf.io.write_file(str(tmp_path / "d.png"), tf.io.encode_png(tf.cast(digit.x[1] * 255, tf.uint8)))
    rows = predict(run, [tmp_path / "d.npy", tmp_path / "d.png"])
    assert len(rows) == 2 and len(rows[0]["top"]) == 3
    assert rows[0]["top"][0]["probability"] >= rows[0]["top"][1]["probability"]
    # a finished run is not redone
    capsys.readouterr()
    again = train(cfg)
    assert "complete; nothing to do" in capsys.readouterr().out and again["steps"] == summary["steps"]


def test_trains_on_images_of_varying_size_from_tfds(tmp_path):
    import tensorflow_datasets as tfds

    overrides = {
        "dataset": "imagenette",
        "data_dir": str(tmp_path / "tfds"),
        "image_size": 32,
        "epochs": 1,
        "batch_size": 4,
        "verbose": 0,
        "model_kwargs": {"width_multiplier": 0.125},
        "run_dir": str(tmp_path / "run"),
    }
    with tfds.testing.mock_data(num_examples=12):
        summary = train(config_lib.resolve("resnet18", overrides=overrides))
    assert summary["completed"] and summary["input_shape"] == [32, 32, 3] and summary["steps"] >= 1


def _cmd(run_dir, backend="tensorflow"):
    return [
        sys.executable,
        "-m",
        "recipes.train",
        "lenet5",
        "--run-dir",
        str(run_dir),
        "--epochs",
        "3",
        "--backend",
        backend,
        "--set",
        "checkpoint_every=3",
        "--set",
        "verbose=0",
        "--batch-size",
        "32",
    ]


BACKENDS = [
    "tensorflow",
    "jax",  # in the test extra: CI runs it
    pytest.param(
        "torch",
        marks=pytest.mark.skipif(not installed("torch"), reason='needs pip install ".[torch]" (see README)'),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, backend):
    from functools import partial

    _cmd_ = partial(_cmd, backend=backend)
    env = subprocess_env(KERAS_BACKEND="tensorflow")  # --backend decides, whatever the environment says
    steps_per_epoch = 1293 // 32
    reference = tmp_path / "reference"
    helpers.run(_cmd_(reference), env=env, check=True, timeout=600, cwd=ROOT)

    run = tmp_path / "killed"
    proc = helpers.start(_cmd_(run), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_mid_epoch(proc, run, steps_per_epoch)
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed mid-epoch"
    assert not (run / "summary.json").exists()

    # resumed under steps_per_execution auto, which measures on this backend: several steps a call
    # change no bit, and a checkpoint between two calls' ends resumes one step a call to the next
    resume = [*_cmd_(run), "--set", "steps_per_execution=auto"]
    out = helpers.run(
        resume, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
    ).stdout
    assert "resuming" in out and "at step" in out and "steps_per_execution auto: " in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 * steps_per_epoch and summary["backend"] == backend
    assert summary["steps_per_execution_choice"]["picked_by"] == "measured"
    # the data order is seeded and each batch is skipped exactly once: the same bits as unbroken
    assert summary["weights_sha256"] == json.loads((reference / "summary.json").read_text())["weights_sha256"]


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus(tmp_path):
    env = subprocess_env()
    cmd = [
        sys.executable,
        "-m",
        "recipes.train",
        "lenet5",
        "--strategy",
        "mirrored",
        "--run-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--set",
        "devices=['/cpu:0', '/cpu:1']",
        "--set",
        "verbose=0",
        "--set",
        "jit_compile=true",
    ]  # XLA per replica, update outside XLA
    helpers.run(cmd, env=env, cwd=ROOT, check=True, timeout=600)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategy"] == "mirrored" and summary["replicas"] == 2 and summary["jit_compile"]
    import pandas as pd

    losses = pd.read_csv(tmp_path / "metrics.csv")["loss"].tolist()
    assert len(losses) == 2 and losses[1] < losses[0]
    assert summary["test_accuracy"] > 0.5


def test_early_stop_counts_epochs_without_improvement():
    from types import SimpleNamespace

    from recipes.loop import EarlyStop

    tracker = EarlyStop(patience=2)
    tracker.set_model(SimpleNamespace(stop_training=False))
    for loss in (1.0, 0.8, 0.9, 0.85):
        tracker.on_epoch_end(0, {"val_loss": loss})
    assert tracker.best == 0.8 and tracker.wait == 2  # plain numbers now, saved in every backend's checkpoint
    assert tracker.exhausted and tracker.model.stop_training


def test_mixed_float16_scales_the_loss_and_keeps_float32_outputs(tmp_path):
    import keras

    cfg = config_lib.resolve(
        "mlp",
        overrides={"epochs": 1, "verbose": 0, "mixed_precision": "mixed_float16", "run_dir": str(tmp_path)},
    )
    summary = train(cfg)
    assert summary["precision"] == "mixed_float16" and summary["test_accuracy"] > 0.5
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert model.layers[1].dtype_policy.name == "mixed_float16" and model.outputs[0].dtype == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is restored
