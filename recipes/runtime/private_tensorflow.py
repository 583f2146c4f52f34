"""Every use of TensorFlow's private API in the project, in one place, each with why; guarded by
``tests/test_private_api.py``, which fails when the upstream behaviour changes."""

from __future__ import annotations

from tensorflow.python.eager import context


def global_seed():
    """The global seed ``tf.random.set_seed`` last set (None if never). TensorFlow has a setter
    and no getter (tensorflow/tensorflow#33297 discusses the global seed's design); a run that
    seeds reads it here to put it back for its caller."""
    return context.global_seed()


def in_multi_worker_mode(strategy) -> bool:
    """Whether a MultiWorkerMirroredStrategy spans several workers (one worker without a cluster
    is an ordinary one-process strategy). Only ``strategy.extended`` knows, privately."""
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())
