"""Write a folder of images or a TFDS split into sharded TFRecords (``python -m
recipes.records``): TF Model Garden's layout (``image/encoded``: the original bytes, not
re-encoded; ``image/class/label``: the class index from 0), dealt round robin in a seeded order
so every shard mixes the classes, plus the ``records.json`` index that ``dataset: tfrecord`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from recipes.data.base import DataError
from recipes.data.folder import drop_corrupt, list_images
from recipes.data.records import INDEX, write_shards
from recipes.data.tfds_sets import TFDS, prepare_tfds, tfds_builder


def write_records(
    source: str,
    out,
    *,
    shards: int = 16,
    data_dir: str | None = None,
    seed: int = 0,
    bad_images: str = "stop",
) -> dict:
    """Write ``source`` as TFRecord shards under ``out``; the ``records.json`` index it wrote."""
    import numpy as np
    import tensorflow as tf

    if shards < 1:
        raise DataError(f"--shards {shards}: give at least 1.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"OUT {str(out)!r} is a file; give a folder for the TFRecord files.")
    out.mkdir(parents=True, exist_ok=True)
    index = {"source": source, "counts": {}, "skipped": []}
    if Path(source).is_dir():
        path = Path(source)
        classes = sorted(p.name for p in path.iterdir() if p.is_dir())
        files, labels = list_images(path, classes)
        files, labels, index["skipped"] = drop_corrupt(files, labels, bad_images, where=f"folder {source!r}")
        order = np.random.RandomState(seed).permutation(len(files))
        examples = ((tf.io.read_file(files[i]).numpy(), labels[i]) for i in order)
        index["counts"] = write_shards(out, "train", examples, len(files), shards)
        index["class_names"] = classes
    else:
        index.update(_write_tfds(source, out, shards, data_dir))
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


def _write_tfds(name, out, shards, data_dir) -> dict:
    """Every split of a prepared TFDS image set, its images still encoded."""
    import tensorflow_datasets as tfds

    builder = tfds_builder(name, data_dir)
    prepare_tfds(builder, name, data_dir, TFDS.get(name, {}))
    label = builder.info.features["label"]
    counts = {}
    for split, info in builder.info.splits.items():
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        first = next(iter(tfds.as_numpy(ds.take(1))), None)
        if first is None or int(first["label"]) < 0:  # e.g. imagenet2012's test split: labels are -1
            print(f"skipping split {split!r}: it has no labels")
            continue
        examples = ((ex["image"], int(ex["label"])) for ex in tfds.as_numpy(ds))
        counts.update(
            write_shards(
                out, "validation" if split == "valid" else split, examples, int(info.num_examples), shards
            )
        )
    names = list(label.names) if getattr(label, "names", None) else [str(i) for i in range(label.num_classes)]
    return {"counts": counts, "class_names": names}


def write_synthetic_folder(
    root, *, classes: int = 3, per_class: int = 20, size: int = 16, fmt: str = "jpeg"
) -> Path:
    """An ImageNet-layout folder (one sub-folder of images per class) of generated images whose
    classes are learnable: class c is bright in channel c mod 3, noise elsewhere. For trying and
    measuring streaming without a download (the tests and the benchmark use it)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.RandomState(0)
    encode = tf.io.encode_jpeg if fmt == "jpeg" else tf.io.encode_png
    for c in range(classes):
        folder = Path(root) / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.randint(0, 96, size=(size, size, 3)).astype("uint8")
            img[..., c % 3] += 150
            tf.io.write_file(str(folder / f"{i:05d}.{'jpg' if fmt == 'jpeg' else 'png'}"), encode(img))
    return Path(root)
