"""Gradient diagnostics (``diagnostics: gradients``): a deep sigmoid MLP's gradients vanish toward
its input, the same depth with ReLU and batch norm keeps them; logging changes no weight."""

import json

import pandas as pd
import pytest

from recipes import config as config_lib
from recipes.tasks.classify import train

DEPTH = 20


def _run(run_dir, activation, batch_norm, diagnostics="gradients"):
    kwargs = {
        "hidden_units": [32] * DEPTH,
        "activation": activation,
        "batch_norm": batch_norm,
        "dropout_rate": 0.0,
    }
    overrides = {
        "epochs": 1,
        "verbose": 0,
        "run_dir": str(run_dir),
        "model_kwargs": kwargs,
        "diagnostics": diagnostics,
        "diagnostics_every": 10,
        "precise_bn_samples": 0,
    }
    return train(config_lib.resolve("mlp", overrides=overrides), export=False)


def _first_over_last(frame: pd.DataFrame) -> float:
    """The median over logged steps of the first hidden layer's gradient norm over the last's."""
    layers = frame[frame["depth"] >= 0]
    by_depth = layers.pivot(index="step", columns="depth", values="grad_norm")
    return float((by_depth[0] / by_depth[by_depth.columns.max()]).median())


@pytest.mark.slow  # trains for over 10 s
def test_a_deep_sigmoid_mlp_shows_vanishing_gradients_and_relu_with_batch_norm_does_not(tmp_path):
    sigmoid = _run(tmp_path / "sigmoid", "sigmoid", False)
    relu = _run(tmp_path / "relu", "relu", True)
    frames = {name: pd.read_csv(tmp_path / name / "gradients.csv") for name in ("sigmoid", "relu")}
    steps = sigmoid["steps"]
    assert sorted(frames["sigmoid"]["step"].unique()) == list(range(10, steps + 1, 10))
    # one row per Dense (and batch norm) layer per logged step, input to output, and the global norm
    assert (frames["sigmoid"]["depth"] >= 0).sum() == (DEPTH + 1) * len(range(10, steps + 1, 10))
    assert _first_over_last(frames["sigmoid"]) < 1e-3 < _first_over_last(frames["relu"])
    flagged = sigmoid["gradient_flags"]
    assert flagged and all("vanishing" in said for said in flagged.values()) and not relu["gradient_flags"]
    assert (tmp_path / "sigmoid" / "gradients.png").is_file()
    assert 0 < sigmoid["gradient_seconds_per_log"] and 0 < sigmoid["gradient_share_of_training"] < 1
    ratios = frames["relu"].loc[frames["relu"]["depth"] >= 0, "update_ratio"]
    assert (ratios > 0).all() and (ratios < 1).all()  # Adam at 1e-3 moves each layer a little


@pytest.mark.slow  # trains for over 10 s
def test_logging_gradients_changes_no_weight(tmp_path):
    logged = _run(tmp_path / "logged", "relu", True)
    plain = _run(tmp_path / "plain", "relu", True, diagnostics=None)
    assert logged["weights_sha256"] == plain["weights_sha256"]
    assert not (tmp_path / "plain" / "gradients.csv").exists()
    saved = json.loads((tmp_path / "logged" / "summary.json").read_text())
    assert saved["gradients_logged"] == logged["steps"] // 10


@pytest.mark.parametrize("bounds", [[1.0, 0.5], [-1, 2], [1e-6]])
def test_gradient_bounds_must_be_a_low_and_a_higher_high(bounds):
    with pytest.raises(ValueError, match="config field gradient_bounds="):
        config_lib.resolve("mlp", overrides={"gradient_bounds": bounds})
