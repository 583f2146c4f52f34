"""A zoo model and a recipe config as a ``keras_tuner.HyperModel`` that trains through the recipe.

``build(hp)`` turns the trial's hyperparameters into an ordinary
:class:`recipes.config.TrainConfig` and builds the model exactly as ``recipes.train`` does
(``recipes.trainer.build_model``: strategy scope, regularizers, compile). ``fit`` hands that model to
``recipes.tasks.classify.train``, a run of the loop's classification task (``recipes.loop``): the same
data pipeline, runtime, checkpoints, early stopping and run folder (``trial_<id>/run`` in the
search's directory), so tuning and training cannot drift apart, and a trial interrupted mid-way
resumes from its own checkpoints when the search is rerun. A translation model's trials build and
train through the translation task instead (``recipes.tasks.translate``: its vocabulary learned
per trial, the objective its validation token accuracy or loss; the test split is scored by tokens,
not decoded, until the best config is retrained).

Per trial, ``trial_<id>/record.json`` keeps what KerasTuner's trial files lack: the per-epoch
history, wall time, parameter count, measured inference latency, and (written by the tuner) the
error of a failed trial.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from recipes import config as config_lib
from recipes import trainer
from recipes.data import pipeline
from recipes.runtime.backend import Runtime
from recipes.tasks import classify, translate
from tuning.spaces import Space, translating

# The recipe's metrics and the direction that makes each better.
METRICS = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
# Config fields whose change needs the data loaded again (the rest reuse the loaded data).
DATA_FIELDS = (
    "dataset",
    "data_dir",
    "data_path",
    "label_column",
    "text_column",
    "seed",
    "sequence_length",
    "vocabulary_size",
    "vocabulary_file",
    "init_from",
    "image_size",
    "augment",
    "crop_padding",
)


class RecipeHyperModel(keras_tuner.HyperModel):
    """``base`` (a recipe config) with ``space`` applied per trial; trials train under ``root``."""

    def __init__(self, base: config_lib.TrainConfig, space: Space, root, objective: str = "val_accuracy"):
        super().__init__(name=base.model, tunable=True)
        self.base, self.space, self.root, self.objective = base, space, Path(root), objective
        self.trial_id = "0"  # set by the tuner before each trial
        self.translation = translating(base.model)
        self._prepared: dict = {}
        self._env = None

    def config_for(self, hp, epochs: int | None = None) -> config_lib.TrainConfig:
        """The trial's recipe config: the base with each active hyperparameter set."""
        fields = self.base.to_dict()
        kwargs = dict(fields["model_kwargs"])
        for target, value in self.space.register(hp).items():
            if target.startswith("model."):
                kwargs[target[len("model.") :]] = value
            else:
                fields[target] = value
        fields.update(
            model_kwargs=kwargs, run_dir=str(self.root / f"trial_{self.trial_id}" / "run"), verbose=0
        )
        if epochs is not None:
            fields["epochs"] = epochs
        return config_lib.from_dict(fields, source="trial").validate()

    def prepared(self, cfg):
        """The loaded data for ``cfg`` (loaded once per distinct data-affecting setting)."""
        key = tuple(str(getattr(cfg, f)) for f in DATA_FIELDS)
        if key not in self._prepared:
            self._prepared = {key: trainer.load_data(cfg)}  # keep one: memory stays flat across trials
        return self._prepared[key]

    def build(self, hp):
        cfg = self.config_for(hp)
        self._env = Runtime.create(cfg)
        with self._env:  # the trial's precision and seed while building; the caller's restored after
            if self.translation:
                return translate.build_model(cfg, self._env)
            data, pre = self.prepared(cfg)
            return trainer.build_model(cfg, self._env, data, pre, cfg.resolved_run_dir())

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        """Train through ``recipes.tasks.classify.train``; return the metrics of the best epoch.

        Hyperband passes ``epochs`` (the bracket's length) and has loaded the parent trial's
        best-epoch weights file into ``model``. Under Keras 3 that file holds the optimizer's
        variables too, step counter included, so the recipe continues the parent run from that
        step (same schedule, same data order) up to ``epochs``: nothing restarts.
        """
        cfg = self.config_for(hp, epochs=epochs)
        start_step = int(model.optimizer.iterations.numpy())  # > 0: Hyperband loaded a parent's state
        started = time.time()
        with self._env:
            summary = self._train(cfg, model, list(callbacks))
        history = read_history(cfg.resolved_run_dir())
        record = {
            "trial_id": self.trial_id,
            "status": "COMPLETED",
            "history": history,
            "epochs_run": len(history),
            "start_step": start_step,
            "steps_per_epoch": summary.get("steps_per_epoch"),
            "wall_seconds": round(time.time() - started, 2),
            "params": summary.get("params"),
            "latency_ms": inference_latency_ms(model, self._latency_batch(model, cfg)),
            "test_accuracy": summary.get("test_accuracy", summary.get("test_token_accuracy")),
            "early_stopped": bool(summary.get("early_stopped")),
            "stopped_by": getattr(model, "_zoo_stopped_by", None),
            "ended_at": time.time(),
            "rss_mb": resident_mb(),
        }
        write_record(self.root, self.trial_id, record)
        return best_epoch(history, self.objective)

    def _train(self, cfg, model, callbacks: list) -> dict:
        """The trial's run: the translation task for a translation model, else classification."""
        if self.translation:
            return translate.train(cfg, env=self._env, model=model, callbacks=callbacks, decode_test=False)
        prepared = self.prepared(cfg)
        return classify.train(
            cfg, env=self._env, prepared=prepared, model=model, callbacks=callbacks, export=False
        )

    def _latency_batch(self, model, cfg):
        """A batch the size of the config's, as the model takes it: the validation split's first
        (a translation model's: ids of the full sequence length, whose values cost nothing)."""
        if self.translation:
            return {t.name: np.ones((cfg.batch_size, cfg.sequence_length), "int32") for t in model.inputs}
        data, pre = self.prepared(cfg)
        kw = trainer.batch_options(data, pre, len(model.outputs))
        return next(iter(pipeline.eval_batches(data.val, batch_size=cfg.batch_size, **kw)))[0]


def read_history(run_dir: Path) -> list[dict]:
    """The run's per-epoch metrics (``metrics.csv``), one dict per epoch."""
    import pandas as pd

    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def best_epoch(history: list[dict], objective: str) -> dict:
    """The metrics of the epoch where ``objective`` was best (what the oracle scores)."""
    rows = [r for r in history if objective in r]
    if not rows:
        raise RuntimeError(
            f"the trial logged no {objective!r}; its metrics were {sorted(history[0]) if history else 'none'}."
        )
    pick = max if METRICS.get(objective, "max") == "max" else min
    best = pick(rows, key=lambda r: r[objective])
    return {k: v for k, v in best.items() if k in METRICS}


def inference_latency_ms(model, x, repeats: int = 5) -> float:
    """Milliseconds for the batch ``x`` through the compiled forward pass, best of ``repeats``:
    the cost side of the multi-objective report."""
    import tensorflow as tf

    forward = tf.function(lambda inputs: model(inputs, training=False))
    forward(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = forward(x)
        keras.tree.map_structure(lambda t: t.numpy(), out)
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 3)


def resident_mb() -> float | None:
    """This process's resident memory in MiB (Linux), to show memory stays flat across trials."""
    import os

    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def record_path(root: Path, trial_id: str) -> Path:
    return Path(root) / f"trial_{trial_id}" / "record.json"


def write_record(root: Path, trial_id: str, record: dict) -> None:
    path = record_path(root, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)  # atomic: a killed search never leaves half a record


def read_records(root: Path) -> dict:
    """Every trial's record under ``root``, by trial id."""
    records = {}
    for path in sorted(Path(root).glob("trial_*/record.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        records[str(record.get("trial_id", path.parent.name[len("trial_") :]))] = record
    return records


class MedianStop(keras.callbacks.Callback):
    """The median stopping rule (Golovin et al. 2017, Google Vizier): stop a trial at epoch ``e``
    when its best objective so far is worse than the median of the completed trials' best
    objectives up to ``e``. Needs ``min_trials`` finished trials and spares the first
    ``grace_epochs``. For the tuners without early stopping of their own (Hyperband has brackets)."""

    def __init__(self, root: Path, objective: str, min_trials: int = 3, grace_epochs: int = 1):
        super().__init__()
        self.root, self.objective, self.min_trials, self.grace = (
            Path(root),
            objective,
            min_trials,
            grace_epochs,
        )
        self.better = max if METRICS.get(objective, "max") == "max" else min
        self.best = None

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np

        value = (logs or {}).get(self.objective)
        if value is None:
            return
        self.best = value if self.best is None else self.better(self.best, value)
        if epoch + 1 <= self.grace:
            return
        others = []
        for record in read_records(self.root).values():
            curve = [r[self.objective] for r in record.get("history", []) if self.objective in r][: epoch + 1]
            if record.get("status") == "COMPLETED" and len(curve) == epoch + 1:
                others.append(self.better(curve))
        if len(others) < self.min_trials:
            return
        median = float(np.median(others))
        worse = self.best < median if self.better is max else self.best > median
        if worse:
            self.model.stop_training = True
            self.model._zoo_stopped_by = (
                f"median rule at epoch {epoch + 1}: {self.best:.4f} vs median {median:.4f}"
            )
