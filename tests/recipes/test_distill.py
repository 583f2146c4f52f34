"""Distillation through keras.distillation.Distiller on the recipes' machinery."""

import json

import keras
import numpy as np
import pytest

import modelzoo
from recipes import config as config_lib
from recipes.distill import distill, main
from recipes.tasks.classify import train
from recipes.tasks.distill import logits_model as _logits


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


def _two_head_student():
    """A stand-in for a distilled ViT: two logits heads on one input, as ``distilled=True`` gives."""
    x = keras.Input((4,))
    return keras.Model(x, [keras.layers.Dense(3, name="fc")(x), keras.layers.Dense(3, name="fc_dist")(x)])


@pytest.mark.parametrize("targets", ["hard", "soft"])
def test_deit_token_head_learns_from_the_teacher_and_class_head_from_the_labels(targets):
    from recipes.tasks.distill import make_distiller, student_loss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 6)]
    inputs = keras.Input((4,))
    teacher = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    student = _two_head_student()
    cfg = config_lib.resolve(
        "vit_tiny_patch16_224",
        overrides={"distill_weight": 0.5, "distill_targets": targets, "temperature": 2.0},
    )
    distiller = make_distiller(cfg, teacher, student, token=True)
    distiller.compile(optimizer="sgd", loss=student_loss(True))
    loss = float(distiller.compute_loss(x, (y, y), distiller.student(x)))
    cls, dist = (np.asarray(t, "float64") for t in student(x))
    t = np.asarray(teacher(x), "float64")

    def log_softmax(z):
        return (
            z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
        )

    label_term = -(y * log_softmax(cls)).sum(-1).mean()  # the class head's labels; the token head has none
    if targets == "hard":  # DeiT eq. 3: cross-entropy with the teacher's top class, on the token head
        teacher_term = -log_softmax(dist)[np.arange(6), t.argmax(-1)].mean()
    else:  # Hinton: KL between the softened distributions, times T^2, on the token head
        p, q = np.exp(log_softmax(t / 2)), log_softmax(dist / 2)
        teacher_term = 4 * (p * (np.log(p) - q)).sum(-1).mean()
    np.testing.assert_allclose(loss, 0.5 * label_term + 0.5 * teacher_term, rtol=1e-4)


@pytest.mark.slow
def test_deit_student_with_its_token_is_one_run_predicting_with_both_heads(tmp_path):
    teacher = tmp_path / "teacher"
    train(config_lib.resolve("mlp", overrides={"epochs": 4, "verbose": 0, "run_dir": str(teacher)}))
    tiny = {"width": 32, "depth": 1, "heads": 2}  # 2x2 patches at 32x32; the teacher sees 8x8
    argv = [str(teacher), "vit_tiny_patch16_224", "--token", "--targets", "hard", "--epochs", "2"]
    argv += ["--image-size", "32"]
    argv += ["--set", f"model_kwargs={json.dumps(tiny)}", "--set", "verbose=0"]
    assert main(argv) == 0
    run = tmp_path / "vit_tiny_patch16_224_distilled_from_teacher"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["completed"] and summary["distill_targets"] == "hard"
    assert config_lib.load_yaml(run / "config.yaml")["distill_token"] is True
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype("float32")
    heads = keras.Model(
        model.inputs, [model.get_layer(n).output for n in ("predictions", "dist_predictions")]
    )
    np.testing.assert_allclose(model(x), np.mean([np.asarray(h) for h in heads(x)], axis=0), rtol=1e-5)
    for key in ("test_accuracy", "class_head_test_accuracy", "token_head_test_accuracy"):
        assert 0.1 < summary[key] <= 1.0, summary  # each head learned something in two epochs


def test_a_token_needs_a_student_that_has_one(tmp_path):
    teacher = tmp_path / "teacher"
    (teacher / "model.keras").parent.mkdir()
    modelzoo.create_model("mlp", num_classes=10, input_shape=(8, 8, 1)).save(teacher / "model.keras")
    (teacher / "config.yaml").write_text("model: mlp\n")
    with pytest.raises(ValueError, match="distill_token needs a student with DeiT's distillation token"):
        distill(config_lib.resolve("lenet5", overrides={"distill_token": True}), teacher)
    with pytest.raises(ValueError, match="distill_targets='medium' is invalid: one of \\['soft', 'hard'\\]"):
        config_lib.resolve("mlp", overrides={"distill_targets": "medium"})
