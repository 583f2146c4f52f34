"""Evaluate a finished run on its test split: ``python -m recipes.evaluate RUN_DIR``."""

from __future__ import annotations

import argparse
import json
import sys

from recipes.cli import run


def evaluate(run_dir) -> dict:
    from recipes.run_folder import RunFolder
    from recipes.trainer import per_class_recall

    run = RunFolder(run_dir)
    test = run.test_batches()
    results = run.model.evaluate(test, verbose=0, return_dict=True)
    recall = per_class_recall(run.model, test, run.class_names)
    return {k: float(v) for k, v in results.items()} | {
        "num_test": len(run.data.test),
        "recall_per_class": recall,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.evaluate", description=__doc__)
    p.add_argument("run_dir")
    args = p.parse_args(argv)
    return run(p.prog, lambda: print(json.dumps(evaluate(args.run_dir), indent=2)))


if __name__ == "__main__":
    sys.exit(main())
