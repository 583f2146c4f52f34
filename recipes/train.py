"""Train a zoo model: ``python -m recipes.train MODEL [--dataset NAME] [--epochs N] [--set key=value ...]``.

The recipe ``recipes/configs/<model>_<dataset>.yaml`` is used when it exists; flags override it.
Running the same command again resumes an interrupted run and does nothing for a finished one.
Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from recipes.cli import run, select_backend

FLAGS = (
    "dataset",
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "backend",
    "strategy",
    "distribution",
    "mesh",
    "run_dir",
    "data_path",
    "data_dir",
    "data_service",
    "image_size",
    "seed",
)


def build_parser(
    prog="python -m recipes.train",
    positional: str = "a registered model name, e.g. alexnet, lenet5, resnet18",
    description: str = "Train a zoo model on a data set.",
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("model", help=positional)
    p.add_argument(
        "--config", help="a recipe YAML (default: recipes/configs/<model>_<dataset>.yaml if present)"
    )
    p.add_argument("--dataset")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--learning-rate", dest="learning_rate", type=float)
    p.add_argument("--optimizer")
    p.add_argument("--backend", help="tensorflow, jax or torch (default: KERAS_BACKEND, else tensorflow)")
    p.add_argument("--strategy")
    p.add_argument(
        "--distribution",
        help="JAX keras.distribution: data_parallel or model_parallel (see README: scaling out)",
    )
    p.add_argument(
        "--mesh",
        metavar="BATCHxMODEL",
        help="model_parallel's device mesh, e.g. 2x4 (default: all devices on the batch axis)",
    )
    p.add_argument("--run-dir", dest="run_dir")
    p.add_argument("--data-path", dest="data_path")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument(
        "--data-service",
        dest="data_service",
        metavar="local|grpc://HOST:PORT,...",
        help="build the training batches in tf.data service workers (local: in this process; see README)",
    )
    p.add_argument("--image-size", dest="image_size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field; the value is read as YAML",
    )
    return p


def main(argv=None, prog="python -m recipes.train") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    select_backend(argv)
    args = build_parser(prog).parse_args(argv)

    def go():
        import modelzoo
        from recipes import config as config_lib
        from recipes.tasks import classify, translate

        overrides = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        cfg = config_lib.resolve(args.model, config_file=args.config, overrides=overrides)
        translating = modelzoo.get_entry(cfg.model).task == "translation"
        return (translate.train if translating else classify.train)(cfg)

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
