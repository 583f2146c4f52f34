"""Data sets by name, as ``tf.data`` pipelines that keep a model fed.

Sources:
- embedded, no download: ``digits`` (scikit-learn's 1,797 handwritten 8x8 digits, images),
  ``breast_cancer`` and ``wine`` (scikit-learn's tabular sets); they ship inside scikit-learn.
- TFDS by name through ``tfds.load`` (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``,
  ``imagenette``, ``imagenet2012`` from a manual dir, ``imdb_reviews``, ``glue/sst2``, or any other
  TFDS name with an image/label or text/label pair).
- ``folder`` (one sub-folder of images, or of ``.txt`` files, per class) and ``csv`` (a table with a
  label column, pandas; with ``text_column`` set, a text classification table).
- embedded text: ``stdlib_docs`` (docstrings of six standard-library packages, labelled by package).

Splits are held in memory, compactly: fixed-size images as uint8, images of varying size
(imagenette, imagenet2012) as their encoded JPEG/PNG bytes, decoded and resized inside the
pipeline in parallel. A set whose encoded size exceeds half of this machine's memory is refused
with one clear line (ImageNet's 147 GB needs a streaming reader this module does not have).
The training order is a seeded permutation per epoch, so a run resumed mid-epoch skips exactly
the batches it has seen (``train_batches(start_step=...)``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from modelzoo.validation import UserError, did_you_mean

EMBEDDED = ("digits", "breast_cancer", "wine", "stdlib_docs")
# stdlib_docs: docstrings of these standard-library packages, labelled by the package they are in.
DOC_PACKAGES = ("asyncio", "email", "logging", "multiprocessing", "unittest", "xml")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] is id 0
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
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class DataError(UserError):
    """A data set that cannot be loaded: missing, empty, or without the label it needs."""


@dataclasses.dataclass
class Split:
    """One split: features (N, ...) and integer labels (N,). With ``files``, ``x`` holds image
    file paths, read and decoded batch by batch (a stream: the images are never all in memory)."""

    x: np.ndarray
    y: np.ndarray
    files: bool = False

    def take(self, rows) -> Split:
        return dataclasses.replace(self, x=self.x[rows], y=np.asarray(self.y)[rows])

    def __len__(self) -> int:
        return len(self.y)


@dataclasses.dataclass
class Data:
    """A loaded data set: splits in memory, and what a model needs to know about them."""

    name: str
    kind: str  # "image", "tabular" or "text"
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: list[str]
    flip_ok: bool = False  # a horizontal flip keeps the label (not for digits)
    encoded_shape: tuple | None = None  # images kept encoded or streamed: (h, w, c), None where sizes vary
    vocabulary: list | None = None  # text, once tokenized: the WordPiece vocabulary
    skipped: list | None = None  # image files left out because they do not decode (bad_images: skip)
    # held in memory or streamed, and why (``choose_medium``): printed at the start, in summary.json
    medium: dict = dataclasses.field(default_factory=lambda: dict(IN_MEMORY))

    @property
    def feature_shape(self) -> tuple:
        return self.encoded_shape or tuple(self.train.x.shape[1:])


def load(
    name: str,
    *,
    data_dir: str | None = None,
    path: str | None = None,
    label_column: str = "label",
    text_column: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    streaming: bool | str = "auto",
    memory_budget_gb: float | None = None,
    bad_images: str = "stop",
) -> Data:
    """Load a data set by name (see the module doc); raise ``DataError`` with one clear line.

    ``streaming`` (folders of images): ``"auto"`` keeps the decoded images in memory when they fit
    ``memory_budget_gb`` (default: a quarter of this machine's memory) and streams the files
    otherwise; ``True`` or ``False`` forces it. ``bad_images``: a folder's images that do not
    decode stop the load with one line naming them (``"stop"``) or are left out and listed in
    ``Data.skipped`` (``"skip"``), never given a wrong label."""
    if name in EMBEDDED:
        return _embedded(name, val_fraction, test_fraction, seed)
    if name == "folder":
        return _folder(
            _need_path(name, path), val_fraction, test_fraction, seed, streaming, memory_budget_gb, bad_images
        )
    if name == "csv":
        return _csv(_need_path(name, path), label_column, val_fraction, test_fraction, seed, text_column)
    if name == "tfrecord":
        from recipes import streams

        path = _need_path(name, path)
        if streaming is False:
            raise DataError(
                "dataset 'tfrecord' always streams its files; streaming: false is for folders and TFDS sets."
            )
        return streams.load_records(path, val_fraction, test_fraction, seed, memory_budget(memory_budget_gb))
    return _tfds(name, data_dir, val_fraction, seed, streaming, memory_budget_gb)


def _need_path(name, path):
    if not path:
        what = {"folder": "folder", "csv": "CSV file", "tfrecord": "folder of TFRecord files"}[name]
        raise DataError(f"dataset {name!r} needs data_path (a {what}).")
    if not Path(path).exists():
        raise DataError(f"data_path {str(path)!r} does not exist.")
    return Path(path)


def _split(x, y, val_fraction, test_fraction, seed, test=None):
    """Stratified, seeded train/val(/test) split."""
    from sklearn.model_selection import train_test_split

    if test is None:
        x, xt, y, yt = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
        test = Split(xt, yt)
    xtr, xv, ytr, yv = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=y)
    return Split(xtr, ytr), Split(xv, yv), test


def stdlib_docstrings() -> tuple[list[str], np.ndarray]:
    """Every docstring of five words or more in ``DOC_PACKAGES`` (read with ``ast`` from the
    standard library's source, which ships with Python), labelled by its package."""
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    texts, labels = [], []
    for label, package in enumerate(DOC_PACKAGES):
        for path in sorted((root / package).rglob("*.py")):
            if "test" in path.relative_to(root).parts[1:]:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    doc = ast.get_docstring(node)
                    if doc and len(doc.split()) >= 5:
                        texts.append(" ".join(doc.split()))
                        labels.append(label)
    if not texts:
        raise DataError("no standard-library sources found for the embedded text set 'stdlib_docs'.")
    return texts, np.asarray(labels, dtype="int64")


def _embedded(name, val_fraction, test_fraction, seed) -> Data:
    import sklearn.datasets as skd

    if name == "stdlib_docs":
        texts, y = stdlib_docstrings()
        x = np.empty(len(texts), dtype=object)
        x[:] = texts
        train, val, test = _split(x, y, val_fraction, test_fraction, seed)
        return Data(name, "text", train, val, test, len(DOC_PACKAGES), list(DOC_PACKAGES))
    if name == "digits":
        bunch = skd.load_digits()
        x = (bunch.images / 16.0).astype("float32")[..., None]  # 8x8x1 in [0, 1]
        kind, names = "image", [str(c) for c in bunch.target_names]
    else:
        bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
        x, kind, names = bunch.data.astype("float32"), "tabular", [str(c) for c in bunch.target_names]
    y = bunch.target.astype("int64")
    train, val, test = _split(x, y, val_fraction, test_fraction, seed)
    if kind == "tabular":
        train, val, test = _standardize(train, val, test)
    return Data(name, kind, train, val, test, len(names), names, flip_ok=False)


def _standardize(train, val, test):
    """Scale features by the training split's mean and spread (never the test split's)."""
    mean, std = train.x.mean(axis=0), train.x.std(axis=0) + 1e-7
    return tuple(Split(((s.x - mean) / std).astype("float32"), s.y) for s in (train, val, test))


def _csv(path: Path, label_column, val_fraction, test_fraction, seed, text_column=None) -> Data:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as err:  # pandas raises many types for a bad file
        raise DataError(f"cannot read CSV {str(path)!r}: {err}") from None
    if label_column not in frame.columns:
        raise DataError(
            f"CSV {str(path)!r} has no label column {label_column!r}; columns: {list(frame.columns)}."
            + did_you_mean(label_column, frame.columns)
        )
    labels = frame.pop(label_column).astype("category")
    if text_column is not None:  # a text classification table: one text column, one label column
        if text_column not in frame.columns:
            raise DataError(
                f"CSV {str(path)!r} has no text column {text_column!r}; columns: {list(frame.columns)}."
                + did_you_mean(text_column, frame.columns)
            )
        x = np.empty(len(frame), dtype=object)
        x[:] = frame[text_column].fillna("").astype(str).tolist()
        y = labels.cat.codes.to_numpy().astype("int64")
        names = [str(c) for c in labels.cat.categories]
        return Data(path.stem, "text", *_split(x, y, val_fraction, test_fraction, seed), len(names), names)
    features = pd.get_dummies(frame, dtype="float32")  # one-hot any text column
    if features.shape[1] == 0:
        raise DataError(f"CSV {str(path)!r} has no feature columns besides {label_column!r}.")
    x = features.to_numpy(dtype="float32")
    if np.isnan(x).any():
        raise DataError(f"CSV {str(path)!r} has missing values; fill or drop them first.")
    y = labels.cat.codes.to_numpy().astype("int64")
    names = [str(c) for c in labels.cat.categories]
    train, val, test = _standardize(*_split(x, y, val_fraction, test_fraction, seed))
    return Data(path.stem, "tabular", train, val, test, len(names), names)


IN_MEMORY = {"medium": "memory", "why": "this source is always read into memory"}


def choose_medium(streaming, size: int, memory_budget_gb, what: str) -> dict:
    """Hold a set of ``size`` bytes (``what`` says how they were estimated) in memory or stream
    it, by ``streaming`` (true, false or auto: stream when larger than the budget); the choice
    and its reason, as the run reports them."""
    budget = memory_budget(memory_budget_gb)
    gib = {"size_gib": round(size / 2**30, 4), "budget_gib": round(budget / 2**30, 4)}
    if streaming in (True, False):
        medium = "streamed" if streaming else "memory"
        return {"medium": medium, "why": f"streaming: {str(streaming).lower()}", **gib}
    stream = size > budget
    verdict = "over" if stream else "within"
    why = (
        f"streaming: auto; {what} {gib['size_gib']:g} GiB, {verdict} the budget of {gib['budget_gib']:g} GiB"
    )
    return {"medium": "streamed" if stream else "memory", "why": why, **gib}


def medium_line(medium: dict) -> str:
    """The run's first line about its data: where it is held and why."""
    where = "streamed from its files" if medium["medium"] == "streamed" else "held in memory"
    return f"data: {where} ({medium['why']})"


def memory_budget(gigabytes: float | None = None) -> int:
    """Bytes a data set may take in memory: ``gigabytes``, or a quarter of this machine's memory."""
    if gigabytes is not None:
        return int(gigabytes * 2**30)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def _folder(
    path: Path, val_fraction, test_fraction, seed, streaming="auto", memory_budget_gb=None, bad_images="stop"
) -> Data:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    texts = [(f, i) for i, c in enumerate(classes) for f in sorted((path / c).rglob("*.txt"))]
    if texts:  # plain text files, one sub-folder per class: text classification
        x = np.empty(len(texts), dtype=object)
        x[:] = [f.read_text(encoding="utf-8", errors="replace") for f, _ in texts]
        y = np.asarray([i for _, i in texts], dtype="int64")
        return Data(
            path.name, "text", *_split(x, y, val_fraction, test_fraction, seed), len(classes), classes
        )
    files, labels = _list_images(path, classes)
    files, labels, skipped = drop_corrupt(files, labels, bad_images, where=f"folder {str(path)!r}")
    first = _decode(files[0])  # its size sets the estimate; kept if the images stay in memory
    decoded = len(files) * first.size * 4  # float32, at the first image's size
    medium = choose_medium(streaming, decoded, memory_budget_gb, f"{len(files)} decoded images")
    rest = (val_fraction, test_fraction, seed)
    y = np.asarray(labels, dtype="int64")
    if medium["medium"] == "streamed":  # the file names, read batch by batch
        splits = [
            dataclasses.replace(s, files=True) for s in _split(np.asarray(files, dtype=object), y, *rest)
        ]
        shape = first.shape
    else:
        splits, shape = _split(_decode_all(first, files), y, *rest), None
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


def _decode_all(first, files) -> np.ndarray:
    """Every image decoded (``first`` already is), those of another size resized to the most common."""
    images = [first, *(_decode(f) for f in files[1:])]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:  # bring every image to the most common size; the model resizes again
        h, w, c = max(shapes, key=lambda s: sum(im.shape == s for im in images))
        images = [tf.image.resize(im, (h, w)).numpy() if im.shape != (h, w, c) else im for im in images]
    return np.stack(images).astype("float32")


class Progress:
    """Progress of work that takes a while (listing a million files, writing TFRecords): on a
    terminal a bar redrawn in place, otherwise a line every ``EVERY`` seconds; nothing at all for
    work that is quick (the first output comes after ``EVERY`` seconds either way). Use it in a
    ``with`` block, so that a bar ends its line."""

    EVERY = 5.0

    def __init__(self, what: str, total: int, unit: str, stream=None):
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.drawn = False

    def update(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if now - self.start < self.EVERY:
            return
        text = f"{self.what}: {done:,}/{self.total:,} {self.unit}" + (f", {detail}" if detail else "")
        if self.tty and (now - self.last >= 0.2 or done >= self.total or not self.drawn):
            bar = "#" * int(30 * done / max(1, self.total))
            self.stream.write(f"\r[{bar:<30}] {text}")
            self.stream.flush()
            self.drawn, self.last = True, now
        elif not self.tty and now - self.last >= self.EVERY:
            print(text, file=self.stream, flush=True)
            self.last = now

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _list_images(path: Path, classes: list[str]) -> tuple[list[str], list[int]]:
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


def _decode(file: str) -> np.ndarray:
    raw = tf.io.read_file(file)
    return tf.image.convert_image_dtype(tf.io.decode_image(raw, expand_animations=False), tf.float32).numpy()


def _tfds_builder(name, data_dir):
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


def _tfds(name, data_dir, val_fraction, seed, streaming="auto", memory_budget_gb=None) -> Data:
    """A TFDS set, prepared (from the manual dir where TFDS needs one) and held in memory, or,
    when it is larger than the memory budget (or ``streaming`` is true), streamed from its files."""
    import tensorflow_datasets as tfds

    spec = TFDS.get(name, {})
    builder = _tfds_builder(name, data_dir)
    info = builder.info
    label_key = "label"
    if label_key not in info.features:
        raise DataError(f"TFDS data set {name!r} has no 'label' feature; features: {list(info.features)}.")
    kind = spec.get("kind", "image" if "image" in info.features else "text")
    key = spec.get("key", "image" if kind == "image" else "text")
    _prepare_tfds(builder, name, data_dir, spec)
    size = int(info.dataset_size or 0)
    medium = choose_medium(streaming, size, memory_budget_gb, "its prepared files")
    if medium["medium"] == "streamed":
        if kind != "image" or key != "image":
            raise DataError(
                f"TFDS data set {name!r} holds {kind}; only image sets stream (set streaming: false)."
            )
        from recipes import streams

        data = streams.load_tfds(builder, name, spec, val_fraction, memory_budget(memory_budget_gb))
        return dataclasses.replace(data, medium=medium)
    _check_fits_in_memory(name, size)
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


def _prepare_tfds(builder, name, data_dir, spec):
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


def _check_fits_in_memory(name, size_bytes):
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if size_bytes > memory // 2:
        raise DataError(
            f"TFDS data set {name!r} is {size_bytes / 2**30:.0f} GiB, more than half of this machine's "
            f"{memory / 2**30:.0f} GiB, and streaming is false; set streaming: auto (or true) to stream its files."
        )


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


# ---- text ----------------------------------------------------------------------------------------


def read_vocabulary(path) -> list[str]:
    """A WordPiece ``vocab.txt`` (one token per line, as BERT publishes it): ``[PAD]`` first, since
    id 0 pads, and the other special tokens anywhere (BERT's uncased vocabulary qualifies)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"vocabulary file {str(path)!r} does not exist.")
    vocabulary = path.read_text(encoding="utf-8").split("\n")
    while vocabulary and not vocabulary[-1]:
        vocabulary.pop()
    if not vocabulary or vocabulary[0] != "[PAD]":
        raise DataError(
            f"vocabulary file {str(path)!r} must start with [PAD] (id 0 pads); it starts with {vocabulary[:1]}."
        )
    missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise DataError(f"vocabulary file {str(path)!r} lacks the special tokens {missing}.")
    return vocabulary


def string_tensor(texts) -> tf.Tensor:
    """Texts as a tf.string tensor. (Through NumPy's ``astype(str)`` each would be padded to the
    longest: 100,000 lines with one of 100 KB took 24 GB.)"""
    return tf.constant([str(t) for t in texts], dtype=tf.string)


def word_piece_vocabulary(texts, vocabulary_size: int) -> list[str]:
    """A WordPiece vocabulary learned from ``texts`` (keras-hub), special tokens first."""
    import keras_hub

    ds = tf.data.Dataset.from_tensor_slices(string_tensor(texts))
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        ds, vocabulary_size, lowercase=True, reserved_tokens=list(SPECIAL_TOKENS)
    )


def tokenize(data: Data, vocabulary: list[str], sequence_length: int, *, cls_sep: bool = False) -> Data:
    """Every split's texts as int32 token ids of length ``sequence_length`` (0 pads), with
    ``[CLS] ... [SEP]`` around them for BERT. Done once: a training step only gathers rows."""
    encode = text_encoder(vocabulary, sequence_length, cls_sep=cls_sep)
    return dataclasses.replace(
        data,
        train=Split(encode(data.train.x), data.train.y),
        val=Split(encode(data.val.x), data.val.y),
        test=Split(encode(data.test.x), data.test.y),
        vocabulary=list(vocabulary),
    )


def word_piece(vocabulary: list[str]):
    """keras-hub's WordPiece tokenizer on ``vocabulary``, lowercasing, int32 ids: the one every
    text path uses (classification, pretraining in memory and streamed, prediction)."""
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True, dtype="int32")


def packer(vocabulary: list[str], sequence_length: int, *, cls_sep: bool = True):
    """keras-hub's StartEndPacker: ``[CLS] tokens [SEP]`` (or the tokens alone) cut or padded
    with 0 to ``sequence_length``; the one way every text path frames its rows."""
    import keras_hub

    ids = {t: i for i, t in enumerate(vocabulary)}
    return keras_hub.layers.StartEndPacker(
        sequence_length,
        start_value=ids["[CLS]"] if cls_sep else None,
        end_value=ids["[SEP]"] if cls_sep else None,
        pad_value=0,
        return_padding_mask=False,
    )


def text_encoder(vocabulary: list[str], sequence_length: int, *, cls_sep: bool = False):
    """A function from texts to an int32 array of token ids (keras-hub WordPiece + StartEndPacker),
    the one used for training and for prediction alike."""
    tokenizer, pack = word_piece(vocabulary), packer(vocabulary, sequence_length, cls_sep=cls_sep)

    def encode(texts) -> np.ndarray:
        texts = string_tensor(texts)
        return np.asarray(pack(tokenizer(texts)), dtype="int32")

    return encode


def bert_inputs(token_ids):
    """keras-hub's BERT inputs for single-segment text: segment 0 everywhere, padding where id 0."""
    return {
        "token_ids": token_ids,
        "segment_ids": tf.zeros_like(token_ids),
        "padding_mask": tf.cast(tf.not_equal(token_ids, 0), "int32"),
    }


# ---- pipelines ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """Per-model preprocessing inside the pipeline: resize, channels, augmentation."""

    image_size: tuple[int, int] | None = None  # None: keep the data's size
    channels: int | None = None  # None: keep; 3 from 1 repeats the grey channel
    crop: bool = False  # random crop after zero-padding each side (AlexNet/VGG/ResNet style)
    crop_padding: float = 0.125  # the padding as a share of the side: the augmentation's strength
    flip: bool = False  # random horizontal flip (only where the label allows it)
    bert_inputs: bool = False  # token ids become BERT's dict of ids, segments and padding mask
    # ImageNet papers' crops, per image before batching (sizes vary): "pad" is the padded random crop
    # above; "random_resized" Szegedy et al. 2015's (area, aspect 3/4-4/3; Goyal et al. 2017, ResNet
    # recipes); "scale_jitter" Simonyan & Zisserman 2014's (shorter side random in scale_range, then crop).
    crop_mode: str = "pad"
    scale_range: tuple | None = (
        None  # random_resized: area share (default 0.08-1); scale_jitter: pixels (256-512)
    )
    eval_crop: float | None = None  # evaluation: shorter side to image_size / eval_crop, then the centre crop
    mean: tuple | None = None  # per-channel mean subtracted from [0, 1] images (then divided by std)
    std: tuple | None = None


NORMALIZE = {  # normalize: name -> (mean, std) on [0, 1] images, ImageNet's statistics
    "none": (None, None),
    "imagenet_mean": ((0.485, 0.456, 0.406), None),  # AlexNet and VGG: the training set's mean RGB subtracted
    "imagenet_mean_std": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision / timm ResNets
}
CROP_MODES = ("pad", "random_resized", "scale_jitter")


def _paper_crop(x, pre: Preprocess, seed):
    """One training image (encoded bytes or pixels) cropped as ``pre.crop_mode`` says, resized to
    ``image_size``, in [0, 1]; ``seed`` (``example_seed``: run seed, step, row) makes the draw a
    function of where the example falls in the run, so a resumed run crops it the same way."""
    image = (
        tf.io.decode_image(x, channels=pre.channels or 3, expand_animations=False)
        if x.dtype == tf.string
        else x
    )
    image = tf.image.convert_image_dtype(image, tf.float32)
    shape = tf.shape(image)
    if pre.crop_mode == "random_resized":
        area = pre.scale_range or (0.08, 1.0)
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape,
            tf.zeros([1, 0, 4]),
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=area,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return tf.ensure_shape(
            tf.image.resize(tf.slice(image, begin, size), pre.image_size), [*pre.image_size, image.shape[-1]]
        )
    low, high = pre.scale_range or (256, 512)
    size_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    side = tf.random.stateless_uniform([], seed=size_seed, minval=low, maxval=high + 1, dtype=tf.int32)
    image = _shorter_side(image, tf.maximum(side, max(pre.image_size)))
    channels = image.shape[-1]
    return tf.ensure_shape(
        tf.image.stateless_random_crop(image, [*pre.image_size, tf.shape(image)[-1]], seed=crop_seed),
        [*pre.image_size, channels],
    )


def example_seed(seed, step, row):
    """The stateless seed of one example's random crop: (run seed, step and row in the global batch)."""
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 1_000_003 + tf.cast(row, tf.int64)])


def _shorter_side(image, side):
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    scale = tf.cast(side, tf.float32) / tf.minimum(h, w)
    return tf.image.resize(image, tf.cast(tf.round([h * scale, w * scale]), tf.int32))


def _centre_crop(image, pre: Preprocess):
    """Evaluation as the papers do it: the shorter side to ``image_size / eval_crop``, the centre."""
    image = _shorter_side(image, round(max(pre.image_size) / pre.eval_crop))
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (h - pre.image_size[0]) // 2, (w - pre.image_size[1]) // 2
    return image[top : top + pre.image_size[0], left : left + pre.image_size[1]]


def prepare_train(x, pre: Preprocess, seed):
    """One training example's per-image work: the paper's crop where ``crop_mode`` asks for one,
    else the deterministic decode/resize (the pad crop happens per batch)."""
    if pre.crop and pre.crop_mode != "pad":
        return _channels(_paper_crop(x, pre, seed), pre)
    return _prepare(x, pre)


def _prepare(x, pre: Preprocess, evaluation: bool = False):
    """Decode, resize (evaluation with ``eval_crop``: the centre crop of one image) and match channels."""
    if x.dtype == tf.string and pre.image_size is not None:  # encoded image bytes
        x = tf.io.decode_image(x, channels=pre.channels or 3, expand_animations=False)
    if x.dtype == tf.uint8:
        x = tf.image.convert_image_dtype(x, tf.float32)
    if pre.image_size is not None and pre.eval_crop and evaluation:
        x = _centre_crop(x, pre)
    elif pre.image_size is not None:
        x = tf.image.resize(x, pre.image_size, method="bilinear")
    return _channels(x, pre)


def _channels(x, pre: Preprocess):
    if pre.channels is not None and x.shape[-1] != pre.channels:
        if x.shape[-1] == 4 and pre.channels in (1, 3):  # drop alpha
            x = x[..., :3]
        if x.shape[-1] == 3 and pre.channels == 1:
            x = tf.image.rgb_to_grayscale(x)
        elif x.shape[-1] == 1:
            x = tf.repeat(x, pre.channels, axis=-1)
        if x.shape[-1] != pre.channels:
            raise DataError(f"cannot turn {x.shape[-1]}-channel images into {pre.channels} channels.")
    return x


def _augment_batch(images, seed, pre: Preprocess, global_batch: int, first=0):
    """Stateless random crop (after zero-padding each side by ``crop_padding`` of it) and flip, for a whole batch
    at once: the same ``seed`` (the run's seed and the global step) always gives the same batch. ``images``
    may be a replica's share of a global batch, rows ``first`` on: drawn as in the whole one."""
    if not (pre.crop or pre.flip):
        return images
    if pre.crop_mode != "pad":  # the paper's crop happened per image (prepare_train); the flip is here
        pre = dataclasses.replace(pre, crop=False)
    batch, h, w = tf.shape(images)[0], int(images.shape[1]), int(images.shape[2])
    first = tf.cast(first, tf.int32)
    u = tf.random.stateless_uniform([global_batch, 3], seed=seed)[first : first + batch]
    if pre.crop:
        pad_h, pad_w = max(1, int(h * pre.crop_padding)), max(1, int(w * pre.crop_padding))
        padded = tf.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        top = tf.cast(u[:, 0] * (2 * pad_h + 1), tf.int32)
        left = tf.cast(u[:, 1] * (2 * pad_w + 1), tf.int32)
        rows = top[:, None] + tf.range(h)[None]
        cols = left[:, None] + tf.range(w)[None]
        images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    if pre.flip:
        images = tf.where((u[:, 2] < 0.5)[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


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
    if getattr(split, "streamed", False):  # record files (TFRecord, TFDS): recipes.streams
        from recipes import streams

        return streams.record_batches(
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
        images = _augment_batch(
            images, tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)]), pre, batch_size, first
        )
        out = (_features(images, pre), _label(labels, num_classes, label_fn))
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
        _prepare(tf.constant(x), pre)
        if x.ndim == 4
        else tf.constant(x, dtype=tf.float32 if x.dtype == np.uint8 else x.dtype)
    )


def eval_batches(
    split: Split, *, batch_size: int, pre: Preprocess = Preprocess(), num_classes=None, label_fn=None
):
    """Validation/test batches in a fixed order, preprocessed once and cached (streamed files are
    read again each time: a cache would hold the whole split); unweighted (class weights shape
    training only, so validation loss stays comparable across settings)."""
    if getattr(split, "streamed", False):
        from recipes import streams

        return streams.eval_records(
            split, batch_size=batch_size, pre=pre, num_classes=num_classes, label_fn=label_fn
        )
    pre = dataclasses.replace(pre, crop=False, flip=False)
    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    ds = ds.map(
        lambda a, b: (
            _features(_prepare(_read(a, split), pre, evaluation=True), pre),
            _label(b, num_classes, label_fn),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return (ds if split.files else ds.cache()).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _features(x, pre: Preprocess):
    if pre.mean is not None:
        x = x - tf.constant(pre.mean, x.dtype)
    if pre.std is not None:
        x = x / tf.constant(pre.std, x.dtype)
    return bert_inputs(x) if pre.bert_inputs else x


def _label(y, num_classes, label_fn):
    if num_classes is not None:
        y = tf.one_hot(y, num_classes)
    return label_fn(y) if label_fn else y


def steps_per_epoch(n: int, batch_size: int) -> int:
    steps = n // batch_size
    if steps == 0:
        raise DataError(f"batch_size {batch_size} is larger than the training set ({n} examples).")
    return steps
