"""A recipe against what a user would write instead: the same zoo model, data and epochs through a
plain ``model.fit`` with Keras's defaults (``compile``'s ``jit_compile="auto"``, which is no XLA on
a CPU-only TensorFlow), on the recipe's preprocessed arrays held in memory.

The recipe side is the real run loop (``recipes.tasks.classify.train``) with ``jit_compile: auto``
and ``steps_per_execution: auto``,
into a fresh run folder each round: its rate is the summary's trained samples over its training
seconds, so it pays for everything the loop does (its tf.data pipeline and augmentation, step
checkpoints, validation, logs) except the compile measurement, which happens before training.
The plain side is timed around its whole ``fit`` (validation included). The two alternate over
the rounds and each keeps its fastest.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from benchmarks.common import Settings, interleaved

TRAINING_FORMAT = {"recipe_samples_per_s": ".1f", "plain_samples_per_s": ".1f", "ratio": ".2f"}
TRAINING_FORMAT.update({"recipe_accuracy": ".3f", "plain_accuracy": ".3f"})


def _arrays(data, pre, split):
    """A split as the recipe preprocesses it for evaluation (no augmentation), as numpy arrays."""
    import numpy as np

    from recipes.data import pipeline

    batches = pipeline.eval_batches(split, batch_size=256, pre=pre, num_classes=data.num_classes)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in batches])
    return np.concatenate(xs), np.concatenate(ys)


def _plain(cfg, data, pre, train, val, test) -> dict:
    """``model.fit`` of the zoo model on the arrays with Keras's defaults and the recipe's optimizer."""
    import keras

    import modelzoo
    from recipes import trainer

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(cfg.seed)
    model = modelzoo.create_model(
        cfg.model, num_classes=data.num_classes, **trainer.model_shape_kwargs(data, pre)
    )
    optimizer = keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(*train, batch_size=cfg.batch_size, epochs=cfg.epochs, validation_data=val, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(*test, batch_size=256, verbose=0, return_dict=True)["accuracy"]
    return {"samples_per_s": cfg.epochs * len(train[0]) / seconds, "accuracy": accuracy}


def _recipe(cfg, folder: Path) -> dict:
    """The run loop on ``cfg`` with ``jit_compile: auto`` into a fresh run folder."""
    import keras

    from recipes.tasks import classify

    keras.backend.clear_session()
    run = dataclasses.replace(cfg, run_dir=str(folder), jit_compile="auto", steps_per_execution="auto")
    summary = classify.train(run, export=False)
    return {
        "samples_per_s": summary["steps"] * cfg.batch_size / summary["train_seconds_this_process"],
        "accuracy": summary["test_accuracy"],
        "choice": summary["jit_choice"],
        "steps_choice": summary["steps_per_execution_choice"],
    }


def bench_training(recipe: str, settings: Settings, log=print) -> dict:
    """The recipe ``recipe`` (its config, ``settings.training_epochs`` epochs) against a plain fit."""
    from recipes import config as config_lib
    from recipes import trainer

    cfg = config_lib.resolve(recipe, overrides={"epochs": settings.training_epochs})
    data, pre = trainer.load_data(cfg)
    train, val, test = (_arrays(data, pre, split) for split in (data.train, data.val, data.test))
    with tempfile.TemporaryDirectory() as tmp:
        folders = iter(Path(tmp) / f"run{i}" for i in range(settings.training_rounds))
        sides = {
            "recipe": lambda: _recipe(cfg, next(folders)),
            "plain": lambda: _plain(cfg, data, pre, train, val, test),
        }
        results = interleaved(lambda side: sides[side](), ("recipe", "plain"), settings.training_rounds)
    best = {side: max(runs, key=lambda r: r["samples_per_s"]) for side, runs in results.items()}
    choice, steps = best["recipe"]["choice"], best["recipe"]["steps_choice"]
    rates = choice.get("steps_per_s", {})
    many = {k: v for k, v in steps.get("steps_per_s", {}).items() if k != "one"}
    ratio = best["recipe"]["samples_per_s"] / best["plain"]["samples_per_s"]
    log(f"  training {recipe}: recipe / plain fit {ratio:.2f}")
    return {
        "recipe": f"{cfg.model} on {cfg.dataset}",
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "picked": "XLA" if choice["jit_compile"] else "no XLA",
        "steps_per_s_xla": rates.get("xla"),
        "steps_per_s_no_xla": rates.get("no_xla"),
        "steps_per_execution": steps["steps_per_execution"],
        "steps_per_s_one_a_call": steps.get("steps_per_s", {}).get("one"),
        "steps_per_s_many_a_call": next(iter(many.values()), None),
        "recipe_samples_per_s": best["recipe"]["samples_per_s"],
        "plain_samples_per_s": best["plain"]["samples_per_s"],
        "ratio": ratio,
        "recipe_accuracy": best["recipe"]["accuracy"],
        "plain_accuracy": best["plain"]["accuracy"],
    }
