"""Data and model parallelism on JAX through ``keras.distribution`` (Keras 3 implements it for the
JAX backend only; TensorFlow runs keep ``tf.distribute``, see ``recipes.strategy``).

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

Refused with one line: a backend other than JAX, a mesh that does not multiply to the device
count, and a global batch the batch axis does not divide (Keras fails with ZeroDivisionError or
IndivisibleError there, keras-team/keras 21167).
"""

from __future__ import annotations

import keras

import modelzoo
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
    if name == "data_parallel":
        return keras.distribution.DataParallel(
            device_mesh=keras.distribution.DeviceMesh((batch,), ["batch"], devices)
        )
    device_mesh = keras.distribution.DeviceMesh((batch, width), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in modelzoo.get_entry(model).layout.items():
        layout_map[pattern] = axes
    return FittedModelParallel(layout_map=layout_map, batch_dim_name="batch")


def _accelerators() -> int:
    import jax

    return len(jax.devices()) if jax.default_backend() in ("gpu", "cuda", "rocm", "tpu") else 1


def evaluation(dist):
    """``dist``'s mesh and weight layouts with the batch replicated, not split (any batch size)."""
    return keras.distribution.ModelParallel(
        layout_map=keras.distribution.LayoutMap(dist.device_mesh), batch_dim_name=None
    )


class Swap(keras.callbacks.Callback):
    """Evaluate under ``evaluation(dist)`` inside ``fit`` (validation), train under ``dist``."""

    def __init__(self, dist):
        super().__init__()
        self.train, self.eval = dist, evaluation(dist)

    def on_test_begin(self, logs=None):
        keras.distribution.set_distribution(self.eval)

    def on_test_end(self, logs=None):
        keras.distribution.set_distribution(self.train)


def describe(dist) -> dict:
    """The summary's account of a distribution: its name and mesh (``off`` when none)."""
    if dist is None:
        return {"distribution": "off"}
    name = "model_parallel" if isinstance(dist, keras.distribution.ModelParallel) else "data_parallel"
    return {
        "distribution": name,
        "mesh": list(dist.device_mesh.shape),
        "layout_adjusted": getattr(dist, "adjusted", {}),
    }
