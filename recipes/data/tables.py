"""A CSV table with a label column (pandas); with ``text_column`` set, a text
classification table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelzoo.validation import did_you_mean
from recipes.data.base import Data, DataError, standardize, stratified_split


def load_csv(path: Path, label_column, val_fraction, test_fraction, seed, text_column=None) -> Data:
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
        return Data(
            path.stem, "text", *stratified_split(x, y, val_fraction, test_fraction, seed), len(names), names
        )
    features = pd.get_dummies(frame, dtype="float32")  # one-hot any text column
    if features.shape[1] == 0:
        raise DataError(f"CSV {str(path)!r} has no feature columns besides {label_column!r}.")
    x = features.to_numpy(dtype="float32")
    if np.isnan(x).any():
        raise DataError(f"CSV {str(path)!r} has missing values; fill or drop them first.")
    y = labels.cat.codes.to_numpy().astype("int64")
    names = [str(c) for c in labels.cat.categories]
    train, val, test = standardize(*stratified_split(x, y, val_fraction, test_fraction, seed))
    return Data(path.stem, "tabular", train, val, test, len(names), names)
