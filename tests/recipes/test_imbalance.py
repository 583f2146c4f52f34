"""Class imbalance: a deliberately imbalanced split, balanced class weights, focal loss, per-class recall."""

import numpy as np
import pytest

from recipes import config as config_lib
from recipes import trainer
from recipes.data import pipeline
from recipes.tasks.classify import train

RARE = {"8": 0.04, "9": 0.04}  # 4% of two classes' training examples: about 5 images each


def test_imbalanced_split_and_balanced_weights():
    cfg = config_lib.resolve("mlp", overrides={"class_fraction": RARE})
    data, pre = trainer.load_data(cfg)
    counts = np.bincount(data.train.y, minlength=10)
    assert counts[8] <= 6 and counts[9] <= 6 and counts[:8].min() > 100
    assert len(data.test) == 360  # the test split is untouched
    weights = trainer.class_weights(data, "balanced")
    np.testing.assert_allclose(weights * counts, len(data.train) / 10, rtol=1e-5)
    kw = trainer.batch_options(data, pre, 1, "balanced")
    x, y, w = next(iter(pipeline.train_batches(data.train, batch_size=32, epochs=1, **kw)))
    np.testing.assert_allclose(w.numpy(), weights[np.argmax(y.numpy(), -1)])
    with pytest.raises(ValueError, match="class_weight has 3 weights; the data set has 10 classes"):
        trainer.class_weights(data, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="class_fraction names class '12'"):
        trainer.load_data(config_lib.resolve("mlp", overrides={"class_fraction": {"12": 0.5}}))


def test_train_fraction_keeps_a_share_of_every_class_and_composes_with_class_fraction():
    full, _ = trainer.load_data(config_lib.resolve("mlp"))
    tenth, _ = trainer.load_data(
        config_lib.resolve("mlp", overrides={"train_fraction": 0.1, "class_fraction": {"9": 0.5}})
    )
    full_counts, counts = np.bincount(full.train.y, minlength=10), np.bincount(tenth.train.y, minlength=10)
    np.testing.assert_array_equal(counts[:9], np.round(full_counts[:9] * 0.1))
    assert counts[9] == round(full_counts[9] * 0.05)
    assert len(tenth.test) == len(full.test) and len(tenth.val) == len(full.val)
    np.testing.assert_array_equal(tenth.test.y, full.test.y)  # the same held-out images


@pytest.mark.parametrize(
    "override, message",
    [
        ({"train_fraction": 0.0}, "train_fraction=0.0 is invalid: must be in \\(0, 1\\]"),
        ({"class_weight": "balancd"}, "class_weight='balancd' is invalid"),
        ({"loss": "focall"}, "one of \\['crossentropy', 'focal'\\].*Did you mean 'focal'"),
        ({"class_weight": 3}, "expected str or list"),
    ],
)
def test_bad_imbalance_fields(override, message):
    with pytest.raises(ValueError, match=message):
        config_lib.resolve("mlp", overrides=override).validate()


@pytest.mark.slow
def test_class_weights_and_focal_loss_raise_minority_recall(tmp_path):
    # About 4 training examples per rare class: one seed's split is noise, so the mean of three seeds.
    base = {"class_fraction": RARE, "epochs": 15, "verbose": 0, "model_kwargs": {"dropout_rate": 0.0}}
    recalls = {"plain": [], "balanced": [], "focal": []}
    for seed in (0, 1, 2):
        for name, extra in (
            ("plain", {}),
            ("balanced", {"class_weight": "balanced"}),
            ("focal", {"class_weight": "balanced", "loss": "focal"}),
        ):
            run = {**base, **extra, "seed": seed, "run_dir": str(tmp_path / f"{name}{seed}")}
            summary = train(config_lib.resolve("mlp", overrides=run))
            recalls[name].append(np.mean([summary["test_recall_per_class"][c] for c in RARE]))
            assert summary["test_accuracy"] > 0.8
    mean = {k: float(np.mean(v)) for k, v in recalls.items()}
    print(
        f"minority recall (classes 8, 9 at 4% of their training examples), seeds 0-2: {recalls}, mean {mean}"
    )
    assert mean["balanced"] > mean["plain"] + 0.1
    assert mean["focal"] > mean["plain"] + 0.1
