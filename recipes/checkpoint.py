"""Training state on disk, the same on every Keras backend.

A checkpoint is one ``.npz`` file per saved step (``checkpoints/ckpt-<step>.npz``) holding every
variable of the model (weights, and the random-generator states of dropout and noise layers, so a
resumed run draws the same masks), every variable of the optimizer (its step counter included)
and the loop's own state (early stopping), plus the backend that wrote it. It is written to a
temporary file and renamed into place, so a kill during a save leaves the previous checkpoint
whole; the two newest are kept. Values round-trip through NumPy bit for bit.

Under ``multi_worker_mirrored`` every worker holds the same (mirrored) values: the chief writes,
the others only restore, and reading a mirrored variable needs no collective, so one format
serves every strategy (TensorFlow's ``tf.train.CheckpointManager`` is not needed). Across JAX
processes a value sharded over other hosts' devices is gathered first (``sharding.host_value``, a
collective): every process takes part in every save, at the same steps (decided by the step
counter, never by what the folder holds), and only the chief writes. Every process reads the
same file to resume, so the run folder must be on storage every host sees.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
import numpy as np

from modelzoo.validation import UserError

PATTERN = re.compile(r"^ckpt-(\d+)\.npz$")


def steps(directory) -> list[int]:
    """The steps with a complete checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for m in map(PATTERN.match, os.listdir(directory)) if m)


def latest_step(directory) -> int | None:
    found = steps(directory)
    return found[-1] if found else None


def _model_variables(model) -> list:
    """Weights, then seed-generator states (Keras keeps those outside ``model.weights``)."""
    seeds = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    return list(model.weights) + seeds


class TrainingState:
    """The checkpoints of one run: ``model`` and ``optimizer`` variables, and ``extras`` (objects
    with ``state() -> dict`` and ``load_state(dict)``), in ``directory``."""

    def __init__(
        self, directory, model, optimizer, extras: dict | None = None, *, write: bool = True, keep: int = 2
    ):
        self.directory, self.write, self.keep = Path(directory), write, keep
        self.groups = {"model": _model_variables(model), "optimizer": list(optimizer.variables)}
        self.extras = dict(extras or {})
        self.optimizer = optimizer
        self.saved = latest_step(self.directory)  # the newest step on disk, as of this run's start

    @property
    def step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def save(self, again: bool = False) -> None:
        """Write the current state under its step (the chief only); a step already saved is
        written ``again`` only when asked (at an epoch end, the loop's state has moved on since)."""
        from recipes.runtime.sharding import host_value

        step = self.step
        if self.saved == step and not again:
            return
        self.saved = step
        arrays = {"backend": np.array(keras.backend.backend())}
        for group, variables in self.groups.items():
            for i, v in enumerate(variables):
                arrays[f"{group}/{i:05d}"] = host_value(v)
        if not self.write:
            return
        for name, extra in self.extras.items():
            for key, value in extra.state().items():
                arrays[f"extra/{name}/{key}"] = np.asarray(value)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".ckpt-{step}.npz.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / f"ckpt-{step}.npz")
        for old in steps(self.directory)[: -self.keep]:
            (self.directory / f"ckpt-{old}.npz").unlink(missing_ok=True)

    def restore(self) -> int | None:
        """Load the newest checkpoint into the variables; its step, or None when there is none."""
        step = latest_step(self.directory)
        if step is None:
            return None
        path = self.directory / f"ckpt-{step}.npz"
        with np.load(path) as saved:
            written = str(saved["backend"])
            if written != keras.backend.backend():
                raise UserError(
                    f"checkpoint {str(path)!r} was written on the {written!r} backend; this run is on "
                    f"{keras.backend.backend()!r}: resume it with --backend {written}."
                )
            for group, variables in self.groups.items():
                count = sum(1 for k in saved.files if k.startswith(f"{group}/"))
                if count != len(variables):
                    raise UserError(
                        f"checkpoint {str(path)!r} holds {count} {group} variables; this run's {group} has "
                        f"{len(variables)}: it belongs to another model or config."
                    )
                for i, v in enumerate(variables):
                    value = saved[f"{group}/{i:05d}"]
                    if tuple(value.shape) != tuple(v.shape):
                        raise UserError(
                            f"checkpoint {str(path)!r}: {group} variable {v.path} has shape {value.shape}, "
                            f"the run's has {tuple(v.shape)}."
                        )
                    v.assign(value)
            for name, extra in self.extras.items():
                prefix = f"extra/{name}/"
                extra.load_state({k[len(prefix) :]: saved[k] for k in saved.files if k.startswith(prefix)})
        self.saved = step
        return step
