"""Precise batch-norm statistics (recipes.precise_bn): each layer's moving mean and variance become
the average of its batch statistics over the given training batches, with the weights as they are,
and nothing else of the model moves."""

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes import precise_bn
from recipes.tasks.classify import train


def _model():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.999, name="bn1")(x)
    x = keras.layers.Dropout(0.5, name="drop")(keras.layers.ReLU()(x))
    x = keras.layers.Conv2D(3, 1, name="conv2")(x)
    x = keras.layers.BatchNormalization(momentum=0.99, name="bn2")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_statistics_are_the_average_of_the_batch_statistics_with_the_current_weights():
    keras.utils.set_random_seed(0)
    model = _model()
    rng = np.random.default_rng(0)
    batches = [(rng.normal(2.0, 3.0, (8, 6, 6, 2)).astype("float32"), np.zeros((8, 2))) for _ in range(3)]
    seeds = [v.numpy().copy() for v in model.non_trainable_variables if "seed" in v.path]
    weights = [w.numpy().copy() for w in model.trainable_weights]
    callback = precise_bn.PreciseBatchNorm(batches)
    callback.set_model(model)
    assert callback.recompute() == 3
    # bn1's input is the first convolution's output: its statistics need no training-mode pass
    conv = keras.Model(model.inputs, model.get_layer("conv").output)
    outs = [conv.predict_on_batch(x) for x, _ in batches]
    mean = np.mean([o.mean(axis=(0, 1, 2)) for o in outs], axis=0)
    variance = np.mean([o.var(axis=(0, 1, 2)) for o in outs], axis=0)
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), variance, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.get_layer("bn2").moving_variance.numpy(), 1.0)
    # momenta restored; weights and the dropout's seed state untouched
    assert (bn1.momentum, model.get_layer("bn2").momentum) == (0.999, 0.99)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, model.trainable_weights))
    assert all(
        np.array_equal(a, v.numpy())
        for a, v in zip(seeds, [v for v in model.non_trainable_variables if "seed" in v.path])
    )
    assert callback.recompute() == 0  # same weights (same optimizer step): nothing to do again


def test_frozen_and_nested_batch_norms():
    inner = _model()
    inner.get_layer("bn2").trainable = False
    outer = keras.Sequential([keras.Input((6, 6, 2)), inner])
    assert [layer.name for layer in precise_bn.batch_norms(outer)] == ["bn1"]


@pytest.mark.slow  # trains for over 10 s
def test_the_loop_recomputes_before_each_validation_from_the_samples_asked(tmp_path, monkeypatch):
    used = []
    recompute = precise_bn.PreciseBatchNorm.recompute
    monkeypatch.setattr(precise_bn.PreciseBatchNorm, "recompute", lambda self: used.append(recompute(self)))

    def run(samples, **extra):
        overrides = {
            "epochs": 2,
            "classes": [0, 1, 2],
            "image_size": 32,
            "batch_size": 64,
            "verbose": 0,
            "model_kwargs": {"width_multiplier": 0.125},
            "precise_bn_samples": samples,
            "run_dir": str(tmp_path / str(samples)),
            **extra,
        }
        return train(config_lib.resolve("resnet18", overrides=overrides))

    run(100)  # 100 of the 390 training images: two batches of 64, before each epoch's validation
    assert used == [2, 2, 0]  # the end of training: the weights of the last validation, nothing to do
    used.clear()
    run(0, epochs=1)
    assert used == []
