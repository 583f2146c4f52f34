"""A split as ``tf.data`` batches that keep a model fed, resumable at any step.

In memory, the training order is a seeded permutation per epoch, drawn in the graph; a run
resumed mid-epoch skips exactly the batches it has seen (on indices, before any image work).
Streamed (``records.Records``), each input pipeline reads a fixed share of the files (by file,
as TF Model Garden shards, when there are at least as many files as pipelines; otherwise by
element, with a warning); its epochs follow one another as one stream cut into batches, and a
resume opens the epoch holding its step and skips the records before it (read, not decoded).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes.data.base import DataError, Split
from recipes.data.preprocess import Preprocess, augment_batch, example_seed, features, prepare, prepare_train
from recipes.data.records import Records


def epoch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``n`` rows for ``epoch`` (NumPy; the training pipelines draw theirs
    in the graph, ``batch_rows``)."""
    return np.random.RandomState([seed, epoch]).permutation(n)


RESIDENT_BYTES = 2**30  # preprocessed training images up to this size are computed once and kept


def train_batches(
    split: Split,
    *,
    batch_size: int,
    epochs: int,
    start_step: int = 0,
    seed: int = 0,
    pre: Preprocess = Preprocess(),
    num_classes: int | None = None,
    label_fn=None,
    class_weights=None,
    replicas: tuple[int, list[int]] | None = None,
    batch_shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Every training batch of the run, epoch after epoch, starting at global step ``start_step``.
    With ``class_weights`` (one per class), each batch also carries per-example weights.

    ``replicas`` (number, this input pipeline's ids): those replicas' shares of each global batch in
    turn (as ``distribute_datasets_from_function`` deals them), read and augmented as in the whole.
    ``batch_shard`` (n, i): only batches i, i + n, ... of those (a tf.data service worker's share).

    Each epoch is a seeded permutation; partial last batches are dropped so every epoch has the
    same number of steps and a replica never gets an empty batch. Skipping happens on indices,
    before any image work, so resuming costs nothing.
    """
    batch_work = dict(
        seed=seed, pre=pre, num_classes=num_classes, label_fn=label_fn, class_weights=class_weights
    )
    if split.streamed:  # record files (TFRecord, TFDS)
        return record_batches(
            split,
            batch_size=batch_size,
            epochs=epochs,
            start_step=start_step,
            replicas=replicas,
            batch_shard=batch_shard,
            **batch_work,
        )
    indices, per = batch_rows(len(split), batch_size, epochs, start_step, seed, replicas)
    indices = indices.shard(*batch_shard) if batch_shard else indices
    finish = batch_finisher(batch_size=batch_size, **batch_work)
    paper_crop = pre.crop and pre.crop_mode != "pad"  # crops of the ImageNet papers: per image
    resident = None if paper_crop else _resident(split.x, pre)
    if resident is None:
        return _batches_image_by_image(indices, per, split, pre, seed, finish)
    return _batches_from_resident(indices, resident, tf.constant(split.y), finish)


def _batches_from_resident(indices, resident, y, finish) -> tf.data.Dataset:
    """One map per batch of images prepared once (decode, resize, channels: ``_resident``, when
    the result fits in ``RESIDENT_BYTES``): a step is a gather and a vectorised augmentation."""
    return indices.map(
        lambda i, *at: finish(tf.gather(resident, i), tf.gather(y, i), *at),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def _batches_image_by_image(indices, per, split, pre, seed, finish) -> tf.data.Dataset:
    """Read (streamed files), decode and resize each image in parallel, then the batch-level work."""
    x, y = tf.constant(split.x), tf.constant(split.y)
    images = indices.map(
        lambda i, step, first: (i, tf.fill([per], step), first + tf.range(per, dtype=tf.int64))
    ).unbatch()
    images = images.map(
        lambda i, step, row: prepare_train(_read(tf.gather(x, i), split), pre, example_seed(seed, step, row)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = tf.data.Dataset.zip(images.batch(per), indices)
    return ds.map(
        lambda im, idx: finish(im, tf.gather(y, idx[0]), *idx[1:]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)


def batch_finisher(*, seed, batch_size, pre, num_classes=None, label_fn=None, class_weights=None):
    """The batch-level work of a training batch (images, labels) at global ``step``, rows
    ``first`` on of the global batch: augmentation drawn for the whole global batch, features,
    one-hot labels and, with ``class_weights``, per-example weights."""
    weights = None if class_weights is None else tf.constant(np.asarray(class_weights, "float32"))

    def finish(images, labels, step, first):
        images = augment_batch(
            images, tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)]), pre, batch_size, first
        )
        out = (features(images, pre), encode_label(labels, num_classes, label_fn))
        if weights is None:
            return out
        w = tf.gather(weights, labels)
        return (*out, label_fn(w) if label_fn else w)

    return finish


def replica_shares(batch_size: int, replicas=None) -> tuple[int, list[int], int]:
    """(replicas in all, this pipeline's replica ids, examples per replica) of a global batch."""
    num_replicas, ids = replicas or (1, [0])
    if batch_size % num_replicas:
        raise DataError(f"batch_size {batch_size} does not split evenly over {num_replicas} replicas.")
    return num_replicas, list(ids), batch_size // num_replicas


def batch_rows(
    n: int, batch_size: int, epochs: int, start_step: int, seed: int, replicas=None
) -> tf.data.Dataset:
    """(example indices of a batch, its global step, its first row in the global batch) from
    ``start_step`` on; with ``replicas`` (number, ids), each global batch's shares for those ids,
    one after another. One epoch's permutation at a time: memory does not grow with epochs x n."""
    steps = steps_per_epoch(n, batch_size)
    num_replicas, ids, per = replica_shares(batch_size, replicas)
    local = len(ids)

    def one_epoch(epoch):  # a graph, not a Python call: a tf.data service worker can run it
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        rows = tf.reshape(
            tf.gather(tf.reshape(order[: steps * batch_size], [steps, num_replicas, per]), ids, axis=1),
            [-1, per],
        )
        step_ids = epoch * steps + tf.repeat(tf.range(steps, dtype=tf.int64), local)
        firsts = tf.tile(tf.constant(np.asarray(ids, "int64") * per), [steps])
        return tf.data.Dataset.from_tensor_slices((rows, step_ids, firsts))

    first_epoch, skip = divmod(start_step, steps)
    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch).skip(skip * local)
    return ds.apply(tf.data.experimental.assert_cardinality((epochs * steps - start_step) * local)), per


def _read(item, split: Split):
    return tf.io.read_file(item) if split.files else item


def _resident(x: np.ndarray, pre: Preprocess):
    """The whole split preprocessed once, as a tensor, if it fits; else None."""
    if x.dtype == object:  # encoded images or text
        return None
    shape = (*pre.image_size, pre.channels or x.shape[-1]) if pre.image_size and x.ndim == 4 else x.shape[1:]
    if len(x) * int(np.prod(shape)) * 4 > RESIDENT_BYTES:
        return None
    return (
        prepare(tf.constant(x), pre)
        if x.ndim == 4
        else tf.constant(x, dtype=tf.float32 if x.dtype == np.uint8 else x.dtype)
    )


def eval_batches(
    split: Split, *, batch_size: int, pre: Preprocess = Preprocess(), num_classes=None, label_fn=None
):
    """Validation/test batches in a fixed order, preprocessed once and cached (streamed files are
    read again each time: a cache would hold the whole split); unweighted (class weights shape
    training only, so validation loss stays comparable across settings)."""
    if split.streamed:
        return eval_records(split, batch_size=batch_size, pre=pre, num_classes=num_classes, label_fn=label_fn)
    pre = dataclasses.replace(pre, crop=False, flip=False)
    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    ds = ds.map(
        lambda a, b: (
            features(prepare(_read(a, split), pre, evaluation=True), pre),
            encode_label(b, num_classes, label_fn),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return (ds if split.files else ds.cache()).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def encode_label(y, num_classes, label_fn):
    if num_classes is not None:
        y = tf.one_hot(y, num_classes)
    return label_fn(y) if label_fn else y


def steps_per_epoch(n: int, batch_size: int) -> int:
    steps = n // batch_size
    if steps == 0:
        raise DataError(f"batch_size {batch_size} is larger than the training set ({n} examples).")
    return steps


def record_batches(
    split: Records, *, batch_size, epochs, start_step=0, seed=0, replicas=None, batch_shard=None, **options
):
    """Every training batch of the run from ``start_step`` on, as ``data.train_batches`` gives
    for in-memory splits (same ``replicas``, ``batch_shard`` and ``options``), read from the
    record files."""
    pre, num_classes = options["pre"], options.get("num_classes")
    finisher = batch_finisher(seed=seed, batch_size=batch_size, **options)

    def prepare(example, step, row):
        return prepare_train(example[0], pre, example_seed(seed, step, row)), _checked(
            example[1], num_classes
        )

    return stream_batches(
        split,
        batch_size=batch_size,
        epochs=epochs,
        start_step=start_step,
        seed=seed,
        replicas=replicas,
        batch_shard=batch_shard,
        prepare=prepare,
        finish=lambda batch, step, first: finisher(*batch, step, first),
    )


def stream_batches(
    split: Records, *, batch_size, epochs, start_step, seed, replicas, batch_shard, prepare, finish
):
    """The batches of a streamed split from ``start_step`` on, for any task: each example through
    ``prepare(example, step, row)`` (its global step and row in the global batch; None: as read), each batch of
    this pipeline's ``per`` rows through ``finish(batch, step, first)``. ``replicas`` and
    ``batch_shard`` as in ``data.train_batches``."""
    num_replicas, ids, per = replica_shares(batch_size, replicas)
    local = len(ids)
    pipelines, index = num_replicas // local, ids[0] // local
    share = split.share(pipelines, index)
    if share < per:
        raise DataError(
            f"input pipeline {index} of {pipelines} reads {share} examples of {split.name!r}, fewer than "
            f"one batch ({per})."
        )
    _say_sharding(split, pipelines, index, share)
    total = epochs * steps_per_epoch(len(split), batch_size)
    first_epoch, offset = divmod(start_step * local * per, share)
    last_epoch = -(-(total * local * per) // share)
    ds = _concatenated([split.epoch(e, seed, pipelines, index) for e in range(first_epoch, last_epoch)])
    starts = tf.constant(np.asarray(ids, "int64") * per)

    def where(k):  # the k-th example this pipeline gives from start_step on: its global step and row
        batch = k // per
        return start_step + batch // local, tf.gather(starts, batch % local) + k % per

    batches = (total - start_step) * local
    ds = ds.skip(offset).take(batches * per).enumerate()
    shards, shard = batch_shard or (1, 0)
    if shards > 1:  # every shards-th batch: the other examples are read, never prepared
        ds = ds.filter(lambda k, _: (k // per) % shards == shard)
    if prepare is None:
        ds = ds.map(lambda k, example: example)
    else:
        ds = ds.map(
            lambda k, example: prepare(example, *where(k)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    ds = ds.batch(per, drop_remainder=True).apply(
        tf.data.experimental.assert_cardinality(len(range(shard, batches, shards)))
    )
    ds = tf.data.Dataset.zip(tf.data.Dataset.range(shard, batches, shards), ds)

    def at(k, batch):
        return finish(batch, start_step + k // local, tf.gather(starts, k % local))

    return ds.map(at, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def _concatenated(parts):
    ds = parts[0]
    for more in parts[1:]:
        ds = ds.concatenate(more)
    return ds


def _checked(label, num_classes):
    """A label read from a file, with an error naming it when it is outside [0, num_classes): never a
    silent all-zero one-hot (TFDS marks unlabelled examples -1)."""
    if num_classes is None:
        return label
    ok = tf.logical_and(label >= 0, label < num_classes)
    with tf.control_dependencies(
        [tf.debugging.Assert(ok, ["a record's label is outside [0, num_classes):", label, num_classes])]
    ):
        return tf.identity(label)


def _say_sharding(split: Records, pipelines: int, index: int, share: int) -> None:
    """Which files this input pipeline reads (by file), or a warning that it reads them all."""
    if pipelines > 1 and split.by_file(pipelines):
        mine = split.files[index::pipelines]
        print(
            f"input pipeline {index} of {pipelines} reads {len(mine)} of {len(split.files)} files of {split.name!r} "
            f"({share} examples an epoch): {', '.join(Path(f).name for f in mine[:8])}"
            + (", ..." if len(mine) > 8 else "")
        )
    elif pipelines > 1:
        warnings.warn(
            f"{split.name!r} has {len(split.files)} file(s) for {pipelines} input pipelines: each reads every file "
            "and keeps every n-th example (by element); write more shards to shard by file.",
            stacklevel=3,
        )


def eval_records(split: Records, *, batch_size, pre, num_classes=None, label_fn=None):
    """Validation/test batches read in file order (no cache: the split may not fit)."""
    pre = dataclasses.replace(pre, crop=False, flip=False)

    def example(x, y):
        return features(prepare(x, pre, evaluation=True), pre), encode_label(
            _checked(y, num_classes), num_classes, label_fn
        )

    ds = split.in_order().map(example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(split)))  # Keras knows where an evaluation ends
    options = tf.data.Options()  # under a strategy, workers split the examples (a split may be one file)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)
