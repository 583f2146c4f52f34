"""Data and model parallelism on JAX through ``keras.distribution`` (Keras 3 implements it for the
JAX backend only; TensorFlow runs keep ``tf.distribute``, see ``recipes.strategy``).

``make("data_parallel" | "model_parallel", model, mesh="BATCHxMODEL", batch_size=B)`` returns the
distribution to set before any Keras object of the run is created:

- ``data_parallel``: every device on the ``batch`` axis (``--mesh Nx1``), weights replicated;
- ``model_parallel``: a ``batch`` x ``model`` mesh (default: every device on ``batch``); the
  weights laid out by the model family's rules (``modelzoo.get_entry(name).layout``: Megatron for
  BERT/GPT, fc6/fc7 for AlexNet/ZFNet/VGG, none for the convolutional families, whose weights are
  then replicated over ``model``). A dimension its mesh axis does not divide (a 50-token
  vocabulary over 4 devices) is replicated instead of failing in ``jax.device_put``; which
  variables that happened to is kept in ``replicated``.

Refused with one line: a backend other than JAX, a mesh that does not multiply to the device
count, and a global batch the batch axis does not divide (Keras fails with ZeroDivisionError or
IndivisibleError there, keras-team/keras 21167).
"""

from __future__ import annotations

import keras

import modelzoo
from modelzoo.validation import UserError

DISTRIBUTIONS = ("off", "data_parallel", "model_parallel")


def parse_mesh(mesh: str | None, devices: int) -> tuple[int, int]:
    """``"BATCHxMODEL"`` (e.g. ``"2x4"``) as two ints whose product is ``devices``; None: all on batch."""
    if mesh is None:
        return devices, 1
    parts = str(mesh).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"mesh={mesh!r} is invalid: give BATCHxMODEL, two positive integers (e.g. 2x4).")
    batch, model = (int(p) for p in parts)
    if batch * model != devices:
        raise UserError(f"mesh={mesh!r} has {batch * model} devices; this run has {devices} "
                        f"({keras.backend.backend()} devices: {devices}, e.g. --mesh {devices}x1).")  # fmt: skip
    return batch, model


class FittedModelParallel(keras.distribution.ModelParallel):
    """``ModelParallel`` that replicates a dimension its mesh axis does not divide (JAX cannot place
    an uneven shard), and records the variables where it did so."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.replicated: list[str] = []

    def get_variable_layout(self, variable):
        layout = super().get_variable_layout(variable)
        mesh = dict(zip(self.device_mesh.axis_names, self.device_mesh.shape))
        axes = [a if a is None or dim % mesh[a] == 0 else None for a, dim in zip(layout.axes, variable.shape)]
        if axes == list(layout.axes):
            return layout
        self.replicated.append(variable.path)
        return keras.distribution.TensorLayout(axes, self.device_mesh)


def make(name: str, model: str, *, mesh: str | None = None, batch_size: int):
    """The ``keras.distribution`` for ``name`` over this process's devices (None for ``off``)."""
    if name not in DISTRIBUTIONS:
        from modelzoo.validation import did_you_mean

        raise UserError(f"distribution={name!r} is invalid: one of {list(DISTRIBUTIONS)}." + did_you_mean(name, DISTRIBUTIONS))
    if name == "off":
        return None
    backend = keras.backend.backend()
    if backend != "jax":
        raise UserError(f"distribution={name!r} needs the jax backend (Keras {keras.__version__} implements keras.distribution "
                        f"for JAX only), not {backend!r}: run with --backend jax, or use strategy: mirrored or "
                        "multi_worker_mirrored on tensorflow.")  # fmt: skip
    devices = keras.distribution.list_devices()
    batch, width = parse_mesh(mesh, len(devices))
    if name == "data_parallel" and width != 1:
        raise UserError(f"distribution 'data_parallel' puts every device on the batch axis; mesh={mesh!r} has a model axis "
                        f"of {width}: use model_parallel, or --mesh {len(devices)}x1.")  # fmt: skip
    if batch_size % batch:
        raise UserError(f"batch_size={batch_size} must be divisible by the mesh's batch axis ({batch} devices).")
    if name == "data_parallel":
        return keras.distribution.DataParallel(device_mesh=keras.distribution.DeviceMesh((batch,), ["batch"], devices))
    device_mesh = keras.distribution.DeviceMesh((batch, width), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in modelzoo.get_entry(model).layout.items():
        layout_map[pattern] = axes
    return FittedModelParallel(layout_map=layout_map, batch_dim_name="batch")
