"""Parallel text for translation: (source, target) sentence pairs in train, validation and test
splits that depend on the data set and the seed only.

Sources:

* ``numbers_de_en`` (embedded, no download): German number words to English ones, generated with
  ``num2words`` for 12,000 distinct numbers below a million (a fixed draw: the set is the set),
  split by number, seeded, 10,000 / 1,000 / 1,000, so the test numbers are unseen. German writes a
  number as one word with its units before its tens ("dreihundertzweiundvierzig", three hundred
  two-and-forty): SentencePiece cuts it into pieces, and the translator must reorder them. (English is
  the target because BLEU counts words: a one-word German target has no 2-grams to match.)
* ``csv``: a table with a source and a target column (``languages``, default the first two),
  split seeded 80 / 10 / 10.
* ``text_pairs``: two line-aligned files ``PREFIX.SRC`` and ``PREFIX.TGT`` (``data_path: PREFIX``,
  ``languages: [SRC, TGT]``, fairseq's layout), split seeded 80 / 10 / 10.
* TFDS translation sets (``wmt14_translate/de-en``, ``ted_hrlr_translate/pt_to_en``, ...) through
  their own builders: their train, validation and test splits, the source and target the set's
  supervised keys unless ``languages`` names them (``[en, de]`` for the paper's direction).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from modelzoo.validation import did_you_mean
from recipes.data.base import DataError

NUMBERS = ("numbers_de_en",)
NUMBER_COUNT, NUMBER_LIMIT, NUMBER_HELD = 12_000, 1_000_000, 1_000


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Sentence pairs: each split a (sources, targets) pair of equal-length lists."""

    name: str
    languages: tuple[str, str]
    train: tuple[list[str], list[str]]
    val: tuple[list[str], list[str]]
    test: tuple[list[str], list[str]]

    def sizes(self) -> dict[str, int]:
        return {split: len(getattr(self, split)[0]) for split in ("train", "val", "test")}


def load_pairs(name: str, *, path=None, languages=None, data_dir=None, seed: int = 0) -> Pairs:
    """The named set's pairs (see the module doc); a ``DataError`` with one line otherwise."""
    languages = _check_languages(languages)
    if name == "numbers_de_en":
        german, english = number_words("de"), number_words("en")
        return _split(name, ("de", "en"), german, english, seed, held=NUMBER_HELD)
    if name == "csv":
        return _csv(_need(path, name), languages, seed)
    if name == "text_pairs":
        return _files(_need(path, name), languages, seed)
    if "translate" in name:
        return _tfds(name, languages, data_dir)
    raise DataError(
        f"unknown translation set {name!r}; built in: {', '.join(NUMBERS)}; also csv, text_pairs and "
        "TFDS translation sets (wmt14_translate/de-en, ted_hrlr_translate/pt_to_en)."
        + did_you_mean(name, [*NUMBERS, "text_pairs"])
    )


def number_words(language: str) -> list[str]:
    """The embedded set's numbers in ``language``'s words (num2words), in the set's order."""
    return list(_number_words(language))


@functools.cache  # 1.2 s a language: a process's later runs (a search's trials) reuse them
def _number_words(language: str) -> tuple[str, ...]:
    from num2words import num2words

    numbers = np.random.RandomState(0).choice(NUMBER_LIMIT, NUMBER_COUNT, replace=False)
    return tuple(num2words(int(n), lang=language) for n in numbers)


def _check_languages(languages) -> tuple[str, str] | None:
    if languages is None:
        return None
    if (
        not isinstance(languages, list | tuple)
        or len(languages) != 2
        or not all(isinstance(x, str) and x for x in languages)
    ):
        raise DataError(f"languages must be two names, source then target, e.g. [en, de]; got {languages!r}.")
    return tuple(languages)


def _need(path, name) -> Path:
    if not path:
        raise DataError(f"dataset {name!r} needs data_path (--data-path).")
    return Path(path)


def _split(name, languages, sources, targets, seed, held=None) -> Pairs:
    """A seeded split of one list of pairs: ``held`` each for validation and test (default 10%)."""
    if len(sources) != len(targets):
        raise DataError(f"{name!r}: {len(sources)} source lines but {len(targets)} target lines.")
    held = held or max(1, len(sources) // 10)
    if len(sources) < 2 * held + 1:
        raise DataError(
            f"{name!r} holds {len(sources)} pairs; it needs at least 3 (train, validation, test)."
        )
    order = np.random.RandomState(seed).permutation(len(sources))

    def take(rows):
        return [sources[i] for i in rows], [targets[i] for i in rows]

    return Pairs(
        name, tuple(languages), take(order[2 * held :]), take(order[:held]), take(order[held : 2 * held])
    )


def _csv(path: Path, languages, seed) -> Pairs:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:  # pandas raises many types for a bad file
        raise DataError(f"cannot read CSV {str(path)!r}: {err}") from None
    columns = list(frame.columns)
    languages = languages or tuple(columns[:2])
    missing = [c for c in languages if c not in columns]
    if len(columns) < 2 or missing:
        raise DataError(
            f"CSV {str(path)!r} needs a source and a target column; languages {list(languages)}, "
            f"columns {columns}." + (did_you_mean(missing[0], columns) if missing else "")
        )
    return _split(path.stem, languages, *(frame[c].tolist() for c in languages), seed)


def _files(prefix: Path, languages, seed) -> Pairs:
    if languages is None:
        raise DataError(
            "dataset 'text_pairs' needs languages: [SRC, TGT], the suffixes of PREFIX.SRC and PREFIX.TGT."
        )
    sides = []
    for language in languages:
        path = prefix.with_name(f"{prefix.name}.{language}")
        if not path.is_file():
            raise DataError(
                f"text_pairs: {str(path)!r} does not exist (data_path PREFIX, files PREFIX.SRC/.TGT)."
            )
        try:
            sides.append(path.read_text(encoding="utf-8").splitlines())
        except UnicodeDecodeError as err:
            raise DataError(
                f"text_pairs: {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})."
            ) from None
    return _split(prefix.name, languages, *sides, seed)


def _tfds(name: str, languages, data_dir) -> Pairs:
    from recipes.data.tfds_sets import tfds_builder

    builder = tfds_builder(name, data_dir)
    keys = languages or tuple(builder.info.supervised_keys)
    missing = [k for k in keys if k not in builder.info.features]
    if missing:
        raise DataError(f"{name!r} has no language {missing[0]!r}; it has {sorted(builder.info.features)}.")
    builder.download_and_prepare()
    splits = {"train": "train", "val": "validation", "test": "test"}
    return Pairs(name, keys, *(_tfds_split(builder, split, keys) for split in splits.values()))


def _tfds_split(builder, split: str, keys) -> tuple[list[str], list[str]]:
    import tensorflow_datasets as tfds

    rows = tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))
    sources, targets = [], []
    for row in rows:
        sources.append(row[keys[0]].decode("utf-8"))
        targets.append(row[keys[1]].decode("utf-8"))
    return sources, targets
