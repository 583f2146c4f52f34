"""Bad input gets a ValueError that names the bad value and what is allowed; nothing is fixed silently."""

import pytest

import modelzoo
from modelzoo.registry import get_entry

IMAGE_MODELS = modelzoo.list_models(task="image_classification")


def test_unknown_model_suggests_closest_names():
    with pytest.raises(modelzoo.UnknownModelError, match=r"'resnet-50'.*Did you mean 'resnet50'"):
        modelzoo.create_model("resnet-50")
    with pytest.raises(ValueError, match=r"'vgg16bn'.*'vgg16_bn'"):
        modelzoo.model_info("vgg16bn")
    with pytest.raises(ValueError, match="densenet121"):
        modelzoo.create_model("densnet121")


def test_unknown_keyword_names_it_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown keyword 'num_clases'.*Did you mean 'num_classes'"):
        modelzoo.create_model("resnet18", num_clases=10)
    with pytest.raises(ValueError, match=r"Allowed: .*growth_rate"):
        modelzoo.create_model("densenet121", growth=12)


@pytest.mark.parametrize("value", [0, -3, 2.5, "10", True, None])
def test_num_classes_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match="num_classes"):
        modelzoo.create_model("lenet5", num_classes=value)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_input_too_small_for_the_strides(name):
    smallest = get_entry(name).min_input_size
    with pytest.raises(ValueError, match=rf"at least {smallest}"):
        modelzoo.create_model(name, input_shape=(smallest - 1, smallest + 10, 3))


@pytest.mark.parametrize("shape", [(224, 224), (224, 224, 3, 1), "224x224x3", (224, 224, 0), (224.0, 224, 3)])
def test_input_shape_must_be_height_width_channels(shape):
    with pytest.raises(ValueError, match="input_shape"):
        modelzoo.create_model("resnet18", input_shape=shape)


def test_pooling():
    with pytest.raises(ValueError, match=r"pooling must be one of \[None, 'avg', 'max'\], got 'mean'"):
        modelzoo.create_model("resnet18", include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="only with include_top=False"):
        modelzoo.create_model("resnet18", pooling="avg")
    model = modelzoo.create_model("resnet18", include_top=False, pooling="max", input_shape=(32, 32, 3))
    assert tuple(model.output.shape) == (None, 512)
    with pytest.raises(ValueError, match="does not apply to an MLP"):
        modelzoo.create_model("mlp", pooling="avg")


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5"])
def test_dropout_rate_range(rate):
    with pytest.raises(ValueError, match="dropout_rate"):
        modelzoo.create_model("alexnet", dropout_rate=rate)


def test_classifier_activation():
    with pytest.raises(ValueError, match=r"classifier_activation='softmx'.*'softmax'"):
        modelzoo.create_model("lenet5", classifier_activation="softmx")
    logits = modelzoo.create_model("lenet5", classifier_activation=None)
    assert logits.get_layer("predictions").get_config()["activation"] == "linear"


def test_out_indices():
    with pytest.raises(ValueError, match=r"out_indices contains 5.*0\.\.4"):
        modelzoo.create_model("resnet18", features_only=True, out_indices=(1, 5))
    with pytest.raises(ValueError, match="must not repeat"):
        modelzoo.create_model("resnet18", features_only=True, out_indices=(1, -4))
    with pytest.raises(ValueError, match="only with features_only=True"):
        modelzoo.create_model("resnet18", out_indices=(1,))
    with pytest.raises(ValueError, match="out_indices"):
        modelzoo.create_model("resnet18", features_only=True, out_indices="1")


def test_family_specific_values():
    with pytest.raises(ValueError, match=r"depth must be one of \[11, 13, 16, 19\], got 17"):
        modelzoo.vgg(depth=17)
    with pytest.raises(ValueError, match=r"vgg16 fixes depth=16"):
        modelzoo.vgg16(depth=19)
    with pytest.raises(ValueError, match="unknown keyword 'depth'"):
        modelzoo.create_model("resnet50", depth=101)
    with pytest.raises(ValueError, match="blocks_per_stage must have 4 entries"):
        modelzoo.densenet(blocks_per_stage=(6, 12, 24))
    with pytest.raises(ValueError, match="growth_rate must be >= 1"):
        modelzoo.densenet121(growth_rate=0)
    with pytest.raises(ValueError, match="width_multiplier"):
        modelzoo.resnet18(width_multiplier=0)
    with pytest.raises(ValueError, match="hidden_units"):
        modelzoo.mlp(hidden_units=(64, 0))
    with pytest.raises(ValueError, match="grouped must be True or False"):
        modelzoo.alexnet(grouped="yes")
    with pytest.raises(ValueError, match="efficientnet_b3 fixes width_coefficient=1.2"):
        modelzoo.efficientnet_b3(width_coefficient=1.0)
    with pytest.raises(ValueError, match=r"groups=32 and width_per_group=4 need bottleneck blocks"):
        modelzoo.resnet(depth=18, groups=32, width_per_group=4)
    with pytest.raises(ValueError, match="resnext50_32x4d fixes groups=32"):
        modelzoo.resnext50_32x4d(groups=8)
    with pytest.raises(ValueError, match=r"drop_path_rate must be in \[0.0, 1.0\), got 1.5"):
        modelzoo.efficientnet(drop_path_rate=1.5)


def test_a_variant_changes_defaults_the_caller_may_still_choose():
    import inspect

    sig = inspect.signature(modelzoo.efficientnet_b7)
    assert sig.parameters["input_shape"].default == (600, 600, 3)
    assert sig.parameters["dropout_rate"].default == 0.5
    assert "width_coefficient" not in sig.parameters
    assert modelzoo.get_entry("efficientnet_b7").default_input_shape == (600, 600, 3)
    model = modelzoo.efficientnet_b7(input_shape=(32, 32, 3), num_classes=3)  # positional order kept too
    assert model.input_shape == (None, 32, 32, 3) and model.name == "efficientnet_b7"
    assert modelzoo.efficientnet_b0(5, (32, 32, 1)).output_shape == (None, 5)


def test_list_models_filters_and_wildcards():
    assert modelzoo.list_models("resnet*", exclude="*_v2") == [
        "resnet101",
        "resnet152",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet50_dcn",
    ]
    assert modelzoo.list_models("resnet*", exclude=["*_v2", "*_dcn"])[-1] == "resnet50"
    assert modelzoo.list_models("resnet*_v2") == ["resnet101_v2", "resnet152_v2", "resnet50_v2"]
    assert modelzoo.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert modelzoo.list_models(["lenet*", "mlp"]) == ["lenet5", "mlp"]
    assert modelzoo.list_models("vgg*", exclude="*_bn") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert modelzoo.list_models(family="densenet") == [
        "densenet",
        "densenet121",
        "densenet169",
        "densenet201",
    ]
    assert "mlp" not in modelzoo.list_models(task="image_classification")
    assert modelzoo.list_models("nothing*") == []
    with pytest.raises(ValueError, match=r"unknown family 'resnett'.*'resnet'"):
        modelzoo.list_models(family="resnett")
    with pytest.raises(ValueError, match="unknown task"):
        modelzoo.list_models(task="segmentation")


def test_model_info_without_building():
    info = modelzoo.model_info("vgg16", stats=False)
    assert info["year"] == 2014 and info["default_input_shape"] == (224, 224, 3)
    assert "params" not in info
    assert info["default_config"]["dropout_rate"] == 0.5
    assert "depth" not in info["default_config"]  # fixed by the preset
    assert info["train_crop"] and not modelzoo.model_info("lenet5", stats=False)["train_crop"]


def test_each_family_records_whether_its_paper_trains_with_random_crops():
    """The families (not the recipes) record their training crop (``TRAIN_CROP``)."""
    entries = [modelzoo.get_entry(name) for name in modelzoo.list_models()]
    cropped = sorted({e.family for e in entries if e.train_crop})
    assert cropped == sorted(
        ["alexnet", "zfnet", "vgg", "resnet", "densenet", "googlenet", "mobilenet", "mobilenet_v2"]
        + ["efficientnet", "efficientnet_v2", "xception", "inception_v3", "inception_resnet_v2"]
        + ["nasnet", "regnet"]
    )
    assert all(e.task == "image_classification" for e in entries if e.train_crop)


def test_families_record_the_normalisation_of_their_imagenet_recipes():
    from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD

    vgg, resnet = modelzoo.model_info("vgg16", stats=False), modelzoo.model_info("resnet50", stats=False)
    assert (vgg["mean"], vgg["std"]) == (IMAGENET_MEAN, None)  # the mean RGB value subtracted
    assert (resnet["mean"], resnet["std"]) == (IMAGENET_MEAN, IMAGENET_STD)
    assert modelzoo.get_entry("lenet5").mean_std == (None, None)


def test_reset_classifier_needs_a_head():
    headless = modelzoo.create_model("resnet18", include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="predictions"):
        modelzoo.reset_classifier(headless, 10)
    with pytest.raises(ValueError, match="num_classes"):
        modelzoo.reset_classifier(modelzoo.lenet5(), 0)


def test_register_model_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        modelzoo.register_model(lambda: None, paper="x", year=2000, name="resnet50")


def test_a_model_larger_than_memory_is_refused_before_its_weights_exist():
    import psutil

    before = psutil.Process().memory_info().rss
    with pytest.raises(
        ValueError, match=r"vgg16_bn\(fc_units=1000000\) has 1,026,104,732,584 weights, 3822\.5 GiB"
    ):
        modelzoo.create_model("vgg16_bn", fc_units=1_000_000)
    assert psutil.Process().memory_info().rss - before < 2**30  # the 3.8 TB were never asked for


def test_the_memory_check_names_what_is_left_and_an_ordinary_build_is_unchanged(monkeypatch):
    import keras
    import numpy as np

    from modelzoo import validation

    small = {"num_classes": 3, "input_shape": (32, 32, 3)}
    monkeypatch.setattr(validation, "available_memory", lambda: 40 * 2**20)
    with pytest.raises(ValueError, match=r"11,187,651 weights, 0\.0 GiB, more than the 0\.0 GiB"):
        modelzoo.create_model("resnet18", **small)
    monkeypatch.setattr(validation, "available_memory", lambda: 50 * 2**20)
    keras.utils.set_random_seed(1)
    checked = modelzoo.create_model("resnet18", **small)
    monkeypatch.setattr(validation, "available_memory", lambda: None)  # unknown: no check
    keras.utils.set_random_seed(1)
    plain = modelzoo.create_model("resnet18", **small)
    for a, b in zip(checked.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)  # deferred allocation draws the same initial weights
