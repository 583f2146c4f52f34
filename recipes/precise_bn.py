"""Precise batch-norm statistics: recomputed with the current weights before each validation.

A batch norm's moving averages follow the weights with a lag of about 1 / (1 - momentum) steps.
keras.applications' MobileNetV2 and MobileNetV3 keep momentum 0.999 (a thousand steps), so a
short run evaluates with statistics of weights long gone: measured on the embedded digits,
mobilenet_v2 trained to 96% accuracy in training mode gave 9.7% on the validation and test
images (every prediction the same), and efficientnet_b0 (momentum 0.99) 70% against 99.5% in
training mode. Wu & Johnson 2021 ("Rethinking 'batch' in BatchNorm", section 3) call the fix
precise BN: before evaluating, average each layer's batch mean and variance over a few thousand
training examples with the weights as they are (pycls, RegNet's code base, does it by default with
8,192 images; detectron2 has it as a hook). Here it runs as a loop feature for every task that
offers training batches, on one device (``precise_bn_samples``; 0 turns it off).

The batches pass through ``stateless_call`` with every batch norm's momentum at 0, so the layers'
new "moving" statistics are that batch's own; nothing else of the model changes (its seed
generators' states are left as they were, so training's random draws and exact resume are
untouched).
"""

from __future__ import annotations

import keras
import numpy as np


def batch_norms(layer) -> list:
    """Every trainable ``BatchNormalization`` inside ``layer``, nested models opened."""
    found = []
    for child in getattr(layer, "layers", []):
        if isinstance(child, keras.layers.BatchNormalization):
            found += [child] if child.trainable else []
        else:
            found += batch_norms(child)
    return found


def _compiled(step):
    """``step`` compiled by the backend (one trace per run; the momenta of 0 are part of it)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(step)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(step, reduce_retracing=True)
    return step


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recompute every batch norm's statistics from ``batches`` (training examples, preprocessed
    as for evaluation) before each validation and at the end of training, once per weight state."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self._step = None
        self._at = None

    def on_test_begin(self, logs=None):
        self.recompute()

    def on_train_end(self, logs=None):
        self.recompute()

    def recompute(self) -> int:
        """Put the averaged batch statistics into the model; the number of batches used."""
        at = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        norms = batch_norms(self.model)
        if at == self._at or not norms:
            return 0
        self._at = at
        saved = [layer.momentum for layer in norms]
        try:
            for layer in norms:
                layer.momentum = 0.0
            count, sums = self._sums(norms)
        finally:
            for layer, momentum in zip(norms, saved):
                layer.momentum = momentum
        if not count:
            return 0
        for layer, (mean, variance) in zip(norms, sums):
            layer.moving_mean.assign(mean / count)
            layer.moving_variance.assign(variance / count)
        return count

    def _sums(self, norms: list) -> tuple[int, list]:
        model = self.model
        where = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        slots = [(where[id(n.moving_mean)], where[id(n.moving_variance)]) for n in norms]
        if self._step is None:

            def step(trainable, non_trainable, x):
                return model.stateless_call(trainable, non_trainable, x, training=True)[1]

            self._step = _compiled(step)
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        count, sums = 0, [[0.0, 0.0] for _ in norms]
        for x, *_ in self.batches:
            state = self._step(trainable, non_trainable, x)
            for total, (m, v) in zip(sums, slots):
                total[0] = total[0] + np.asarray(keras.ops.convert_to_numpy(state[m]), "float64")
                total[1] = total[1] + np.asarray(keras.ops.convert_to_numpy(state[v]), "float64")
            count += 1
        return count, sums
