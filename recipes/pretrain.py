"""Masked-language-model pretraining of a zoo BERT (Devlin et al. 2018, section 3.1).

``python -m recipes.pretrain bert_tiny [--epochs N] [--set key=value ...]``

15% of each sequence's tokens are chosen; of those 80% become ``[MASK]``, 10% a random token and
10% stay, and the model predicts the original token at every chosen position (its masked-LM head
ties the output to the token embedding). No next-sentence task (as in RoBERTa).

Corpora: ``wikipedia`` (TFDS), ``text_files`` (your ``.txt``), and the default ``stdlib_corpus``,
which ships with Python: the language reference's topics
(``pydoc_data.topics``) and every docstring of the standard library outside the packages that
``stdlib_docs`` labels, so the fine-tuning test set is never seen here. A WordPiece vocabulary is
learned from it and written to the run folder (``vocab.txt``) for ``recipes.finetune``.

Masks are drawn per epoch from a generator seeded by (seed, epoch), so a run resumed mid-epoch
(same checkpoints as ``recipes.train``) sees exactly the masks it would have seen. The held-out
10% of sequences carries one fixed mask; ``summary.json`` reports its loss and masked-token
accuracy against the most-frequent-token baseline.
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
    import sysconfig

    import pydoc_data.topics

    from recipes.data import DOC_PACKAGES

    texts = [t for t in pydoc_data.topics.topics.values()]
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in DOC_PACKAGES or parts[0] in ("test", "idlelib", "site-packages", "lib2to3") or "tests" in parts:
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


def load_corpus(name: str, *, data_dir: str | None = None, path: str | None = None, max_documents: int = 200_000) -> list[str]:
    """Unlabelled text by name: the embedded ``stdlib_corpus``; ``wikipedia`` (TFDS, its real
    ``tfds.load``; at most ``max_documents`` articles); ``text_files`` (``path``: a ``.txt`` file or a
    folder of them, one document per blank-line-separated paragraph)."""
    from recipes.data import DataError

    if name == "stdlib_corpus":
        return stdlib_corpus()
    if name == "text_files":
        if not path or not Path(path).exists():
            raise DataError(f"corpus 'text_files' needs data_path (a .txt file or a folder of them), got {path!r}.")
        files = [Path(path)] if Path(path).is_file() else sorted(Path(path).rglob("*.txt"))
        docs = [p.strip() for f in files for p in f.read_text(encoding="utf-8", errors="replace").split("\n\n") if p.strip()]
        if not docs:
            raise DataError(f"data_path {path!r} holds no text.")
        return docs
    if name == "wikipedia" or name.startswith("wikipedia/"):
        import tensorflow_datasets as tfds

        try:
            ds = tfds.load(WIKIPEDIA if name == "wikipedia" else name, split="train", data_dir=data_dir)
        except Exception as err:  # tfds raises many kinds for a missing or unprepared set
            raise DataError(f"cannot load TFDS corpus {name!r}: {str(err).splitlines()[0]}") from None
        docs = [ex["text"].decode("utf-8") for ex in tfds.as_numpy(ds.take(max_documents))]
        if not any(d.strip() for d in docs):
            raise DataError(f"TFDS corpus {name!r} holds no text.")
        return docs
    from modelzoo.validation import did_you_mean

    raise DataError(f"pretraining corpus must be one of {list(CORPORA)}, got {name!r}." + did_you_mean(name, CORPORA))


def sequences(texts, vocabulary, sequence_length: int) -> np.ndarray:
    """The corpus as one token stream cut into ``[CLS] ... [SEP]`` rows of ``sequence_length``."""
    import keras_hub

    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True, dtype="int32")
    import itertools

    from recipes.data import DataError

    pieces = tokenizer(list(texts)) if len(texts) else []  # eager keras-hub tokenizers return lists of ids
    stream = np.fromiter(itertools.chain.from_iterable(pieces), dtype="int32")
    body = sequence_length - 2
    if len(stream) < 2 * body:
        raise DataError(f"the corpus holds {len(stream)} tokens; pretraining needs at least two sequences of "
                        f"{body} (sequence_length={sequence_length} minus [CLS] and [SEP]).")  # fmt: skip
    rows = stream[: len(stream) // body * body].reshape(-1, body)
    cls, sep = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
    return np.concatenate([np.full((len(rows), 1), cls, "int32"), rows, np.full((len(rows), 1), sep, "int32")], axis=1)


def mask(ids: np.ndarray, *, rng: np.random.RandomState, vocabulary_size: int, special: list[int], mask_id: int, max_predictions: int):
    """BERT's masking of ``ids`` (rows of token ids): inputs, positions, targets and weights."""
    n, length = ids.shape
    scores = rng.rand(n, length)
    scores[np.isin(ids, special)] = 2.0  # never chosen
    positions = np.argsort(scores, axis=1)[:, :max_predictions].astype("int32")
    choosable = (~np.isin(ids, special)).sum(1)
    wanted = np.maximum(1, np.round(choosable * MASK_RATE)).astype(int)
    weights = (np.arange(max_predictions)[None] < np.minimum(wanted, max_predictions)[:, None]).astype("float32")
    targets = np.take_along_axis(ids, positions, axis=1)
    action = rng.rand(n, max_predictions)
    random_tokens = rng.randint(len(special), vocabulary_size, size=(n, max_predictions))
    replaced = np.where(action < MASK_TOKEN_RATE, mask_id, np.where(action < MASK_TOKEN_RATE + RANDOM_TOKEN_RATE, random_tokens, targets))
    inputs = ids.copy()
    rows = np.repeat(np.arange(n)[:, None], max_predictions, axis=1)
    chosen = weights > 0
    inputs[rows[chosen], positions[chosen]] = replaced[chosen]
    return inputs, positions, targets.astype("int32"), weights


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

        overrides = {"dataset": "stdlib_corpus", "optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 0.01,
                     "schedule": "cosine", "warmup_epochs": 1, "epochs": 10, "batch_size": 32}  # fmt: skip
        overrides.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        overrides.setdefault("run_dir", str(Path("runs") / f"{args.model}_pretrain"))
        pretrain(config_lib.resolve(args.model, config_file=args.config, overrides=overrides))

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
