"""``modelzoo export``: each format written, then run by its own runtime on the run's test split
against the Keras model (SavedModel with raw uint8 images, encoded files and strings; LiteRT
float32, float16 and int8; ONNX), batch norms folded first where asked; bad input one line."""

import json

import numpy as np
import pytest
import tensorflow as tf

from recipes import config as config_lib
from recipes.export import export
from recipes.tasks.classify import train


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A ResNet-18 (batch norm after every convolution) at a quarter width on 32 x 32 digits."""
    path = tmp_path_factory.mktemp("export") / "resnet18"
    overrides = {
        "epochs": 1,
        "image_size": 32,
        "model_kwargs": {"width_multiplier": 0.25},
        "verbose": 0,
        "run_dir": str(path),
    }
    train(config_lib.resolve("resnet18", overrides=overrides))
    return path


@pytest.mark.parametrize(
    "fmt, quantize, fold, tolerance",
    [
        ("savedmodel", None, False, 0),
        ("litert", None, True, 1e-4),  # the float32 path a CPU serves fastest, folded
        ("litert", "float16", False, 2e-2),
        ("onnx", None, False, 1e-4),
    ],
)
def test_each_format_is_run_by_its_runtime_and_matches_keras(image_run, fmt, quantize, fold, tolerance):
    report = export(image_run, fmt, quantize, fold_bn=fold)
    name = "_".join([fmt, *([quantize] if quantize else []), *(["folded"] if fold else [])])
    assert json.loads((image_run / "export" / name / "report.json").read_text()) == report
    assert report["test_examples"] == 360 and report["relative_difference"] <= tolerance
    assert report["top1_agreement"] >= 0.99 and report["keras_accuracy"] > 0.5
    assert (report["folded_batch_norms"] or 0) == (20 if fold else 0)  # ResNet-18: 20 norms
    assert all(size > 0 for size in report["files"].values())


def test_the_savedmodel_takes_raw_images_of_any_size_and_image_files(image_run):
    report = export(image_run, "savedmodel")
    assert report["raw_input"]["max_abs_difference"] < 1e-5  # in-graph preprocessing == predict's
    served = tf.saved_model.load(str(image_run / "export" / "savedmodel"))
    images = np.random.default_rng(0).integers(0, 256, (3, 50, 41, 1)).astype("uint8")
    (probs,) = served.signatures["serving_default"](tf.constant(images)).values()
    assert probs.shape == (3, 10) and np.allclose(probs.numpy().sum(-1), 1, atol=1e-5)
    files = tf.stack([tf.io.encode_png(tf.constant(image)) for image in images])
    (decoded,) = served.signatures["serve_encoded"](files).values()
    np.testing.assert_allclose(decoded.numpy(), probs.numpy(), atol=1e-6)


def test_int8_keeps_top1_on_the_test_split(image_run):
    report = export(image_run, "litert", "int8")
    assert abs(report["export_accuracy"] - report["keras_accuracy"]) <= 0.03
    float_bytes = (image_run / "export" / "litert_folded" / "model.tflite").stat().st_size
    assert report["files"]["model.tflite"] < 0.5 * float_bytes  # a byte a weight, not four


def test_a_text_model_is_served_from_strings(tmp_path):
    overrides = {
        "epochs": 1,
        "sequence_length": 16,
        "vocabulary_size": 300,
        "verbose": 0,
        "run_dir": str(tmp_path),
    }
    train(config_lib.resolve("textcnn", overrides=overrides))
    report = export(tmp_path, "savedmodel")
    assert report["raw_input"]["max_abs_difference"] < 1e-5 and report["relative_difference"] == 0
    served = tf.saved_model.load(str(tmp_path / "export" / "savedmodel"))
    (probs,) = served.signatures["serving_default"](tf.constant(["Return the logger.", "a socket"])).values()
    assert probs.shape == (2, 6)
    assert export(tmp_path, "litert")["relative_difference"] < 1e-4


@pytest.mark.slow
def test_a_model_of_several_inputs_is_fed_by_name_in_every_format(tmp_path):
    """BERT's input is a dict (token ids, segment ids, padding mask): int8's calibration and ONNX
    Runtime feed it by name (by position, the token ids reached the segment embedding's gather)."""
    overrides = {
        "epochs": 1,
        "sequence_length": 16,
        "vocabulary_size": 300,
        "train_fraction": 0.3,
        "verbose": 0,
        "run_dir": str(tmp_path),
    }
    train(config_lib.resolve("bert_tiny", overrides=overrides))
    assert export(tmp_path, "savedmodel")["raw_input"]["max_abs_difference"] < 1e-5
    assert export(tmp_path, "onnx")["relative_difference"] < 1e-4
    int8 = export(tmp_path, "litert", "int8")
    assert int8["test_examples"] > 0 and int8["top1_agreement"] > 0.5, int8


@pytest.mark.parametrize(
    "fmt, quantize, message",
    [
        ("tflite", None, r"export format must be one of \['savedmodel', 'litert', 'onnx'\], got 'tflite'"),
        ("onnx", "int8", "--quantize int8 is for --format litert; onnx exports float32"),
        ("litert", "int4", r"--quantize must be one of \['int8', 'float16'\], got 'int4'"),
    ],
)
def test_bad_choices_are_one_line(image_run, fmt, quantize, message):
    with pytest.raises(ValueError, match=message):
        export(image_run, fmt, quantize)
