"""Guards on the private Keras and TensorFlow API the project uses (modelzoo/private_keras.py,
recipes/private_tensorflow.py): each fails when the upstream behaviour it relies on changes."""

import keras
import numpy as np
import tensorflow as tf

from modelzoo import private_keras
from recipes import private_tensorflow


def test_keras_global_seed_state_is_what_set_random_seed_sets_and_can_be_put_back():
    keras.utils.set_random_seed(5)
    seed, generator = private_keras.global_seed_state()
    assert seed == 5 and generator is None  # set_random_seed drops the generator (keras-team/keras#21874)
    keras.random.normal((2,))
    saved = private_keras.global_seed_state()
    assert saved[1] is not None  # an unseeded call created it
    keras.utils.set_random_seed(9)
    assert private_keras.global_seed_state() == (9, None)
    private_keras.set_global_seed_state(saved)  # what a run's exit does: the caller's generator is back
    assert private_keras.global_seed_state() == saved
    before = keras.ops.convert_to_numpy(saved[1].state)
    keras.random.normal((3,))  # unseeded calls draw from the restored generator
    assert not np.array_equal(keras.ops.convert_to_numpy(saved[1].state), before)


def test_all_layers_sees_a_custom_layers_sublayers():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(3, name="inner")

        def call(self, x):
            return self.inner(x)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Block(name="block")(inputs))
    names = [layer.name for layer in private_keras.all_layers(model)]
    assert "inner" in names and "block" in names
    assert "inner" not in [layer.name for layer in model.layers]  # why the private walk is needed


def test_tensorflow_global_seed_getter_and_multi_worker_mode():
    tf.random.set_seed(3)
    assert private_tensorflow.global_seed() == 3
    tf.random.set_seed(None)
    assert private_tensorflow.global_seed() is None
    assert private_tensorflow.in_multi_worker_mode(tf.distribute.get_strategy()) is False
