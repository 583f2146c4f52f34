"""ImageNet weights: keras.applications models (randomly initialised here: no download) converted
into the zoo's layout give the same outputs within 1e-4, for every model that has them."""

import keras
import numpy as np
import pytest

import modelzoo
from modelzoo import pretrained


def _randomise(model, seed=0):
    """Random weights everywhere, conv biases and batch-norm statistics included, so that a
    conversion that drops or misplaces any of them shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape, path = tuple(w.shape), w.path
            if "moving_variance" in path or "gamma" in path:
                values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
            elif "moving_mean" in path or "beta" in path or "bias" in path:
                values.append(rng.normal(0, 0.1, shape).astype("float32"))
            else:
                values.append(np.asarray(w))
        if values:
            layer.set_weights(values)
    return model


def _headless(ref):
    """keras.applications' ConvNeXt ends its headless model in a layer norm, which the zoo keeps in
    its head (as timm): the backbones compare before it."""
    last = ref.layers[-1]
    return keras.Model(ref.inputs, last.input) if isinstance(last, keras.layers.LayerNormalization) else ref


def _compare(zoo, ref, shape, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, (2, *shape)).astype("float32")
    # EfficientNet's reference scales its input by 1/255 first (then its Normalization, identity
    # with weights=None); the zoo model takes the scaled input
    scale = 255.0 if any(isinstance(layer, keras.layers.Rescaling) for layer in ref.layers) else 1.0
    a, b = np.asarray(zoo(x, training=False)), np.asarray(ref(x * scale, training=False))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


# Each conversion route once, at its family's smallest size, and the sizes whose layers follow
# another rule: VGG-19's fourth convolutions, MobileNetV2 above width 1 (a wider last conv),
# MobileNetV3 Small's and the minimalistic tables, EfficientNet-B2 (rounded widths, third repeats).
# The other sizes differ in depth or width only, under the same names (their counts equal
# keras.applications', test_counts.py); ResNet-101/152 and DenseNet-169/201 took 58 s here.
CONVERTED = [
    "vgg16",
    "vgg19",
    "resnet50",
    "resnet50_v2",
    "densenet121",
    "mobilenet_025",
    "mobilenet_v2_035",
    "mobilenet_v2_140",
    "mobilenet_v3_large",
    "mobilenet_v3_large_minimal",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "efficientnet_b2",
    "efficientnet_v2_b0",
    "efficientnet_v2_b3",
    "convnext_tiny",
    "xception",
    "inception_v3",
    "inception_resnet_v2",
    "nasnet_mobile",
]


def test_every_family_with_imagenet_weights_has_its_conversion_tested():
    from modelzoo.registry import get_entry

    assert set(CONVERTED) <= set(pretrained.IMAGENET)
    assert {get_entry(n).family for n in CONVERTED} == {get_entry(n).family for n in pretrained.IMAGENET}


def _small_input(name):
    """keras.applications' minimums: Xception 71, Inception v3 and Inception-ResNet v2 75."""
    return (80, 80, 3) if name in ("xception", "inception_v3", "inception_resnet_v2") else (64, 64, 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONVERTED)
def test_converted_backbones_give_the_reference_outputs(name):
    shape = _small_input(name)
    ref = _randomise(
        pretrained.reference_constructor(name)(weights=None, include_top=False, input_shape=shape)
    )
    zoo = modelzoo.create_model(name, include_top=False, input_shape=shape)
    assert pretrained.from_keras_applications(zoo, ref, name) == []
    _compare(zoo, _headless(ref), shape)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "vgg16",
        "resnet50",
        "densenet121",
        "mobilenet",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "xception",
        "inception_v3",
        "nasnet_mobile",
    ],
)
def test_converted_classifiers_give_the_reference_predictions(name):
    """The head converts too (VGG's fully connected layers, every classifier's last dense), at the
    backbones' small input: the layers and their names do not depend on it, and at the default
    224 or 299 the ten took 52 s of the suite."""
    keras.backend.clear_session()
    shape = _small_input(name)
    ref = _randomise(pretrained.reference_constructor(name)(weights=None, input_shape=shape))
    zoo = modelzoo.create_model(name, input_shape=shape)
    assert pretrained.from_keras_applications(zoo, ref, name) == []
    _compare(zoo, ref, shape)


def test_weights_argument_loads_imagenet_files_and_paths(tmp_path, monkeypatch):
    shape = (32, 32, 3)
    ref = _randomise(keras.applications.ResNet50(weights=None, include_top=False, input_shape=shape))
    calls = []

    def fake_reference(name, model):  # stands in for the download (no network in tests)
        calls.append((name, tuple(model.inputs[0].shape[1:])))
        return ref

    monkeypatch.setattr(pretrained, "imagenet_reference", fake_reference)
    zoo = modelzoo.create_model("resnet50", weights="imagenet", num_classes=7, input_shape=shape)
    assert calls == [("resnet50", shape)]
    features = keras.Model(zoo.inputs, zoo.get_layer("conv5_block3_out").output)
    _compare(features, ref, shape)
    # a .weights.h5 of the same model, and a .keras file copied by layer names
    zoo.save_weights(tmp_path / "r.weights.h5")
    again = modelzoo.create_model(
        "resnet50", weights=str(tmp_path / "r.weights.h5"), num_classes=7, input_shape=shape
    )
    x = np.ones((1, *shape), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(zoo(x)))
    zoo.save(tmp_path / "r.keras")
    other_head = modelzoo.create_model(
        "resnet50", weights=str(tmp_path / "r.keras"), num_classes=3, input_shape=shape
    )
    np.testing.assert_array_equal(
        other_head.get_layer("conv1_conv").get_weights()[0], zoo.get_layer("conv1_conv").get_weights()[0]
    )


@pytest.mark.parametrize(
    "kw, message",
    [
        (
            {"name": "lenet5", "weights": "imagenet"},
            "no ImageNet weights for 'lenet5'; they exist for: vgg16",
        ),
        ({"name": "resnet50", "weights": "/nope/w.weights.h5"}, "'/nope/w.weights.h5' does not exist"),
    ],
)
def test_bad_weights_are_one_clear_error(kw, message):
    with pytest.raises(ValueError, match=message):
        modelzoo.create_model(kw.pop("name"), **kw)


def test_vit_position_embeddings_are_interpolated_from_another_input_size(tmp_path):
    small = modelzoo.create_model(
        "vit_tiny_patch16_224", width=32, heads=2, num_classes=3, input_shape=(32, 32, 3)
    )
    small.save(tmp_path / "vit.keras")
    big = modelzoo.create_model(
        "vit_tiny_patch16_224",
        width=32,
        heads=2,
        num_classes=3,
        input_shape=(64, 64, 3),
        weights=str(tmp_path / "vit.keras"),
    )
    saved, loaded = (
        small.get_layer("position_embedding").embedding,
        big.get_layer("position_embedding").embedding,
    )
    assert tuple(loaded.shape) == (1, 1 + 16, 32)  # the class token and a 4x4 grid, from 1 + 2x2
    np.testing.assert_allclose(np.asarray(loaded)[:, :1], np.asarray(saved)[:, :1])  # the class token's
    grid = keras.ops.reshape(keras.ops.convert_to_tensor(np.asarray(saved)[:, 1:]), (1, 2, 2, 32))
    expected = keras.ops.image.resize(grid, (4, 4), interpolation="bicubic")
    np.testing.assert_allclose(
        np.asarray(loaded)[:, 1:], np.reshape(keras.ops.convert_to_numpy(expected), (1, 16, 32)), atol=1e-6
    )
    for name in ("patch_embed", "block11_attn", "fc"):  # everything else as saved
        for a, b in zip(big.get_layer(name).get_weights(), small.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not a square grid"):
        big.get_layer("position_embedding").adapt_weights([np.zeros((1, 1 + 6, 32), "float32")])
