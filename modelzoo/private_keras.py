"""Every use of Keras's private API in the project, in one place, each with why.

Keras has no public way to do these; each function names the upstream issue or pull request it
works around, and ``tests/test_private_api.py`` fails when the upstream behaviour changes (Keras
is pinned below 3.16 in setup.cfg for the same reason). ``modelzoo`` and ``recipes`` both use it
(imports point down: recipes may use modelzoo's module, not the reverse).
"""

from __future__ import annotations

import keras
from keras.src.backend.common import global_state

# keras.utils.set_random_seed stores the seed and drops the global SeedGenerator in Keras's
# global state (keras-team/keras#21874), with no public getter or inverse: a run that seeds must
# read both to put them back for its caller.
_SEED_KEYS = ("global_random_seed", "global_seed_generator")


def global_seed_state() -> tuple:
    """Keras's own global seed and global SeedGenerator (unseeded ``keras.random`` calls)."""
    return tuple(global_state.get_global_attribute(key) for key in _SEED_KEYS)


def set_global_seed_state(state: tuple) -> None:
    for key, value in zip(_SEED_KEYS, state):
        global_state.set_global_attribute(key, value)


def all_layers(model):
    """Every layer inside ``model``, nested ones included (``Model.layers`` lists only the top
    level; a custom layer's sublayers are tracked but not listed). Keras's ``_flatten_layers``
    is the only walk that sees them (asked for in keras-team/keras#4398, closed without a public
    one)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def producer(tensor):
    """The layer whose call made a symbolic tensor, or None for a model input that no layer made.

    Keras 3 records it only in ``KerasTensor._keras_history`` (keras-team/keras#19881 found no
    public way; ``Model.get_layer`` needs the name already). Model surgery walks back from an
    output to its classifier with it."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def layer_calls(layer) -> list[tuple[list, list]]:
    """(input tensors, output tensors) of every call of ``layer`` in a functional graph.

    For a layer called more than once (a shared layer) the public ``layer.input`` / ``layer.output``
    silently give the first call only, and Keras 3 dropped ``get_input_at`` / ``get_output_at``
    (keras-team/keras#23238, open); the private ``_inbound_nodes`` list every call (#20267)."""
    return [
        (list(node.input_tensors), list(node.output_tensors)) for node in getattr(layer, "_inbound_nodes", [])
    ]


# Keras 3's TensorFlow trainer under several replicas (keras-team/keras#20585, #19246): the
# recipes replace two of its private step hooks on one model instance and call four private
# helpers from their replacements (recipes/runtime/distributed.py says why each is needed).
TRAINER_HOOKS = ("_maybe_symbolic_build", "_make_function")


def bind_trainer_hooks(model, **methods) -> None:
    """Bind replacements for Keras's private trainer hooks on ``model`` (its class is untouched,
    so the saved ``.keras`` file is an ordinary model). Fails loudly if a hook is gone upstream."""
    import types

    for name, function in methods.items():
        if name not in TRAINER_HOOKS or not callable(getattr(type(model), name, None)):
            raise RuntimeError(
                f"Keras trainer hook {name!r} is not one of {TRAINER_HOOKS} on this Keras version."
            )
        setattr(model, name, types.MethodType(function, model))


def symbolic_build(model, data_batch) -> None:
    """Build metrics and optimizer from the shapes of ``data_batch`` (a batch or a TensorSpec tree)."""
    model._symbolic_build(data_batch=data_batch)


def autoconvert_optionals(model, function):
    """Keras's wrapper that turns a ``tf.experimental.Optional`` step result into plain logs."""
    return model._autoconvert_optionals(function)


def loss_tracker(model):
    """The ``Mean`` metric behind the ``loss`` log (Keras exposes no public handle to it)."""
    return model._loss_tracker


def unscale_loss_for_distribution(loss):
    """The per-replica loss times the replica count: what Keras's own train step logs."""
    from keras.src.losses.loss import unscale_loss_for_distribution as unscale

    return unscale(loss)


def build_deferred(build, check):
    """``build()`` with every weight's allocation deferred, ``check(model)`` on the result, then
    the weights allocated: the values and their order equal an ordinary build's (Keras draws each
    initializer at allocation, in creation order). When ``build`` or ``check`` raises, the
    deferred weights are dropped unallocated, so a model too large for memory is refused before
    a byte of it exists.

    ``keras.StatelessScope(initialize_variables=False)`` defers; Keras then keeps the variables
    in its session's private list of ones to allocate at the next stateless scope's end, with no
    public way to allocate or drop them (the deferral was designed for loading presets without
    random weights, keras-team/keras-hub#1341); what the build assigns stays in the scope's
    mapping and is assigned after. Inside a caller's own stateless scope the build is left to it."""
    from keras.src.backend.common import stateless_scope
    from keras.src.backend.common.variables import initialize_all_variables

    if stateless_scope.in_stateless_scope():
        return build()
    before = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    scope = keras.StatelessScope(initialize_variables=False)
    try:
        with scope:
            model = build()
        check(model)
    except BaseException:
        global_state.set_global_attribute("uninitialized_variables", before)
        raise
    initialize_all_variables()
    for variable in model.variables:  # what the build assigned (textcnn's given embeddings)
        value = scope.get_current_value(variable)
        if value is not None:
            variable.assign(value)
    return model
