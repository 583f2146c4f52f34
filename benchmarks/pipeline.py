"""A recipe's real tf.data pipeline against the same model fed one cached batch."""

from __future__ import annotations

import time

from benchmarks.common import Settings, interleaved


def _model_and_feeds(recipe: str, settings: Settings):
    """The recipe's config, data, preprocessing, compiled model and its two feeds: the real
    pipeline and one cached batch of it (each fit starts its own iterator, both sides alike)."""
    import keras
    import tensorflow as tf

    import modelzoo
    from recipes import config as config_lib
    from recipes import trainer
    from recipes.data import pipeline

    keras.backend.clear_session()
    cfg = config_lib.resolve(recipe)
    data, pre = trainer.load_data(cfg)
    model = modelzoo.create_model(
        cfg.model, num_classes=data.num_classes, **trainer.model_shape_kwargs(data, pre)
    )
    outputs = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=["categorical_crossentropy"] * outputs,
        jit_compile=settings.jit_compile,
    )
    kw = trainer.batch_options(data, pre, outputs)
    real = pipeline.train_batches(data.train, batch_size=cfg.batch_size, epochs=1, seed=cfg.seed, **kw)
    feeds = {"pipeline": real.repeat(), "cached": tf.data.Dataset.from_tensors(next(iter(real))).repeat()}
    return cfg, data, pre, model, feeds


def bench_pipeline(recipe: str, settings: Settings, log=print) -> dict:
    """Steps/s of a recipe's real training pipeline against the same model on one cached batch."""
    from recipes.data.preprocessor import model_input_shape

    cfg, data, pre, model, feeds = _model_and_feeds(recipe, settings)

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
        "input": "x".join(str(d) for d in model_input_shape(data, pre)),
        "batch_size": cfg.batch_size,
        "steps": steps,
        "augment": bool(pre.crop or pre.flip),
        "pipeline_steps_per_s": real_sps,
        "cached_steps_per_s": cached_sps,
        "pipeline_ratio": real_sps / cached_sps,
    }


PIPE_FORMAT = {"pipeline_steps_per_s": ".2f", "cached_steps_per_s": ".2f", "pipeline_ratio": ".2f"}
