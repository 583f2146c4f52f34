"""Evaluate a finished run on its test split: ``python -m recipes.evaluate RUN_DIR``."""

from __future__ import annotations

import argparse
import json
import sys

from recipes.cli import run


def evaluate(run_dir) -> dict:
    from recipes.data import pipeline
    from recipes.trainer import batch_options, load_data, load_run, per_class_recall

    cfg, model = load_run(run_dir)
    data, pre = load_data(cfg)
    test = pipeline.eval_batches(
        data.test, batch_size=cfg.batch_size, **batch_options(data, pre, len(model.outputs))
    )
    results = model.evaluate(test, verbose=0, return_dict=True)
    recall = per_class_recall(model, test, data.class_names)
    return {k: float(v) for k, v in results.items()} | {
        "num_test": len(data.test),
        "recall_per_class": recall,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.evaluate", description=__doc__)
    p.add_argument("run_dir")
    args = p.parse_args(argv)
    return run(p.prog, lambda: print(json.dumps(evaluate(args.run_dir), indent=2)))


if __name__ == "__main__":
    sys.exit(main())
