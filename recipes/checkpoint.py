"""Training state on disk, the same on every Keras backend.

A checkpoint is one ``.npz`` file per saved step (``checkpoints/ckpt-<step>.npz``) holding every
variable of the model (weights, and the random-generator states of dropout and noise layers, so a
resumed run draws the same masks), every variable of the optimizer (its step counter included)
and the loop's own state (early stopping), plus the backend that wrote it. It is written to a
temporary file and renamed into place, so a kill during a save leaves the previous checkpoint
whole; the two newest are kept. Values round-trip through NumPy bit for bit. A newest checkpoint
that cannot be read (truncated, corrupt) is passed over for the one before it, with a warning; a
folder's checkpoints are refused, in one line, under a config that makes them another run's.

Under ``multi_worker_mirrored`` every worker holds the same (mirrored) values: the chief writes,
the others only restore, and reading a mirrored variable needs no collective, so one format
serves every strategy (TensorFlow's ``tf.train.CheckpointManager`` is not needed). Across JAX
processes a value sharded over other hosts' devices is gathered first (``sharding.host_value``, a
collective): every process takes part in every save, at the same steps (decided by the step
counter, never by what the folder holds), and only the chief writes. Every process reads the
same file to resume, so the run folder must be on storage every host sees.
"""

from __future__ import annotations

import math
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


def _read(path: Path) -> dict | None:
    """Every array of a checkpoint file, read in full now (NumPy reads an ``.npz`` lazily), or None
    with a warning when the file is truncated or corrupt."""
    import zipfile

    try:
        with np.load(path) as saved:
            return {k: saved[k] for k in saved.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        print(
            f"warning: checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err}); "
            "resuming from the one before it"
        )
        return None


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
        kept = [s for s in steps(self.directory) if s <= step]  # later ones: a resumed run passed them over
        for old in [s for s in steps(self.directory) if s > step] + kept[: -self.keep]:
            (self.directory / f"ckpt-{old}.npz").unlink(missing_ok=True)

    def restore(self) -> int | None:
        """Load the newest readable checkpoint into the variables; its step, or None when there is
        none. One that cannot be read (truncated by a full disk, corrupted) is passed over for the
        one before it, with a warning naming the file; one of another model is an error."""
        for step in reversed(steps(self.directory)):
            path = self.directory / f"ckpt-{step}.npz"
            arrays = _read(path)
            if arrays is None:
                continue
            self._load(path, arrays)
            self.saved = step
            return step
        return None

    def _load(self, path: Path, saved: dict) -> None:
        """Check ``saved`` (a checkpoint's arrays) against the run, then assign it."""
        written = str(saved["backend"])
        if written != keras.backend.backend():
            raise UserError(
                f"checkpoint {str(path)!r} was written on the {written!r} backend; this run is on "
                f"{keras.backend.backend()!r}: resume it with --backend {written}."
            )
        for group, variables in self.groups.items():
            count = sum(1 for k in saved if k.startswith(f"{group}/"))
            if count != len(variables):
                raise UserError(
                    f"checkpoint {str(path)!r} holds {count} {group} variables; this run's {group} has "
                    f"{len(variables)}: it belongs to another model or config."
                )
            for i, v in enumerate(variables):
                if tuple(saved[f"{group}/{i:05d}"].shape) != tuple(v.shape):
                    raise UserError(
                        f"checkpoint {str(path)!r}: {group} variable {v.path} has shape "
                        f"{saved[f'{group}/{i:05d}'].shape}, the run's has {tuple(v.shape)}."
                    )
        for group, variables in self.groups.items():
            for i, v in enumerate(variables):
                v.assign(saved[f"{group}/{i:05d}"])
        for name, extra in self.extras.items():
            prefix = f"extra/{name}/"
            extra.load_state({k[len(prefix) :]: saved[k] for k in saved if k.startswith(prefix)})


def configured_rate(optimizer, cfg) -> None:
    """A checkpoint restores the optimizer's learning-rate variable too; a constant rate is the
    config's, so that a run resumed with another rate (after a divergence, say) trains at it."""
    if cfg.schedule != "constant" or cfg.freeze_epochs:  # a schedule is a function of the step
        return
    restored = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    if not math.isclose(restored, cfg.learning_rate, rel_tol=1e-6):
        print(
            f"learning rate {restored:g} in the checkpoint; continuing at the config's {cfg.learning_rate:g}"
        )
        optimizer.learning_rate = cfg.learning_rate


# The config fields whose change makes a run folder's checkpoints another run's: the model, its
# data and how the data is cut into steps. The rest (rate, epochs, clipping, precision...) may
# change when a run is resumed.
SAME_RUN = (
    "model",
    "model_kwargs",
    "dataset",
    "data_path",
    "classes",
    "class_fraction",
    "train_fraction",
    "image_size",
    "sequence_length",
    "vocabulary_size",
    "languages",
    "batch_size",
    "seed",
)


def check_same_run(run_dir: Path, cfg) -> None:
    """Refuse, in one line, to resume a run folder's checkpoints under a config that makes them
    another run's (checked against the ``config.yaml`` the run saved): they would load by accident
    wherever the shapes happen to agree."""
    from recipes import config as config_lib

    saved_path = Path(run_dir) / "config.yaml"
    if latest_step(Path(run_dir) / "checkpoints") is None or not saved_path.is_file():
        return
    saved = config_lib.load_yaml(saved_path)
    for field in SAME_RUN:
        if field in saved and saved[field] != _plain(getattr(cfg, field)):
            raise UserError(
                f"run folder {str(run_dir)!r} holds checkpoints of a run with {field}={saved[field]!r}; this "
                f"config has {field}={getattr(cfg, field)!r}: give it another --run-dir (or delete "
                f"{str(Path(run_dir) / 'checkpoints')!r} to start over)."
            )


def _plain(value):
    """A config value as YAML gives it back (tuples as lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class StepCheckpoint(keras.callbacks.Callback):
    """Save the training state every ``every`` steps and at each epoch end."""

    def __init__(self, state: TrainingState, every: int):
        super().__init__()
        self.training_state, self.every = state, every

    def _step(self) -> int:  # through ``self.model``: on JAX that syncs the variables with the step's state
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs=None):
        self.count, self.last = self._step(), -1

    def on_epoch_begin(self, epoch, logs=None):
        self.last = -1

    # Counted here (a JAX sync only on the steps that save): ``batch`` is the last step a call ran
    # (several with steps_per_execution), so a save falls on the first call past each ``every``.
    # Not on an epoch's last step: the epoch end writes that step, after validation (AlexNet on
    # digits wrote its 173 MB twice an epoch, 0.5-0.9 s each).
    def on_train_batch_end(self, batch, logs=None):
        ran, self.last = batch - self.last, batch
        self.count += ran
        crossed = self.count // self.every > (self.count - ran) // self.every
        if crossed and batch + 1 < self.params.get("steps", batch + 2):
            self._step()
            self.training_state.save()

    # again: early stopping has counted this epoch since its last step
    def on_epoch_end(self, epoch, logs=None):
        self._step()
        self.training_state.save(again=True)


def resume(state: TrainingState, run_dir: Path, steps: int) -> int:
    """Restore the run's newest checkpoint (if any); the step training starts from."""
    restored = state.restore()
    start = state.step
    if start:
        epoch, skip = divmod(start, steps)
        # or a given model's: e.g. a Hyperband parent
        how = "resuming" if restored is not None else "continuing the given model's training"
        print(f"{how} {run_dir} at step {start} (epoch {epoch + 1}, batch {skip + 1} of {steps})")
    return start
