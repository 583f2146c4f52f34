"""Unlabelled text for masked-language-model pretraining.

The file corpora, ``text_files`` (``.txt`` files) and TFDS text sets (``wikipedia``), have one
split whatever the medium: a file's text is read line by line (TFDS's shard files record by
record), tokenized, and its token stream cut into ``[CLS] ... [SEP]`` rows (a row never spans two
files); every 10th row of each file is held out, and the first ``HELD_OUT`` of those are the
validation set. The vocabulary is learned from a sample of ``VOCABULARY_SAMPLE`` bytes. Streamed
(``streaming: auto`` when the text is larger than the memory budget allows, or ``true``), the
training rows are read and tokenized in the pipeline; in memory, the same rows are read once
into an array. One pass at the start (``count``) reads the corpus once: each file's rows, the
training tokens' frequencies (the report's baseline) and the held-out rows; the run folder
keeps it, so a resumed run does not count again.

The embedded ``stdlib_corpus`` (the language reference's topics and standard-library docstrings
outside the packages ``stdlib_docs`` labels) is built in memory from many short texts, packed
into one token stream (``sequences``), a seeded 10% of its rows held out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes.data.base import IN_MEMORY, DataError, Progress, choose_medium
from recipes.data.embedded import DOC_PACKAGES
from recipes.data.records import Records, interleaved, shuffle_buffer
from recipes.data.text import packer, word_piece
from recipes.data.tfds_sets import prepare_tfds

# the in-memory path's peak bytes per byte of text (measured 3.6: benchmarks, corpus)
MEMORY_PER_TEXT_BYTE = 4


VOCABULARY_SAMPLE = 16 * 2**20  # bytes of text (16 MB: about a minute of keras-hub's learner on 2 cores)


SAMPLE_FILES = 64


HELD_OUT = 4096  # validation rows at most


HOLD_OUT_EVERY = 10


TFDS_TEXT_KEY = "text"


WIKIPEDIA = "wikipedia/20230601.en"


CORPORA = ("stdlib_corpus", "wikipedia", "text_files")


def stdlib_corpus() -> list[str]:
    """Real English about Python that ships with Python: reference topics and docstrings (read
    once per process: parsing the standard library takes seconds, and its text never changes)."""
    return list(_stdlib_corpus())


@functools.cache
def _stdlib_corpus() -> tuple[str, ...]:
    import ast
    import pydoc_data.topics
    import sysconfig

    texts = [t for t in pydoc_data.topics.topics.values()]
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if (
            parts[0] in DOC_PACKAGES
            or parts[0] in ("test", "idlelib", "site-packages", "lib2to3")
            or "tests" in parts
        ):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 5:
                    texts.append(doc)
    return tuple(texts)


def load_corpus(
    name: str, *, data_dir: str | None = None, path: str | None = None, max_documents: int = 200_000
) -> list[str]:
    """Unlabelled text by name, in memory: the embedded ``stdlib_corpus``; ``wikipedia`` or another
    TFDS text set (its builder's ``train`` split; at most ``max_documents`` documents);
    ``text_files`` (``path``: a ``.txt`` file or a folder of them, one document per
    blank-line-separated paragraph)."""
    if name == "stdlib_corpus":
        return stdlib_corpus()
    if name == "text_files":
        files = text_files(path).files
        docs = [
            p.strip()
            for f in files
            for p in Path(f).read_text(encoding="utf-8", errors="replace").split("\n\n")
            if p.strip()
        ]
        if not docs:
            raise DataError(f"data_path {path!r} holds no text.")
        return docs
    import tensorflow_datasets as tfds

    builder = tfds_builder(name, data_dir)
    try:
        ds = builder.as_dataset(split="train")
    except Exception as err:  # tfds raises many kinds for a missing or unprepared set
        raise DataError(f"cannot load TFDS corpus {name!r}: {str(err).splitlines()[0]}") from None
    docs = [ex["text"].decode("utf-8") for ex in tfds.as_numpy(ds.take(max_documents))]
    if not any(d.strip() for d in docs):
        raise DataError(f"TFDS corpus {name!r} holds no text.")
    return docs


def sequences(texts, vocabulary, sequence_length: int) -> np.ndarray:
    """The corpus as one token stream cut into ``[CLS] ... [SEP]`` rows of ``sequence_length``."""
    import itertools

    tokenizer = word_piece(vocabulary)

    pieces = tokenizer(list(texts)) if len(texts) else []  # eager keras-hub tokenizers return lists of ids
    stream = np.fromiter(itertools.chain.from_iterable(pieces), dtype="int32")
    body = sequence_length - 2
    if len(stream) < 2 * body:
        raise too_short(len(stream), sequence_length)
    rows = stream[: len(stream) // body * body].reshape(-1, body)
    return np.asarray(packer(vocabulary, sequence_length)(rows), dtype="int32")


def too_short(tokens: int, sequence_length: int) -> DataError:
    """The error of a corpus whose ``tokens`` do not make two rows."""
    return DataError(
        f"the corpus holds {tokens} tokens; pretraining needs at least two sequences of "
        f"{sequence_length - 2} (sequence_length={sequence_length} minus [CLS] and [SEP])."
    )


def token_total(source: Source, vocabulary: list[str]) -> int:
    """Every token of a file corpus (one pass; for the error of a corpus too short for two rows)."""
    tokenizer = word_piece(vocabulary)
    lines = tf.data.Dataset.from_tensor_slices(source.files).flat_map(source.lines).batch(256)
    return int(sum(len(t) for t in lines.map(lambda b: tokenizer(b).flat_values).as_numpy_iterator()))


@dataclasses.dataclass
class Source:
    """A corpus's files and how to read one as lines of text; ``size`` its bytes of text."""

    name: str
    files: list[str]
    lines: object  # file (a string tensor) -> tf.data.Dataset of strings
    size: int


def text_files(path) -> Source:
    """A ``.txt`` file, or every ``.txt`` file under a folder (sorted)."""
    if not path or not Path(path).exists():
        raise DataError(
            f"corpus 'text_files' needs data_path (a .txt file or a folder of them), got {path!r}."
        )
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("*.txt"))
    files = [f for f in files if f.stat().st_size]
    if not files:
        raise DataError(f"data_path {str(path)!r} holds no text (.txt files).")
    return Source(
        str(path), [str(f) for f in files], tf.data.TextLineDataset, sum(f.stat().st_size for f in files)
    )


def tfds_text(builder, name: str) -> Source:
    """A prepared TFDS text set's ``train`` files (its own file instructions), read with the
    builder's feature parser; TFDS's size of the set."""
    info = builder.info
    if TFDS_TEXT_KEY not in info.features:
        raise DataError(
            f"TFDS data set {name!r} has no {TFDS_TEXT_KEY!r} feature to pretrain on (it has {list(info.features)})."
        )
    try:
        files = [str(fi.filename) for fi in info.splits["train"].file_instructions]
    except (KeyError, ValueError, AttributeError):
        files = []
    if not files or str(getattr(info, "file_format", "tfrecord")).split(".")[-1].lower() != "tfrecord":
        raise DataError(
            f"TFDS corpus {name!r}: its train split has no TFRecord files to stream (set streaming: false)."
        )
    features = info.features

    def lines(file):
        return tf.data.TFRecordDataset(file).map(lambda r: features.deserialize_example(r)[TFDS_TEXT_KEY])

    return Source(name, files, lines, int(info.dataset_size or 0))


def vocabulary_sample(source: Source) -> list[str]:
    """The lines the vocabulary is learned from: the first ``VOCABULARY_SAMPLE`` bytes of text,
    interleaved over the first ``SAMPLE_FILES`` files, in a fixed order."""
    files = source.files[:SAMPLE_FILES]
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        source.lines, cycle_length=len(files), block_length=1
    )
    lines, size = [], 0
    for line in ds.filter(lambda t: tf.strings.length(tf.strings.strip(t)) > 0).as_numpy_iterator():
        lines.append(line.decode("utf-8", errors="replace"))
        size += len(line)
        if size >= VOCABULARY_SAMPLE:
            break
    return lines


def row_reader(source: Source, vocabulary: list[str], sequence_length: int):
    """``rows(file)``: a file's ``(index, row)`` pairs, each row int32 ``[CLS] tokens [SEP]``."""
    tokenizer, pack = word_piece(vocabulary), packer(vocabulary, sequence_length)

    def rows(file):
        tokens = (
            source.lines(file)
            .batch(256)
            .map(lambda t: tokenizer(t).flat_values, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )
        body = tokens.rebatch(sequence_length - 2, drop_remainder=True)
        return body.map(pack).enumerate()

    return rows


def records(source: Source, rows, counts: list[int], budget: int, sequence_length: int) -> Records:
    """The training rows (all but every ``HOLD_OUT_EVERY``-th of each file) as a streamed split."""

    def training_rows(file):
        return rows(file).filter(lambda i, _: i % HOLD_OUT_EVERY != 0).map(lambda _, r: r)

    def open_files(files, shard, seed):
        return interleaved(files, shard, seed, training_rows)

    buffer = shuffle_buffer(budget, 4 * sequence_length)
    return Records(source.name, list(source.files), list(counts), open_files, buffer)


def count(source: Source, rows, vocabulary_size: int, *, keep_train: bool = False) -> dict:
    """One pass over the corpus: each file's training and held-out rows, the training tokens'
    counts, and the first ``HELD_OUT`` held-out rows (file after file); with ``keep_train``, the
    training rows too (``"train"``: a corpus held in memory reads them in the same pass)."""
    train, held, kept, rows_kept = [], [], [], []
    tokens = np.zeros(vocabulary_size, "int64")
    with Progress(f"counting the sequences of {source.name}", len(source.files), "files") as progress:
        for n, file in enumerate(source.files):
            n_train = n_held = 0
            for index, batch in rows(tf.constant(file)).batch(4096).prefetch(2).as_numpy_iterator():
                is_held = index % HOLD_OUT_EVERY == 0
                n_held += int(is_held.sum())
                n_train += int((~is_held).sum())
                tokens += np.bincount(batch[~is_held].ravel(), minlength=vocabulary_size)
                if sum(map(len, kept)) < HELD_OUT:
                    kept.append(batch[is_held])
                if keep_train:
                    rows_kept.append(batch[~is_held])
            train.append(n_train)
            held.append(n_held)
            progress.update(n + 1, f"{sum(train):,} training sequences")
    held_rows = np.concatenate(kept)[:HELD_OUT] if kept else np.zeros((0, 0), "int32")
    print(
        f"counted {source.name}: {sum(train):,} training and {sum(held):,} held-out sequences in "
        f"{len(source.files)} files "
        f"(kept in the run folder's corpus.json)"
    )
    counted = {"train_rows": train, "held_rows": held, "token_counts": tokens.tolist(), "held_out": held_rows}
    if keep_train:
        counted["train"] = np.concatenate(rows_kept).astype("int32") if rows_kept else held_rows[:0]
    return counted


def _key(source: Source, vocabulary: list[str], sequence_length: int) -> dict:
    import hashlib

    digest = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()
    return {"files": list(source.files), "sequence_length": sequence_length, "vocabulary_sha256": digest}


def load_count(run_dir: Path, source: Source, vocabulary: list[str], sequence_length: int) -> dict | None:
    """The count a run folder kept, if it is of these files, vocabulary and sequence length."""
    path = run_dir / "corpus.json"
    if not path.is_file() or not (run_dir / "held_out.npy").is_file():
        return None
    kept = json.loads(path.read_text())
    if {k: kept.get(k) for k in ("files", "sequence_length", "vocabulary_sha256")} != _key(
        source, vocabulary, sequence_length
    ):
        return None
    kept["held_out"] = np.load(run_dir / "held_out.npy")
    return kept


def save_count(
    run_dir: Path, counted: dict, source: Source, vocabulary: list[str], sequence_length: int
) -> None:
    np.save(run_dir / "held_out.npy", counted["held_out"])
    kept = {k: v for k, v in counted.items() if k not in ("held_out", "train")}
    (run_dir / "corpus.json").write_text(json.dumps({**kept, **_key(source, vocabulary, sequence_length)}))


def tfds_builder(name: str, data_dir: str | None):
    """The TFDS builder of a text corpus (``wikipedia`` is its newest English dump), prepared."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(WIKIPEDIA if name == "wikipedia" else name, data_dir=data_dir)
    except Exception:  # tfds raises DatasetNotFoundError and others
        from modelzoo.validation import did_you_mean

        raise DataError(
            f"pretraining corpus must be one of {list(CORPORA)} or a TFDS text set, got {name!r}."
            + did_you_mean(name, CORPORA)
        ) from None
    prepare_tfds(builder, name, data_dir, {})
    return builder


def corpus_source(name: str, *, data_dir=None, path=None) -> Source | None:
    """The files of a file corpus (``text_files``, a TFDS text set); None for ``stdlib_corpus``,
    which is built in memory from Python's own files."""
    if name == "stdlib_corpus":
        return None
    if name == "text_files":
        return text_files(path)
    return tfds_text(tfds_builder(name, data_dir), name)


def corpus_medium(source: Source | None, streaming="auto", memory_budget_gb=None) -> dict:
    """Stream a file corpus or hold its rows in memory (``streaming``; ``auto``: by its text times
    ``MEMORY_PER_TEXT_BYTE`` against the memory budget). Either way its rows, and which of them
    are held out, are the same: only where they live differs."""
    if source is None:
        if streaming is True:
            raise DataError(
                "corpus 'stdlib_corpus' is built in memory; streaming: true is for text_files and TFDS corpora."
            )
        return dict(IN_MEMORY)
    size = source.size * MEMORY_PER_TEXT_BYTE
    return choose_medium(streaming, size, memory_budget_gb, f"its text x {MEMORY_PER_TEXT_BYTE}")


def streamed_source(
    name: str, *, data_dir=None, path=None, streaming="auto", memory_budget_gb=None
) -> Source | None:
    """The corpus to stream, or None to hold it in memory (``corpus_medium``)."""
    if name == "stdlib_corpus" or streaming is False:
        corpus_medium(None, streaming)  # stdlib_corpus cannot stream
        return None
    source = corpus_source(name, data_dir=data_dir, path=path)
    streamed = corpus_medium(source, streaming, memory_budget_gb)["medium"] == "streamed"
    return source if streamed else None
