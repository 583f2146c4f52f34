"""Masked-language-model pretraining of a zoo BERT (Devlin et al. 2018, section 3.1).

``python -m recipes.pretrain bert_tiny [--epochs N] [--set key=value ...]``

15% of each sequence's tokens are chosen; of those 80% become ``[MASK]``, 10% a random token and
10% stay, and the model predicts the original token at every chosen position (its masked-LM head
ties the output to the token embedding). No next-sentence task (as in RoBERTa).

Corpora: ``wikipedia`` (TFDS, or any TFDS text set), ``text_files`` (your ``.txt``), and the
default ``stdlib_corpus``, which ships with Python: the language reference's topics
(``pydoc_data.topics``) and every docstring of the standard library outside the packages that
``stdlib_docs`` labels, so the fine-tuning test set is never seen here. A WordPiece vocabulary is
learned from it and written to the run folder (``vocab.txt``) for ``recipes.finetune``. A corpus
too large for memory (``streaming: auto`` decides by size, or ``true``) is streamed from its files
and tokenized in the pipeline (``recipes.corpus``).

Masks are drawn in the graph from (seed, step) for each global batch, whose rows are the epoch's
seeded order, so a run resumed mid-epoch (same checkpoints as ``recipes.train``) sees exactly the
masks it would have seen. The held-out 10% of sequences carries one fixed mask; ``summary.json``
reports its loss and masked-token accuracy against the most-frequent-token baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from recipes.cli import run, select_backend

MASK_RATE, MASK_TOKEN_RATE, RANDOM_TOKEN_RATE = 0.15, 0.8, 0.1


def stdlib_corpus() -> list[str]:
    """Real English about Python that ships with Python: reference topics and docstrings."""
    import ast
    import pydoc_data.topics
    import sysconfig

    from recipes.data import DOC_PACKAGES

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
    return texts


WIKIPEDIA = "wikipedia/20230601.en"
CORPORA = ("stdlib_corpus", "wikipedia", "text_files")


def load_corpus(
    name: str, *, data_dir: str | None = None, path: str | None = None, max_documents: int = 200_000
) -> list[str]:
    """Unlabelled text by name, in memory: the embedded ``stdlib_corpus``; ``wikipedia`` or another
    TFDS text set (its builder's ``train`` split; at most ``max_documents`` documents);
    ``text_files`` (``path``: a ``.txt`` file or a folder of them, one document per
    blank-line-separated paragraph)."""
    from recipes.data import DataError

    if name == "stdlib_corpus":
        return stdlib_corpus()
    from recipes import corpus

    if name == "text_files":
        files = corpus.text_files(path).files
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

    builder = corpus.tfds_builder(name, data_dir)
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

    from recipes.data import DataError, packer, word_piece

    tokenizer = word_piece(vocabulary)

    pieces = tokenizer(list(texts)) if len(texts) else []  # eager keras-hub tokenizers return lists of ids
    stream = np.fromiter(itertools.chain.from_iterable(pieces), dtype="int32")
    body = sequence_length - 2
    if len(stream) < 2 * body:
        raise DataError(
            f"the corpus holds {len(stream)} tokens; pretraining needs at least two sequences of "
            f"{body} (sequence_length={sequence_length} minus [CLS] and [SEP])."
        )
    rows = stream[: len(stream) // body * body].reshape(-1, body)
    return np.asarray(packer(vocabulary, sequence_length)(rows), dtype="int32")


def mask(
    ids, seed, *, vocabulary_size: int, special: list[int], mask_id: int, max_predictions: int, rows=None
):
    """BERT's masking of a batch of token-id rows (int32 ``[n, length]``), in the graph: inputs,
    positions, targets and weights. Drawn from the stateless ``seed`` (two integers) for a global
    batch of ``rows=(total, first)`` rows of which these are rows ``first`` on (default: the whole
    batch), so a row's mask does not depend on how the batch is split over replicas."""
    import tensorflow as tf

    ids = tf.convert_to_tensor(ids, tf.int32)
    n, length = tf.shape(ids)[0], tf.shape(ids)[1]
    total, first = rows or (n, 0)
    first = tf.cast(first, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    def draw(i, width, **kw):  # the global batch's numbers, this slice's rows
        return tf.random.stateless_uniform([total, width], seeds[i], **kw)[first : first + n]

    is_special = tf.reduce_any(ids[..., None] == tf.constant(special, tf.int32), axis=-1)
    scores = tf.where(is_special, 2.0, draw(0, length))  # never chosen
    positions = tf.argsort(scores, axis=1, stable=True)[:, :max_predictions]
    wanted = tf.maximum(1.0, tf.round(tf.reduce_sum(tf.cast(~is_special, tf.float32), axis=1) * MASK_RATE))
    weights = tf.cast(
        tf.range(max_predictions, dtype=tf.float32)[None] < tf.minimum(wanted, max_predictions)[:, None],
        tf.float32,
    )
    targets = tf.gather(ids, positions, batch_dims=1)
    action = draw(1, max_predictions)
    random_tokens = draw(2, max_predictions, minval=len(special), maxval=vocabulary_size, dtype=tf.int32)
    replaced = tf.where(
        action < MASK_TOKEN_RATE,
        mask_id,
        tf.where(action < MASK_TOKEN_RATE + RANDOM_TOKEN_RATE, random_tokens, targets),
    )
    at = tf.stack([tf.repeat(tf.range(n)[:, None], max_predictions, axis=1), positions], axis=-1)
    inputs = tf.tensor_scatter_nd_update(ids, at, tf.where(weights > 0, replaced, targets))
    return inputs, positions, targets, weights


def pretrain(cfg) -> dict:
    """Pretrain ``cfg.model`` (a BERT) with masked LM through the run loop; resumable; the summary."""
    from recipes import loop
    from recipes.tasks.masked_lm import MaskedLM

    return loop.run(MaskedLM(cfg))


def main(argv=None, prog="python -m recipes.pretrain") -> int:
    from recipes.train import build_parser

    argv = list(sys.argv[1:] if argv is None else argv)
    select_backend(argv)
    args = build_parser(prog, description="Masked-LM pretraining of a zoo BERT.").parse_args(argv)

    def go():
        from recipes import config as config_lib
        from recipes.train import FLAGS

        overrides = {
            "dataset": "stdlib_corpus",
            "optimizer": "adamw",
            "learning_rate": 1e-3,
            "weight_decay": 0.01,
            "schedule": "cosine",
            "warmup_epochs": 1,
            "epochs": 10,
            "batch_size": 32,
        }
        overrides.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        overrides.setdefault("run_dir", str(Path("runs") / f"{args.model}_pretrain"))
        pretrain(config_lib.resolve(args.model, config_file=args.config, overrides=overrides))

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
