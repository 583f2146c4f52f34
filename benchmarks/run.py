"""Throughput of zoo models against the references a user would otherwise pick, side by side.

``python -m benchmarks.run [--quick | --tiny] [--out DIR]`` (also ``modelzoo bench``) measures, in
one process and with interleaved repeats so that machine noise hits both sides alike (the best
round of each side is kept: on a shared machine, noise only ever makes a round slower):

* each zoo model against its reference with the same architecture (``vgg16`` vs
  ``keras.applications.VGG16``, ``resnet50`` vs ``ResNet50``, ``densenet121`` vs ``DenseNet121``,
  ``mobilenet_v2``, ``efficientnet_b0`` and ``convnext_tiny`` vs theirs;
  ``bert_small`` and ``bert_base`` vs keras-hub's ``BertTextClassifier`` on a ``BertBackbone`` of
  the same size): inference and training-step samples per second at the same batch, input, dtype
  and compile settings, and the ratio zoo / reference;
* hardware efficiency: FLOPs per sample (counted on the built model by ``modelzoo.count_flops``;
  a training step counted as 3x the forward pass) times samples per second, over the peak FLOP/s
  of a large float32 matrix multiply measured in the same run;
* input-pipeline efficiency: steps per second of a recipe's real ``tf.data`` pipeline against the
  same model fed one cached batch (both through ``model.fit``);
* streaming (``streaming.csv``): on a generated set of JPEGs in class folders, streamed from the
  folder, from TFRecords of it and through a local tf.data service: decode images/s on 1 and 2
  cores, the streaming ratio of a model's training (steps/s streamed / steps/s on one cached
  batch), and the seconds a resumed run waits for its first batch at 90% of an epoch;
* corpus (``corpus.csv``): a pretraining corpus held in memory and streamed: the peak memory of
  preparing it at two sizes, the resumed run's wait at 90% of an epoch, and the streaming ratio;
* sharding (``sharding.csv``): parameter memory per device of the model-parallel layouts (JAX,
  simulated devices), beside data parallel's 100%;
* parameters, FLOPs, and peak accelerator memory where TensorFlow reports it.

Results go to ``results.csv`` and ``results.md`` (with the machine: CPU, cores, GPU, versions).
``--quick`` fits in about 10 minutes on 2 CPU cores (small batch and input, few repeats); the full
mode is for a GPU or TPU host, where mixed precision and XLA are on. Figures are printed, never
asserted: absolute times are noise on a shared machine, ratios measured side by side are not.
"""

from __future__ import annotations

import argparse
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
    # sharding: (model, model-parallel devices) built on that many simulated JAX CPU devices
    sharded: tuple = (("bert_base", 4), ("bert_large", 8), ("gpt2_small", 4), ("vgg16", 4))


def settings_for(mode: str, accelerator: str) -> Settings:
    if mode == "tiny":  # for tests: does the harness run and make a well-formed table
        return Settings(
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
            sharded=(("bert_tiny", 4),),
        )
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


class Subject:
    """One model under test on one fixed batch: a compiled inference function and a training step.

    ``flops`` is passed in for references the zoo's counter does not know (both sides of a pair
    count the same architecture, so the zoo model's count serves for both).
    """

    def __init__(
        self, label: str, model, x, y, settings: Settings, flops: int | None = None, from_logits: bool = False
    ):
        import keras
        import tensorflow as tf

        import modelzoo

        self.label, self.model, self.settings, self.x, self.y = label, model, settings, x, y
        self.batch_size = len(y)
        self.flops = modelzoo.count_flops(model)["flops"] if flops is None else flops
        self.params = model.count_params()
        loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=loss,
            metrics=[],
            jit_compile=settings.jit_compile,
        )
        # (metrics=[]: keras-hub's Task.compile would otherwise add its own accuracy metric)
        self._infer = tf.function(lambda x: model(x, training=False), jit_compile=settings.jit_compile)
        self.infer_step()  # compile both before timing
        self.train_step()

    def infer_step(self):
        _first(self._infer(self.x)).numpy()

    def train_step(self):
        self.model.train_on_batch(self.x, self.y)

    def describe_input(self) -> str:
        if isinstance(self.x, dict):
            return f"{self.x['token_ids'].shape[1]} tokens"
        return "x".join(str(d) for d in self.x.shape[1:])

    def time(self, kind: str) -> list[float]:
        """Seconds of each of ``settings.steps`` steps (each step ends with its result on the host)."""
        step = self.infer_step if kind == "infer" else self.train_step
        seconds = []
        for _ in range(self.settings.steps):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        return seconds


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _labels(n: int, classes: int):
    import keras
    import numpy as np

    return keras.utils.to_categorical(np.random.default_rng(0).integers(0, classes, n), classes)


def _build_pair(name: str, settings: Settings):
    import numpy as np

    import modelzoo
    from modelzoo import pretrained

    if name.startswith("bert"):
        return _build_text_pair(name, settings)
    if name.startswith("vit"):
        return _build_vit_pair(name, settings)
    shape = (settings.image_size, settings.image_size, 3)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    y = _labels(settings.batch_size, 1000)
    zoo = modelzoo.create_model(name, num_classes=1000, input_shape=shape)
    constructor = pretrained.reference_constructor(name)
    ref = constructor(weights=None, input_shape=shape, classes=1000)
    return Subject(name, zoo, x, y, settings), Subject(
        f"keras.applications.{constructor.func.__name__}", ref, x, y, settings
    )


def _build_vit_pair(name: str, settings: Settings):
    """A zoo ViT and keras-hub's ``ViTImageClassifier`` of the same size (``hub_vit``), fed the
    same batch."""
    import numpy as np

    import modelzoo

    shape = (settings.image_size, settings.image_size, 3)
    zoo = modelzoo.create_model(name, num_classes=1000, input_shape=shape, classifier_activation=None)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    y = _labels(settings.batch_size, 1000)
    zoo_subject = Subject(name, zoo, x, y, settings, from_logits=True)
    ref_subject = Subject(
        "keras_hub.ViTImageClassifier",
        hub_vit(zoo),
        x,
        y,
        settings,
        flops=zoo_subject.flops,
        from_logits=True,
    )
    return zoo_subject, ref_subject


def hub_vit(zoo):
    """keras-hub's ``ViTImageClassifier`` on a ``ViTBackbone`` read off a zoo ViT: its input, patch,
    depth, heads, width and MLP width (class token, pre-norm blocks, logits on the class token)."""
    import keras_hub

    block = zoo.get_layer("block0_attn")
    backbone = keras_hub.models.ViTBackbone(
        image_shape=tuple(zoo.inputs[0].shape[1:]),
        patch_size=zoo.get_layer("patch_embed").kernel_size[0],
        num_layers=sum(layer.name.endswith("_attn") for layer in zoo.layers),
        num_heads=block.num_heads,
        hidden_dim=block.num_heads * block.key_dim,
        mlp_dim=zoo.get_layer("block0_mlp_fc1").units,
    )
    classes = zoo.get_layer("fc").units
    return keras_hub.models.ViTImageClassifier(backbone, num_classes=classes, preprocessor=None)


def _build_text_pair(name: str, settings: Settings):
    """A zoo BERT classifier and keras-hub's ``BertTextClassifier`` on a ``BertBackbone`` of the same
    size (both: pooled [CLS], dropout 0.1, 2-way logits), fed the same random token batch."""
    import keras_hub
    import numpy as np

    import modelzoo

    vocab, seq, n = 30522, settings.sequence_length, settings.text_batch_size
    zoo = modelzoo.create_model(
        name, num_classes=2, vocabulary_size=vocab, max_sequence_length=seq, classifier_activation=None
    )
    cfg = zoo.get_layer("transformer_layer_0")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab,
        num_layers=sum(layer.name.startswith("transformer_layer_") for layer in zoo.layers),
        num_heads=cfg.num_heads,
        hidden_dim=zoo.get_layer("pooled_dense").units,
        intermediate_dim=cfg.intermediate_dim,
        max_sequence_length=seq,
    )
    ref = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(5, vocab, (n, seq)).astype("int32"),
        "segment_ids": np.zeros((n, seq), "int32"),
        "padding_mask": np.ones((n, seq), "int32"),
    }
    y = _labels(n, 2)
    zoo_subject = Subject(name, zoo, x, y, settings, from_logits=True)
    ref_subject = Subject(
        "keras_hub.BertTextClassifier", ref, x, y, settings, flops=zoo_subject.flops, from_logits=True
    )
    return zoo_subject, ref_subject


def _peak_memory_mb():
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    info = tf.config.experimental.get_memory_info("GPU:0")
    tf.config.experimental.reset_memory_stats("GPU:0")
    return info["peak"] / 2**20


def bench_pair(name: str, settings: Settings, peak: float, log=print) -> list[dict]:
    """Two rows (zoo, reference) for one pair, timed in interleaved rounds."""
    import keras

    keras.backend.clear_session()
    _peak_memory_mb()
    zoo, ref = _build_pair(name, settings)
    memory = _peak_memory_mb()  # both models built and compiled: their joint peak
    # each side's inference steps, then its training steps, in interleaved rounds
    rounds = interleaved(lambda s: {k: s.time(k) for k in ("infer", "train")}, (zoo, ref), settings.repeats)
    log(f"  {name}: {settings.repeats} rounds")
    rows = []
    for subject in (zoo, ref):
        infer = subject.batch_size / min(t for r in rounds[subject] for t in r["infer"])
        train = subject.batch_size / min(t for r in rounds[subject] for t in r["train"])
        rows.append(
            {
                "model": subject.label,
                "pair": name,
                "input": subject.describe_input(),
                "params": subject.params,
                "gflops_per_sample": subject.flops / 1e9,
                "infer_samples_per_s": infer,
                "train_samples_per_s": train,
                "infer_peak_share": subject.flops * infer / peak,
                "train_peak_share": 3 * subject.flops * train / peak,
                "peak_memory_mb_both": memory,
            }
        )
    for key in ("infer_samples_per_s", "train_samples_per_s"):
        ratio = rows[0][key] / rows[1][key]
        rows[0][key.replace("samples_per_s", "ratio")] = ratio
        rows[1][key.replace("samples_per_s", "ratio")] = 1.0
    return rows


def bench_pipeline(recipe: str, settings: Settings, log=print) -> dict:
    """Steps/s of a recipe's real training pipeline against the same model on one cached batch."""
    import keras
    import tensorflow as tf

    from recipes import config as config_lib
    from recipes import data as data_lib
    from recipes import trainer

    keras.backend.clear_session()
    cfg = config_lib.resolve(recipe)
    data, pre = trainer.load_data(cfg)
    model = __import__("modelzoo").create_model(
        cfg.model, num_classes=data.num_classes, **trainer.model_shape_kwargs(data, pre)
    )
    outputs = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=["categorical_crossentropy"] * outputs,
        jit_compile=settings.jit_compile,
    )
    kw = trainer.batch_options(data, pre, outputs)
    real = data_lib.train_batches(data.train, batch_size=cfg.batch_size, epochs=1, seed=cfg.seed, **kw)
    cached = tf.data.Dataset.from_tensors(next(iter(real))).repeat()
    feeds = {
        "pipeline": real.repeat(),
        "cached": cached,
    }  # each fit starts its own iterator, both sides alike

    def run(feed, steps):
        start = time.perf_counter()
        model.fit(feeds[feed], steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - start

    run("pipeline", 2)  # compile both
    run("cached", 2)
    steps = max(3, min(500, round(settings.pipeline_seconds / (run("cached", 3) / 3))))
    times = interleaved(lambda feed: run(feed, steps), ("pipeline", "cached"), settings.repeats)
    log(f"  pipeline {recipe}: done")
    real_sps = steps / min(times["pipeline"])
    cached_sps = steps / min(times["cached"])
    return {
        "recipe": f"{recipe} on {cfg.dataset}",
        "input": "x".join(str(d) for d in trainer.model_input_shape(data, pre)),
        "batch_size": cfg.batch_size,
        "steps": steps,
        "augment": bool(pre.crop or pre.flip),
        "pipeline_steps_per_s": real_sps,
        "cached_steps_per_s": cached_sps,
        "pipeline_ratio": real_sps / cached_sps,
    }


def _stream_sources(root: Path, settings: Settings, log=print) -> dict:
    """The generated set as a streamed folder, as TFRecords, and the TFRecords through a local
    tf.data service of one and of two workers: name -> (Data, ``through_service``'s serve)."""
    from recipes import data as data_lib
    from recipes import records, streams

    classes, per_class, size = settings.stream_set
    log(f"  streaming: writing {classes * per_class:,} JPEGs of {size}x{size} in {classes} class folders")
    folder = records.write_synthetic_folder(root / "folder", classes=classes, per_class=per_class, size=size)
    records.write_records(str(folder), root / "tfrecords", shards=16)
    plain = streams.through_service(None)
    tfrec = data_lib.load("tfrecord", path=str(root / "tfrecords"))
    return {
        "folder": (data_lib.load("folder", path=str(folder), streaming=True), plain),
        "tfrecord": (tfrec, plain),
        "tfrecord, tf.data service": (tfrec, streams.through_service("local")),
        "tfrecord, tf.data service x2": (tfrec, streams.through_service("local", 2)),
    }


def _images_per_s(ds, batches: int, threads: int, repeats: int) -> float:
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


def bench_streaming(settings: Settings, log=print) -> list[dict]:
    """Per source: decode images/s (1 and 2 cores), the model's streaming ratio, resume wait."""
    import tempfile

    import keras
    import tensorflow as tf

    import modelzoo
    from recipes import data as data_lib

    classes, _, size = settings.stream_set
    pre = data_lib.Preprocess(image_size=(size, size), channels=3, crop=True, flip=True)
    kw = dict(batch_size=settings.stream_batch, epochs=2, seed=0, pre=pre, num_classes=classes)
    keras.backend.clear_session()
    model = modelzoo.create_model(settings.stream_model, num_classes=classes, input_shape=(size, size, 3))
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="categorical_crossentropy",
        jit_compile=settings.jit_compile,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, service) in _stream_sources(Path(tmp), settings, log).items():
            steps = data_lib.steps_per_epoch(len(data.train), settings.stream_batch)

            def batches(start=0, data=data, service=service):
                return service(
                    lambda shard: data_lib.train_batches(
                        data.train, start_step=start, batch_shard=shard, **kw
                    )
                )

            decode = {k: _images_per_s(batches(), min(steps, 40), k, settings.repeats) for k in (1, 2)}
            real = batches()
            feeds = {"stream": real, "cached": tf.data.Dataset.from_tensors(next(iter(real))).repeat()}

            fit_rate(model, feeds, "stream", 2), fit_rate(model, feeds, "cached", 2)
            # longer than the others: streams vary
            n = max(
                3, min(steps - 3, round(2 * settings.pipeline_seconds * fit_rate(model, feeds, "cached", 3)))
            )
            rates = interleaved(
                lambda feed, feeds=feeds, n=n: fit_rate(model, feeds, feed, n),
                ("stream", "cached"),
                settings.repeats,
            )
            waits = {}
            for at in (0, int(0.9 * steps)):
                start = time.perf_counter()
                next(iter(batches(at)))
                waits[at] = time.perf_counter() - start
            log(f"  streaming {name}: done")
            rows.append(
                {
                    "source": name,
                    "images": len(data.train),
                    "input": f"{size}x{size}x3",
                    "model": settings.stream_model,
                    "batch_size": settings.stream_batch,
                    "decode_images_per_s_1_core": decode[1],
                    "decode_images_per_s_2_cores": decode[2],
                    "stream_steps_per_s": max(rates["stream"]),
                    "cached_steps_per_s": max(rates["cached"]),
                    "streaming_ratio": max(rates["stream"]) / max(rates["cached"]),
                    "first_batch_s": waits[0],
                    "first_batch_at_90pct_s": waits[int(0.9 * steps)],
                }
            )
    return rows


def in_fresh_process(probe: str, args: tuple, **env) -> dict:
    """``probe(*args)`` (a function of this module, returning JSON-able data) run in a new Python
    process with ``env`` added: its own peak memory, or a device count fixed when JAX starts."""
    import json
    import subprocess

    code = f"import json; from benchmarks.run import {probe}; print(json.dumps({probe}(*{args!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    if out.returncode:
        raise RuntimeError(f"{probe}{args} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_corpus(root: Path, megabytes: float, files: int) -> Path:
    """``files`` .txt files of about ``megabytes`` MB in all: the stdlib corpus, one document a
    line, repeated."""
    from recipes.pretrain import stdlib_corpus

    docs = [t.replace("\n", " ") for t in stdlib_corpus()]
    root.mkdir(parents=True, exist_ok=True)
    per_file, i = megabytes * 2**20 / files, 0
    for f in range(files):
        with open(root / f"part{f:03d}.txt", "w") as out:
            written = 0
            while written < per_file:
                written += out.write(docs[i % len(docs)] + "\n")
                i += 1
    return root


def corpus_probe(
    folder: str,
    streaming: bool,
    timed: bool,
    model: str,
    batch: int,
    seconds: float,
    repeats: int,
    vocabulary: int = 2000,
) -> dict:
    """In a fresh process (``bench_corpus`` runs it): prepare the masked-LM task on ``folder``;
    its peak RSS; with ``timed``, the first batch's wait at the start and at 90% of an epoch,
    sequences/s of the pipeline alone, and the training steps/s streamed and on one cached batch."""
    import resource
    import tempfile

    import tensorflow as tf

    from recipes import config as config_lib
    from recipes.runtime import Runtime
    from recipes.tasks.masked_lm import MaskedLM

    run_dir = Path(tempfile.mkdtemp())
    cfg = config_lib.resolve(
        model,
        overrides={
            "dataset": "text_files",
            "data_path": folder,
            "streaming": streaming,
            "epochs": 1,
            "batch_size": batch,
            "vocabulary_size": vocabulary,
            "run_dir": str(run_dir),
        },
    )
    start = time.perf_counter()
    task = MaskedLM(cfg)
    steps = task.prepare(None, run_dir)
    row = {
        "prepare_s": time.perf_counter() - start,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "train_sequences": task.n_train,
    }
    if not timed:
        return row
    for at, key in ((0, "first_batch_s"), (int(0.9 * steps), "first_batch_at_90pct_s")):
        start = time.perf_counter()
        next(iter(task.batches_from(at)))
        row[key] = time.perf_counter() - start
    n = min(steps - 1, 50)
    row["sequences_per_s"] = max(
        _images_per_s(task.batches_from(0).map(lambda x, t, w: (x["token_ids"],)), n, 2, 1)
        for _ in range(repeats)
    )
    with Runtime.create(cfg) as runtime:
        model = task.model = task.build(runtime, run_dir, steps)
        real = task.batches_from(0)
        feeds = {"stream": real, "cached": tf.data.Dataset.from_tensors(next(iter(real))).repeat()}

        k = max(3, min(steps // 3, round(seconds * fit_rate(model, feeds, "cached", 3))))
        rates = interleaved(lambda feed: fit_rate(model, feeds, feed, k), ("stream", "cached"), repeats)
    row.update(
        stream_steps_per_s=max(rates["stream"]),
        cached_steps_per_s=max(rates["cached"]),
        streaming_ratio=max(rates["stream"]) / max(rates["cached"]),
    )
    return row


def bench_corpus(settings: Settings, log=print) -> list[dict]:
    """The pretraining corpus held in memory and streamed: peak memory of preparing it at a
    quarter of the size and at full size (each in a fresh process), and at full size the resume
    wait, the pipeline's sequences/s and the training's streaming ratio."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = (settings.corpus_mb / 4, settings.corpus_mb)
        folders = {mb: str(write_corpus(Path(tmp) / f"{mb}", mb, settings.corpus_files)) for mb in sizes}
        for streaming in (False, True):
            row = {
                "corpus": "streamed" if streaming else "in memory",
                "files": settings.corpus_files,
                "model": settings.corpus_model,
                "batch_size": settings.corpus_batch,
            }
            for mb in sizes:
                args = (
                    folders[mb],
                    streaming,
                    mb == sizes[-1],
                    settings.corpus_model,
                    settings.corpus_batch,
                    settings.pipeline_seconds,
                    settings.repeats,
                    settings.corpus_vocabulary,
                )
                probe = in_fresh_process("corpus_probe", args)
                row["peak_rss_gb_full" if mb == sizes[-1] else "peak_rss_gb_quarter"] = probe.pop(
                    "peak_rss_gb"
                )
                row.update(probe if mb == sizes[-1] else {})
            row["megabytes"] = sizes[-1]
            log(f"  corpus {row['corpus']}: done")
            rows.append(row)
    return rows


def shard_probe(model: str) -> dict:
    """In a fresh JAX process of N simulated devices (``bench_sharding`` runs it): build ``model``
    under model_parallel on a 1xN mesh (built, not trained) and measure, from the shards, the
    parameter bytes the fullest device holds."""
    import keras

    import modelzoo
    from recipes import sharding

    devices = len(keras.distribution.list_devices())
    dist = sharding.make("model_parallel", model, mesh=f"1x{devices}", batch_size=devices)
    keras.distribution.set_distribution(dist)
    built = modelzoo.create_model(model)
    total, per = 0, [0] * devices
    for v in built.weights:
        total += v.value.nbytes
        for shard in v.value.addressable_shards:
            per[shard.device.id] += shard.data.nbytes
    return {"params_mb": total / 2**20, "device_mb": max(per) / 2**20, "adjusted": sorted(dist.adjusted)}


def bench_sharding(settings: Settings, log=print) -> list[dict]:
    """Parameter memory per device of model-parallel layouts, beside data parallel's (100%)."""
    rows = []
    for model, devices in settings.sharded:
        probe = in_fresh_process(
            "shard_probe", (model,), KERAS_BACKEND="jax", JAX_NUM_CPU_DEVICES=str(devices)
        )
        rows.append(
            {
                "model": model,
                "layout": modelzoo_layout_note(model),
                "mesh": f"1x{devices}",
                "params_mb": probe["params_mb"],
                "device_mb": probe["device_mb"],
                "model_parallel_share": probe["device_mb"] / probe["params_mb"],
                "data_parallel_share": 1.0,
                "split_otherwise": len(probe["adjusted"]),
            }
        )
        log(f"  sharding {model}: done")
    return rows


def modelzoo_layout_note(model: str) -> str:
    import modelzoo

    return modelzoo.get_entry(model).layout_note.split(":")[0].split(" (")[0]


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


PAIR_FORMAT = {
    "gflops_per_sample": ".3f",
    "infer_samples_per_s": ".2f",
    "train_samples_per_s": ".2f",
    "infer_ratio": ".2f",
    "train_ratio": ".2f",
    "infer_peak_share": ".0%",
    "train_peak_share": ".0%",
    "peak_memory_mb_both": ".0f",
}
PIPE_FORMAT = {"pipeline_steps_per_s": ".2f", "cached_steps_per_s": ".2f", "pipeline_ratio": ".2f"}
STREAM_FORMAT = {
    "decode_images_per_s_1_core": ".0f",
    "decode_images_per_s_2_cores": ".0f",
    "stream_steps_per_s": ".2f",
    "cached_steps_per_s": ".2f",
    "streaming_ratio": ".2f",
    "first_batch_s": ".2f",
    "first_batch_at_90pct_s": ".2f",
}
CORPUS_FORMAT = {
    "peak_rss_gb_quarter": ".3f",
    "peak_rss_gb_full": ".3f",
    "prepare_s": ".1f",
    "first_batch_s": ".2f",
    "first_batch_at_90pct_s": ".2f",
    "sequences_per_s": ".0f",
    "stream_steps_per_s": ".2f",
    "cached_steps_per_s": ".2f",
    "streaming_ratio": ".2f",
}
SHARD_FORMAT = {
    "params_mb": ".1f",
    "device_mb": ".1f",
    "model_parallel_share": ".1%",
    "data_parallel_share": ".0%",
}
SECTIONS = ("pairs", "pipeline", "streaming", "corpus", "sharding")


def run(mode: str = "quick", out: str | Path = "benchmarks/results", log=print, sections=SECTIONS) -> dict:
    """Run the measurements of ``mode`` (the ``sections`` asked for); write CSV and Markdown to
    ``out`` (``results.md`` for every section, else ``<sections>.md``); return the tables."""
    import keras
    import pandas as pd

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        from modelzoo.validation import UserError

        raise UserError(f"unknown benchmark section(s) {unknown}; choose from {list(SECTIONS)}.")
    acc = accelerator()
    settings = settings_for(mode, acc)
    info = machine()
    log(f"benchmark mode={mode} on {info['cpu']} ({info['cores']} cores), GPU: {info['gpu']}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result, parts, peak = {"machine": info}, [], None
    if "pairs" in sections:
        keras.mixed_precision.set_global_policy(settings.precision)
        compute_dtype = keras.mixed_precision.dtype_policy().compute_dtype
        peak = result["peak_flops"] = matmul_peak(settings.matmul_size, dtype=compute_dtype)
        log(f"matmul peak ({compute_dtype}, up to {settings.matmul_size}^2): {peak / 1e9:.1f} GFLOP/s")
        names = (*settings.pairs, *settings.text_pairs)
        result["pairs"] = pd.DataFrame(
            [row for name in names for row in bench_pair(name, settings, peak, log)]
        )
        result["pairs"].to_csv(out / "results.csv", index=False)
        parts.append(
            markdown(result["pairs"], PAIR_FORMAT)
            + "\n\nRatios are zoo / reference samples per second, in the "
            "same run. Peak share = FLOPs per sample x samples/s / matmul peak (training counted as 3x the "
            "forward FLOPs)."
        )
    keras.mixed_precision.set_global_policy("float32")  # recipes pick their own precision
    if "pipeline" in sections:
        result["pipeline"] = pd.DataFrame(
            [bench_pipeline(recipe, settings, log) for recipe in settings.pipeline]
        )
        result["pipeline"].to_csv(out / "pipeline.csv", index=False)
        parts.append(
            markdown(result["pipeline"], PIPE_FORMAT)
            + "\n\nPipeline ratio = steps/s with the recipe's tf.data "
            "pipeline / steps/s on one cached batch."
        )
    if "streaming" in sections:
        result["streaming"] = pd.DataFrame(bench_streaming(settings, log))
        result["streaming"].to_csv(out / "streaming.csv", index=False)
        classes, per_class, size = settings.stream_set
        parts.append(
            markdown(result["streaming"], STREAM_FORMAT)
            + f"\n\nStreaming: {classes * per_class:,} generated "
            f"{size}x{size} JPEGs in {classes} class folders (72% train), crop and flip; decode = images/s of the "
            "training pipeline alone on a private pool of 1 or 2 threads; streaming ratio = steps/s streamed / "
            "steps/s on one cached batch; first batch = seconds from building the pipeline to its first batch, "
            "from the start and resumed at 90% of an epoch."
        )
    if "corpus" in sections:
        result["corpus"] = pd.DataFrame(bench_corpus(settings, log))
        result["corpus"].to_csv(out / "corpus.csv", index=False)
        parts.append(
            markdown(result["corpus"], CORPUS_FORMAT) + f"\n\nCorpus: the stdlib corpus repeated to "
            f"{settings.corpus_mb:g} MB in {settings.corpus_files} .txt files, masked-LM pretraining of "
            f"{settings.corpus_model} (128 tokens); peak RSS of a fresh process that prepares the corpus, at a "
            "quarter of the size and at full size (held in memory, it grows with the text; streamed, it does "
            "not); prepare = vocabulary, tokenizing (in memory) or the counting pass (streamed); first batch "
            "at 90% = the resumed run's wait (streamed: the rows before it are re-read and re-tokenized); "
            "streaming ratio = training steps/s / steps/s on one cached batch."
        )
    if "sharding" in sections:
        result["sharding"] = pd.DataFrame(bench_sharding(settings, log))
        result["sharding"].to_csv(out / "sharding.csv", index=False)
        parts.append(
            markdown(result["sharding"], SHARD_FORMAT) + "\n\nSharding: each model built (not trained) under "
            "model_parallel on a 1xN mesh of N simulated JAX CPU devices; device = parameter MB on the fullest "
            "device, measured from the shards; data parallel holds every parameter on every device (100%). "
            "Split otherwise = variables whose laid-out dimension N does not divide, split along another "
            "dimension (BERT's 30,522-token embedding: by its hidden columns)."
        )
    header = (
        f"Measured with `python -m benchmarks.run --mode {mode}"
        + (f" --only {' '.join(sections)}" if tuple(sections) != SECTIONS else "")
        + f"`: images batch {settings.batch_size} at {settings.image_size}x{settings.image_size}x3, text batch "
        f"{settings.text_batch_size} of {settings.sequence_length} tokens, {settings.precision}, XLA "
        f"{'on' if settings.jit_compile else 'off'}, best of {settings.repeats} interleaved rounds of "
        f"{settings.steps} steps.\n"
        f"Machine: {info['cpu']}, {info['cores']} cores, GPU: {info['gpu']}; TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}, Python {info['python']}."
        + (
            f" Matmul peak: {peak / 1e9:.1f} GFLOP/s (best square matmul up to {settings.matmul_size})."
            if peak
            else ""
        )
        + "\n"
    )
    text = header + "\n" + "\n\n".join(parts) + "\n"
    (out / ("results.md" if tuple(sections) == SECTIONS else "-".join(sections) + ".md")).write_text(text)
    log("\n" + text)
    result["markdown"] = text
    return result


def main(argv=None, prog="python -m benchmarks.run") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Zoo vs reference throughput, hardware and pipeline efficiency."
    )
    p.add_argument(
        "--mode",
        choices=("tiny", "quick", "full"),
        default="quick",
        help="quick: ~10 min on 2 CPU cores; full: GPU/TPU host sizes; tiny: a smoke test",
    )
    p.add_argument(
        "--out",
        default="benchmarks/results",
        help="folder for results.csv, pipeline.csv, streaming.csv, results.md",
    )
    p.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these sections"
    )
    args = p.parse_args(argv)
    from recipes.cli import run as run_cli

    return run_cli(prog, run, args.mode, args.out, sections=tuple(args.only))


if __name__ == "__main__":
    sys.exit(main())
