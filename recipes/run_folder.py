"""A finished run's folder, read once by every tool that works on it (evaluate, predict,
quantize, explain): its config, its model, the preprocessor it saved and its test split.

The test split is the run's own: the same data set, seed and class selection give the same
examples (``recipes.data``: splits depend on the data and the seed only), tokenized with the
run's saved vocabulary, and prepared by the run's saved preprocessor, not by one rebuilt from
today's defaults.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from recipes.data import pipeline
from recipes.data.preprocessor import FILE, VOCABULARY, Preprocessor
from recipes.trainer import batch_options, load_data, load_run


class RunFolder:
    """``RunFolder(path)``: the config and model now (``compile=False``: the weights alone);
    the preprocessor, data and test batches when first asked for."""

    def __init__(self, path, *, compile: bool = True):
        self.path = Path(path)
        self.cfg, self.model = load_run(self.path, compile=compile)

    @functools.cached_property
    def _loaded(self):
        """The data set as the run split it, text tokenized with the run's own vocabulary."""
        cfg = self.cfg
        if (self.path / VOCABULARY).is_file():
            cfg = dataclasses.replace(cfg, vocabulary_file=str(self.path / VOCABULARY), init_from=None)
        return load_data(cfg)

    @property
    def data(self):
        return self._loaded[0]

    @functools.cached_property
    def preprocessor(self) -> Preprocessor:
        """The saved preprocessor; a run folder written before it was saved gets the one its
        config gives."""
        if (self.path / FILE).is_file():
            return Preprocessor.load(self.path)
        return Preprocessor.of(*self._loaded)

    @property
    def class_names(self) -> list:
        return list(self.preprocessor.class_names)

    def test_batches(self, batch_size: int | None = None):
        """The test split, batched and prepared as the run evaluated it, one-hot labelled."""
        pre = self.preprocessor.evaluation()
        options = batch_options(self.data, pre, len(self.model.outputs))
        return pipeline.eval_batches(self.data.test, batch_size=batch_size or self.cfg.batch_size, **options)
