"""The run loop: one lifecycle for every task, the runtime's global state restored whatever
happens, config fields checked per recipe, and loop features (early stopping) reaching every task."""

import dataclasses
import os
import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from modelzoo import private_keras
from modelzoo.validation import UserError
from recipes import config as config_lib
from recipes import loop
from recipes.distill import distill
from recipes.pretrain import pretrain
from recipes.runtime import private_tensorflow
from recipes.tasks.classify import Classify, train
from recipes.tasks.distill import Distill

FAST = {"epochs": 1, "batch_size": 64, "verbose": 0}


class ChdirAndFail(keras.callbacks.Callback):
    """A run that changes the working directory and then crashes mid-training."""

    def __init__(self, where):
        super().__init__()
        self.where = where

    def on_train_batch_end(self, batch, logs=None):
        os.chdir(self.where)
        raise RuntimeError("crash mid-training")


def _global_state():
    return (
        random.getstate(),
        np.random.get_state()[1].tolist(),
        private_tensorflow.global_seed(),
        private_keras.global_seed_state()[0],
        keras.mixed_precision.dtype_policy().name,
        os.getcwd(),
    )


@pytest.mark.parametrize("failure", ["build", "data", "training"])
def test_a_failed_mixed_precision_run_leaves_global_state_as_it_was_then_float32_trains(tmp_path, failure):
    random.seed(123)
    np.random.seed(7)
    tf.random.set_seed(11)
    before = _global_state()
    bad = {
        "build": {"model_kwargs": {"no_such_argument": 1}},
        "data": {"dataset": "csv", "data_path": str(tmp_path / "none.csv")},
        "training": {},
    }[failure]
    cfg = config_lib.resolve(
        "mlp", overrides={**FAST, **bad, "mixed_precision": "mixed_float16", "run_dir": str(tmp_path / "bad")}
    )
    with pytest.raises(Exception):  # noqa: B017 (each failure has its own type; the test is what is restored)
        loop.run(Classify(cfg), callbacks=[ChdirAndFail(tmp_path)] if failure == "training" else [])
    assert _global_state() == before  # policy, Python/NumPy/TensorFlow/Keras seeds and cwd
    summary = train(config_lib.resolve("mlp", overrides={**FAST, "run_dir": str(tmp_path / "good")}))
    assert summary["precision"] == "float32" and summary["test_accuracy"] > 0.5
    model = keras.saving.load_model(tmp_path / "good" / "model.keras", safe_mode=True)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_every_field_is_in_exactly_one_part_and_recipes_take_parts():
    placed = [name for part in config_lib.PARTS.values() for name in part]
    assert sorted(placed) == sorted(config_lib.FIELDS) and len(placed) == len(set(placed))
    assert "label_smoothing" not in config_lib.recipe_fields("pretrain")
    assert "temperature" in config_lib.recipe_fields("distill") and "l2" not in config_lib.recipe_fields(
        "distill"
    )


def test_a_field_the_recipe_does_not_take_is_an_error_naming_field_and_recipe(tmp_path):
    cfg = config_lib.resolve(
        "bert_tiny", overrides={"dataset": "stdlib_corpus", "label_smoothing": 0.1, "run_dir": str(tmp_path)}
    )
    with pytest.raises(UserError, match="pretrain does not apply config field label_smoothing=0.1"):
        pretrain(cfg)
    with pytest.raises(UserError, match="train does not apply config field temperature=2.0"):
        train(config_lib.resolve("mlp", overrides={"temperature": 2.0, "run_dir": str(tmp_path)}))
    assert not (tmp_path / "config.yaml").exists()  # refused before anything is written


def test_the_saved_config_holds_only_the_recipe_fields(tmp_path):
    train(config_lib.resolve("mlp", overrides={**FAST, "run_dir": str(tmp_path)}))
    saved = config_lib.load_yaml(tmp_path / "config.yaml")
    assert list(saved) == config_lib.recipe_fields("train") and "temperature" not in saved
    cfg, _ = __import__("recipes.trainer", fromlist=["load_run"]).load_run(tmp_path)
    assert cfg.model == "mlp" and cfg.temperature == config_lib.TrainConfig().temperature


class FailAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise RuntimeError(f"killed after epoch {self.epoch}")


@pytest.mark.slow
def test_distill_stops_early_and_resumes_its_early_stopping_state(tmp_path):
    teacher = tmp_path / "teacher"
    train(config_lib.resolve("mlp", overrides={**FAST, "run_dir": str(teacher)}))
    # A learning rate too small to move a float32 weight: validation loss is flat, so with patience 2
    # the run stops after epoch 3 of 8 (best at 1, no improvement at 2 and 3).
    small = {"hidden_units": [32], "dropout_rate": 0.0}
    cfg = config_lib.resolve(
        "mlp",
        overrides={
            **FAST,
            "epochs": 8,
            "learning_rate": 1e-30,
            "momentum": 0.0,
            "model_kwargs": small,
            "early_stopping_patience": 2,
            "run_dir": str(tmp_path / "student"),
        },
    )
    with pytest.raises(RuntimeError, match="killed after epoch 2"):  # its checkpoint holds wait=1
        loop.run(Distill(dataclasses.replace(cfg), teacher), callbacks=[FailAfterEpoch(2)])
    summary = distill(cfg, teacher)
    steps = summary["steps_per_epoch"]
    # a resume that forgot the state would start counting again and stop after epoch 5
    assert summary["early_stopped"] and summary["steps"] == 3 * steps
    import pandas as pd

    assert pd.read_csv(tmp_path / "student" / "metrics.csv")["epoch"].tolist() == [0, 1, 2]
