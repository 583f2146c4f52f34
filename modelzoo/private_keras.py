"""Every use of Keras's private API in the project, in one place, each with why.

Keras has no public way to do these; each function names the upstream issue or pull request it
works around, and ``tests/test_private_api.py`` fails when the upstream behaviour changes (Keras
is pinned below 3.16 in setup.cfg for the same reason). ``modelzoo`` and ``recipes`` both use it
(imports point down: recipes may use modelzoo's module, not the reverse).
"""

from __future__ import annotations

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
