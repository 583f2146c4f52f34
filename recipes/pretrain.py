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
and tokenized in the pipeline (``recipes.data.corpus``). The task is ``recipes.tasks.masked_lm``.

Masks are drawn in the graph from (seed, step) for each global batch, whose rows are the epoch's
seeded order, so a run resumed mid-epoch (same checkpoints as ``recipes.train``) sees exactly the
masks it would have seen. The held-out 10% of sequences carries one fixed mask; ``summary.json``
reports its loss and masked-token accuracy against the most-frequent-token baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from recipes.cli import run, select_backend


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
        return pretrain(config_lib.resolve(args.model, config_file=args.config, overrides=overrides))

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
