"""Keras ``fit`` under several replicas: the steps Keras 3 gets wrong there, replaced per model.

Keras 3's TensorFlow trainer has three faults once a strategy has more than one replica
(keras-team/keras 20585 and 19246, reproduced with TF 2.21 / Keras 3.15):

* before the first step it reduces a whole per-replica *input batch* with ``strategy.reduce``
  to learn its shapes, which MultiWorkerMirrored cannot do ("Attempt to convert a value
  (PerReplica...)");
* after each step it reduces the scalar logs "along axis 0", which MultiWorkerMirrored also
  rejects;
* ``jit_compile=True`` compiles the whole step, cross-replica update included, which fails under
  Mirrored (a variable read on the wrong device) and MultiWorkerMirrored on CPU (no XLA
  collectives).

:func:`adapt` binds three replacements onto one model *instance* (the class is untouched, so the
saved ``.keras`` file is an ordinary Functional model): the symbolic build reads shapes from the
data set's ``element_spec``; logs are reduced as scalars (a cross-replica mean); with XLA on, only
each replica's forward and backward pass is compiled and the optimizer update runs outside XLA.
The private Keras methods these touch go through ``modelzoo/private_keras.py``; setup.cfg pins
Keras below 3.16, and ``tests/test_private_api.py`` and the two-worker test in
``tests/recipes/test_train.py`` guard them.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf

from modelzoo import private_keras
from modelzoo.validation import UserError


def needs_adapting(strategy) -> bool:
    """True when Keras's own step functions are wrong for ``strategy`` (more than one replica)."""
    return strategy.num_replicas_in_sync > 1 or _multi_worker(strategy)


def adapt(model, strategy, *, element_spec, jit_compile: bool) -> None:
    """Make ``model.fit``/``evaluate`` correct under ``strategy``; XLA per replica if ``jit_compile``.

    Call after ``compile`` (with ``jit_compile=False``: the whole-step XLA is what breaks).
    """
    model._zoo_element_spec = element_spec
    private_keras.bind_trainer_hooks(
        model, _maybe_symbolic_build=_symbolic_build_from_spec, _make_function=_make_function
    )
    if jit_compile:
        model._zoo_grads = tf.function(
            types.MethodType(_forward_backward, model), jit_compile=True, reduce_retracing=True
        )
        model.train_step = types.MethodType(_train_step_xla_per_replica, model)


def _multi_worker(strategy) -> bool:
    from recipes.runtime.private_tensorflow import in_multi_worker_mode

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and in_multi_worker_mode(strategy)


def _symbolic_build_from_spec(self, iterator=None, data_batch=None):
    # Shapes are all the build needs: take them from the data set, pull and reduce no batch.
    with self.distribute_strategy.scope():
        private_keras.symbolic_build(self, data_batch if data_batch is not None else self._zoo_element_spec)


def _reduce_logs(values, strategy):
    def reduce(v):
        if isinstance(v, tf.distribute.DistributedValues) or _multi_worker(strategy):
            return strategy.reduce("MEAN", v, axis=None)  # logs are scalars: a cross-replica mean
        return v

    return keras.tree.map_structure(reduce, values)


def _make_function(self, step_function):
    """One step per call on a distributed iterator (read inside the graph), logs reduced as scalars."""
    if self.steps_per_execution != 1:  # keras-team/keras 19246
        raise UserError(
            f"steps_per_execution={self.steps_per_execution} is not supported with several replicas; use 1."
        )
    strategy = self.distribute_strategy

    def one_step(data):
        return _reduce_logs(strategy.run(step_function, args=(data,)), strategy)

    def step_on_iterator(iterator):
        return one_step(iterator.get_next())  # the end of the data ends the epoch, as in Keras

    if not self.run_eagerly:
        one_step = tf.function(one_step, reduce_retracing=True)
        step_on_iterator = tf.function(step_on_iterator, reduce_retracing=True)
    one_step = private_keras.autoconvert_optionals(self, one_step)

    def function(iterator):
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            return step_on_iterator(iterator)
        for data in iterator:  # a list of batches
            outputs = one_step(data)
        return outputs

    return function


def _forward_backward(self, x, y, sample_weight):
    """The XLA-compiled part of a step: loss, predictions and gradients on one replica."""
    with tf.GradientTape() as tape:
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        scaled = self.optimizer.scale_loss(loss)
    return loss, y_pred, tape.gradient(scaled, self.trainable_weights)


def _train_step_xla_per_replica(self, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    loss, y_pred, grads = self._zoo_grads(x, y, sample_weight)
    batch = tf.shape(next(i for i in keras.tree.flatten(x) if i is not None))[0]
    private_keras.loss_tracker(self).update_state(
        private_keras.unscale_loss_for_distribution(loss), sample_weight=batch
    )
    self.optimizer.apply_gradients(zip(grads, self.trainable_weights))  # cross-replica, outside XLA
    return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
