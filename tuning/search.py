"""Search a zoo model's hyperparameters with KerasTuner, through the recipes' own training path.

``python -m tuning.search MODEL [--dataset NAME] [--tuner random|hyperband|bayesian|grid]
[--max-trials N] [--epochs E] [--objective val_accuracy[:max]] [--space FILE.yaml]
[--only a,b] [--set key=value ...] [--workers N]`` (also ``modelzoo tune ...``).

Every trial is an ordinary recipe run (``tuning.hypermodel``); the search's folder
(``--results-dir``/``--project``) holds KerasTuner's project, each trial's run folder and record,
``trials.csv`` (one row per trial), PNG plots, ``best.yaml`` (the best trial's recipe config, which
``python -m recipes.train MODEL --config best.yaml`` reruns unchanged) and ``best_run/`` (that
config retrained as an ordinary run). Rerunning the same command resumes: finished trials are
kept, an interrupted trial continues from its own checkpoints; ``--overwrite`` starts over.

Beyond KerasTuner: the median stopping rule for the tuners without early stopping of their own;
``--pareto params|latency_ms`` reports the trials no other beats on both the objective and the
cost; per-trial history, wall time and errors; GridSearch resume repaired (keras-tuner 1055); a
finished search's last trial is never run again; ``--workers N`` launches KerasTuner's chief and N
workers on this machine and restarts a worker that dies, under its own ID.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from recipes.cli import run, select_backend
from tuning.launcher import launch
from tuning.tuners import make_tuner, open_project, run_search

TUNERS = ("random", "hyperband", "bayesian", "grid")
COSTS = ("params", "latency_ms")


@dataclasses.dataclass
class SearchResult:
    project_dir: Path
    frame: object  # pandas.DataFrame, one row per trial
    best: dict  # the best trial's row
    best_config: Path | None
    best_run: dict | None  # the retrained best config's summary
    pareto: object | None  # pandas.DataFrame of the Pareto front, with --pareto


def parse_objective(text: str) -> tuple[str, str]:
    """``name`` or ``name:max|min``: one of the recipe's metrics, with its direction."""
    from modelzoo.validation import UserError, did_you_mean
    from tuning.hypermodel import METRICS

    name, _, direction = str(text).partition(":")
    if name not in METRICS:
        raise UserError(
            f"objective {name!r} is not a recipe metric; choose one of {list(METRICS)}."
            + did_you_mean(name, METRICS)
        )
    direction = direction or METRICS[name]
    if direction not in ("max", "min"):
        raise UserError(f"objective direction must be max or min, got {direction!r}.")
    return name, direction


def prepare(
    model: str,
    *,
    tuner: str = "random",
    max_trials: int = 10,
    epochs: int = 5,
    objective: str = "val_accuracy",
    space=None,
    only=None,
    drop=(),
    overrides=None,
    config_file=None,
):
    """Check everything a search needs before any trial starts; return (base config, space, objective)."""
    import keras_tuner

    from modelzoo.validation import UserError, did_you_mean
    from recipes import config as config_lib
    from tuning import spaces

    if tuner not in TUNERS:
        raise UserError(f"tuner must be one of {list(TUNERS)}, got {tuner!r}." + did_you_mean(tuner, TUNERS))
    name, direction = parse_objective(objective)
    for label, value in (("max_trials", max_trials), ("epochs", epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"budget {label}={value!r} must be a whole number >= 1.")
    base = config_lib.resolve(
        model, config_file=config_file, overrides={**(overrides or {}), "epochs": epochs}
    ).validate()
    if isinstance(space, spaces.Space):
        chosen = space.check(model)
    elif space:
        chosen = spaces.load_space(space, model)
    else:
        chosen = spaces.default_space(model)
    if only is not None or drop:
        chosen = chosen.narrow(only=only, drop=tuple(drop)).check(model)
    if tuner == "grid" and chosen.grid_size() is None:
        continuous = [k for k, s in chosen.specs.items() if spaces._grid_points(s) is None]
        raise UserError(
            f"grid search needs a finite grid; {continuous[0]!r} is continuous (give it a step, linear "
            "sampling, or a choice)."
        )
    return base, chosen, keras_tuner.Objective(name, direction)


def search(
    model: str,
    *,
    tuner: str = "random",
    max_trials: int = 10,
    epochs: int = 5,
    objective: str = "val_accuracy",
    seed: int = 0,
    results_dir="tuning_runs",
    project: str | None = None,
    overwrite: bool = False,
    space=None,
    only=None,
    drop=(),
    overrides=None,
    config_file=None,
    median_stop: bool | None = None,
    factor: int = 3,
    pareto: str | None = None,
    retrain: bool = True,
    verbose: int = 1,
) -> SearchResult:
    """Run (or resume) a search; write trials.csv, plots and best.yaml; retrain the best config."""
    from modelzoo.validation import UserError
    from tuning.hypermodel import RecipeHyperModel

    if pareto is not None and pareto not in COSTS:
        raise UserError(f"pareto cost must be one of {list(COSTS)}, got {pareto!r}.")
    sizes = dict(tuner=tuner, max_trials=max_trials, epochs=epochs, objective=objective)
    choices = dict(space=space, only=only, drop=drop, overrides=overrides, config_file=config_file)
    base, chosen, obj = prepare(model, **sizes, **choices)
    project_dir = Path(results_dir) / (project or f"{model}_{base.dataset.replace('/', '_')}_{tuner}")
    worker = open_project(project_dir, chosen, overwrite=overwrite)
    hypermodel = RecipeHyperModel(base, chosen, project_dir, objective=obj.name)
    stops = dict(median_stop=median_stop, factor=factor)
    where = dict(directory=results_dir, project=project_dir.name, overwrite=False)  # open_project did
    kt = make_tuner(
        tuner, hypermodel, objective=obj, max_trials=max_trials, epochs=epochs, seed=seed, **stops, **where
    )
    run_search(kt, project_dir, verbose)
    if worker:
        return SearchResult(project_dir, None, {}, None, None, None)
    return report(project_dir, obj.name, model=model, pareto=pareto, retrain=retrain, base=base)


def report(
    project_dir: Path, objective: str, *, model: str, pareto=None, retrain=True, base=None
) -> SearchResult:
    """trials.csv, plots, best.yaml and the retrained best run of a finished search."""
    from recipes import config as config_lib
    from recipes.tasks import classify, translate
    from tuning import results
    from tuning.spaces import translating

    frame = results.trials_frame(project_dir)
    frame.to_csv(project_dir / "trials.csv", index=False)
    best = results.best_trial(frame, objective)
    best_yaml = results.best_config(project_dir, frame, objective, project_dir / "best.yaml")
    results.plot(frame, project_dir, objective, project_dir / "plots", cost=pareto)
    imp = results.importance(frame, objective)
    imp.to_csv(project_dir / "importance.csv", index=False)
    front = None
    if pareto:
        front = results.pareto_front(frame, objective, pareto)
        front.to_csv(project_dir / "pareto.csv", index=False)
    summary = None
    if retrain:
        cfg = config_lib.resolve(
            model, config_file=best_yaml, overrides={"run_dir": str(project_dir / "best_run")}
        )
        summary = (translate.train if translating(model) else classify.train)(cfg)
    done = int((frame["status"] == "COMPLETED").sum())
    print(
        f"{len(frame)} trials ({done} completed); best trial {best['trial_id']}: {objective} {best[objective]:.4f}"
    )
    if summary:
        score = (
            f"test BLEU {summary['test_bleu']:.2f}"
            if "test_bleu" in summary
            else f"test accuracy {summary['test_accuracy']:.4f}"
        )
        print(f"best config retrained: {score} ({project_dir / 'best_run'})")
    print(f"trials: {project_dir / 'trials.csv'}; best config: {best_yaml}")
    return SearchResult(project_dir, frame, best.to_dict(), best_yaml, summary, front)


# ---- distributed: KerasTuner's chief and workers on this machine ---------------------------------


def build_parser(prog="python -m tuning.search") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Search a zoo model's hyperparameters with KerasTuner."
    )
    p.add_argument("model")
    p.add_argument("--dataset")
    p.add_argument("--config", help="a recipe YAML for the base config")
    p.add_argument("--tuner", default="random", help=f"one of {', '.join(TUNERS)}")
    p.add_argument(
        "--max-trials", dest="max_trials", type=int, default=10, help="trial budget (random, bayesian, grid)"
    )
    p.add_argument(
        "--epochs", type=int, default=5, help="epochs per trial (hyperband: the most any trial gets)"
    )
    p.add_argument(
        "--objective", default="val_accuracy", help="val_accuracy, val_loss, accuracy or loss; NAME:max|min"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", dest="results_dir", default="tuning_runs")
    p.add_argument("--project", help="the search's folder name (default: MODEL_DATASET_TUNER)")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    p.add_argument("--space", help="a search-space YAML (full specs, or base/only/drop/set edits)")
    p.add_argument(
        "--only", help="comma-separated hyperparameters to tune (the rest stay at the base config)"
    )
    p.add_argument("--drop", help="comma-separated hyperparameters not to tune")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="base config field"
    )
    _add_run_options(p)
    return p


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """How the search runs: early stopping of trials, reports, retraining, distribution."""
    p.add_argument(
        "--median-stop",
        dest="median_stop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop trials below the median (default: on, except for hyperband)",
    )
    p.add_argument("--factor", type=int, default=3, help="hyperband's reduction factor")
    p.add_argument("--pareto", help="report the Pareto front of the objective against params or latency_ms")
    p.add_argument(
        "--no-retrain", dest="retrain", action="store_false", help="do not retrain the best config"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run distributed: a chief and this many workers on this machine",
    )
    p.add_argument(
        "--timeout", type=float, default=6 * 3600, help="distributed: give up after this many seconds"
    )


def main(argv=None, prog="python -m tuning.search") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    select_backend(argv)
    args = build_parser(prog).parse_args(argv)

    def go():
        from modelzoo.validation import UserError

        if args.workers < 0:
            raise UserError(f"--workers must be >= 0, got {args.workers}.")
        sizes = dict(
            tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs, objective=args.objective
        )
        choices = _choices(args)
        if args.workers:
            prepare(args.model, **sizes, **choices)  # a bad space or config: one line before any process
            code = launch(argv, args)
            if code:
                raise UserError(f"the chief exited with status {code}; see its log in the search folder.")
            return
        search(
            args.model,
            **sizes,
            **choices,
            seed=args.seed,
            results_dir=args.results_dir,
            project=args.project,
            overwrite=args.overwrite,
            median_stop=args.median_stop,
            factor=args.factor,
            pareto=args.pareto,
            retrain=args.retrain,
        )

    return run(prog, go)


def _choices(args) -> dict:
    """What the command line chose of the space and the base config (``prepare``'s arguments)."""
    from recipes import config as config_lib

    overrides = dict(config_lib.parse_override(o) for o in args.overrides)
    if args.dataset:
        overrides["dataset"] = args.dataset
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    drop = [s.strip() for s in args.drop.split(",") if s.strip()] if args.drop else ()
    return dict(space=args.space, only=only, drop=drop, overrides=overrides, config_file=args.config)


if __name__ == "__main__":
    sys.exit(main())
