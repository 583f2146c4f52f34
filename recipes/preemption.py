"""Preemption: SIGTERM (a spot or preemptible machine's notice) or SIGINT (Ctrl-C) stops a run at
the end of the step it is in, with that step's checkpoint written, as if the process had been
killed right after it (a loop feature).

The signal only sets a flag; at the end of the training step, ``Preemption`` writes the step's
checkpoint and raises ``Preempted``, which the loop turns into ``summary.json`` with
``"completed": false`` and ``"stopped_by": "SIGTERM"`` (no evaluation, no export). The same
command resumes from that checkpoint, and the resumed run ends bit-identical to one never stopped.
The recipes' commands then exit with 128 + the signal's number, as a shell reports a process
killed by it (143 for SIGTERM, 130 for SIGINT). A second signal while the first is being handled
ends the process at once, the usual way. A signal that comes while the run is not in a training
step (validating, or after its last step) is acted on at the next step's end, or not at all once
training is over.

One process only: several workers would each stop at their own step and leave the others waiting
in a collective, so under a multi-worker strategy or several JAX processes the handlers are not
installed (the step checkpoints still bound what a kill loses).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading

import keras

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The run stopped on ``signal_name`` after writing the checkpoint of ``step``."""

    def __init__(self, signal_name: str, step: int):
        super().__init__(f"stopped by {signal_name} at step {step}")
        self.signal_name, self.step = signal_name, step

    @property
    def exit_status(self) -> int:
        return 128 + signal.Signals[self.signal_name].value


class Preemption(keras.callbacks.Callback):
    """Checkpoint and stop at the end of the step during which a signal came (see the module)."""

    def __init__(self, training_state):
        super().__init__()
        self.training_state, self.caught = training_state, None

    def on_train_batch_end(self, batch, logs=None):
        if self.caught is not None:
            self.training_state.save()
            raise Preempted(self.caught, self.training_state.step)

    @contextlib.contextmanager
    def listening(self):
        """The signal handlers, installed for the ``with`` block (from the main thread only: Python
        delivers signals there), the previous ones put back after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s in SIGNALS:
            signal.signal(s, self._caught)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _caught(self, signum, frame):
        if self.caught is not None:  # a second signal: no more waiting
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.caught = signal.Signals(signum).name
        print(f"{self.caught}: stopping at the end of this step, with its checkpoint", flush=True)


def one_process(rt) -> bool:
    """Whether the run is one process (preemption's handlers are installed only then)."""
    from recipes.runtime import sharding
    from recipes.runtime.private_tensorflow import in_multi_worker_mode

    if rt.backend == "tensorflow" and in_multi_worker_mode(rt.strategy):
        return False
    return rt.distribution is None or sharding.processes()[0] == 1


def stopped(cfg, run_dir, stop: Preempted) -> dict:
    """A run stopped by a signal: its summary says so and how to go on (the checkpoint is written)."""
    summary = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "completed": False,
        "stopped_by": stop.signal_name,
        "steps": stop.step,
        "exit_status": stop.exit_status,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"stopped by {stop.signal_name} at step {stop.step}, checkpoint written; run the same command to resume"
    )
    return summary
