"""Serving speed: the zoo's exports (``recipes.export``) against the reference a user would serve
instead, keras.applications' model as a TensorFlow graph (keras-hub's ``BertTextClassifier`` for BERT, the
zoo's own Keras model where neither has one), at batch 1 and a larger batch, interleaved.

Each side runs the same random batch; samples/s from the fastest of the repeated steps; beside
each, how far its logits are from the zoo's Keras model's (the largest difference over the
largest logit: random weights saturate a softmax, which would hide a difference). Weights are
random: speed does not depend on them, and int8's accuracy is measured on a trained model by
``modelzoo export`` (README), not here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Settings, interleaved

DEPLOY_FORMAT = {"samples_per_s": ".1f", "ratio": ".2f", "relative_difference": ".1e"}
# side name -> (recipes.export writer, quantize, fold batch norms first)
SIDES = {
    "SavedModel": ("savedmodel", None, False),
    "SavedModel, folded": ("savedmodel", None, True),
    "LiteRT float32, folded": ("litert", None, True),
    "LiteRT int8": ("litert", "int8", True),
    "ONNX Runtime, folded": ("onnx", None, True),
}


def bench_deploy(settings: Settings, log=print) -> list[dict]:
    rows = []
    for name in settings.deploy:
        for batch in settings.deploy_batches:
            rows.extend(_bench_model(name, batch, settings, log))
    return rows


def _bench_model(name: str, batch: int, settings: Settings, log) -> list[dict]:
    import keras

    zoo, reference, label, x = _models(name, batch, settings)
    expected = np.asarray(zoo.predict_on_batch(x))
    runners = {label: _graph(reference)}
    with tempfile.TemporaryDirectory() as tmp:
        for side, (fmt, quantize, fold) in SIDES.items():
            runners[side] = _exported(zoo, Path(tmp) / side.replace(" ", "_"), fmt, quantize, fold, x)
        for run in runners.values():
            run(x)  # compiled, allocated, warm
        timed = interleaved(
            lambda side: _best_step(runners[side], x, settings.steps), tuple(runners), settings.repeats
        )
        rows = []
        for side, seconds in timed.items():
            got = np.asarray(runners[side](x), "float32")
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "runtime": side,
                    "samples_per_s": batch / min(seconds),
                    "relative_difference": float(np.abs(got - expected).max() / np.abs(expected).max()),
                }
            )
    reference_rate = rows[0]["samples_per_s"]
    for row in rows:
        row["ratio"] = row["samples_per_s"] / reference_rate
        log(
            f"deploy {name} batch {batch} {row['runtime']}: {row['samples_per_s']:.1f}/s ({row['ratio']:.2f}x)"
        )
    keras.backend.clear_session()
    return rows


def _models(name: str, batch: int, settings: Settings):
    """The zoo model, the reference (keras.applications', or the zoo's own where it has none), the
    reference's label and a random batch."""
    import modelzoo
    from modelzoo import pretrained

    if name.startswith("bert"):
        return _text_models(name, batch, settings)
    entry = modelzoo.get_entry(name)
    shape = (settings.image_size, settings.image_size, 3)
    if name == "lenet5":
        shape = (32, 32, 1)
    zoo = modelzoo.create_model(name, num_classes=10, input_shape=shape, classifier_activation=None)
    x = np.random.default_rng(0).random((batch, *shape), dtype="float32")
    if entry.name in pretrained.IMAGENET:
        constructor = pretrained.reference_constructor(name)
        reference = constructor(weights=None, input_shape=shape, classes=10, classifier_activation=None)
        pretrained.from_keras_applications(zoo, reference, name)  # one set of weights: outputs comparable
        return zoo, reference, f"keras.applications.{constructor.func.__name__}, TF graph", x
    return zoo, zoo, "zoo Keras model, TF graph", x


def _text_models(name: str, batch: int, settings: Settings):
    """A zoo BERT and keras-hub's ``BertTextClassifier`` of its size (``pairs.text_models``) holding
    one set of weights: the backbone's copied into the zoo model, and the logits layer's."""
    from benchmarks.pairs import text_models
    from modelzoo.models.bert import load_keras_hub_backbone

    zoo, reference, x = text_models(name, settings, batch)
    load_keras_hub_backbone(zoo, reference.backbone)
    zoo.get_layer("logits").set_weights(reference.get_layer("logits").get_weights())
    return zoo, reference, "keras_hub.BertTextClassifier, TF graph", x


def _graph(model):
    """The model as a TensorFlow graph (``tf.function``), as Keras's ``predict`` runs it."""
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False))
    return lambda x: forward(x).numpy()


def _exported(zoo, out: Path, fmt: str, quantize, fold: bool, x):
    """``zoo`` written by ``recipes.export``'s writer for ``fmt`` (batch norms folded first where
    asked; int8 calibrated on the batch itself), as a function of a batch."""
    from modelzoo.surgery import fold_batch_norm
    from recipes import export

    model = fold_batch_norm(zoo)[0] if fold else zoo
    out.mkdir(parents=True)

    rows = len(x["token_ids"]) if isinstance(x, dict) else len(x)

    def calibrate():  # one example at a time; a text model's inputs by name
        for i in range(min(8, rows)):
            yield {k: v[i : i + 1] for k, v in x.items()} if isinstance(x, dict) else [x[i : i + 1]]

    predict, _, _ = export.WRITERS[fmt](model, out, quantize, None, calibrate)
    return predict


def _best_step(run, x, steps: int) -> float:
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        run(x)
        best = min(best, time.perf_counter() - start)
    return best
