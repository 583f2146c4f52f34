"""The recipes under keras.distribution on JAX (8 simulated CPU devices, fresh processes): a
data-parallel run matches the one-device run, and a model-parallel one killed mid-epoch resumes
to its bits. (A model-parallel run drifts from the one-device run over an epoch, as any change
of reduction order does through ReLU boundaries and momentum: 1e-7 for the first steps,
8.8e-4 by step 39 with SGD momentum; the step-level equality is tests/recipes/test_sharding.py's.)"""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests import helpers
from tests.helpers import ROOT, kill_mid_epoch, subprocess_env

TINY_VGG = json.dumps({"width_multiplier": 0.125, "fc_units": 32, "dropout_rate": 0.0})


def _cmd(model, run_dir, distribution, mesh=None, *extra):
    return [
        sys.executable,
        "-m",
        "recipes.train",
        model,
        "--backend",
        "jax",
        "--distribution",
        distribution,
        *(["--mesh", mesh] if mesh else []),
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


# 40% of the training split: 16 steps an epoch, checkpoints at steps 18-30 inside the second
VGG = (
    "--image-size",
    "32",
    "--set",
    "augment=false",
    "--set",
    f"model_kwargs={TINY_VGG}",
    "--set",
    "train_fraction=0.4",
)


@pytest.mark.slow
def test_a_data_parallel_run_matches_one_device(tmp_path):
    env = subprocess_env(JAX_NUM_CPU_DEVICES="8")
    for name, dist in (("one", "off"), ("dp", "data_parallel")):
        helpers.run(_cmd("lenet5", tmp_path / name, dist), env=env, cwd=ROOT, check=True, timeout=600)
    one, dp = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("one", "dp"))
    assert dp["distribution"] == "data_parallel" and dp["mesh"] == [8] and one["distribution"] == "off"
    curves = [pd.read_csv(tmp_path / n / "metrics.csv") for n in ("one", "dp")]
    for col in ("loss", "val_loss", "accuracy", "val_accuracy"):  # 80 steps: the one-device run's to 1e-5
        np.testing.assert_allclose(curves[1][col], curves[0][col], rtol=1e-5)
    assert (
        abs(dp["test_accuracy"] - one["test_accuracy"]) < 1e-6
    )  # all 360 test examples (evaluation replicates the batch)


@pytest.mark.slow
def test_a_model_parallel_run_killed_mid_epoch_resumes_to_its_bits(tmp_path):
    env = subprocess_env(JAX_NUM_CPU_DEVICES="8")
    helpers.run(
        _cmd("vgg11", tmp_path / "unbroken", "model_parallel", "2x4", *VGG),
        env=env,
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    sharded = json.loads((tmp_path / "unbroken" / "summary.json").read_text())
    assert (
        sharded["distribution"] == "model_parallel"
        and sharded["mesh"] == [2, 4]
        and sharded["layout_adjusted"] == {}
    )
    proc = helpers.start(_cmd("vgg11", tmp_path / "killed", "model_parallel", "2x4", *VGG), env=env, cwd=ROOT)
    killed_at = kill_mid_epoch(proc, tmp_path / "killed", sharded["steps_per_epoch"])
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed mid-epoch"
    out = helpers.run(
        _cmd("vgg11", tmp_path / "killed", "model_parallel", "2x4", *VGG),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    assert "resuming" in out
    resumed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert resumed["weights_sha256"] == sharded["weights_sha256"] and resumed["steps"] == sharded["steps"]


def test_a_distribution_off_jax_is_one_line(tmp_path):
    import keras

    from recipes.train import main

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs JAX")
    assert main(["lenet5", "--distribution", "model_parallel", "--run-dir", str(tmp_path / "r")]) == 2
