"""A pretraining corpus held in memory and streamed: memory, resume wait, streaming ratio."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.common import Settings, fit_rate, images_per_s, in_fresh_process, interleaved


def write_corpus(root: Path, megabytes: float, files: int) -> Path:
    """``files`` .txt files of about ``megabytes`` MB in all: the stdlib corpus, one document a
    line, repeated."""
    from recipes.data.corpus import stdlib_corpus

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

    from recipes import config as config_lib
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
    try:
        start = time.perf_counter()
        task = MaskedLM(cfg)
        steps = task.prepare(None, run_dir)
        row = {
            "prepare_s": time.perf_counter() - start,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "train_sequences": task.n_train,
        }
        return {**row, **_timed(task, cfg, run_dir, steps, seconds, repeats)} if timed else row
    finally:  # run in the caller's process in tiny mode: nothing left behind
        shutil.rmtree(run_dir, ignore_errors=True)


def _timed(task, cfg, run_dir: Path, steps: int, seconds: float, repeats: int) -> dict:
    """A prepared masked-LM task's waits for its first batch (at the start and at 90%), the
    pipeline's sequences/s, and training steps/s streamed against one cached batch."""
    import tensorflow as tf

    from recipes.runtime.backend import Runtime

    row = {}
    for at, key in ((0, "first_batch_s"), (int(0.9 * steps), "first_batch_at_90pct_s")):
        start = time.perf_counter()
        next(iter(task.batches_from(at)))
        row[key] = time.perf_counter() - start
    n = min(steps - 1, 50)
    row["sequences_per_s"] = max(
        images_per_s(task.batches_from(0).map(lambda x, t, w: (x["token_ids"],)), n, 2, 1)
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
                probe = in_fresh_process(corpus_probe, args) if settings.corpus_fresh else corpus_probe(*args)
                row["peak_rss_gb_full" if mb == sizes[-1] else "peak_rss_gb_quarter"] = probe.pop(
                    "peak_rss_gb"
                )
                row.update(probe if mb == sizes[-1] else {})
            row["megabytes"] = sizes[-1]
            log(f"  corpus {row['corpus']}: done")
            rows.append(row)
    return rows


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
