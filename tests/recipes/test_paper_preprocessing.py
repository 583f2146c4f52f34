"""The ImageNet papers' preprocessing in the pipeline: random-resized crops (ResNet recipes), scale
jittering (VGG, AlexNet), the centre crop for evaluation, mean/std normalisation; and the three
ImageNet recipe YAMLs, which resolve, validate and run (on mocked imagenet2012)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import modelzoo
from recipes import config as config_lib
from recipes import trainer
from recipes.data import base, pipeline, preprocess, sources
from recipes.tasks import classify


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """24 JPEGs of three sizes in 3 class folders, streamed."""
    root = tmp_path_factory.mktemp("varied") / "imgs"
    rng = np.random.RandomState(0)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(8):
            h, w = [(40, 56), (64, 48), (50, 50)][i % 3]
            img = rng.randint(0, 255, (h, w, 3)).astype("uint8")
            tf.io.write_file(str(root / f"c{c}" / f"{i}.jpg"), tf.io.encode_jpeg(img))
    return sources.load("folder", path=str(root), streaming=True, val_fraction=0.1, test_fraction=0.1)


@pytest.mark.parametrize("mode", ["random_resized", "scale_jitter"])
def test_paper_crops_are_seeded_per_example_and_resume_exactly(varied, mode):
    pre = preprocess.Preprocess(
        image_size=(32, 32),
        channels=3,
        crop=True,
        flip=True,
        crop_mode=mode,
        scale_range=(0.25, 1.0) if mode == "random_resized" else (32, 48),
    )
    options = dict(batch_size=4, epochs=2, seed=3, pre=pre)
    full = [x.numpy() for x, _ in pipeline.train_batches(varied.train, **options)]
    again = [x.numpy() for x, _ in pipeline.train_batches(varied.train, **options)]
    resumed = [x.numpy() for x, _ in pipeline.train_batches(varied.train, start_step=3, **options)]
    assert full[0].shape == (4, 32, 32, 3) and len(full) == 2 * (len(varied.train) // 4)
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full[3:], resumed):
        np.testing.assert_array_equal(a, b)
    plain = [
        x.numpy()
        for x, _ in pipeline.train_batches(
            varied.train,
            batch_size=4,
            epochs=2,
            seed=3,
            pre=preprocess.Preprocess(image_size=(32, 32), channels=3),
        )
    ]
    assert all(not np.allclose(a, b) for a, b in zip(full, plain))  # every batch cropped, not just resized
    other = [x.numpy() for x, _ in pipeline.train_batches(varied.train, **{**options, "seed": 4})]
    assert not np.array_equal(full[0], other[0])


def test_evaluation_takes_the_centre_crop_and_normalises(tmp_path):
    img = np.random.RandomState(1).randint(0, 255, (256, 320, 3)).astype("uint8")
    split = base.Split(np.asarray([img]), np.asarray([0]))
    pre = preprocess.Preprocess(image_size=(224, 224), channels=3, eval_crop=0.875)
    x = next(iter(pipeline.eval_batches(split, batch_size=1, pre=pre)))[0].numpy()[0]
    # the shorter side is already 224 / 0.875 = 256: no resize, the centre 224 x 224
    np.testing.assert_allclose(x, img[16:240, 48:272] / 255.0, atol=1e-6)
    mean, std = preprocess.NORMALIZE["imagenet_mean_std"]
    normed = next(
        iter(
            pipeline.eval_batches(
                split,
                batch_size=1,
                pre=preprocess.Preprocess(
                    image_size=(224, 224), channels=3, eval_crop=0.875, mean=mean, std=std
                ),
            )
        )
    )[0].numpy()[0]
    np.testing.assert_allclose(normed, (img[16:240, 48:272] / 255.0 - mean) / std, atol=1e-5)


@pytest.mark.parametrize("model", ["resnet50", "alexnet", "vgg16"])
def test_the_imagenet_recipes_resolve_to_the_papers_settings(model, tmp_path):
    cfg = config_lib.resolve(model, overrides={"dataset": "imagenet2012"}).validate("train")
    assert cfg.crop_mode in ("random_resized", "scale_jitter") and cfg.eval_crop and cfg.normalize != "none"
    assert (
        cfg.optimizer == "sgd"
        and cfg.momentum == 0.9
        and cfg.schedule == "step"
        and len(cfg.step_epochs) == 3
    )
    with tfds.testing.mock_data(num_examples=8):
        data, pre = trainer.load_data(dataclasses_replace(cfg, data_dir=str(tmp_path)))
    assert (
        data.encoded_shape == (None, None, 3)
        and pre.crop
        and pre.crop_mode == cfg.crop_mode
        and pre.image_size == (cfg.image_size,) * 2
    )
    assert pre.mean == preprocess.NORMALIZE[cfg.normalize][0]
    # the recipe normalises as the family records (``normalize: family`` gives the same)
    assert preprocess.NORMALIZE[cfg.normalize] == modelzoo.get_entry(model).mean_std
    with tfds.testing.mock_data(num_examples=8):
        family_cfg = dataclasses_replace(cfg, data_dir=str(tmp_path), normalize="family").validate("train")
        _, family_pre = trainer.load_data(family_cfg)
    assert (family_pre.mean, family_pre.std) == (pre.mean, pre.std)
    with pytest.raises(ValueError, match="scale_range=\\[2, 1\\] is invalid"):
        dataclasses_replace(cfg, scale_range=[2, 1]).validate()


@pytest.mark.slow  # trains for over 10 s
def test_a_run_with_the_resnet_recipe_trains_on_mocked_imagenet2012(tmp_path):
    overrides = {
        "image_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "verbose": 0,
        "data_dir": str(tmp_path),
        "step_epochs": [],
        "schedule": "constant",
        "streaming": True,
        "run_dir": str(tmp_path / "run"),
    }
    cfg = config_lib.resolve(
        "resnet18", config_file=config_lib.recipe_path("resnet50", "imagenet2012"), overrides=overrides
    )
    with tfds.testing.mock_data(num_examples=24):
        summary = classify.train(cfg)
    assert summary["completed"] and summary["steps"] == 3 and summary["input_shape"] == [32, 32, 3]
    with pytest.raises(ValueError, match="crop_mode='scale_jitter' is the augmentation of the crop families"):
        trainer.preprocess_for(
            dataclasses_replace(cfg, model="mlp", crop_mode="scale_jitter", image_size=32),
            base.Data("x", "image", None, None, None, 3, ["a", "b", "c"], encoded_shape=(None, None, 3)),
            __import__("modelzoo").get_entry("mlp"),
        )


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_eval_crop_leaves_training_batches_alone_and_config_mistakes_are_one_line():
    x = np.random.RandomState(0).rand(50, 32, 32, 3).astype("float32")
    split = base.Split(x, np.arange(50) % 3)
    pre = preprocess.Preprocess(image_size=(28, 28), channels=3, crop=True, eval_crop=0.875)
    batch = next(iter(pipeline.train_batches(split, batch_size=10, epochs=1, pre=pre)))[0]
    assert batch.shape == (
        10,
        28,
        28,
        3,
    )  # the in-memory set resized whole, not centre-cropped along the batch
    for fields, message in (
        ({"crop_mode": "scale_jitter", "scale_range": [0.5, 1.0]}, "whole pixels"),
        ({"crop_mode": "random_resized", "scale_range": [0.5, 2.0]}, "area shares in \\(0, 1\\]"),
    ):
        with pytest.raises(ValueError, match=message):
            config_lib.resolve("resnet18", overrides=fields).validate()
    cfg = config_lib.resolve("resnet18", overrides={"crop_mode": "random_resized", "crop_padding": 0.0})
    data = base.Data("x", "image", None, None, None, 3, ["a", "b", "c"], encoded_shape=(None, None, 3))
    assert trainer.preprocess_for(
        cfg, data, __import__("modelzoo").get_entry("resnet18")
    ).crop  # padding is not its knob
