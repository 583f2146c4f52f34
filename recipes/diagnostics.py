"""Gradient health (``diagnostics: gradients``), a loop feature: vanishing and exploding gradients
(Glorot & Bengio 2010; Hochreiter 1991) seen while a run trains.

Every ``diagnostics_every`` steps, before that step, the gradient of the training loss on one
fixed batch (the run's first) is taken for every trainable weight through the model's
``stateless_call``, so batch-norm statistics and dropout streams stay as they are and the run's
weights are those of a run without diagnostics; after the step, each weight's change across it is
read, whatever the optimizer. Per layer (input to output): the gradient's norm and the update's
norm over the weights' norm; for the model: the global gradient norm. They go to
``gradients.csv``, to TensorBoard (``logs/gradients``) and, at the end, to ``gradients.png``;
a layer whose gradient norm leaves ``gradient_bounds`` is flagged once, in one line and in
``summary.json``. One device only (under a strategy or a distribution the gradients live on
several). The cost per logged step is measured and reported.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import keras
import numpy as np

FILE, PLOT = "gradients.csv", "gradients.png"
COLUMNS = ("step", "layer", "depth", "grad_norm", "update_ratio", "flag")


def gradients(model, loss_fn, x, y) -> list:
    """The loss's gradient on ``(x, y)`` for each trainable variable, as NumPy, on any backend,
    leaving every variable's value as it was."""
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def loss_of(values):  # a model with auxiliary heads: its main output's loss
        outputs, _ = model.stateless_call(values, frozen, x, training=True)
        if isinstance(outputs, (list, tuple)):
            return loss_fn(y[0] if isinstance(y, (list, tuple)) else y, outputs[0])
        return loss_fn(y, outputs)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grads = jax.grad(loss_of)(trainable)
    elif backend == "torch":
        import torch

        values = [t.detach().clone().requires_grad_(True) for t in trainable]
        grads = torch.autograd.grad(loss_of(values), values, allow_unused=True)
    else:
        import tensorflow as tf

        values = [tf.convert_to_tensor(t) for t in trainable]
        with tf.GradientTape() as tape:
            tape.watch(values)
            loss = loss_of(values)
        grads = tape.gradient(loss, values)
    return [
        np.zeros(v.shape, "float32") if g is None else keras.ops.convert_to_numpy(g).astype("float32")
        for g, v in zip(grads, model.trainable_variables)
    ]


def layer_groups(model) -> list[tuple[str, list[int]]]:
    """Each layer with trainable weights, input to output, and the indices of its weights in
    ``model.trainable_variables``."""
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    groups = []
    for layer in model.layers:
        owned = [index[id(v)] for v in layer.trainable_variables if id(v) in index]
        if owned:
            groups.append((layer.name, owned))
    return groups


def _row(step, layer, depth, grad_norm, update_ratio, flag) -> dict:
    return dict(zip(COLUMNS, (step, layer, depth, grad_norm, update_ratio, flag)))


def _norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(a, dtype="float64"))) for a in arrays)))


class GradientLog(keras.callbacks.Callback):
    """Logs gradient and update norms per layer every ``every`` steps (see the module)."""

    def __init__(self, batch, loss_fn, every: int, bounds, run_dir: Path):
        super().__init__()
        self.x, self.y = batch[0], batch[1]
        self.loss_fn, self.every, (self.low, self.high) = loss_fn, every, bounds
        self.run_dir, self.flags, self.seconds, self.logged = Path(run_dir), {}, 0.0, 0
        self.step, self._pending, self._writer = 0, None, None

    def _sync(self):
        sync = getattr(self.model, "jax_state_sync", None)  # JAX keeps fit's state off the variables
        if sync:
            sync()

    def on_train_begin(self, logs=None):
        self.step = int(self.model.optimizer.iterations)  # read here: JAX's fit holds it off the variable

    def on_train_batch_begin(self, batch, logs=None):
        step = self.step + 1
        if step % self.every:
            return
        start = time.perf_counter()
        self._sync()
        grads = gradients(self.model, self.loss_fn, self.x, self.y)
        before = [keras.ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        self._pending = (step, grads, before)
        self.seconds += time.perf_counter() - start

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self._pending is None:
            return
        start = time.perf_counter()
        self._sync()
        step, grads, before = self._pending
        self._pending = None
        after = [keras.ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        rows = self._rows(step, grads, before, after)
        self._write(rows)
        self.logged += 1
        self.seconds += time.perf_counter() - start

    def _rows(self, step, grads, before, after) -> list[dict]:
        """The global gradient norm, then each layer's norms and flag, input to output."""
        rows = [_row(step, "(global)", -1, _norm(grads), "", "")]
        for depth, (name, owned) in enumerate(layer_groups(self.model)):
            grad = _norm(grads[i] for i in owned)
            weight = _norm(before[i] for i in owned)
            update = _norm(after[i] - before[i] for i in owned)
            flag = "vanishing" if grad < self.low else "exploding" if grad > self.high else ""
            if flag and name not in self.flags:
                self.flags[name] = f"{flag} at step {step} (gradient norm {grad:.2e})"
                print(f"gradients: layer {name} {self.flags[name]}; bounds {self.low:g}..{self.high:g}")
            rows.append(_row(step, name, depth, grad, update / weight if weight else float("nan"), flag))
        return rows

    def _write(self, rows: list[dict]) -> None:
        path = self.run_dir / FILE
        new = not path.is_file()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        self._tensorboard(rows)

    def _tensorboard(self, rows: list[dict]) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run_dir / "logs" / "gradients"))
        with self._writer.as_default():
            for row in rows:
                tf.summary.scalar(f"grad_norm/{row['layer']}", row["grad_norm"], step=row["step"])
        self._writer.flush()

    def summary(self, train_seconds: float) -> dict:
        """What ``summary.json`` says: flagged layers, the seconds each log took and their share of
        the training time."""
        per_log = self.seconds / self.logged if self.logged else 0.0
        return {
            "gradient_flags": self.flags,
            "gradients_logged": self.logged,
            "gradient_seconds_per_log": round(per_log, 4),
            "gradient_share_of_training": round(self.seconds / train_seconds, 4) if train_seconds else None,
        }


def callbacks(task, rt, run_dir: Path) -> list:
    """``diagnostics: gradients``: the callback on the task's first batch, one device only."""
    cfg = task.cfg
    if cfg.diagnostics != "gradients":
        return []
    if rt.replicas > 1 or rt.distribution is not None:
        print("diagnostics: gradients runs on one device; not logged under this strategy or distribution")
        return []
    batch = next(iter(task.batches_from(0)))
    loss = task.model.loss
    loss_fn = keras.losses.get(loss[0] if isinstance(loss, (list, tuple)) else loss)
    return [GradientLog(batch, loss_fn, cfg.diagnostics_every, cfg.gradient_bounds, run_dir)]


def plot(run_dir: Path, title: str) -> Path | None:
    """``gradients.png``: each layer's gradient norm over the logged steps, coloured input (dark)
    to output (light), on a log scale."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(path)
    layers = frame[frame["depth"] >= 0]
    deepest = max(int(layers["depth"].max()), 1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for depth, rows in layers.groupby("depth"):
        ax.plot(rows["step"], rows["grad_norm"], color=plt.cm.viridis(depth / deepest), lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient norm per layer")
    ax.set_title(f"{title}: input (dark) to output (light)")
    fig.colorbar(plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, deepest)), ax=ax, label="depth")
    fig.tight_layout()
    out = Path(run_dir) / PLOT
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
