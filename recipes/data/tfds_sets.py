"""TFDS sets by name (``mnist``, ``cifar10``, ``imagenette``, ``imagenet2012`` from a
manual dir, ``imdb_reviews``, ``glue/sst2``, or any TFDS name with an image/label or text/label
pair), prepared through TFDS's own code and held in memory, compactly (fixed-size images as
uint8, images of varying size as their encoded bytes), or streamed from the prepared files.

The split names that form train, validation and test (``tfds_splits``) are the same in memory
and streamed.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from modelzoo.validation import did_you_mean
from recipes.data.base import Data, DataError, Split, check_fits_in_memory, choose_medium, memory_budget
from recipes.data.embedded import EMBEDDED
from recipes.data.records import CYCLE, Records, shuffle_buffer

# TFDS names known to work here, with the feature keys of each; others fall back to defaults.
TFDS = {
    "mnist": dict(kind="image", flip=False),
    "fashion_mnist": dict(kind="image", flip=True),
    "cifar10": dict(kind="image", flip=True),
    "cifar100": dict(kind="image", flip=True),
    # no labelled test split: validation becomes the test split, validation is carved from train
    "imagenette": dict(kind="image", flip=True, val_split="validation", test_split=None),
    "imagenet2012": dict(
        kind="image",
        flip=True,
        val_split="validation",
        test_split=None,
        manual=("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
    ),
    "imdb_reviews": dict(kind="text", key="text"),
    "glue/sst2": dict(kind="text", key="sentence", val_split="validation", test_split=None),
}


def tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # tfds raises DatasetNotFoundError and others
        raise DataError(
            f"unknown data set {name!r} ({type(err).__name__}). Built in: {', '.join(EMBEDDED)}, folder, "
            "csv, tfrecord; "
            f"TFDS: {', '.join(TFDS)}." + did_you_mean(name, [*EMBEDDED, *TFDS])
        ) from None


def tfds_train_count(info) -> int:
    """Examples in a TFDS set's train split as its info records them; 0 where it records none."""
    split = info.splits["train"] if "train" in info.splits else None
    return int(getattr(split, "num_examples", 0) or 0)


def tfds_splits(info, spec: dict, val_fraction: float) -> dict[str, str]:
    """The TFDS split names that form train, validation and test, the same in memory and streamed:
    the set's own validation split where it has one, else the first ``val_fraction`` of train
    (TFDS shuffles a set once, when it is prepared); its test split, or, where the test labels are
    hidden (GLUE), its validation split as the test split."""
    test, val = spec.get("test_split", "test"), spec.get("val_split")
    if test is None:
        test, val = val, None
    if val:
        return {"train": "train", "val": val, "test": test}
    n_train = tfds_train_count(info)
    if n_train:  # a count of examples: the held-out set does not move with TFDS's rounding
        held = max(1, round(val_fraction * n_train))
        return {"train": f"train[{held}:]", "val": f"train[:{held}]", "test": test}
    percent = max(1, round(100 * val_fraction))  # (no count recorded: a mocked builder)
    return {"train": f"train[{percent}%:]", "val": f"train[:{percent}%]", "test": test}


def load_tfds(name, data_dir, val_fraction, seed, streaming="auto", memory_budget_gb=None) -> Data:
    """A TFDS set, prepared (from the manual dir where TFDS needs one) and held in memory, or,
    when it is larger than the memory budget (or ``streaming`` is true), streamed from its files."""
    import tensorflow_datasets as tfds

    spec = TFDS.get(name, {})
    builder = tfds_builder(name, data_dir)
    info = builder.info
    label_key = "label"
    if label_key not in info.features:
        raise DataError(f"TFDS data set {name!r} has no 'label' feature; features: {list(info.features)}.")
    kind = spec.get("kind", "image" if "image" in info.features else "text")
    key = spec.get("key", "image" if kind == "image" else "text")
    prepare_tfds(builder, name, data_dir, spec)
    size = int(info.dataset_size or 0)
    medium = choose_medium(streaming, size, memory_budget_gb, "its prepared files")
    if medium["medium"] == "streamed":
        if kind != "image" or key != "image":
            raise DataError(
                f"TFDS data set {name!r} holds {kind}; only image sets stream (set streaming: false)."
            )
        data = stream_tfds(builder, name, spec, val_fraction, memory_budget(memory_budget_gb))
        return dataclasses.replace(data, medium=medium)
    check_fits_in_memory(name, size)
    decoders = None
    encoded_shape = None
    if kind == "image" and None in info.features[key].shape[:2]:  # sizes vary: keep the encoded bytes
        decoders = {key: tfds.decode.SkipDecoding()}
        encoded_shape = (None, None, info.features[key].shape[-1] or 3)
    splits = tfds_splits(info, spec, val_fraction)
    arrays = _tfds_arrays(builder, name, splits, decoders, key, label_key, kind == "text")
    label_info = info.features[label_key]
    num_classes = int(label_info.num_classes)
    names = (
        list(label_info.names) if getattr(label_info, "names", None) else [str(i) for i in range(num_classes)]
    )
    train, val, test = (Split(*arrays[k]) for k in ("train", "val", "test"))
    flip = spec.get("flip", False)
    return Data(name, kind, train, val, test, num_classes, names, flip, encoded_shape, medium=medium)


def _tfds_arrays(builder, name, splits, decoders, key, label_key, text) -> dict:
    """The ``splits`` (``tfds_splits``) as NumPy arrays."""
    try:
        return {
            k: _to_numpy(builder.as_dataset(split=v, decoders=decoders), key, label_key, text)
            for k, v in splits.items()
        }
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"cannot load TFDS data set {name!r}: {str(err).splitlines()[0]}") from None


def prepare_tfds(builder, name, data_dir, spec):
    """``download_and_prepare`` (a no-op once prepared). When a set built from a manual dir fails
    to prepare, the archives it needs that are not there are one line naming each; any other
    preparation error keeps its own first line (a truncated archive is not a missing one). The
    check follows the failure rather than preceding it, so that ``tfds.testing.mock_data``, which
    replaces preparation, needs no archives."""
    import tensorflow_datasets as tfds

    manual = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"), "downloads", "manual")
    config = tfds.download.DownloadConfig(manual_dir=manual) if spec.get("manual") else None
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as err:
        missing = [f for f in spec.get("manual", ()) if not os.path.exists(os.path.join(manual, f))]
        if missing:
            raise DataError(
                f"TFDS data set {name!r} is not prepared and its manual dir {manual!r} lacks "
                f"{', '.join(missing)} (see README: Preparing ImageNet)."
            ) from None
        first = (str(err).strip().splitlines() or [""])[0]
        where = f"from {manual!r}" if config else "(downloads are not possible here?)"
        raise DataError(
            f"cannot prepare TFDS data set {name!r} {where}: {type(err).__name__}: {first}"
        ) from None


def _to_numpy(ds, key, label_key, text):
    """A split's features and labels as arrays: text as str, images as uint8 or encoded bytes."""
    xs, ys = [], []
    import tensorflow_datasets as tfds

    for ex in tfds.as_numpy(ds):
        x = ex[key]
        xs.append(x.decode("utf-8") if text else x)
        ys.append(ex[label_key])
    if not xs:
        raise DataError("a TFDS split is empty.")
    if isinstance(xs[0], (str, bytes)):
        x = np.empty(len(xs), dtype=object)
        x[:] = xs
    else:
        x = np.stack(xs)
    return x, np.asarray(ys, dtype="int64")


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


def stream_tfds(builder, name: str, spec: dict, val_fraction: float, budget: int) -> Data:
    """A TFDS image set streamed from its prepared files: train, validation (TFDS's, or held out
    from the start of train) and test (TFDS's test split, or its validation split)."""
    info = builder.info
    splits = tfds_splits(info, spec, val_fraction)
    names = {"train": splits["train"], "validation": splits["val"], "test": splits["test"]}
    n_train = tfds_train_count(info)
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
    return Data(
        name, "image", *splits, len(classes), classes, spec.get("flip", False), (None, None, channels)
    )
