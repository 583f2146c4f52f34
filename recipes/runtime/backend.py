"""Where and how a run trains: the Keras backend, the strategy, precision, XLA and seeds.

A :class:`Runtime` is a context manager. Entering it sets the global precision policy and seeds
every generator (Python, NumPy, TensorFlow, Keras, the backend's); leaving it, whatever happened
inside (a model that fails to build, a data error, a finished run), puts back each of those as it
was, and the working directory too. A failed mixed-precision run or tuning trial does not leave
``mixed_float16`` on for the next one, and a caller's own random streams are not reseeded.
"""

from __future__ import annotations

import dataclasses
import os
import random

import keras
import numpy as np

from modelzoo import private_keras
from modelzoo.validation import UserError

BACKENDS = ("tensorflow", "jax", "torch")
# What strategy names mean on the backends without tf.distribute (keras.distribution comes with
# model parallelism): one process, one device.
SINGLE_DEVICE = ("auto", "off", "one_device")


def backend() -> str:
    return keras.backend.backend()


def accelerator() -> str:
    """``cpu``, ``gpu`` or ``tpu``: what the current backend computes on."""
    name = backend()
    if name == "jax":
        import jax

        return {"cuda": "gpu", "rocm": "gpu"}.get(jax.default_backend(), jax.default_backend())
    if name == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "tpu"
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def precision_policy(cfg) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return {"cpu": "float32", "gpu": "mixed_float16", "tpu": "mixed_bfloat16"}[accelerator()]


def check_backend(wanted: str | None) -> str:
    """The backend Keras runs on, which must be ``wanted`` (when given): Keras chooses it once,
    when first imported, so a run cannot switch it."""
    actual = backend()
    if wanted not in (None, actual):
        raise UserError(
            f"config field backend={wanted!r}, but Keras already runs on {actual!r} (it is chosen when Keras is "
            f"first imported): run the command with --backend {wanted}, or set KERAS_BACKEND={wanted}."
        )
    return actual


def default_jit(name: str, device: str) -> bool:
    """XLA where it pays: TensorFlow on GPU/TPU (slower on CPU for small nets), JAX always (its
    steps are otherwise eager, op by op); PyTorch's ``torch.compile`` is off by default."""
    return {"tensorflow": device != "cpu", "jax": True}.get(name, False)


class GlobalState:
    """A snapshot of the process-wide state a run changes; ``restore`` puts it back."""

    def __init__(self):
        self.policy = keras.mixed_precision.dtype_policy()
        self.python = random.getstate()
        self.numpy = np.random.get_state()
        self.keras = private_keras.global_seed_state()
        self.framework = _framework_rng_state()
        self.cwd = os.getcwd()
        self.distribution = keras.distribution.distribution()

    def restore(self) -> None:
        keras.mixed_precision.set_global_policy(self.policy)
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        private_keras.set_global_seed_state(self.keras)
        _set_framework_rng_state(self.framework)
        os.chdir(self.cwd)
        keras.distribution.set_distribution(self.distribution)


def _framework_rng_state():
    if backend() == "torch":
        import torch

        return torch.random.get_rng_state()
    from recipes.runtime import (
        private_tensorflow,  # keras.utils.set_random_seed seeds TensorFlow on every backend
    )

    return private_tensorflow.global_seed()


def _set_framework_rng_state(state) -> None:
    if backend() == "torch":
        import torch

        torch.random.set_rng_state(state)
        return
    import tensorflow as tf

    tf.random.set_seed(state)


@dataclasses.dataclass
class Runtime:
    """A run's backend, strategy (TensorFlow; one device elsewhere), chief or not, precision, XLA,
    whether Keras's own steps must be replaced for several replicas (``recipes.runtime.distributed``), and
    the ``keras.distribution`` of a JAX run (``recipes.runtime.sharding``).
    ``with runtime:`` applies its precision and seed, and restores the caller's on exit."""

    backend: str
    strategy: object
    chief: bool
    replicas: int
    policy: str
    jit: bool
    adapt: bool
    seed: int
    distribution: object = None  # keras.distribution (JAX), set while the runtime is entered
    _saved: list = dataclasses.field(default_factory=list, repr=False)

    @classmethod
    def create(cls, cfg) -> Runtime:
        from recipes.runtime.native import avoid_onednn_fault

        avoid_onednn_fault()  # a library caller's run too, if no convolution has run yet
        name = check_backend(cfg.backend)
        if name == "tensorflow":
            from recipes.runtime import distributed
            from recipes.runtime.strategy import is_chief, make_strategy

            # First: multi-worker collectives and logical CPUs must be set before TF starts.
            strategy = make_strategy(cfg.strategy, num_gpus=cfg.num_gpus, devices=cfg.devices, tpu=cfg.tpu)
            chief, adapt = is_chief(strategy), distributed.needs_adapting(strategy)
        elif cfg.strategy not in SINGLE_DEVICE:
            raise UserError(
                f"config field strategy={cfg.strategy!r} needs the tensorflow backend (tf.distribute); on {name!r} "
                f"use one of {list(SINGLE_DEVICE)}."
            )
        else:
            import tensorflow as tf

            strategy, chief, adapt = tf.distribute.get_strategy(), True, False  # a no-op scope
        # JAX's keras.distribution (None: off, or not JAX with distribution auto)
        from recipes.runtime import sharding

        if sharding.initialize():  # one of several JAX processes: process 0 is the chief
            chief = sharding.process_index() == 0
        distribution = sharding.make(cfg.distribution, cfg.model, mesh=cfg.mesh, batch_size=cfg.batch_size)
        replicas = strategy.num_replicas_in_sync
        if cfg.batch_size % replicas:
            raise UserError(
                f"config field batch_size={cfg.batch_size} must be divisible by the {replicas} replicas."
            )
        device = accelerator()
        jit = cfg.jit_compile if cfg.jit_compile not in (None, "auto") else default_jit(name, device)
        return cls(
            name, strategy, chief, replicas, precision_policy(cfg), bool(jit), adapt, cfg.seed, distribution
        )

    def __enter__(self) -> Runtime:
        self._saved.append(GlobalState())
        keras.mixed_precision.set_global_policy(self.policy)
        keras.utils.set_random_seed(self.seed)
        if self.distribution is not None:
            keras.distribution.set_distribution(self.distribution)
        return self

    def __exit__(self, *exc) -> None:
        self._saved.pop().restore()

    @property
    def strategy_name(self) -> str:
        from recipes.runtime.strategy import strategy_name

        return strategy_name(self.strategy)

    @property
    def worker_id(self) -> str:
        if self.backend == "jax":
            from recipes.runtime import sharding

            return f"process_{sharding.process_index()}"
        resolver = self.strategy.cluster_resolver
        return f"{resolver.task_type}_{resolver.task_id}"
