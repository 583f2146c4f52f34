"""What every benchmark section shares: the settings of each mode, the machine, the interleaved
A/B timing, fresh-process probes and the Markdown table."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

# zoo models timed against the keras.applications model of the same architecture (the constructor
# and arguments its ImageNet weights convert from: modelzoo.pretrained.IMAGENET); the ViT against
# keras-hub's ViTImageClassifier on a ViTBackbone of the same size (keras.applications has no ViT)
PAIRS = (
    "vgg16",
    "resnet50",
    "densenet121",
    "mobilenet_v2",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "convnext_tiny",
    "inception_v3",
    "vit_base_patch16_224",
)
# zoo BERT -> keras-hub's classifier on a BertBackbone of the same size (2 classes, random tokens)
TEXT_PAIRS = ("bert_small", "bert_base")


# recipes whose real data pipeline is timed against a cached batch
PIPELINE_RECIPES = ("lenet5", "alexnet", "resnet18")


@dataclasses.dataclass(frozen=True)
class Settings:
    """One benchmark mode: sizes, repeats and compile settings."""

    batch_size: int
    image_size: int
    repeats: int  # interleaved rounds (noise only ever slows a step, so the fastest is reported)
    steps: int  # steps per round, each timed
    matmul_size: int
    precision: str = "float32"
    jit_compile: bool = False
    pairs: tuple = tuple(PAIRS)
    text_pairs: tuple = TEXT_PAIRS
    text_batch_size: int = 8
    sequence_length: int = 128
    pipeline: tuple = PIPELINE_RECIPES
    pipeline_seconds: float = 4.0  # each timed fit runs about this long (steps chosen from a warm-up)
    # streaming: a generated ImageNet-layout set (classes x per class JPEGs of side stream_size)
    stream_set: tuple = (100, 200, 64)
    stream_model: str = "resnet18"
    stream_batch: int = 64
    # corpus: a pretraining corpus of real prose (the stdlib corpus repeated) of these MB in this many
    # .txt files, held in memory and streamed; memory measured at it and at a quarter of it
    corpus_mb: float = 32.0
    corpus_files: int = 8
    corpus_model: str = "bert_tiny"
    corpus_batch: int = 32
    corpus_vocabulary: int = 2000  # WordPiece pieces learned from the corpus (10 s at 2000 on 0.4 MB here)
    # each corpus probe in a fresh process (its own peak memory); tiny mode runs them in its own,
    # where the memory columns mean nothing but the table's shape is checked (4 processes, 55 s)
    corpus_fresh: bool = True
    # sharding: (model, model-parallel devices) built on that many simulated JAX CPU devices
    sharded: tuple = (("bert_base", 4), ("bert_large", 8), ("gpt2_small", 4), ("vgg16", 4))
    # deploy: zoo models exported and served (recipes.export) at these batch sizes
    deploy: tuple = ("resnet50", "mobilenet_v2", "bert_small", "lenet5")
    deploy_batches: tuple = (1, 32)
    # isa: models timed with oneDNN's full ISA and capped (recipes/runtime/native.py), fresh processes
    isa_models: tuple = ("resnet50", "mobilenet_v2", "densenet121", "vgg16")
    isa_rounds: int = 2
    # peers: zoo models beside timm on PyTorch (benchmarks/peers.py), fresh processes, alternating
    peers: tuple = ("resnet50", "vgg16", "densenet121", "mobilenet_v2", "efficientnet_b0")
    peer_rounds: int = 2
    # training: a recipe (jit_compile and steps_per_execution auto) against a plain model.fit, these
    # epochs, alternating rounds
    training: tuple = ("alexnet", "resnet18", "lenet5")
    training_epochs: int = 3
    training_rounds: int = 2


# for tests: does the harness run and make well-formed tables
TINY = Settings(
    batch_size=2,
    image_size=32,
    repeats=1,
    steps=1,
    matmul_size=256,
    pairs=("resnet50",),
    text_pairs=("bert_tiny",),
    text_batch_size=2,
    sequence_length=16,
    pipeline=("lenet5",),
    pipeline_seconds=0.5,
    stream_set=(3, 24, 32),
    stream_model="lenet5",
    stream_batch=8,
    corpus_mb=0.4,
    corpus_files=2,
    corpus_batch=8,
    corpus_vocabulary=200,
    corpus_fresh=False,
    sharded=(("bert_tiny", 4),),
    deploy=("lenet5",),
    deploy_batches=(2,),
    isa_models=(),  # two fresh processes: the table's shape is checked without them (test_benchmarks)
    isa_rounds=1,
    peers=(),  # five fresh processes a model: the table's shape is checked without them
    peer_rounds=1,
    training=("lenet5",),
    training_epochs=1,
    training_rounds=1,
)


def settings_for(mode: str, accelerator: str) -> Settings:
    if mode == "tiny":
        return TINY
    if mode == "quick":
        return Settings(
            batch_size=8,
            image_size=96,
            repeats=4,
            steps=3,
            matmul_size=2048,
            pipeline_seconds=3.0,
            text_batch_size=4,
            sequence_length=128,
        )
    if accelerator == "cpu":
        return Settings(batch_size=16, image_size=224, repeats=5, steps=5, matmul_size=4096)
    precision = "mixed_bfloat16" if accelerator == "tpu" else "mixed_float16"
    return Settings(
        batch_size=64,
        image_size=224,
        repeats=5,
        steps=20,
        matmul_size=8192,
        precision=precision,
        jit_compile=True,
        pipeline_seconds=10.0,
        text_batch_size=32,
        sequence_length=512,
    )


def accelerator() -> str:
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "tpu"
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def machine() -> dict:
    """What the numbers were measured on."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append(details.get("device_name", gpu.name))
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": ", ".join(gpus) or "none",
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _best_seconds(fn, repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def matmul_peak(n: int, repeats: int = 5, dtype: str = "float32") -> float:
    """FLOP/s of the best square float32 matrix multiply up to ``n`` x ``n``: the machine's practical
    peak (on CPU a smaller matrix that stays in cache can beat a larger one, so several sizes run)."""
    sizes = sorted({max(256, n // 4), max(256, n // 2), n})
    return max(_matmul_flops(size, repeats, dtype) for size in sizes)


def _matmul_flops(n: int, repeats: int, dtype: str) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=dtype)
    b = tf.random.normal((n, n), dtype=dtype)
    mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    mm().numpy()

    def once():
        start = time.perf_counter()
        mm().numpy()
        return time.perf_counter() - start

    return 2 * n**3 / _best_seconds(once, repeats)


def random_labels(n: int, classes: int):
    import keras
    import numpy as np

    return keras.utils.to_categorical(np.random.default_rng(0).integers(0, classes, n), classes)


def peak_memory_mb():
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    info = tf.config.experimental.get_memory_info("GPU:0")
    tf.config.experimental.reset_memory_stats("GPU:0")
    return info["peak"] / 2**20


def images_per_s(ds, batches: int, threads: int, repeats: int) -> float:
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)

    def once():
        it = iter(ds)
        next(it)  # not timed: start-up (a shuffle buffer filling)
        start, n = time.perf_counter(), 0
        for _ in range(batches):
            n += int(next(it)[0].shape[0])
        return n / (time.perf_counter() - start)

    return max(once() for _ in range(repeats))


class _StepClock:
    """Steady-state steps/s of one ``fit``: the steps after the first ``warm`` (start-up: a new
    iterator filling its shuffle buffer, a first trace) are timed."""

    def __init__(self, warm: int):
        import keras

        clock = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.times.append(time.perf_counter())

        self.warm, self.times, self.callback = warm, [], Callback()

    def steps_per_s(self) -> float:
        timed = self.times[self.warm :]
        return (len(timed) - 1) / (timed[-1] - timed[0])


def interleaved(measure, sides: tuple, repeats: int) -> dict:
    """``measure(side)`` for every side in each of ``repeats`` rounds, the order reversed every
    other round (the side that goes first meets a colder machine); the results by side. Every
    A/B comparison in the benchmark is timed this way."""
    results = {side: [] for side in sides}
    for r in range(repeats):
        for side in sides if r % 2 == 0 else sides[::-1]:
            results[side].append(measure(side))
    return results


def fit_rate(model, feeds: dict, feed: str, steps: int, warm: int = 2) -> float:
    """Steady-state steps/s of ``model.fit`` on ``feeds[feed]`` for ``warm + steps`` steps."""
    clock = _StepClock(warm)
    model.fit(
        feeds[feed],
        steps_per_epoch=warm + steps,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[clock.callback],
    )
    return clock.steps_per_s()


def in_fresh_process(probe, args: tuple, **env) -> dict:
    """``probe(*args)`` (a module-level function returning JSON-able data) run in a new Python
    process with ``env`` added: its own peak memory, or a device count fixed when JAX starts."""
    import json
    import subprocess

    name = probe.__name__
    code = f"import json; from {probe.__module__} import {name}; print(json.dumps({name}(*{args!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    if out.returncode:
        raise RuntimeError(f"{name}{args} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(frame, floatfmt: dict) -> str:
    """A DataFrame as a Markdown table (pandas' own needs ``tabulate``, which we do not depend on)."""
    import numpy as np

    def cell(col, v):
        if v is None or v != v:  # None or NaN
            return "-"
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if col in floatfmt:
            return format(v, floatfmt[col])
        return f"{v:,}" if isinstance(v, int) else str(v)

    from modelzoo.table import markdown_table

    cols = list(frame.columns)
    rows = [[cell(c, row[c]) for c in cols] for _, row in frame.iterrows()]
    return markdown_table(cols, rows, right=set(floatfmt))
