"""Splits streamed from record files: TFRecord shards of ``tf.train.Example`` and the files of a
prepared TFDS split, for sets that do not fit in memory (ImageNet's 1.28 million JPEGs).

How a stream keeps a run exact (the same batches, killed or not, on one worker or several):
- each input pipeline reads a fixed share of the files (by file, as TF Model Garden shards,
  when there are at least as many files as pipelines; otherwise every pipeline reads every file
  and keeps every n-th example, with a warning that says so);
- its epoch ``e`` is a function of (seed, e) only: the files in a seeded order, read interleaved
  deterministically, through a shuffle buffer seeded by (seed, e);
- a pipeline's epochs follow one another as one stream, cut into batches; the run's nominal
  epoch is ``examples // global batch`` steps. Resuming at step ``s`` opens the epoch holding
  that pipeline's ``s``-th batch and skips the records before it (read, not decoded): at most
  one epoch's worth of reading, measured in the benchmark.

``write_records`` (``python -m recipes.records``) turns a folder of images or a TFDS split into
sharded TFRecords with a ``records.json`` index (class names, examples per file).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes import data as data_lib
from recipes.data import DataError

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


def record_batches(
    split: Records, *, batch_size, epochs, start_step=0, seed=0, replicas=None, batch_shard=None, **options
):
    """Every training batch of the run from ``start_step`` on, as ``data.train_batches`` gives
    for in-memory splits (same ``replicas``, ``batch_shard`` and ``options``), read from the
    record files."""
    pre, num_classes = options["pre"], options.get("num_classes")
    finisher = data_lib.batch_finisher(seed=seed, batch_size=batch_size, **options)

    def prepare(example, step, row):
        return data_lib.prepare_train(example[0], pre, data_lib.example_seed(seed, step, row)), _checked(
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
    num_replicas, ids, per = data_lib.replica_shares(batch_size, replicas)
    local = len(ids)
    pipelines, index = num_replicas // local, ids[0] // local
    share = split.share(pipelines, index)
    if share < per:
        raise DataError(
            f"input pipeline {index} of {pipelines} reads {share} examples of {split.name!r}, fewer than "
            f"one batch ({per})."
        )
    _say_sharding(split, pipelines, index, share)
    total = epochs * data_lib.steps_per_epoch(len(split), batch_size)
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
        return data_lib._features(data_lib._prepare(x, pre, evaluation=True), pre), data_lib._label(
            _checked(y, num_classes), num_classes, label_fn
        )

    ds = split.in_order().map(example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(split)))  # Keras knows where an evaluation ends
    options = tf.data.Options()  # under a strategy, workers split the examples (a split may be one file)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


# ---- TFRecord folders -----------------------------------------------------------------------------


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
    with data_lib.Progress("counting records (no records.json)", len(files), "files") as progress:
        for i, f in enumerate(files):
            labels = tf.data.TFRecordDataset(f).map(lambda r: tf.io.parse_single_example(r, spec)[label_key])
            batch = [b.numpy() for b in labels.batch(4096)]
            counts.append(int(sum(len(b) for b in batch)))
            top = max([top, *(int(b.max()) for b in batch if len(b))])
            progress.update(i + 1)
    return counts, top


def load_records(
    path: Path, val_fraction: float, test_fraction: float, seed: int, budget: int
) -> data_lib.Data:
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
    return data_lib.Data(
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


# ---- writing ---------------------------------------------------------------------------------------


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
    with data_lib.Progress(f"writing {prefix} records", total, "examples") as progress:
        for i, (encoded, label) in enumerate(examples):
            writers[i % shards].write(_example(encoded, label))
            counts[i % shards] += 1
            progress.update(i + 1)
    for w in writers:
        w.close()
    return dict(zip(names, counts))


# ---- TFDS ------------------------------------------------------------------------------------------


def tfds_reader(builder, split: str, image_key: str = "image", label_key: str = "label"):
    """``open_files`` for a prepared TFDS split, through the builder's own reader: ``ReadConfig``
    with the pipeline's ``input_context`` (TFDS shards the files), seeded file shuffle, a
    deterministic interleave; images stay encoded (``SkipDecoding``) until the pipeline decodes
    them after any skip."""
    import tensorflow_datasets as tfds

    def open_files(files, shard, seed):
        context = tf.distribute.InputContext(shard[0], shard[1], 1) if shard else None
        config = tfds.ReadConfig(
            shuffle_seed=seed,
            input_context=context,
            interleave_cycle_length=CYCLE,
            interleave_block_length=1,
            try_autocache=False,
            assert_cardinality=False,
            skip_prefetch=True,
        )
        ds = builder.as_dataset(
            split=split,
            shuffle_files=seed is not None,
            read_config=config,
            decoders={image_key: tfds.decode.SkipDecoding()},
        )
        return ds.map(
            lambda ex: (ex[image_key], ex[label_key]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

    return open_files


def _tfds_files(builder, split: str, reader) -> tuple[list[str], list[int]]:
    """The files TFDS reads for ``split`` and the examples it takes from each (its own file
    instructions); where TFDS cannot say (a mocked builder), one pass counts the examples."""
    try:
        instructions = builder.info.splits[split].file_instructions
        if instructions:
            return [str(fi.filename) for fi in instructions], [int(fi.take) for fi in instructions]
    except (KeyError, ValueError, AttributeError):
        pass
    count = int(reader(None, None, None).reduce(np.int64(0), lambda n, _: n + 1).numpy())
    return [split], [count]


def load_tfds(builder, name: str, spec: dict, val_fraction: float, budget: int) -> data_lib.Data:
    """A TFDS image set streamed from its prepared files: train, validation (TFDS's, or held out
    from the start of train) and test (TFDS's test split, or its validation split)."""
    info = builder.info
    splits = data_lib.tfds_splits(info, spec, val_fraction)
    names = {"train": splits["train"], "validation": splits["val"], "test": splits["test"]}
    n_train = data_lib.tfds_train_count(info)
    bytes_per_example = (info.dataset_size or 0) / max(1, n_train)
    buffer = shuffle_buffer(budget, bytes_per_example)
    splits = []
    for key in ("train", "validation", "test"):
        reader = tfds_reader(builder, names[key])
        files, counts = _tfds_files(builder, names[key], reader)
        splits.append(Records(f"{name}:{names[key]}", files, counts, reader, buffer))
    label = info.features["label"]
    classes = (
        list(label.names) if getattr(label, "names", None) else [str(i) for i in range(label.num_classes)]
    )
    channels = info.features["image"].shape[-1] or 3
    return data_lib.Data(
        name, "image", *splits, len(classes), classes, spec.get("flip", False), (None, None, channels)
    )


# ---- tf.data service -------------------------------------------------------------------------------

_SERVICE: list = []  # "local": this process's (dispatcher, worker) pairs, started once


def through_service(address: str | None, workers: int = 1):
    """``serve(make)``: the training batches ``make(shard)`` gives (``shard``: None, or (n, i) for
    every n-th batch from the i-th), produced by a tf.data service. ``"local"`` starts ``workers``
    dispatchers with one worker each in this process; ``"grpc://HOST:PORT,..."`` uses running ones
    (``python -m recipes.dataservice``, each a dispatcher with one worker; the data's files must be
    readable there). Dispatcher i's worker builds the pipeline of batches i, i + n, ... (sharded
    before anything is read or decoded) and the run reads them round robin; each job runs on one
    worker with ``ShardingPolicy.OFF``, so its elements arrive in order: a run through the service
    is the run without it, bit for bit (dynamic sharding would not be, and is not used). On 2
    cores it cannot be faster; it shows the mode runs and what it costs."""
    if address is None:
        return lambda make: make(None)
    service = tf.data.experimental.service
    if address == "local":
        while len(_SERVICE) < workers:
            dispatcher = service.DispatchServer()
            worker = service.WorkerServer(
                service.WorkerConfig(dispatcher_address=dispatcher.target.split("://", 1)[1])
            )
            _SERVICE.append((dispatcher, worker))
        targets = [d.target for d, _ in _SERVICE[:workers]]
    else:
        targets = service_targets(address)

    def distribute(ds, i):
        return ds.apply(service.distribute(processing_mode=service.ShardingPolicy.OFF, service=targets[i]))

    def serve(make):
        if len(targets) == 1:
            return distribute(make(None), 0)
        parts = [distribute(make((len(targets), i)), i) for i in range(len(targets))]
        return tf.data.Dataset.choose_from_datasets(parts, tf.data.Dataset.range(len(targets)).repeat())

    return serve


def service_targets(address: str) -> list[str]:
    """``"grpc://HOST:PORT,grpc://HOST:PORT"`` as a list; anything else is one line."""
    targets = [t.strip() for t in str(address).split(",") if t.strip()]
    if not targets or not all(t.startswith("grpc://") and t.rsplit(":", 1)[-1].isdigit() for t in targets):
        raise DataError(
            f"data_service={address!r}: give 'local' or dispatcher addresses 'grpc://HOST:PORT[,grpc://HOST:PORT...]' "
            "(python -m recipes.dataservice starts one)."
        )
    return targets
