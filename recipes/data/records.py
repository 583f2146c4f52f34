"""Splits read from record files: TFRecord shards of ``tf.train.Example`` (TF Model
Garden's layout) and the files of a prepared TFDS split, for sets that do not fit in memory
(ImageNet's 1.28 million JPEGs).

A ``Records`` split's epoch ``e`` is a function of (seed, e) only: its files in a seeded order,
read interleaved deterministically, through a shuffle buffer seeded by (seed, e). The pipeline
(``pipeline.record_batches``) shards it over input pipelines and resumes it exactly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes.data.base import Data, DataError, Progress

INDEX = "records.json"


IMAGE_KEYS = ("image/encoded", "image")  # TF Model Garden's layout, then TFDS's


LABEL_KEYS = ("image/class/label", "label")


CYCLE = 16  # files read at once by each pipeline


SHUFFLE_BUFFER = 10_000  # examples, at most; less when a quarter of the budget holds fewer


def shuffle_buffer(budget: int, bytes_per_example: float) -> int:
    """Examples in a shuffle buffer: ``SHUFFLE_BUFFER`` at most, fewer when a quarter of the budget holds fewer."""
    return int(max(1, min(SHUFFLE_BUFFER, budget // 4 // max(1, bytes_per_example))))


def epoch_seed(seed: int, epoch: int) -> int:
    """One 31-bit seed per (run seed, epoch): the epoch's file order and shuffle buffer."""
    return int(np.random.RandomState([seed, epoch]).randint(2**31 - 1))


@dataclasses.dataclass
class Records:
    """A split read from record files. ``counts[i]`` examples are in ``files[i]``; ``open_files``
    reads a list of those files (in the given order) as (encoded image, label) pairs."""

    name: str
    files: list[str]
    counts: list[int]
    open_files: object  # (files, shard: (pipelines, index) or None, seed or None) -> tf.data.Dataset
    shuffle_buffer: int = SHUFFLE_BUFFER
    streamed = True

    def __len__(self) -> int:
        return int(sum(self.counts))

    @property
    def y(self):
        raise DataError(
            f"the labels of {self.name!r} are streamed from its files, not held in memory: class_weight "
            "'balanced', classes and class_fraction need an in-memory set (give class_weight as a list)."
        )

    def by_file(self, pipelines: int) -> bool:
        return len(self.files) >= pipelines

    def share(self, pipelines: int, index: int) -> int:
        """Examples pipeline ``index`` of ``pipelines`` reads per epoch."""
        if self.by_file(pipelines):
            return int(sum(self.counts[index::pipelines]))
        return len(range(index, len(self), pipelines))

    def epoch(self, epoch: int, seed: int, pipelines: int = 1, index: int = 0) -> tf.data.Dataset:
        """Pipeline ``index``'s examples of ``epoch``, in the order (seed, epoch) gives."""
        s = epoch_seed(seed, epoch)
        if pipelines > 1 and not self.by_file(pipelines):
            ds = self.open_files(self.files, None, s).shard(pipelines, index)
        else:
            ds = self.open_files(self.files, (pipelines, index) if pipelines > 1 else None, s)
        return ds.shuffle(self.shuffle_buffer, seed=s, reshuffle_each_iteration=False)

    def in_order(self) -> tf.data.Dataset:
        """Every example once, file after file (evaluation)."""
        return self.open_files(self.files, None, None)


def tfrecord_reader(image_key: str, label_key: str):
    """``open_files`` for TFRecord files of ``tf.train.Example``: by-file shard, seeded file
    order, deterministic interleave, parse."""
    spec = {image_key: tf.io.FixedLenFeature([], tf.string), label_key: tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        return ex[image_key], ex[label_key]

    def open_files(files, shard, seed):
        ds = interleaved(files, shard, seed, tf.data.TFRecordDataset)
        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return open_files


def interleaved(files, shard, seed, open_one) -> tf.data.Dataset:
    """``open_one(file)``'s elements for this pipeline's files (every ``shard[0]``-th from
    ``shard[1]``, or all), in the order ``seed`` gives (or as listed), ``CYCLE`` files read at once
    in a deterministic interleave."""
    files = list(files)
    if shard:
        files = files[shard[1] :: shard[0]]
    if seed is not None:
        files = [files[i] for i in np.random.RandomState(seed).permutation(len(files))]
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        open_one,
        cycle_length=min(CYCLE, len(files)),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _features_of(file: str) -> dict:
    for record in tf.data.TFRecordDataset(file).take(1):
        return dict(tf.train.Example.FromString(record.numpy()).features.feature)
    raise DataError(f"TFRecord file {file!r} holds no records.")


def _keys(file: str) -> tuple[str, str]:
    """The image and label feature names of ``file``'s examples; one line if either is missing."""
    try:
        features = _features_of(file)
    except tf.errors.DataLossError:
        raise DataError(f"{file!r} is not a TFRecord file (or is corrupt).") from None
    except Exception as err:  # a TFRecord that is not an Example
        raise DataError(f"{file!r} does not hold tf.train.Example records ({type(err).__name__}).") from None
    image = next((k for k in IMAGE_KEYS if k in features), None)
    label = next((k for k in LABEL_KEYS if k in features), None)
    for key, keys, what in ((image, IMAGE_KEYS, "image"), (label, LABEL_KEYS, "label")):
        if key is None:
            raise DataError(
                f"TFRecord file {file!r} has no {what} feature (looked for {', '.join(map(repr, keys))}); "
                f"its features: {sorted(features)}."
            )
    return image, label


def _count(files, label_key) -> tuple[list[int], int]:
    """Examples per file and the largest label, by reading every record once (no ``records.json``)."""
    counts, top = [], -1
    spec = {label_key: tf.io.FixedLenFeature([], tf.int64)}
    with Progress("counting records (no records.json)", len(files), "files") as progress:
        for i, f in enumerate(files):
            labels = tf.data.TFRecordDataset(f).map(lambda r: tf.io.parse_single_example(r, spec)[label_key])
            batch = [b.numpy() for b in labels.batch(4096)]
            counts.append(int(sum(len(b) for b in batch)))
            top = max([top, *(int(b.max()) for b in batch if len(b))])
            progress.update(i + 1)
    return counts, top


def load_records(path: Path, val_fraction: float, test_fraction: float, seed: int, budget: int) -> Data:
    """A folder of TFRecord shards: ``train*`` files (and ``validation*``/``test*`` if there);
    without them, validation and test files are held out from the train files, by file."""
    index = json.loads((path / INDEX).read_text()) if (path / INDEX).is_file() else {}
    groups = {
        k: sorted(str(f) for f in path.glob(f"{k}*") if f.is_file() and f.name != INDEX)
        for k in ("train", "validation", "test")
    }
    if not groups["train"]:
        raise DataError(
            f"folder {str(path)!r} has no TFRecord files named train* (as python -m recipes.records writes them)."
        )
    image_key, label_key = _keys(groups["train"][0])
    known = index.get("counts", {})
    every = [f for g in groups.values() for f in g]
    if all(Path(f).name in known for f in every) and index.get("class_names"):
        counts, top = {f: known[Path(f).name] for f in every}, len(index["class_names"]) - 1
    else:
        numbers, top = _count(every, label_key)
        counts = dict(zip(every, numbers))
    names = index.get("class_names") or [str(i) for i in range(top + 1)]
    train, val, test = _hold_out_files(groups, val_fraction, test_fraction, seed, path)
    reader = tfrecord_reader(image_key, label_key)
    bytes_per_example = sum(Path(f).stat().st_size for f in every) / max(1, sum(counts.values()))
    buffer = shuffle_buffer(budget, bytes_per_example)
    splits = [
        Records(f"{path.name}:{k}", fs, [counts[f] for f in fs], reader, buffer)
        for k, fs in (("train", train), ("validation", val), ("test", test))
    ]
    medium = {"medium": "streamed", "why": "dataset tfrecord always streams"}
    return Data(
        path.name,
        "image",
        *splits,
        len(names),
        names,
        flip_ok=True,
        encoded_shape=(None, None, 3),
        medium=medium,
    )


def _hold_out_files(groups, val_fraction, test_fraction, seed, path):
    train = list(groups["train"])
    test = groups["test"] or groups["validation"]
    val = groups["validation"] if groups["test"] else []
    wanted = (0 if val else 1) + (0 if test else 1)
    if len(train) < wanted + 1:
        raise DataError(
            f"folder {str(path)!r} has {len(train)} train file(s) and no validation/test files: holding out "
            "validation and test by file needs at least 3; write more shards."
        )
    order = [train[i] for i in np.random.RandomState(seed).permutation(len(train))]
    take = lambda fraction: max(1, round(fraction * len(order)))  # noqa: E731
    if not test:
        test, order = order[: take(test_fraction)], order[take(test_fraction) :]
    if not val:
        val, order = order[: take(val_fraction)], order[take(val_fraction) :]
    if not order:
        raise DataError(
            f"folder {str(path)!r}: no train files left after holding out validation and test; write more shards."
        )
    return sorted(order), sorted(val), sorted(test)


def _example(encoded: bytes, label: int) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(out: Path, prefix: str, examples, total: int, shards: int) -> dict:
    """``examples`` (encoded image, label) into ``shards`` files ``prefix-0000i-of-0000n``,
    dealt round robin so every shard mixes the classes; examples per file."""
    shards = max(1, min(shards, total))
    names = [f"{prefix}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    writers = [tf.io.TFRecordWriter(str(out / n)) for n in names]
    counts = [0] * shards
    with Progress(f"writing {prefix} records", total, "examples") as progress:
        for i, (encoded, label) in enumerate(examples):
            writers[i % shards].write(_example(encoded, label))
            counts[i % shards] += 1
            progress.update(i + 1)
    for w in writers:
        w.close()
    return dict(zip(names, counts))
