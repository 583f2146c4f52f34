"""The searches behind README's tuning claims, reproducible with one command each.

``python -m tuning.studies regularization [--out DIR]``: an over-parameterised MLP (two hidden
layers of 2,048 on the 8x8 digits, no dropout) trained as is, against the same network with its
regularization searched (dropout, L2, L1, label smoothing, input noise; the optimizer fixed).
Both are run with three seeds; the table says which regularizers mattered.

``python -m tuning.studies hyperband [--out DIR]``: a full grid over a small space against
Hyperband over the same space, each trial at most ``max_epochs``; the epochs each spent (summed
over trials, as trained) and the best validation and test accuracy of each.

``--quick`` shrinks every budget (a smoke test; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes.cli import run

OVERPARAMETERISED = {"hidden_units": [2048, 2048], "dropout_rate": 0.0}
REGULARIZERS = ["model.dropout_rate", "l2", "l1", "label_smoothing", "input_noise"]
GRID = {
    "learning_rate": {"type": "choice", "values": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "default": 1e-3},
    "model.dropout_rate": {"type": "choice", "values": [0.0, 0.25, 0.5], "default": 0.25},
    "batch_size": {"type": "choice", "values": [32, 128], "default": 32},
}


def _test_accuracies(run_dirs: Path, seeds, *, overrides=None, config_file=None) -> list[float]:
    """The MLP trained once per seed (run folders ``<run_dirs><seed>``): each run's test accuracy."""
    from recipes import config as config_lib
    from recipes.tasks.classify import train

    accuracies = []
    for seed in seeds:
        run = {**(overrides or {}), "seed": seed, "run_dir": f"{run_dirs}{seed}"}
        accuracies.append(
            train(config_lib.resolve("mlp", config_file=config_file, overrides=run))["test_accuracy"]
        )
    return accuracies


def regularization(
    out, *, trials: int = 20, epochs: int = 20, seeds=(0, 1, 2), quick: bool = False, log=print
) -> dict:
    """Test accuracy of the untuned over-parameterised MLP vs its regularization-searched config."""

    from tuning import results
    from tuning.search import search

    base = {
        "model_kwargs": OVERPARAMETERISED,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "batch_size": 32,
        "verbose": 0,
    }
    if quick:
        trials, epochs, seeds = 2, 1, (0,)
        base.update(classes=[0, 1, 2], model_kwargs={"hidden_units": [64], "dropout_rate": 0.0})
    out = Path(out)
    untuned = _test_accuracies(out / "untuned_seed", seeds, overrides={**base, "epochs": epochs})
    found = search(
        "mlp",
        tuner="bayesian",
        max_trials=trials,
        epochs=epochs,
        results_dir=out,
        project="regularization",
        only=REGULARIZERS,
        overrides=base,
        retrain=False,
        verbose=0,
    )
    tuned = _test_accuracies(out / "tuned_seed", seeds, config_file=found.best_config)
    importance = results.importance(found.frame, "val_accuracy")
    report = _regularization_report(untuned, tuned, found, importance)
    (out / "regularization.json").write_text(json.dumps(report, indent=2, default=float))
    log(
        f"untuned {report['untuned_mean']:.4f} {untuned}; tuned {report['tuned_mean']:.4f} {tuned}; "
        f"margin {report['margin_points']:+.2f} points; best {report['best_hyperparameters']}"
    )
    log(importance.to_string(index=False))
    return report


def _regularization_report(untuned: list, tuned: list, found, importance) -> dict:
    import numpy as np

    best = {k[3:]: v for k, v in found.best.items() if k.startswith("hp:") and not k.startswith("hp:tuner/")}
    return {
        "untuned_test_accuracy": untuned,
        "tuned_test_accuracy": tuned,
        "untuned_mean": float(np.mean(untuned)),
        "tuned_mean": float(np.mean(tuned)),
        "margin_points": 100 * float(np.mean(tuned) - np.mean(untuned)),
        "best_hyperparameters": best,
        "trials": len(found.frame),
        "completed": int((found.frame["status"] == "COMPLETED").sum()),
        "stopped_by_median_rule": int(found.frame["stopped_by"].notna().sum()),
        "importance": importance.to_dict("records"),
    }


def hyperband_vs_grid(out, *, max_epochs: int = 9, quick: bool = False, log=print) -> dict:
    """Best accuracy and epochs spent: a full grid against Hyperband on the same space."""
    from tuning.search import search
    from tuning.spaces import Space

    grid = GRID
    if quick:
        max_epochs = 3
        grid = {k: {**v, "values": v["values"][:2]} for k, v in GRID.items() if k != "batch_size"}
        grid["learning_rate"]["default"] = grid["learning_rate"]["values"][0]
        grid["model.dropout_rate"]["default"] = grid["model.dropout_rate"]["values"][0]
    out = Path(out)
    space = Space(grid)
    points = space.grid_size()
    overrides = {"verbose": 0, **({"classes": [0, 1, 2]} if quick else {})}
    common = dict(
        epochs=max_epochs,
        results_dir=out,
        space=space,
        only=None,
        overrides=overrides,
        retrain=False,
        median_stop=False,
        verbose=0,
    )
    full = search("mlp", tuner="grid", max_trials=points, project="grid", **common)
    band = search("mlp", tuner="hyperband", project="hyperband", **common)
    rows = {}
    for name, result in (("grid", full), ("hyperband", band)):
        frame = result.frame
        rows[name] = {
            "trials": len(frame),
            "epochs_spent": int(frame["epochs_run"].sum()),
            "best_val_accuracy": float(frame["val_accuracy"].max()),
            "best_trial_test_accuracy": float(result.best["test_accuracy"]),
            "wall_seconds": float(frame["wall_seconds"].sum()),
        }
    report = {
        "grid_points": points,
        "max_epochs": max_epochs,
        **{f"{k}_{m}": v for k, r in rows.items() for m, v in r.items()},
        "epoch_ratio": rows["hyperband"]["epochs_spent"] / rows["grid"]["epochs_spent"],
        "val_gap_points": 100 * (rows["grid"]["best_val_accuracy"] - rows["hyperband"]["best_val_accuracy"]),
        "test_gap_points": 100
        * (rows["grid"]["best_trial_test_accuracy"] - rows["hyperband"]["best_trial_test_accuracy"]),
    }
    (out / "hyperband_vs_grid.json").write_text(json.dumps(report, indent=2))
    log(json.dumps(report, indent=2))
    return report


STUDIES = {"regularization": regularization, "hyperband": hyperband_vs_grid}


def main(argv=None, prog="python -m tuning.studies") -> int:
    p = argparse.ArgumentParser(prog=prog, description="The searches behind README's tuning numbers.")
    p.add_argument("study", choices=sorted(STUDIES))
    p.add_argument("--out", default="tuning_runs/studies")
    p.add_argument("--quick", action="store_true", help="tiny budgets: checks the machinery, not the claim")
    args = p.parse_args(argv)
    return run(prog, STUDIES[args.study], Path(args.out) / args.study, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
