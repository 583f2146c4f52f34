"""Guards on the private Keras and TensorFlow API the project uses (modelzoo/private_keras.py,
recipes/runtime/private_tensorflow.py): each fails when the upstream behaviour it relies on changes."""

import keras
import numpy as np
import tensorflow as tf

from modelzoo import private_keras
from recipes.runtime import private_tensorflow


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


def test_producer_and_layer_calls_see_every_call_of_a_shared_layer():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    head = keras.layers.Dense(2, name="head")
    outputs = head(shared(shared(inputs)))
    keras.Model(inputs, outputs)
    assert private_keras.producer(outputs) is head
    assert private_keras.producer(np.zeros(2)) is None  # not a symbolic tensor
    calls = private_keras.layer_calls(shared)
    assert (
        len(calls) == 2 and private_keras.producer(calls[1][0][0]) is shared
    )  # its second call eats its first
    assert (
        shared.input is calls[0][0][0]
    )  # the public property shows the first call only: why the private list


def _tiny_compiled_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_trainer_hooks_exist_and_bind_on_one_instance_only():
    model, other = _tiny_compiled_model(), _tiny_compiled_model()
    seen = []

    def make_function(self, step_function):
        seen.append(self)
        return type(self)._make_function(self, step_function)

    private_keras.bind_trainer_hooks(model, _make_function=make_function)
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    history = model.fit(x, y, epochs=1, verbose=0)
    other.fit(x, y, epochs=1, verbose=0)
    assert seen and all(m is model for m in seen)  # Keras still builds its step through the hook
    tracker = private_keras.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean)
    assert np.isclose(float(tracker.result()), history.history["loss"][-1])
    assert float(private_keras.unscale_loss_for_distribution(tf.constant(2.0))) == 2.0  # one replica
    try:
        private_keras.bind_trainer_hooks(model, _no_such_hook=make_function)
    except RuntimeError as err:
        assert "_no_such_hook" in str(err)
    else:
        raise AssertionError("an unknown hook must be refused")


def test_symbolic_build_builds_the_optimizer_from_shapes_alone():
    model = _tiny_compiled_model()
    assert not model.optimizer.built
    spec = (tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None, 2), tf.float32))
    private_keras.symbolic_build(model, spec)
    assert model.optimizer.built and model.compiled_loss is not None
    wrapped = private_keras.autoconvert_optionals(model, lambda data: {"loss": 1.0})
    assert wrapped(None) == {"loss": 1.0}


def test_keras_tuner_grid_order_round_trips_and_worker_flag(monkeypatch, tmp_path):
    import keras_tuner

    from tuning import private_keras_tuner as private

    def oracle(name):
        hp = keras_tuner.HyperParameters()
        hp.Choice("a", [1, 2, 3])
        made = keras_tuner.oracles.GridSearchOracle(objective="loss", max_trials=3, hyperparameters=hp)
        made._set_project_dir(str(tmp_path), name)
        return made

    first = oracle("first")
    for i in range(2):
        first.create_trial(f"t{i}")
    saved = private.grid_order_state(first)
    assert len(saved["memory"]) >= 1  # the LinkedList still holds the grid's order where we read it
    second = oracle("second")
    private.set_grid_order_state(second, saved)
    assert private.grid_order_state(second) == saved
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    assert private.is_distributed_worker() is False
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert private.is_distributed_worker() is True
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert private.is_distributed_worker() is False


def test_build_deferred_allocates_after_the_check_and_drops_a_refused_build():
    from keras.src.backend.common import global_state

    def dense():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])

    def refuse(model):
        assert model.weights[0].shape == (3, 5)
        assert len(global_state.get_global_attribute("uninitialized_variables")) == 2  # not allocated yet
        raise ValueError("too large")

    try:
        private_keras.build_deferred(dense, refuse)
    except ValueError:
        pass
    assert not global_state.get_global_attribute("uninitialized_variables")  # nothing left pending
    model = private_keras.build_deferred(dense, lambda built: None)
    assert not global_state.get_global_attribute("uninitialized_variables")  # allocated
    assert model.predict_on_batch(np.ones((1, 3))).shape == (1, 5)

    def assigned():  # a build that sets weights (textcnn's given embeddings) keeps them
        model = dense()
        model.layers[0].set_weights([np.full((3, 5), 2.0), np.ones(5)])
        return model

    given = private_keras.build_deferred(assigned, lambda built: None)
    np.testing.assert_array_equal(given.predict_on_batch(np.ones((1, 3))), np.full((1, 5), 7.0))
    with keras.StatelessScope(initialize_variables=False):  # a caller's own scope keeps deferring
        private_keras.build_deferred(dense, lambda built: None)
        assert len(global_state.get_global_attribute("uninitialized_variables")) == 2
    keras.backend.clear_session()
