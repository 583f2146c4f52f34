"""A folder of images (or of ``.txt`` files), one sub-folder per class.

Images are decoded once at load (a file that does not decode stops the load with its name, or
is left out with ``bad_images: skip``); the decoded set is held in memory when it fits the
memory budget, else its files are read and decoded batch by batch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes.data.base import Data, DataError, Progress, choose_medium, stratified_split

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_folder(
    path: Path, val_fraction, test_fraction, seed, streaming="auto", memory_budget_gb=None, bad_images="stop"
) -> Data:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    texts = [(f, i) for i, c in enumerate(classes) for f in sorted((path / c).rglob("*.txt"))]
    if texts:  # plain text files, one sub-folder per class: text classification
        x = np.empty(len(texts), dtype=object)
        x[:] = [f.read_text(encoding="utf-8", errors="replace") for f, _ in texts]
        y = np.asarray([i for _, i in texts], dtype="int64")
        return Data(
            path.name,
            "text",
            *stratified_split(x, y, val_fraction, test_fraction, seed),
            len(classes),
            classes,
        )
    files, labels = list_images(path, classes)
    files, labels, skipped = drop_corrupt(files, labels, bad_images, where=f"folder {str(path)!r}")
    first = decode(files[0])  # its size sets the estimate; kept if the images stay in memory
    decoded = len(files) * first.size * 4  # float32, at the first image's size
    medium = choose_medium(streaming, decoded, memory_budget_gb, f"{len(files)} decoded images")
    rest = (val_fraction, test_fraction, seed)
    y = np.asarray(labels, dtype="int64")
    if medium["medium"] == "streamed":  # the file names, read batch by batch
        splits = [
            dataclasses.replace(s, files=True)
            for s in stratified_split(np.asarray(files, dtype=object), y, *rest)
        ]
        shape = first.shape
    else:
        splits, shape = stratified_split(decode_all(first, files), y, *rest), None
    return Data(
        path.name,
        "image",
        *splits,
        len(classes),
        classes,
        flip_ok=True,
        encoded_shape=shape,
        skipped=skipped,
        medium=medium,
    )


def decode_all(first, files) -> np.ndarray:
    """Every image decoded (``first`` already is), those of another size resized to the most common."""
    images = [first, *(decode(f) for f in files[1:])]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:  # bring every image to the most common size; the model resizes again
        h, w, c = max(shapes, key=lambda s: sum(im.shape == s for im in images))
        images = [tf.image.resize(im, (h, w)).numpy() if im.shape != (h, w, c) else im for im in images]
    return np.stack(images).astype("float32")


def list_images(path: Path, classes: list[str]) -> tuple[list[str], list[int]]:
    """Every image file under each class folder, in a fixed order, and its class index; a class
    folder without images is an error (its label would silently never occur)."""
    files, labels, empty = [], [], []
    with Progress(f"listing {path}", len(classes), "class folders") as progress:
        for i, c in enumerate(classes):
            found = [str(f) for f in sorted((path / c).rglob("*")) if f.suffix.lower() in IMAGE_EXTENSIONS]
            files += found
            labels += [i] * len(found)
            empty += [] if found else [c]
            progress.update(i + 1, f"{len(files):,} images")
    if not files:
        raise DataError(
            f"folder {str(path)!r} has no images ({', '.join(IMAGE_EXTENSIONS)}) or .txt files in class sub-folders."
        )
    if empty:
        raise DataError(
            f"folder {str(path)!r}: class folder(s) {', '.join(map(repr, empty))} hold no images "
            f"({', '.join(IMAGE_EXTENSIONS)})."
        )
    return files, labels


BAD_IMAGES = ("stop", "skip")


def find_corrupt(files: list[str]) -> list[int]:
    """Indices of the ``files`` that cannot be read and decoded: one parallel decoding pass, in
    which tf.data drops the failures; the indices that come through name the others."""
    names = tf.constant(files)

    def decodes(i):
        return i, tf.size(tf.io.decode_image(tf.io.read_file(names[i]), expand_animations=False))

    ds = tf.data.Dataset.range(len(files)).map(
        decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
    )
    ok = np.zeros(len(files), bool)
    with Progress("checking that every image decodes", len(files), "images") as progress:
        for i, _ in ds.ignore_errors().batch(1024):
            ok[i.numpy()] = True
            progress.update(int(ok.sum()))
    return np.flatnonzero(~ok).tolist()


def drop_corrupt(files, labels, policy: str, *, where: str):
    """(files, labels, skipped) after ``find_corrupt``: with ``policy`` "stop" a bad file is one
    line naming it; with "skip" it is left out and named in ``skipped`` (and printed)."""
    if policy not in BAD_IMAGES:
        raise DataError(f"bad_images={policy!r}; choose one of {list(BAD_IMAGES)}.")
    bad = find_corrupt(files)
    if not bad:
        return files, labels, []
    names = [files[i] for i in bad]
    shown = ", ".join(map(repr, names[:3])) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if policy == "stop":
        raise DataError(
            f"{where}: {len(names)} image file(s) do not decode: {shown}; remove them or set bad_images: skip."
        )
    print(f"{where}: leaving out {len(names)} image file(s) that do not decode: {shown}")
    drop = set(bad)
    keep = [i for i in range(len(files)) if i not in drop]
    lost = sorted({labels[i] for i in bad} - {labels[i] for i in keep})
    if lost:  # a class whose every image is bad would silently never occur
        raise DataError(
            f"{where}: every image of class index(es) {lost} fails to decode (e.g. {names[0]!r}); nothing "
            "to learn them from."
        )
    return [files[i] for i in keep], [labels[i] for i in keep], names


def decode(file: str) -> np.ndarray:
    raw = tf.io.read_file(file)
    return tf.image.convert_image_dtype(tf.io.decode_image(raw, expand_animations=False), tf.float32).numpy()
