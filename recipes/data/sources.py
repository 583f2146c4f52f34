"""A data set by name, from whichever source holds it, as a ``base.Data``."""

from __future__ import annotations

from pathlib import Path

from recipes.data.base import Data, DataError, memory_budget
from recipes.data.embedded import EMBEDDED, load_embedded
from recipes.data.folder import load_folder
from recipes.data.records import load_records
from recipes.data.tables import load_csv
from recipes.data.tfds_sets import load_tfds


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
        return load_embedded(name, val_fraction, test_fraction, seed)
    if name == "folder":
        return load_folder(
            _need_path(name, path), val_fraction, test_fraction, seed, streaming, memory_budget_gb, bad_images
        )
    if name == "csv":
        return load_csv(_need_path(name, path), label_column, val_fraction, test_fraction, seed, text_column)
    if name == "tfrecord":
        path = _need_path(name, path)
        if streaming is False:
            raise DataError(
                "dataset 'tfrecord' always streams its files; streaming: false is for folders and TFDS sets."
            )
        return load_records(path, val_fraction, test_fraction, seed, memory_budget(memory_budget_gb))
    return load_tfds(name, data_dir, val_fraction, seed, streaming, memory_budget_gb)


def _need_path(name, path):
    if not path:
        what = {"folder": "folder", "csv": "CSV file", "tfrecord": "folder of TFRecord files"}[name]
        raise DataError(f"dataset {name!r} needs data_path (a {what}).")
    if not Path(path).exists():
        raise DataError(f"data_path {str(path)!r} does not exist.")
    return Path(path)
