"""The run loop: one lifecycle for every recipe, written once.

What differs between recipes is a :class:`Task` (classification in ``recipes.trainer``, masked-LM
pretraining in ``recipes.pretrain``, distillation in ``recipes.distill``, the tuning trial in
``tuning.hypermodel``): its data, its model and optimizer, its batches from a step, its
validation batches and its report. :func:`run` does what every run needs, for each of them:

* the run folder, the resolved config saved in it (only the fields the recipe takes), and a
  finished run left alone;
* the :class:`recipes.runtime.backend.Runtime` (backend, strategy, precision, seeds), entered as a
  context manager, so a failed run leaves the caller's global state as it was;
* checkpoints every ``checkpoint_every`` steps and at each epoch end, on every backend, and the
  exact resume: the optimizer's step counter is the run's clock, a task's batches are a function
  of (seed, step), and a resumed run skips exactly the batches already trained on;
* early stopping on validation loss, its state in the checkpoint; CSV and TensorBoard logs;
* the summary (common keys and the task's own), curves, ``model.keras`` and the export.

* the ways a run dies: a signal (``recipes.preemption``), a diverged loss (``recipes.divergence``),
  an unreadable checkpoint or another run's (``recipes.checkpoint``), a second run into the folder
  (``recipes.run_lock``).

Run folder: ``config.yaml``, ``checkpoints/``, ``logs/`` (TensorBoard), ``metrics.csv``,
``curves.png``, ``model.keras``, ``export/savedmodel/`` (SavedModel for serving), ``summary.json``,
and ``.lock`` while a run writes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path

import keras

import modelzoo
from modelzoo.validation import UserError
from recipes import checkpoint as ckpt_lib
from recipes import compile_choice, diagnostics, divergence, precise_bn, run_lock
from recipes import config as config_lib
from recipes import preemption as preemption_lib
from recipes.data import base
from recipes.divergence import Diverged, DivergenceGuard
from recipes.preemption import Preempted, stopped
from recipes.run_outputs import finish, log_callbacks, weights_digest
from recipes.runtime.backend import Runtime


class Task:
    """A recipe's own part of a run. Subclasses set ``recipe`` (its name, which decides the
    config fields it takes) and implement ``prepare``, ``build``, ``batches_from``,
    ``validation`` and ``report``; the rest has defaults. The loop sets ``model`` (what ``fit``
    trains) once it is built."""

    recipe = "train"
    export = True
    model: keras.Model | None = None

    def __init__(self, cfg):
        self.cfg = cfg

    @property
    def title(self) -> str:
        return f"{self.cfg.model} on {self.cfg.dataset}"

    def prepare(self, runtime: Runtime, run_dir: Path) -> int:
        """Load the data; return the steps per epoch."""
        raise NotImplementedError

    def write_files(self, run_dir: Path) -> None:
        """Files besides config.yaml that the run folder keeps (a vocabulary, say); chief only."""

    def build(self, runtime: Runtime, run_dir: Path, steps: int) -> keras.Model:
        """The compiled model that ``fit`` trains, its optimizer built, under the strategy."""
        raise NotImplementedError

    def trained(self) -> keras.Model:
        """The model whose variables the checkpoint holds (a distiller's student, say)."""
        return self.model

    def batches_from(self, step: int, replicas=None, shard=None):
        """Every training batch from optimizer step ``step`` to the last epoch's end; with
        ``replicas`` (number, ids) only those replicas' rows of each (``per_replica``), with
        ``shard`` (n, i) only batches i, i + n, ... (a tf.data service worker's)."""
        raise NotImplementedError

    def validation(self):
        raise NotImplementedError

    def files_split(self):
        """The training split when it is read from files (streamed, or a folder's images): under
        several replicas each input pipeline then reads only its own share (``per_replica``)."""
        data = getattr(self, "data", None)  # a classifier's or distiller's recipes.data.Data
        return data.train if data is not None and data.train.files else None

    def medium(self) -> dict | None:
        """Where the training data is held and why (``recipes.data.choose_medium``); None: the task
        has no such choice."""
        data = getattr(self, "data", None)  # a classifier's or distiller's recipes.data.Data
        return data.medium if data is not None else None

    def callbacks(self, steps: int) -> list:
        return []

    def statistics_batches(self, samples: int):
        """At most ``samples`` training examples preprocessed as for evaluation, for precise
        batch-norm statistics (``recipes.precise_bn``); None: the task offers none."""
        return None

    def phases(self, runtime: Runtime) -> list:
        """``(end_epoch, setup)`` pairs trained in turn; ``setup`` (or None) runs before a phase
        that has steps left (fine-tuning freezes, then unfreezes)."""
        return [(self.cfg.epochs, None)]

    def before_fit(self, start: int) -> None:
        """Called once before training (the masked-LM task measures its starting loss)."""

    def report(self, runtime: Runtime) -> tuple[keras.Model, dict]:
        """The model the run saves, and the task's summary keys."""
        raise NotImplementedError

    def message(self, summary: dict, run_dir: Path) -> str:
        return f"test accuracy {summary['test_accuracy']:.4f}; run folder {run_dir}"


class EarlyStop(keras.callbacks.Callback):
    """Early stopping on validation loss, for every task; its state (best loss, epochs without
    improvement) is saved with each checkpoint, so it survives a resume."""

    def __init__(self, patience: int | None):
        super().__init__()
        self.patience, self.best, self.wait = patience, math.inf, 0

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state(self, state: dict) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is None:
            return
        if value < self.best:
            self.best, self.wait = float(value), 0
        else:
            self.wait += 1
            if self.exhausted:
                self.model.stop_training = True


def start_run(cfg, recipe: str = "train") -> tuple[Path, dict | None]:
    """Validate ``cfg`` for ``recipe``; its run folder, and the summary if that run is complete."""
    cfg.validate(recipe=recipe)
    run_dir = cfg.resolved_run_dir()
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("completed"):
            print(f"run {run_dir} is complete; nothing to do (delete it to train again).")
            return run_dir, summary
    return run_dir, None


def run(task: Task, *, runtime: Runtime | None = None, model=None, callbacks=(), export: bool = True) -> dict:
    """Run ``task`` to completion, resuming from its run folder's checkpoints; the summary.
    ``runtime`` (entered by the caller) and ``model`` (from ``task.build``) let a caller that runs
    many trials share them; ``callbacks`` join the loop's; ``export=False`` skips the SavedModel."""
    run_dir, done = start_run(task.cfg, task.recipe)
    if done:
        return done
    if runtime is not None:
        return _locked_run(task, runtime, run_dir, model, list(callbacks), export)
    with Runtime.create(task.cfg) as runtime:
        return _locked_run(task, runtime, run_dir, model, list(callbacks), export)


def _locked_run(task: Task, rt: Runtime, run_dir: Path, model, callbacks: list, export: bool) -> dict:
    """``_run`` holding the run folder's lock (the chief's; ``recipes.run_lock``)."""
    with run_lock.locked(run_dir) if rt.chief else contextlib.nullcontext():
        return _run(task, rt, run_dir, model, callbacks, export)


def _prepare(task: Task, rt: Runtime, run_dir: Path) -> int:
    """The task's data, and the run folder's config and files (after checking that its
    checkpoints, if any, are this run's); the steps per epoch."""
    steps = task.prepare(rt, run_dir)
    if task.medium() is not None and rt.chief:
        print(base.medium_line(task.medium()))
    run_dir.mkdir(parents=True, exist_ok=True)
    if rt.chief:
        ckpt_lib.check_same_run(run_dir, task.cfg)
        config_lib.save(task.cfg, run_dir / "config.yaml", recipe=task.recipe)
        task.write_files(run_dir)
    return steps


def _run(task: Task, rt: Runtime, run_dir: Path, model, callbacks: list, export: bool) -> dict:
    cfg = task.cfg
    steps = _prepare(task, rt, run_dir)
    model = task.model = model or task.build(rt, run_dir, steps)
    jit = compile_choice.for_run(task, rt, model, run_dir, steps)
    tracker, guard = EarlyStop(cfg.early_stopping_patience), DivergenceGuard(cfg.divergence_factor)
    extras = {"early_stop": tracker, "divergence": guard}
    state = ckpt_lib.TrainingState(
        run_dir / "checkpoints", task.trained(), model.optimizer, extras, write=rt.chief
    )
    start = ckpt_lib.resume(state, run_dir, steps)
    ckpt_lib.configured_rate(model.optimizer, cfg)
    callbacks = _before_fit(task, rt, model, start, callbacks)
    # In this order at each step and epoch end: the task's (pruning masks the weights), early stopping's
    # update, the divergence guard (before any checkpoint holds a diverged model), then the checkpoint
    # (so it holds both), the logs, the caller's.
    preemption = preemption_lib.for_run(state, rt)
    gradient_log = diagnostics.callbacks(task, rt, run_dir)
    every = [
        *task.callbacks(steps),
        *_precise_bn(task, rt),
        tracker,
        guard,
        ckpt_lib.StepCheckpoint(state, cfg.checkpoint_every),
        *gradient_log,
        *([preemption] if preemption else []),
        *log_callbacks(rt, run_dir),
        *callbacks,
    ]
    try:
        with preemption.listening() if preemption else contextlib.nullcontext():
            seconds = _fit_phases(task, rt, model, state, steps, every, tracker)
    except Preempted as stop:
        return stopped(task.cfg, rt, run_dir, stop)
    except Diverged as err:
        return divergence.stopped(task.cfg, run_dir, err, ckpt_lib.latest_step(run_dir / "checkpoints"))
    final, report = _report(task, rt, model)
    summary = {**_summary(task, rt, state, steps, tracker, seconds, final, report), **jit}
    for log in gradient_log:  # diagnostics: gradients
        summary.update(log.summary(seconds))
        diagnostics.plot(run_dir, task.title)
    finish(rt, final, run_dir, summary, title=task.title, export=export and task.export)
    print(task.message(summary, run_dir))
    return summary


def _report(task: Task, rt: Runtime, model) -> tuple:
    """The task's report on the trained model (under the evaluation distribution, the model
    gathered to this host where JAX spread it over several processes)."""
    if rt.distribution is None:
        return task.report(rt)
    from recipes.runtime import sharding

    keras.distribution.set_distribution(sharding.evaluation(rt.distribution, model))
    final, report = task.report(rt)
    return sharding.host_copy(final), report


def _precise_bn(task: Task, rt: Runtime) -> list:
    """Precise batch-norm statistics before each validation, on one device (``precise_bn_samples``)."""
    samples = task.cfg.precise_bn_samples
    if not samples or rt.replicas > 1 or rt.distribution is not None or rt.adapt:
        return []
    if not precise_bn.batch_norms(task.model):  # before the pipeline: it took 0.9 s to build
        return []
    batches = task.statistics_batches(samples)
    if batches is None:
        return []
    return [precise_bn.PreciseBatchNorm(batches)]


def _before_fit(task: Task, rt: Runtime, model, start: int, callbacks: list) -> list:
    """Adapt the model to a multi-worker strategy, run the task's ``before_fit`` under the
    evaluation distribution (it replicates the batch, a partial one too; training splits it), and
    leave the training distribution set; the callbacks, with the swap between the two first."""
    if rt.adapt:
        from recipes.runtime import distributed

        distributed.adapt(
            model, rt.strategy, element_spec=task.batches_from(0).element_spec, jit_compile=rt.jit
        )
    train_dist = rt.distribution
    if train_dist is not None:
        from recipes.runtime import sharding

        keras.distribution.set_distribution(sharding.evaluation(train_dist, model))
        callbacks = [sharding.Swap(train_dist, model), *callbacks]
    task.before_fit(start)
    if train_dist is not None:
        keras.distribution.set_distribution(train_dist)
    return callbacks


def _fit_phases(task: Task, rt: Runtime, model, state, steps: int, every: list, tracker) -> float:
    """Each of the task's phases (the epoch it ends at, its setup) from the state's step on,
    skipping those done; the seconds this process trained."""
    val, started = task.validation(), time.time()
    for until, setup in task.phases(rt):
        start = state.step
        if start >= until * steps or tracker.exhausted or model.stop_training:
            continue
        if setup:
            setup()
        fit_resumable(
            model,
            task.cfg,
            per_replica(rt, task),
            start,
            steps,
            val,
            every,
            stop=lambda: tracker.exhausted,
            until=until,
        )
    return time.time() - started


def _summary(
    task: Task, rt: Runtime, state, steps: int, tracker, seconds: float, final, report: dict
) -> dict:
    """``summary.json``: what ran, how, the task's report, and the final weights' count and digest."""
    cfg = task.cfg
    return {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "completed": True,
        "early_stopped": tracker.exhausted,
        "steps": state.step,
        "steps_per_epoch": steps,
        "epochs": cfg.epochs,
        "train_seconds_this_process": round(seconds, 2),
        **report,
        **({"data_medium": task.medium()} if task.medium() is not None else {}),
        "backend": rt.backend,
        "precision": rt.policy,
        "jit_compile": rt.jit,
        "strategy": rt.strategy_name,
        "replicas": rt.replicas,
        **_distribution(rt),
        "params": modelzoo.count_params(final)["params"],
        "weights_sha256": weights_digest(final),
    }


def _distribution(rt: Runtime) -> dict:
    from recipes.runtime import sharding

    return sharding.describe(rt.distribution)


def _own_rows(rt: Runtime, task):
    """For one of several JAX processes: a function of the step giving this process's rows of every
    global batch (its devices' places on the batch axis), as one batch; None otherwise."""
    from recipes.runtime import sharding

    rows = rt.distribution is not None and sharding.local_rows(rt.distribution)
    if not rows:
        return None
    if task.cfg.data_service:
        raise UserError(
            "data_service with several JAX processes is not supported: each process reads its own rows."
        )
    local = task.cfg.batch_size // rows[0] * len(rows[1])
    print(
        f"process {sharding.process_index()}: rows of batch-axis places {rows[1]} of {rows[0]}, {local} per step"
    )
    return lambda step: task.batches_from(step, replicas=rows).rebatch(local)


def per_replica(rt: Runtime, task):
    """``task.batches_from`` (through a tf.data service with ``data_service``); for a streamed split
    under several replicas, a distributed data set whose input pipelines each read only their
    replicas' rows of every global batch, or their own files (a worker opens only its own files;
    TF's auto-sharding of one pipeline would have every worker read and decode every file, then
    drop its peers' rows)."""
    from recipes.data.service import through_service

    cfg = task.cfg
    own_rows = _own_rows(rt, task)
    if own_rows is not None:
        return own_rows
    serve = through_service(cfg.data_service, cfg.data_service_workers)
    split = task.files_split()
    if not (rt.adapt and split is not None):
        return lambda step: serve(
            lambda shard: task.batches_from(step, **({"shard": shard} if shard else {}))
        )
    strategy = rt.strategy
    total = strategy.num_replicas_in_sync
    print(
        f"streaming {len(split)} training examples over {total} replicas: each input pipeline reads only its "
        "replicas' rows or files"
    )

    def batches_from(step):
        def pipeline(context):
            local = total // context.num_input_pipelines
            ids = list(range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local))
            return serve(
                lambda shard: task.batches_from(
                    step, replicas=(total, ids), **({"shard": shard} if shard else {})
                )
            )

        return strategy.distribute_datasets_from_function(pipeline)

    return batches_from


def fit_resumable(
    model, cfg, batches_from, start: int, steps: int, val_ds, callbacks, stop=lambda: False, until=None
) -> None:
    """``fit`` from optimizer step ``start`` to epoch ``until`` (default ``cfg.epochs``): first
    the rest of an interrupted epoch (its remaining batches only), then whole epochs.
    ``batches_from(step)`` yields every batch from ``step`` on (Keras keeps one iterator across
    epochs when steps_per_epoch is set)."""
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    fit = dict(validation_data=val_ds, callbacks=callbacks, verbose=verbose, shuffle=False)  # order is ours
    epoch, skip = divmod(start, steps)
    if skip and not stop():
        many = model.steps_per_execution
        if skip % many:  # a checkpoint another setting wrote: this epoch's rest one step a call
            compile_choice.set_steps_per_execution(model, 1)
        model.fit(
            batches_from(start), initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps - skip, **fit
        )
        compile_choice.set_steps_per_execution(model, many)
        epoch += 1
    until = cfg.epochs if until is None else until
    if epoch < until and not model.stop_training and not stop():
        model.fit(
            batches_from(epoch * steps), initial_epoch=epoch, epochs=until, steps_per_epoch=steps, **fit
        )
