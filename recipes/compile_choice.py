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
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import keras

from modelzoo import private_keras

CACHE = "compile_choice.json"
WARM, TIMED, ROUNDS = 2, 4, 2  # steps per measurement: compiled and warmed, then timed; rounds each way


def choose(task, rt, model, run_dir: Path) -> dict:
    """The faster of XLA and no XLA for ``model``'s training step (cached per run folder); sets
    ``model.jit_compile`` to it and returns what was picked and why, for ``summary.json``."""
    if rt.replicas > 1 or rt.distribution is not None:
        return {"jit_compile": rt.jit, "picked_by": "default rule (auto measures on one device)"}
    batch = next(iter(task.batches_from(0)))
    key = _key(task.cfg, rt, batch)
    path = Path(run_dir) / CACHE
    cached = json.loads(path.read_text()) if path.is_file() else None
    if cached and cached.get("key") == key:
        choice = cached["choice"]
    else:
        choice = _measure(model, batch)
        if rt.chief:
            path.write_text(json.dumps({"key": key, "choice": choice}, indent=1) + "\n")
    model.jit_compile = choice["jit_compile"]
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
        rates = {False: 0.0, True: 0.0}
        clones = {jit: _clone(model, jit) for jit in rates}
        for r in range(ROUNDS):
            for jit in (False, True) if r % 2 == 0 else (True, False):
                rates[jit] = max(rates[jit], _steps_per_s(clones[jit], batch))
    finally:
        private_keras.set_global_seed_state(seeds)
    picked = rates[True] > rates[False]
    return {
        "jit_compile": picked,
        "picked_by": "measured",
        "steps_per_s": {"xla": round(rates[True], 3), "no_xla": round(rates[False], 3)},
    }


def _clone(model, jit: bool):
    clone = keras.models.clone_model(model)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    clone.compile(optimizer=optimizer, loss=model.loss, jit_compile=jit)
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


def for_run(task, rt, model, run_dir: Path) -> dict:
    """``jit_compile: auto``: XLA or not by measurement (``recipes.compile_choice``), said once;
    the summary's ``jit_compile`` and ``jit_choice``. Otherwise nothing to add."""
    if task.cfg.jit_compile != "auto":
        return {}
    choice = choose(task, rt, model, run_dir)
    rates = choice.get("steps_per_s")
    if rt.chief:
        said = f" ({rates['xla']:.2f} steps/s with XLA, {rates['no_xla']:.2f} without)" if rates else ""
        print(
            f"jit_compile auto: {'XLA' if choice['jit_compile'] else 'no XLA'}, {choice['picked_by']}{said}"
        )
    return {"jit_compile": choice["jit_compile"], "jit_choice": choice}
