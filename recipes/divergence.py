"""Divergence: a run whose loss is no longer finite stops, and no checkpoint ever holds the model
it produced (a loop feature).

Measured before this: ``--learning-rate 1000`` on the MLP reached a loss of 3.0e12 after one
epoch, kept training and checkpointing, and reported itself completed at 10% test accuracy.
``DivergenceGuard`` runs at every training step's end before the step checkpoint: a loss that is
not finite (or, with ``divergence_factor``, above that multiple of the run's first step's loss)
raises ``Diverged`` before anything is saved, so the newest checkpoint is the last finite one and
``max_to_keep`` can only have dropped older ones. The loop writes ``summary.json`` with
``"completed": false, "stopped_by": "divergence"`` and says in one line which step went bad and
what to try; the recipes' commands exit with status 3. Rerunning the command with a lower
learning rate (or clipping, or float32) continues from that checkpoint with the new setting.

The bound is on the first step's loss, not the first epoch's: in that very run the first epoch's
mean was already 3.8e12 (the loss exploded within it, then fell to about 550 and stayed there),
so no multiple of it would have stopped anything; its first step's loss was ln(10), 2.3.
"""

from __future__ import annotations

import json
import math

import keras

EXIT_STATUS = 3


class Diverged(Exception):
    """Training produced ``loss`` at ``step``; the newest checkpoint is from before it."""

    def __init__(self, step: int, loss: float, limit: float | None):
        super().__init__(f"loss {loss} at step {step}")
        self.step, self.loss, self.limit = step, loss, limit


class DivergenceGuard(keras.callbacks.Callback):
    """Stop at the first step whose running loss (Keras's mean over the epoch so far) is not
    finite, or above ``factor`` times the run's first step's loss (``factor`` None: finiteness
    only). Its state (that first loss) is checkpointed, so a resumed run keeps the same bound."""

    def __init__(self, factor: float | None = None):
        super().__init__()
        self.factor, self.first_loss = factor, None

    @property
    def limit(self) -> float | None:
        if self.factor is None or self.first_loss is None:
            return None
        return self.factor * self.first_loss

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(keras.ops.convert_to_numpy(loss))
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        limit = self.limit
        if not math.isfinite(loss) or (limit is not None and loss > limit):
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            raise Diverged(step, loss, limit)

    # the checkpoint's extras (recipes.checkpoint.TrainingState)
    def state(self) -> dict:
        return {"first_loss": float("nan") if self.first_loss is None else self.first_loss}

    def load_state(self, state: dict) -> None:
        value = float(state.get("first_loss", float("nan")))  # older checkpoints: none
        self.first_loss = value if math.isfinite(value) else None


def stopped(cfg, run_dir, err: Diverged, kept: int | None) -> dict:
    """The diverged run's summary (and its one line): where it went bad, what the newest
    checkpoint holds, and what to try."""
    bound = f" (above {err.limit:.4g}, {cfg.divergence_factor:g} x the first step's)" if err.limit else ""
    summary = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "completed": False,
        "stopped_by": "divergence",
        "diverged_at_step": err.step,
        "loss": err.loss if math.isfinite(err.loss) else str(err.loss),
        "resumes_from_step": kept,
        "exit_status": EXIT_STATUS,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    kept_text = (
        f"the newest checkpoint (step {kept}) is from before it" if kept else "it had no checkpoint yet"
    )
    print(
        f"training diverged at step {err.step}: loss {err.loss:.4g}{bound}; {kept_text}. Rerun with a lower "
        f"learning rate than {cfg.learning_rate:g}, clipping (--set clipnorm=1.0) or float32 (--set "
        f"mixed_precision=float32){' to continue from it' if kept else ''}."
    )
    return summary
