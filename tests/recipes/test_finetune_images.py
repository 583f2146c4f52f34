"""Fine-tuning and incremental learning: a new label set (digits 5-9 from a model of digits 0-4),
a frozen backbone first, then every layer at a lower learning rate."""

import json

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes import trainer
from recipes.tasks.classify import train

LOW, HIGH = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("finetune") / "low"
    train(
        config_lib.resolve(
            "lenet5", overrides={"classes": LOW, "epochs": 4, "verbose": 0, "run_dir": str(path)}
        )
    )
    return path


def test_classes_make_a_new_label_set():
    data, _ = trainer.load_data(config_lib.resolve("mlp", overrides={"classes": HIGH}))
    assert data.num_classes == 5 and [str(c) for c in data.class_names] == [str(c) for c in HIGH]
    assert set(np.unique(data.test.y)) == set(range(5)) and len(data.test) < 200
    with pytest.raises(ValueError, match="classes=\\[5, 12\\] must name at least two of the classes"):
        trainer.load_data(config_lib.resolve("mlp", overrides={"classes": [5, 12]}))
    with pytest.raises(ValueError, match="freezing needs init_from"):
        config_lib.resolve("mlp", overrides={"freeze_epochs": 1}).validate()


def test_fine_tuning_beats_scratch_after_one_epoch(source, tmp_path):
    one = {"classes": HIGH, "epochs": 1, "verbose": 0}
    scratch = train(config_lib.resolve("lenet5", overrides={**one, "run_dir": str(tmp_path / "scratch")}))
    tuned = train(
        config_lib.resolve(
            "lenet5", overrides={**one, "init_from": str(source), "run_dir": str(tmp_path / "tuned")}
        )
    )
    print(
        f"digits 5-9 after one epoch: from scratch {scratch['test_accuracy']:.4f}, from the 0-4 model "
        f"{tuned['test_accuracy']:.4f}"
    )
    assert tuned["test_accuracy"] > scratch["test_accuracy"]


def test_frozen_backbone_then_unfrozen_at_a_lower_rate(source, tmp_path):
    cfg = config_lib.resolve(
        "lenet5",
        overrides={
            "classes": HIGH,
            "epochs": 2,
            "freeze_epochs": 1,
            "unfreeze_lr_scale": 0.1,
            "init_from": str(source),
            "verbose": 0,
            "run_dir": str(tmp_path / "ft"),
            "checkpoint_every": 1000,
        },
    )
    before = keras.saving.load_model(source / "model.keras", safe_mode=True)
    seen = {}

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = {
                layer.name: [np.array(w) for w in layer.get_weights()]
                for layer in self.model.layers
                if layer.weights
            }

    summary = train(cfg, callbacks=[Watch()])
    assert (
        summary["completed"]
        and json.loads((tmp_path / "ft" / "summary.json").read_text())["steps"] == summary["steps"]
    )
    inherited = [n for n in seen[0] if n != "output" and n in {layer.name for layer in before.layers}]
    assert inherited, "no layer came from init_from"
    for name in inherited:  # epoch 1: the backbone exactly as loaded; epoch 2: it moved
        for w, w0 in zip(seen[0][name], before.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w, w0)
    assert any(not np.array_equal(a, b) for n in inherited for a, b in zip(seen[1][n], seen[0][n]))
    model = keras.saving.load_model(tmp_path / "ft" / "model.keras", safe_mode=True)
    saved = model.optimizer.get_config()[
        "learning_rate"
    ]  # the schedule saved with the model, not a fresh one
    schedule = keras.optimizers.schedules.deserialize(saved)
    steps = summary["steps_per_epoch"]
    assert isinstance(schedule, trainer.ScaledAfter) and schedule.boundary == steps and schedule.scale == 0.1
    rate = lambda step: float(keras.ops.convert_to_numpy(schedule(step)))  # noqa: E731
    assert rate(steps) == pytest.approx(
        0.1 * rate(steps - 1)
    )  # a tenth of the rate once the backbone is unfrozen
    schedule = trainer.make_optimizer(cfg, summary["steps_per_epoch"])._learning_rate
    assert float(schedule(summary["steps_per_epoch"] - 1)) == pytest.approx(cfg.learning_rate)
    assert float(schedule(summary["steps_per_epoch"])) == pytest.approx(cfg.learning_rate * 0.1)
