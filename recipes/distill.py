"""Knowledge distillation (Hinton et al. 2015) with Keras's own ``keras.distillation.Distiller``:
``python -m recipes.distill TEACHER_RUN STUDENT [--temperature 4] [--distill-weight 0.9]
[--targets soft|hard] [--token] [--set ...]`` (each is a config field too, so a recipe YAML can hold
them).

The teacher is a finished run folder (its model, frozen; its data set unless ``--dataset`` says
otherwise); the student is any zoo model, built at the teacher's input size unless ``image_size``
says otherwise (then the teacher sees each batch resized to its own input, in the graph). The student
learns from the labels (weight ``1 - distill_weight``) and from the teacher's logits softened by
``temperature`` (``keras.distillation.LogitsDistillation``, weight ``distill_weight``). Training
runs on the recipes' machinery (strategy, checkpoints and exact resume, run folder); the run's
``model.keras`` is the student alone, with the usual softmax output.

DeiT (Touvron et al. 2021): ``--targets hard`` learns the teacher's top class instead of its soft
distribution; ``--token`` gives a ViT student DeiT's distillation token, whose head alone learns
from the teacher (``recipes.tasks.distill``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from recipes.cli import run, select_backend


def distill(cfg, teacher_run) -> dict:
    """Train ``cfg.model`` as a student of the run in ``teacher_run`` through the run loop
    (``recipes.tasks.distill``); return the summary."""
    from recipes import loop
    from recipes.tasks.distill import Distill

    return loop.run(Distill(cfg, teacher_run))


def _parser(prog):
    """The train command's flags, the teacher's run folder, the student and distillation's own."""
    from recipes.train import build_parser

    parser = build_parser(
        prog,
        positional="the teacher's run folder",
        description="Distil a finished run (the teacher) into a zoo model (the student).",
    )
    parser.add_argument("student", help="the student: a registered model name")
    parser.add_argument(
        "--temperature", type=float, help="softens both models' logits (config field temperature, default 4)"
    )
    parser.add_argument(
        "--distill-weight",
        dest="distill_weight",
        type=float,
        help="weight of the distillation loss; the labels get 1 minus it (default 0.9)",
    )
    parser.add_argument(
        "--targets",
        dest="distill_targets",
        choices=("soft", "hard"),
        help="the teacher's softened distribution (soft, default) or its top class (hard, DeiT's)",
    )
    parser.add_argument(
        "--token",
        dest="distill_token",
        action="store_const",
        const=True,
        help="a ViT student learns from the teacher through DeiT's distillation token",
    )
    return parser


def main(argv=None, prog="python -m recipes.distill") -> int:
    from recipes.train import FLAGS

    argv = list(sys.argv[1:] if argv is None else argv)
    select_backend(argv)
    args = _parser(prog).parse_args(argv)

    def go():
        from modelzoo.validation import UserError
        from recipes import config as config_lib

        teacher = Path(args.model)
        if not (teacher / "config.yaml").is_file():
            raise UserError(f"{str(teacher)!r} is not a run folder (no config.yaml).")
        taught = config_lib.load_yaml(teacher / "config.yaml")
        from recipes.tasks.distill import SAME_SPLIT

        overrides = {field: taught.get(field) for field in SAME_SPLIT if field in taught}
        overrides.update(
            {
                k: getattr(args, k)
                for k in (*FLAGS, "temperature", "distill_weight", "distill_targets", "distill_token")
                if getattr(args, k) is not None
            }
        )
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        overrides.setdefault("run_dir", str(teacher.parent / f"{args.student}_distilled_from_{teacher.name}"))
        return distill(
            config_lib.resolve(args.student, config_file=args.config, overrides=overrides), teacher
        )

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
