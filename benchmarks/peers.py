"""The zoo beside the peer a PyTorch user would pick: timm on PyTorch, same architecture, batch,
input and threads, each side in a fresh process (a process has one Keras backend, and each
framework sizes its thread pools once), the sides alternating over the rounds.

Sides: timm on PyTorch (eager, as timm trains by default); the zoo on TensorFlow as the recipes
run it (oneDNN capped below AVX-512 on such CPUs: recipes/runtime/native.py) and with oneDNN's
full instruction set (what a serving process, which never computes a weight gradient, can use);
the zoo on Keras's JAX backend (jitted) and on its PyTorch backend (eager). Every Keras side goes
through ``predict_on_batch`` and ``train_on_batch`` with Keras's default compile settings for its
backend; every side trains with SGD (momentum 0.9) on cross-entropy. The fastest step of each side
is kept (noise only ever slows a step).
"""

from __future__ import annotations

import os
import time

from benchmarks.common import Settings, in_fresh_process

# zoo model -> timm's name for the same architecture (timm's own weights' layouts)
TIMM = {
    "resnet50": "resnet50",
    "vgg16": "vgg16",
    "densenet121": "densenet121",
    "mobilenet_v2": "mobilenetv2_100",
    "efficientnet_b0": "efficientnet_b0",
}
FULL_ISA = {"ONEDNN_MAX_CPU_ISA": "DEFAULT"}  # oneDNN's every instruction set
# side -> (framework, environment of its process); "tensorflow" is capped as the recipes cap it
SIDES = {
    "timm": ("torch", FULL_ISA),
    "tensorflow": ("keras", {"KERAS_BACKEND": "tensorflow"}),
    "tensorflow_full_isa": ("keras", {"KERAS_BACKEND": "tensorflow", **FULL_ISA}),
    "jax": ("keras", {"KERAS_BACKEND": "jax"}),
    "keras_torch": ("keras", {"KERAS_BACKEND": "torch", **FULL_ISA}),
}
PEER_FORMAT = {f"{side}_{kind}": ".1f" for side in SIDES for kind in ("infer", "train")}
PEER_FORMAT.update(
    {f"{side}_{kind}_ratio": ".2f" for side in SIDES if side != "timm" for kind in ("infer", "train")}
)


def timm_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("timm", "torch"))


def _timed(step, settings: Settings) -> float:
    """The fastest of ``repeats x steps`` calls of ``step`` (one untimed call first)."""
    step()
    best = float("inf")
    for _ in range(settings.repeats * settings.steps):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def _torch_rates(name: str, settings: Settings) -> dict:
    import timm
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = timm.create_model(TIMM[name], pretrained=False, num_classes=1000)
    x = torch.rand(settings.batch_size, 3, settings.image_size, settings.image_size)
    y = torch.randint(0, 1000, (settings.batch_size,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()

    def infer():
        with torch.inference_mode():
            model(x)

    def train():
        optimizer.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        optimizer.step()

    model.eval()
    infer_s = _timed(infer, settings)
    model.train()
    train_s = _timed(train, settings)
    params = sum(p.numel() for p in model.parameters())
    return {"infer": len(x) / infer_s, "train": len(x) / train_s, "params": int(params)}


def _keras_rates(name: str, settings: Settings) -> dict:
    import keras
    import numpy as np

    import modelzoo
    from benchmarks.common import random_labels

    keras.utils.set_random_seed(0)
    shape = (settings.image_size, settings.image_size, 3)
    model = modelzoo.create_model(name, num_classes=1000, input_shape=shape)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    y = random_labels(settings.batch_size, 1000)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
    infer_s = _timed(lambda: model.predict_on_batch(x), settings)
    train_s = _timed(lambda: model.train_on_batch(x, y), settings)
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # as torch counts them
    return {"infer": len(x) / infer_s, "train": len(x) / train_s, "params": params}


def probe(side: str, name: str, mode: str) -> dict:
    """Best inference and training samples/s of ``name`` on ``side`` at ``mode``'s sizes."""
    from benchmarks.common import settings_for

    settings = settings_for(mode, "cpu")
    if SIDES[side][0] == "torch":
        return _torch_rates(name, settings)
    return _keras_rates(name, settings)


def _row(name: str, best: dict) -> dict:
    """One model's table row: each side's rates, and each zoo side's ratio to timm."""
    row = {"model": name, "timm_model": TIMM[name]}
    row.update({"zoo_params": best["tensorflow"]["params"], "timm_params": best["timm"]["params"]})
    for side in SIDES:
        for kind in ("infer", "train"):
            row[f"{side}_{kind}"] = best[side][kind]
            if side != "timm":
                row[f"{side}_{kind}_ratio"] = best[side][kind] / best["timm"][kind]
    return row


def bench_peers(settings: Settings, mode: str, log=print, measure=in_fresh_process) -> list[dict]:
    """Every model of ``settings.peers`` on every side, ``settings.peer_rounds`` alternating rounds
    of fresh processes; ``measure`` runs one probe (a test replaces it)."""
    from recipes.runtime import native

    capped = {native.ISA_VARIABLE: native.BELOW_AVX512} if native.avx512() else {}
    rows = []
    for name in settings.peers:
        best = {side: {"infer": 0.0, "train": 0.0} for side in SIDES}
        for r in range(settings.peer_rounds):
            for side in SIDES if r % 2 == 0 else tuple(SIDES)[::-1]:
                env = {**(capped if side == "tensorflow" else {}), **SIDES[side][1]}
                rates = measure(probe, (side, name, mode), **env)
                kept = {k: max(best[side][k], rates[k]) for k in ("infer", "train")}
                best[side] = {**rates, **kept}
        rows.append(_row(name, best))
        log(
            f"peers {name}: zoo on TensorFlow / timm: inference {rows[-1]['tensorflow_infer_ratio']:.2f}, "
            f"training {rows[-1]['tensorflow_train_ratio']:.2f}"
        )
    return rows
