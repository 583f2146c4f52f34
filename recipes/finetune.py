"""Fine-tune a pretrained run for classification: ``python -m recipes.finetune RUN_DIR [--dataset NAME] [...]``.

``RUN_DIR`` is a ``recipes.pretrain`` (or ``recipes.train``) run folder. The new model is the same
architecture with a classification head; every layer it shares with the saved model (same name,
same shapes: the whole BERT encoder) starts from the saved weights, and text is tokenized with
the run's own vocabulary at its sequence length. Everything else is ``recipes.train``: the same
flags, configs, run folder, checkpoints and resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

from recipes.cli import run, select_backend


def main(argv=None, prog="python -m recipes.finetune") -> int:
    from recipes.train import FLAGS, build_parser

    argv = list(sys.argv[1:] if argv is None else argv)
    select_backend(argv)
    parser = build_parser(
        prog,
        positional="the pretraining run folder (its config names the model)",
        description="Fine-tune a pretrained run folder on a labelled data set.",
    )
    args = parser.parse_args(argv)

    def go():
        from modelzoo.validation import UserError
        from recipes import config as config_lib
        from recipes.tasks.classify import train

        source = Path(args.model)
        if not (source / "config.yaml").is_file() or not (source / "model.keras").is_file():
            raise UserError(f"{str(source)!r} is not a finished run folder (config.yaml and model.keras).")
        pretrained = config_lib.load_yaml(source / "config.yaml")
        overrides = {
            "init_from": str(source),
            "sequence_length": pretrained.get("sequence_length", 128),
            "model_kwargs": pretrained.get("model_kwargs", {}),
            "dataset": "stdlib_docs",
        }
        overrides.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        overrides.setdefault(
            "run_dir", str(source.parent / f"{source.name}_finetune_{overrides['dataset'].replace('/', '_')}")
        )
        return train(config_lib.resolve(pretrained["model"], config_file=args.config, overrides=overrides))

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
