"""Batch-norm folding: exact on a representative of every family with batch norm, at its tiny
config and with random batch statistics (so a fold that ignored them would show); an ordinary
model that saves and loads with safe_mode; only the pairs that fold exactly are folded."""

import keras
import numpy as np
import pytest

import modelzoo
from modelzoo.surgery import fold_batch_norm


def _one_per_family():
    """One image model per family: a variant with batch norm where the family has both kinds
    (``vgg16_bn``), else the family's generic builder (its tiny config is the family's smallest),
    else its first variant."""
    chosen = {}
    for name in modelzoo.list_models():
        family = modelzoo.get_entry(name).family
        if modelzoo.get_entry(name).task != "image_classification" or chosen.get(family, "").endswith("_bn"):
            continue
        if name.endswith("_bn") or name == family or family not in chosen:
            chosen[family] = name
    return sorted(chosen.values())


def _random_statistics(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for w in layer.weights:
                positive = w.path.endswith(("gamma", "moving_variance"))
                values.append(rng.uniform(0.5, 1.5, w.shape) if positive else rng.normal(0, 0.1, w.shape))
            layer.set_weights([v.astype("float32") for v in values])


@pytest.mark.parametrize("name", _one_per_family())
def test_folding_is_exact_on_every_family(name):
    model = modelzoo.create_model(name, **modelzoo.get_entry(name).tiny_config)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    rng = np.random.default_rng(0)
    _random_statistics(model, rng)
    folded, pairs = fold_batch_norm(model)
    assert bool(pairs) == bool(norms)  # each family with batch norm has a convolution right before one
    assert sum(isinstance(la, keras.layers.BatchNormalization) for la in folded.layers) == len(norms) - len(
        pairs
    )
    x = rng.random((2, *model.inputs[0].shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(folded(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert folded.count_params() <= model.count_params()  # four vectors a norm, one bias instead


def test_a_folded_model_is_an_ordinary_model_and_only_exact_pairs_fold(tmp_path):
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(4, 3, use_bias=False, name="a")(inputs)
    x = keras.layers.BatchNormalization(name="a_bn")(a)  # folds
    b = keras.layers.Conv2D(4, 1, activation="relu", name="b")(x)
    x = keras.layers.BatchNormalization(name="b_bn")(b)  # after a ReLU: stays
    c = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="c")(x)
    x = keras.layers.BatchNormalization(name="c_bn")(c)  # folds (channel = input * 2 + j)
    d = keras.layers.Conv2D(8, 1, name="d")(x)
    y = keras.layers.Add()([keras.layers.BatchNormalization(name="d_bn")(d), d])  # d feeds two: stays
    z = keras.layers.Dense(5, name="e")(keras.layers.GlobalAveragePooling2D()(y))
    z = keras.layers.BatchNormalization(name="e_bn")(z)  # folds
    model = keras.Model(inputs, z)
    rng = np.random.default_rng(1)
    _random_statistics(model, rng)
    folded, pairs = fold_batch_norm(model)
    assert pairs == [("a", "a_bn"), ("c", "c_bn"), ("e", "e_bn")]
    x = rng.random((3, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), folded.predict(x, verbose=0))
    assert type(loaded.get_layer("a_bn")).__name__ == "Identity" and loaded.get_layer("a").use_bias
