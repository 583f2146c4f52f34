"""Streamed image sets (a folder, TFRecords, a tf.data service): decode rate, streaming ratio, resume wait."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import Settings, fit_rate, images_per_s, interleaved


def _stream_sources(root: Path, settings: Settings, log=print) -> dict:
    """The generated set as a streamed folder, as TFRecords, and the TFRecords through a local
    tf.data service of one and of two workers: name -> (Data, ``through_service``'s serve)."""
    from recipes.data import service, sources, writer

    classes, per_class, size = settings.stream_set
    log(f"  streaming: writing {classes * per_class:,} JPEGs of {size}x{size} in {classes} class folders")
    folder = writer.write_synthetic_folder(root / "folder", classes=classes, per_class=per_class, size=size)
    writer.write_records(str(folder), root / "tfrecords", shards=16)
    plain = service.through_service(None)
    tfrec = sources.load("tfrecord", path=str(root / "tfrecords"))
    return {
        "folder": (sources.load("folder", path=str(folder), streaming=True), plain),
        "tfrecord": (tfrec, plain),
        "tfrecord, tf.data service": (tfrec, service.through_service("local")),
        "tfrecord, tf.data service x2": (tfrec, service.through_service("local", 2)),
    }


def bench_streaming(settings: Settings, log=print) -> list[dict]:
    """Per source: decode images/s (1 and 2 cores), the model's streaming ratio, resume wait."""
    import tempfile

    import keras

    import modelzoo
    from recipes.data import preprocess

    classes, _, size = settings.stream_set
    pre = preprocess.Preprocess(image_size=(size, size), channels=3, crop=True, flip=True)
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
            rows.append(_source_row(name, data, service, model, kw, settings))
            log(f"  streaming {name}: done")
    return rows


def _source_row(name: str, data, service, model, kw: dict, settings: Settings) -> dict:
    """One source's row: decode rates, the model's streaming ratio, the first batch's waits."""
    import tensorflow as tf

    from recipes.data import pipeline

    steps = pipeline.steps_per_epoch(len(data.train), settings.stream_batch)

    def batches(start=0):
        return service(
            lambda shard: pipeline.train_batches(data.train, start_step=start, batch_shard=shard, **kw)
        )

    decode = {k: images_per_s(batches(), min(steps, 40), k, settings.repeats) for k in (1, 2)}
    real = batches()
    feeds = {"stream": real, "cached": tf.data.Dataset.from_tensors(next(iter(real))).repeat()}
    fit_rate(model, feeds, "stream", 2), fit_rate(model, feeds, "cached", 2)
    # longer than the others: streams vary
    n = max(3, min(steps - 3, round(2 * settings.pipeline_seconds * fit_rate(model, feeds, "cached", 3))))
    rates = interleaved(lambda feed: fit_rate(model, feeds, feed, n), ("stream", "cached"), settings.repeats)
    waits = {}
    for at in (0, int(0.9 * steps)):
        start = time.perf_counter()
        next(iter(batches(at)))
        waits[at] = time.perf_counter() - start
    size = kw["pre"].image_size[0]
    return {
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


STREAM_FORMAT = {
    "decode_images_per_s_1_core": ".0f",
    "decode_images_per_s_2_cores": ".0f",
    "stream_steps_per_s": ".2f",
    "cached_steps_per_s": ".2f",
    "streaming_ratio": ".2f",
    "first_batch_s": ".2f",
    "first_batch_at_90pct_s": ".2f",
}
