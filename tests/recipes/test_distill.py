"""Distillation through keras.distillation.Distiller on the recipes' machinery."""

import json

import keras
import numpy as np
import pytest

import modelzoo
from recipes import config as config_lib
from recipes.distill import distill, main
from recipes.tasks.distill import logits_model as _logits
from recipes.trainer import train


@pytest.mark.slow
def test_student_learns_from_a_teacher_run_into_an_ordinary_run_folder(tmp_path):
    teacher = tmp_path / "teacher"
    train(config_lib.resolve("mlp", overrides={"epochs": 8, "verbose": 0, "run_dir": str(teacher)}))
    small = {"hidden_units": [32], "dropout_rate": 0.0}
    assert (
        main(
            [
                str(teacher),
                "mlp",
                "--epochs",
                "8",
                "--temperature",
                "2",
                "--distill-weight",
                "0.5",
                "--set",
                "train_fraction=0.5",
                "--set",
                f"model_kwargs={json.dumps(small)}",
                "--set",
                "verbose=0",
            ]
        )
        == 0
    )
    run = tmp_path / "mlp_distilled_from_teacher"
    summary = json.loads((run / "summary.json").read_text())
    assert (
        summary["completed"]
        and summary["temperature"] == 2.0
        and summary["params"] < summary["teacher_params"]
    )
    saved = config_lib.load_yaml(run / "config.yaml")  # the knobs are config fields, saved with the run
    assert saved["distill_weight"] == 0.5 and saved["train_fraction"] == 0.5 and saved["image_size"] == 8
    assert summary["test_accuracy"] > 0.8  # the soft targets carry the labels' information
    student = keras.saving.load_model(run / "model.keras", safe_mode=True)
    probs = np.asarray(student(np.zeros((1, 8, 8, 1), "float32")))
    assert probs.shape == (1, 10) and abs(probs.sum() - 1) < 1e-5  # the student alone, softmax output
    again = distill(config_lib.resolve("mlp", overrides={"run_dir": str(run)}), teacher)
    assert again["weights_sha256"] == summary["weights_sha256"]  # a finished run is not redone
    with pytest.raises(
        ValueError,
        match="student's seed=1 differs from the teacher's 0; distillation needs the teacher's data split",
    ):
        distill(config_lib.resolve("mlp", overrides={"seed": 1, "run_dir": str(tmp_path / "s1")}), teacher)
    larger = distill(
        config_lib.resolve(
            "mlp", overrides={"image_size": 16, "epochs": 1, "verbose": 0, "run_dir": str(tmp_path / "s16")}
        ),
        teacher,
    )
    assert (
        larger["input_shape"] == [16, 16, 1] and larger["teacher_test_accuracy"] > 0.8
    )  # the teacher sees 8x8 again


def test_a_teacher_of_another_input_size_sees_the_batch_resized():
    teacher = modelzoo.create_model("lenet5", num_classes=10, input_shape=(32, 32, 1))
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    logits = keras.Model(teacher.input, teacher.get_layer("predictions").input)
    expected = logits(keras.ops.image.resize(x, (32, 32), interpolation="bilinear"))
    np.testing.assert_allclose(_logits(teacher, (8, 8, 1))(x), expected, rtol=1e-5, atol=1e-6)
    assert _logits(teacher, (32, 32, 1)).inputs[0].shape[1:] == (32, 32, 1)


def test_bad_distillation_settings_are_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is not a finished run folder"):
        distill(config_lib.resolve("mlp", overrides={"run_dir": str(tmp_path / "s")}), tmp_path / "nope")
    assert main([str(tmp_path / "nope"), "mlp"]) == 2
    with pytest.raises(ValueError, match="distill does not apply config field label_smoothing=0.1"):
        distill(
            config_lib.resolve("mlp", overrides={"label_smoothing": 0.1, "run_dir": str(tmp_path / "s")}),
            tmp_path,
        )
    with pytest.raises(ValueError, match="temperature=0.0 is invalid: must be > 0"):
        config_lib.resolve("mlp", overrides={"temperature": 0})
    with pytest.raises(ValueError, match="distill_weight=1.5 is invalid: must be in \\[0, 1\\]"):
        config_lib.resolve("mlp", overrides={"distill_weight": 1.5})
