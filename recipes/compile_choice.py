"""``jit_compile: auto``: XLA or not, chosen by measuring this model on this machine (a loop feature).

XLA pays for some models and costs for others, and the split is not a rule one can write down:
measured on 2 CPU cores, an AlexNet-sized training step ran about 1.6x faster under XLA and
ResNet-50's inference 0.92x. So before training, the run times a few training steps each way on a
copy of its model (a clone with a fresh optimizer of the same configuration: the run's own weights,
optimizer state and random streams are untouched) on its first training batch, two interleaved
rounds each, keeps the faster, and says what it picked and both rates. The choice is cached in the
run folder (``compile_choice.json``) for that model, batch, backend, precision and machine, so a
resumed run trains exactly as the run it continues, without measuring again. Under several
replicas or a ``keras.distribution`` the default rule applies (``default_jit``) and the summary
says so.

``steps_per_execution: auto`` (one device): several training steps per call of the compiled
function, which pays where a step is short and Keras's per-step dispatch is a large part of it
(LeNet-5 on this CPU: 3,927 -> 5,672 samples/s at 32 steps a call) and not where the step is the
time (AlexNet: no change). The run times its step on a clone, and where a few steps fit in a call
of about ``TARGET_S`` seconds, times ``fit`` at one step a call against that many, interleaved,
and keeps the faster (cached in ``steps_per_execution.json``). An execution never crosses an
epoch: the count divides the epoch's steps (``divisor``), so checkpoints, preemption and
validation fall where they would. Gradient logging and pruning act on every step: with either,
one step a call.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from pathlib import Path

import keras

from modelzoo import private_keras

CACHE, SPE_CACHE = "compile_choice.json", "steps_per_execution.json"
WARM, TIMED, ROUNDS = 2, 4, 2  # steps per measurement: compiled and warmed, then timed; rounds each way
MAX_STEPS_PER_EXECUTION, TARGET_S = 32, 0.25  # the most steps a call, and about how long a call runs
TIMED_S = 0.5  # about how long each timed ``fit`` of the steps_per_execution measurement runs


def choose(task, rt, model, run_dir: Path, first_batch=None) -> dict:
    """The faster of XLA and no XLA for ``model``'s training step (cached per run folder); sets
    ``model.jit_compile`` to it and returns what was picked and why, for ``summary.json``."""
    if _several_devices(rt):
        return {"jit_compile": rt.jit, "picked_by": "default rule (auto measures on one device)"}
    batch = (first_batch or first_batch_of(task))()
    choice = _cached(Path(run_dir) / CACHE, _key(task.cfg, rt, batch), rt, lambda: _measure(model, batch))
    model.jit_compile = choice["jit_compile"]
    return choice


def first_batch_of(task):
    """A function giving the run's first training batch as NumPy arrays (which every backend's
    step takes), read once however often it is called: a streamed pipeline's first batch can
    take seconds."""

    @functools.cache
    def first():
        return keras.tree.map_structure(keras.ops.convert_to_numpy, next(iter(task.batches_from(0))))

    return first


def _cached(path: Path, key: dict, rt, measure) -> dict:
    """The choice ``path`` holds for ``key``, else ``measure()``'s, written there by the chief."""
    cached = json.loads(path.read_text()) if path.is_file() else None
    if cached and cached.get("key") == key:
        return cached["choice"]
    choice = measure()
    if rt.chief:
        path.write_text(json.dumps({"key": key, "choice": choice}, indent=1) + "\n")
    return choice


def _key(cfg, rt, batch) -> dict:
    """What the choice depends on: the model and its sizes, the batch's shapes, the backend,
    precision and machine."""
    shapes = [list(t.shape) for t in keras.tree.flatten(batch)]
    machine = f"{platform.machine()} {platform.processor() or ''} x{_cores()}".strip()
    return {
        "model": cfg.model,
        "model_kwargs": cfg.model_kwargs,
        "batch": shapes,
        "backend": rt.backend,
        "precision": rt.policy,
        "machine": machine,
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _measure(model, batch) -> dict:
    """Training steps/s of a clone of ``model`` with and without XLA, interleaved; the faster."""
    seeds = private_keras.global_seed_state()  # cloning draws initial weights: the run's stream is kept
    try:
        clones = {jit: _clone(model, jit) for jit in (False, True)}
        rates = _interleaved(clones, lambda clone: _steps_per_s(clone, batch))
    finally:
        private_keras.set_global_seed_state(seeds)
    picked = rates[True] > rates[False]
    return {
        "jit_compile": picked,
        "picked_by": "measured",
        "steps_per_s": {"xla": round(rates[True], 3), "no_xla": round(rates[False], 3)},
    }


def _interleaved(clones: dict, rate) -> dict:
    """Each clone's best ``rate(clone)`` over ``ROUNDS`` rounds, the order flipped each round."""
    rates = dict.fromkeys(clones, 0.0)
    for r in range(ROUNDS):
        for key in list(clones) if r % 2 == 0 else list(clones)[::-1]:
            rates[key] = max(rates[key], rate(clones[key]))
    return rates


def _clone(model, jit: bool):
    clone = keras.models.clone_model(model)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    clone.compile(optimizer=optimizer, loss=model.loss, jit_compile=jit)
    return clone


def _clone_for_steps(model, jit: bool, steps_per_execution: int):
    clone = _clone(model, jit)
    set_steps_per_execution(clone, steps_per_execution)
    return clone


def _steps_per_s(clone, batch) -> float:
    x, y, *weights = batch
    weight = weights[0] if weights else None
    for _ in range(WARM):
        clone.train_on_batch(x, y, sample_weight=weight)
    start = time.perf_counter()
    for _ in range(TIMED):
        clone.train_on_batch(x, y, sample_weight=weight)
    return TIMED / (time.perf_counter() - start)


def divisor(steps: int, most: int) -> int:
    """The largest divisor of ``steps`` not above ``most``: an execution never crosses an epoch."""
    return max(d for d in range(1, max(1, min(steps, most)) + 1) if steps % d == 0)


def set_steps_per_execution(model, n: int) -> None:
    """``n`` training steps a call of ``model``'s compiled step (its functions made again if made)."""
    if model.steps_per_execution == n:
        return
    model.steps_per_execution = n
    if model.train_function is not None:
        model.make_train_function(force=True)
        model.make_test_function(force=True)


def _several_devices(rt) -> bool:
    """Several replicas or a ``keras.distribution``: the compile settings follow their rules there."""
    return rt.replicas > 1 or rt.distribution is not None


def _one_step_reason(cfg, rt) -> str | None:
    """Why a run takes one step a call whatever it asks, or None."""
    if _several_devices(rt):
        return "several devices (keras-team/keras#19246)"
    if cfg.diagnostics or cfg.prune_sparsity:
        return "gradient logging or pruning acts on every step"
    return None


def steps_choice(task, rt, model, run_dir: Path, steps: int, first_batch=None) -> dict:
    """``steps_per_execution`` for the run: as asked (the largest divisor of the epoch's steps
    not above it), or for ``auto`` measured (``_measure_steps``, cached per run folder); set on
    ``model``; what was picked and why, for ``summary.json``."""
    asked, why = task.cfg.steps_per_execution, _one_step_reason(task.cfg, rt)
    if why:
        choice = {"steps_per_execution": 1, "picked_by": why}
    elif asked != "auto":
        choice = {"steps_per_execution": divisor(steps, asked), "picked_by": "asked"}
    else:
        batch = (first_batch or first_batch_of(task))()
        key = {**_key(task.cfg, rt, batch), "steps_per_epoch": steps, "jit_compile": bool(model.jit_compile)}
        choice = _cached(Path(run_dir) / SPE_CACHE, key, rt, lambda: _measure_steps(model, batch, steps))
    set_steps_per_execution(model, choice["steps_per_execution"])
    return choice


def _measure_steps(model, batch, steps: int) -> dict:
    """One step a call against ``k`` (as many as run in about ``TARGET_S``, dividing ``steps``),
    each timed through ``fit`` on clones, interleaved; the faster."""
    seeds = private_keras.global_seed_state()
    try:
        jit = bool(model.jit_compile)
        one = _clone_for_steps(model, jit, 1)
        step_s = 1 / _steps_per_s(one, batch)
        k = divisor(steps, min(MAX_STEPS_PER_EXECUTION, int(TARGET_S / step_s)))
        if k == 1:
            return {"steps_per_execution": 1, "picked_by": f"measured: a step takes {1e3 * step_s:.0f} ms"}
        timed = k * max(2, round(TIMED_S / (k * step_s)))  # whole calls of k, about TIMED_S
        clones = {1: one, k: _clone_for_steps(model, jit, k)}
        rates = _interleaved(clones, lambda clone: _fit_steps_per_s(clone, batch, k, timed))
    finally:
        private_keras.set_global_seed_state(seeds)
    return {
        "steps_per_execution": k if rates[k] > rates[1] else 1,
        "picked_by": "measured",
        "steps_per_s": {"one": round(rates[1], 3), str(k): round(rates[k], 3)},
    }


def _fit_steps_per_s(clone, batch, warm: int, n: int) -> float:
    """Steps/s of ``fit`` over ``n`` steps of ``batch``, after ``warm`` that compile and warm it."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(tuple(batch)).repeat()
    clone.fit(data, steps_per_epoch=warm, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    clone.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)
    return n / (time.perf_counter() - start)


def for_run(task, rt, model, run_dir: Path, steps: int) -> dict:
    """The run's compile settings where measured or adjusted, each said once: the summary's
    ``jit_compile`` and ``jit_choice`` (``jit_compile: auto``), ``steps_per_execution`` and, where
    it was not simply 1, ``steps_per_execution_choice``."""
    found, first_batch = {}, first_batch_of(task)
    if task.cfg.jit_compile == "auto":
        choice = choose(task, rt, model, run_dir, first_batch)
        rates = choice.get("steps_per_s")
        said = f" ({rates['xla']:.2f} steps/s with XLA, {rates['no_xla']:.2f} without)" if rates else ""
        _say(
            rt,
            f"jit_compile auto: {'XLA' if choice['jit_compile'] else 'no XLA'}, {choice['picked_by']}{said}",
        )
        found.update(jit_compile=choice["jit_compile"], jit_choice=choice)
    choice = steps_choice(task, rt, model, run_dir, steps, first_batch)
    found["steps_per_execution"] = n = choice["steps_per_execution"]
    if task.cfg.steps_per_execution != 1:
        rates = choice.get("steps_per_s")
        said = ", ".join(f"{v:.1f} steps/s at {k} a call" for k, v in rates.items()) if rates else ""
        _say(
            rt,
            f"steps_per_execution {task.cfg.steps_per_execution}: {n}, {choice['picked_by']}"
            + (f" ({said})" if said else ""),
        )
        found["steps_per_execution_choice"] = choice
    return found


def _say(rt, line: str) -> None:
    if rt.chief:
        print(line)
