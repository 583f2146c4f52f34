"""Data sets that ship with an installed package, so they need no download: ``digits``
(scikit-learn's 1,797 handwritten 8x8 digits, images), ``breast_cancer`` and ``wine`` (tabular)
and ``stdlib_docs`` (docstrings of six standard-library packages, labelled by package).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from recipes.data.base import Data, DataError, standardize, stratified_split

EMBEDDED = ("digits", "breast_cancer", "wine", "stdlib_docs")


# stdlib_docs: docstrings of these standard-library packages, labelled by the package they are in.
DOC_PACKAGES = ("asyncio", "email", "logging", "multiprocessing", "unittest", "xml")


def stdlib_docstrings() -> tuple[list[str], np.ndarray]:
    """Every docstring of five words or more in ``DOC_PACKAGES`` (read with ``ast`` from the
    standard library's source, which ships with Python), labelled by its package; read once per
    process."""
    texts, labels = _stdlib_docstrings()
    return list(texts), np.asarray(labels, dtype="int64")


@functools.cache
def _stdlib_docstrings() -> tuple[tuple[str, ...], tuple[int, ...]]:
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
    return tuple(texts), tuple(labels)


def load_embedded(name, val_fraction, test_fraction, seed) -> Data:
    import sklearn.datasets as skd

    if name == "stdlib_docs":
        texts, y = stdlib_docstrings()
        x = np.empty(len(texts), dtype=object)
        x[:] = texts
        train, val, test = stratified_split(x, y, val_fraction, test_fraction, seed)
        return Data(name, "text", train, val, test, len(DOC_PACKAGES), list(DOC_PACKAGES))
    if name == "digits":
        bunch = skd.load_digits()
        x = (bunch.images / 16.0).astype("float32")[..., None]  # 8x8x1 in [0, 1]
        kind, names = "image", [str(c) for c in bunch.target_names]
    else:
        bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
        x, kind, names = bunch.data.astype("float32"), "tabular", [str(c) for c in bunch.target_names]
    y = bunch.target.astype("int64")
    train, val, test = stratified_split(x, y, val_fraction, test_fraction, seed)
    if kind == "tabular":
        train, val, test = standardize(train, val, test)
    return Data(name, kind, train, val, test, len(names), names, flip_ok=False)
