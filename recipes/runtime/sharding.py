"""Data and model parallelism on JAX through ``keras.distribution`` (Keras 3 implements it for the
JAX backend only; TensorFlow runs keep ``tf.distribute``, see ``recipes.runtime.strategy``).

``make("data_parallel" | "model_parallel" | "auto" | "off", model, mesh="BATCHxMODEL",
batch_size=B)`` returns the distribution to set before any Keras object of the run is created
(``auto``: data parallel over every device when JAX has several GPUs or TPU cores, else none):

- ``data_parallel``: every device on the ``batch`` axis (``--mesh Nx1``), weights replicated;
- ``model_parallel``: a ``batch`` x ``model`` mesh (default: every device on ``batch``); the
  weights laid out by the model family's rules (``modelzoo.get_entry(name).layout``: Megatron for
  BERT/GPT, fc6/fc7 for AlexNet/ZFNet/VGG, none for the convolutional families, whose weights are
  then replicated over ``model``). Where the mesh axis does not divide the laid-out dimension
  (BERT's 30,522-token vocabulary over 4 devices) the variable is split along another dimension
  the axis divides, or replicated there, instead of failing in ``jax.device_put``; the summary
  lists those variables (``layout_adjusted``).

Evaluation (validation inside ``fit``, the test report, predictions) runs under ``evaluation(d)``:
the same mesh and weight layouts with the batch replicated instead of split, so a final partial
batch of any size is evaluated exactly (the batch axis need not divide it) at the price of
computing each evaluation batch on every batch-axis device; ``Swap`` switches to it for each
evaluation inside ``fit``.

Several processes (hosts): ``initialize()`` starts JAX's distributed runtime from Keras's
environment variables (``KERAS_DISTRIBUTION_JOB_ADDRESSES``: the coordinator's ``HOST:PORT``,
``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID``), so the same command runs
on every host; the mesh then spans every host's devices. Each process feeds only its own rows of
each global batch (``local_rows``: its devices' places on the batch axis; Keras's own sharding by
element is off, ``auto_shard_dataset=False``), process 0 is the chief that writes checkpoints and
the run folder, and checkpoints gather sharded values from every process (``host_value``).
Evaluation replicates the batch, so each process evaluates the whole validation set.

Refused with one line: a backend other than JAX, a mesh that does not multiply to the device
count, a global batch the batch axis does not divide (Keras fails with ZeroDivisionError or
IndivisibleError there, keras-team/keras 21167), and, across processes, a mesh whose model axis
spans hosts or whose batch axis the process count does not divide.
"""

from __future__ import annotations

import os

import keras
import numpy as np

import modelzoo
from modelzoo import private_keras
from modelzoo.validation import UserError

DISTRIBUTIONS = ("auto", "off", "data_parallel", "model_parallel")


def parse_mesh(mesh: str | None, devices: int) -> tuple[int, int]:
    """``"BATCHxMODEL"`` (e.g. ``"2x4"``) as two ints whose product is ``devices``; None: all on batch."""
    if mesh is None:
        return devices, 1
    parts = str(mesh).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"mesh={mesh!r} is invalid: give BATCHxMODEL, two positive integers (e.g. 2x4).")
    batch, model = (int(p) for p in parts)
    if batch * model != devices:
        raise UserError(
            f"mesh={mesh!r} has {batch * model} devices; this run has {devices} "
            f"({keras.backend.backend()} devices: {devices}, e.g. --mesh {devices}x1)."
        )
    return batch, model


class FittedModelParallel(keras.distribution.ModelParallel):
    """``ModelParallel`` for shapes the layout's mesh axis does not divide (JAX cannot place an
    uneven shard): the axis moves to the variable's largest dimension it divides (BERT's 30,522
    tokens over 4 devices: the embedding is split by its hidden columns instead), or the dimension
    is replicated; ``adjusted`` records each such variable's axes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.adjusted: dict[str, list] = {}

    def get_variable_layout(self, variable):
        layout = super().get_variable_layout(variable)
        size = dict(zip(self.device_mesh.axis_names, self.device_mesh.shape))
        shape, axes = tuple(variable.shape), list(layout.axes)
        bad = [i for i, a in enumerate(axes) if a is not None and shape[i] % size[a]]
        if not bad:
            return layout
        for i in bad:
            axis, axes[i] = axes[i], None
            free = [j for j, a in enumerate(axes) if a is None and j != i and shape[j] % size[axis] == 0]
            if free:
                axes[max(free, key=lambda j: shape[j])] = axis
        self.adjusted[variable.path] = axes
        return keras.distribution.TensorLayout(axes, self.device_mesh)


def make(name: str, model: str, *, mesh: str | None = None, batch_size: int):
    """The ``keras.distribution`` for ``name`` over this process's devices (None for ``off``)."""
    if name not in DISTRIBUTIONS:
        from modelzoo.validation import did_you_mean

        raise UserError(
            f"distribution={name!r} is invalid: one of {list(DISTRIBUTIONS)}."
            + did_you_mean(name, DISTRIBUTIONS)
        )
    backend = keras.backend.backend()
    if name == "auto":  # several GPUs or TPU cores on JAX: data parallel over all of them
        name = "data_parallel" if backend == "jax" and _accelerators() > 1 else "off"
    if name == "off":
        return None
    if backend != "jax":
        raise UserError(
            f"distribution={name!r} needs the jax backend (Keras {keras.__version__} implements keras.distribution "
            f"for JAX only), not {backend!r}: run with --backend jax, or use strategy: mirrored or "
            "multi_worker_mirrored on tensorflow."
        )
    devices = keras.distribution.list_devices()
    batch, width = parse_mesh(mesh, len(devices))
    if name == "data_parallel" and width != 1:
        raise UserError(
            f"distribution 'data_parallel' puts every device on the batch axis; mesh={mesh!r} has a model axis "
            f"of {width}: use model_parallel, or --mesh {len(devices)}x1."
        )
    if batch_size % batch:
        raise UserError(
            f"batch_size={batch_size} must be divisible by the mesh's batch axis ({batch} devices)."
        )
    count, local = processes()
    if count > 1 and (local % width or batch % count):
        raise UserError(
            f"mesh={mesh!r} over {count} processes of {local} devices each: the model axis ({width}) must fit "
            f"within one process's devices and the batch axis ({batch}) split evenly over the processes."
        )
    if name == "data_parallel":
        mesh_ = keras.distribution.DeviceMesh((batch,), ["batch"], devices)
        return keras.distribution.DataParallel(device_mesh=mesh_, auto_shard_dataset=False)
    device_mesh = keras.distribution.DeviceMesh((batch, width), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in modelzoo.get_entry(model).layout.items():
        layout_map[pattern] = axes
    return FittedModelParallel(layout_map=layout_map, batch_dim_name="batch", auto_shard_dataset=False)


ENV = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


# Seconds to wait for every process to join, and without a peer's heartbeat before the others
# abort (exit 134); JAX's defaults (300, 100) unless set.
STARTUP_TIMEOUT, HEARTBEAT_TIMEOUT = "MODELZOO_JAX_STARTUP_TIMEOUT", "MODELZOO_JAX_HEARTBEAT_TIMEOUT"


def initialize() -> bool:
    """Join the hosts named by Keras's environment variables (``ENV``) into one JAX runtime,
    once per process and before JAX computes anything; True when this process is one of several."""
    if keras.backend.backend() != "jax" or int(os.environ.get(ENV[1], "1") or 1) <= 1:
        return False
    import jax

    if not jax.distributed.is_initialized():
        missing = [k for k in ENV if not os.environ.get(k)]
        if missing:
            raise UserError(
                f"{ENV[1]}={os.environ[ENV[1]]} starts a multi-process JAX run, which also needs {missing} "
                f"(the coordinator's HOST:PORT, and this process's id from 0)."
            )
        # keras.distribution.initialize's own call, with the liveness settings it does not take
        # (a dead peer otherwise hangs the others for 100 s); its shared seed is not needed: every
        # process seeds from the run's config. CPU collectives go through Gloo.
        coordinator = os.environ[ENV[0]].split(",")[0]
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(os.environ[ENV[1]]),
            process_id=int(os.environ[ENV[2]]),
            initialization_timeout=int(os.environ.get(STARTUP_TIMEOUT, 300)),
            heartbeat_timeout_seconds=int(os.environ.get(HEARTBEAT_TIMEOUT, 100)),
        )
    return True


def processes() -> tuple[int, int]:
    """(processes in the run, devices of this one): (1, all) without JAX's distributed runtime."""
    if keras.backend.backend() != "jax":
        return 1, len(keras.distribution.list_devices())
    import jax

    return jax.process_count(), jax.local_device_count()


def process_index() -> int:
    import jax

    return jax.process_index()


def local_rows(dist) -> tuple[int, list[int]] | None:
    """(places on the batch axis, those of this process's devices), for a run of several
    processes: each feeds its places' rows of every global batch, in order; None in one process."""
    if processes()[0] == 1:
        return None
    import jax

    mine = {d.id for d in jax.local_devices()}
    names = np.asarray(dist.device_mesh.devices).reshape(dist.device_mesh.shape[0], -1)
    rows = [i for i, row in enumerate(names) if any(int(str(n).split(":")[-1]) in mine for n in row)]
    return len(names), rows


def host_value(variable) -> np.ndarray:
    """A variable's whole value as NumPy on this host: values sharded over devices other processes
    hold are gathered from them (a collective: every process must ask, in the same order)."""
    value = variable.value if hasattr(variable, "value") else variable
    if keras.backend.backend() == "jax":
        import jax

        if isinstance(value, jax.Array) and not (value.is_fully_addressable or value.is_fully_replicated):
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return keras.ops.convert_to_numpy(value)


def host_copy(model):
    """``model`` itself in one process; across processes, a copy on this host's own device with
    every weight and optimizer slot gathered (``host_value``, a collective: every process calls
    it), so that what follows (the digest, ``model.keras``, the export: JAX computations the chief
    alone runs) needs no other process. Leaves no distribution set."""
    if processes()[0] == 1:
        return model
    weights = [host_value(v) for v in model.weights]
    compiled = getattr(model, "compiled", False) and model.optimizer is not None
    slots = [host_value(v) for v in model.optimizer.variables] if compiled else []
    keras.distribution.set_distribution(None)
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    if compiled:
        copy.compile_from_config(model.get_compile_config())
        copy.optimizer.build(copy.trainable_variables)
        if len(copy.optimizer.variables) != len(slots):
            raise RuntimeError(
                f"optimizer copy has {len(copy.optimizer.variables)} variables, the trained one {len(slots)}"
            )
        for variable, value in zip(copy.optimizer.variables, slots):
            variable.assign(value)
    return copy


def _accelerators() -> int:
    import jax

    return len(jax.devices()) if jax.default_backend() in ("gpu", "cuda", "rocm", "tpu") else 1


def evaluation(dist, model=None):
    """``dist``'s mesh and weight layouts with the batch replicated, not split (any batch size);
    ``model``'s outputs replicated too, so each process can read predictions whole."""
    layout_map = keras.distribution.LayoutMap(dist.device_mesh)
    for name in _output_layers(model):
        layout_map[f"^{name}/output$"] = (None,)
    return Evaluation(layout_map=layout_map, auto_shard_dataset=False)


class Evaluation(keras.distribution.ModelParallel):
    """Batches replicated over the whole mesh (``ModelParallel`` would split them over its first
    axis even with ``batch_dim_name=None``); a layer output named in the layout map replicated at
    any rank (Keras's layout needs one axis per dimension; outputs have the batch's rank)."""

    def get_data_layout(self, data_shape):
        return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)

    def get_tensor_layout(self, path):
        layout = super().get_tensor_layout(path)
        if layout is None:
            return None
        import jax

        return jax.sharding.NamedSharding(self.device_mesh.backend_mesh, jax.sharding.PartitionSpec())


def _output_layers(model) -> list[str]:
    if model is None:
        return []
    outputs = keras.tree.flatten(getattr(model, "outputs", None) or [])
    return sorted({private_keras.producer(t).name for t in outputs})


class Swap(keras.callbacks.Callback):
    """Evaluate under ``evaluation(dist)`` (validation inside ``fit``, the report), train under
    ``dist``; with ``dist`` None, nothing."""

    def __init__(self, dist, model=None):
        super().__init__()
        self.train, self.eval = dist, dist and evaluation(dist, model)

    def on_test_begin(self, logs=None):
        if self.train is not None:
            keras.distribution.set_distribution(self.eval)

    def on_test_end(self, logs=None):
        if self.train is not None:
            keras.distribution.set_distribution(self.train)


def describe(dist) -> dict:
    """The summary's account of a distribution: its name and mesh (``off`` when none)."""
    if dist is None:
        return {"distribution": "off"}
    name = "model_parallel" if isinstance(dist, keras.distribution.ModelParallel) else "data_parallel"
    return {
        "distribution": name,
        "mesh": list(dist.device_mesh.shape),
        "processes": processes()[0],
        "layout_adjusted": getattr(dist, "adjusted", {}),
    }
