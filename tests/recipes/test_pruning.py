"""Magnitude pruning: the cubic schedule, and an MLP pruned to 80% that keeps its accuracy and
is really that sparse after saving and loading."""

import json

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes import pruning
from recipes.tasks.classify import train


def test_schedule_is_cubic_from_begin_to_end():
    assert pruning.target_sparsity(5, 0.8, 10, 110) == 0
    assert pruning.target_sparsity(10, 0.8, 10, 110) == 0
    assert pruning.target_sparsity(60, 0.8, 10, 110) == pytest.approx(0.8 * (1 - 0.5**3))
    assert pruning.target_sparsity(500, 0.8, 10, 110) == 0.8


def test_bad_pruning_fields():
    with pytest.raises(ValueError, match="prune_sparsity=1.0 is invalid: must be in \\[0, 1\\)"):
        config_lib.resolve("mlp", overrides={"prune_sparsity": 1.0}).validate()
    with pytest.raises(
        ValueError, match="prune_end_epoch=1.0 is invalid: must not come before prune_begin_epoch=2.0"
    ):
        config_lib.resolve("mlp", overrides={"prune_begin_epoch": 2.0, "prune_end_epoch": 1.0}).validate()


@pytest.mark.slow
def test_pruned_to_80_percent_keeps_accuracy_and_its_zeros(tmp_path):
    base = {"epochs": 20, "verbose": 0}
    dense = train(config_lib.resolve("mlp", overrides={**base, "run_dir": str(tmp_path / "dense")}))
    pruned = train(
        config_lib.resolve(
            "mlp", overrides={**base, "prune_sparsity": 0.8, "run_dir": str(tmp_path / "pruned")}
        )
    )
    print(
        f"dense {dense['test_accuracy']:.4f}, pruned {pruned['test_accuracy']:.4f} at sparsity {pruned['sparsity']}"
    )
    assert pruned["test_accuracy"] >= dense["test_accuracy"] - 0.01
    assert pruned["sparsity"] >= 0.799
    model = keras.saving.load_model(tmp_path / "pruned" / "model.keras", safe_mode=True)
    for kernel in pruning.prunable_kernels(model):  # each kernel, after loading it back
        assert (np.asarray(kernel) == 0).mean() >= 0.799
    dense_model = keras.saving.load_model(tmp_path / "dense" / "model.keras", safe_mode=True)
    sizes = {"dense": pruning.weights_gzip_bytes(dense_model), "pruned": pruning.weights_gzip_bytes(model)}
    print(f"weights after gzip: dense {sizes['dense']:,} bytes, pruned {sizes['pruned']:,}")
    assert sizes["pruned"] < 0.5 * sizes["dense"] and sizes["pruned"] == pruned["weights_gzip_bytes"]
    assert json.loads((tmp_path / "pruned" / "summary.json").read_text())["sparsity"] == pruned["sparsity"]
