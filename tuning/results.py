"""A search's trials as a pandas DataFrame, CSV and plots; the Pareto front; the best config as YAML.

Each row joins KerasTuner's ``trial_<id>/trial.json`` (status, hyperparameters, score) with the
search's own ``trial_<id>/record.json`` (per-epoch history, wall time, parameters, latency, error).
Hyperparameter columns are prefixed ``hp:``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tuning.hypermodel import METRICS, read_records


def trials_frame(project_dir) -> pd.DataFrame:
    """One row per trial in ``project_dir`` (a KerasTuner project folder), in trial order."""
    project_dir = Path(project_dir)
    records = read_records(project_dir)
    rows = []
    for path in sorted(project_dir.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        tid = str(trial["trial_id"])
        record = records.get(tid, {})
        row = {"trial_id": tid, "status": trial.get("status"), "score": trial.get("score")}
        for name, value in (trial.get("hyperparameters", {}).get("values") or {}).items():
            row[f"hp:{name}"] = json.dumps(value) if isinstance(value, list) else value
        best = _best_metrics(trial)
        row.update(best)
        history = record.get("history", [])
        row.update(
            {
                "epochs_run": record.get("epochs_run", len(history)),
                "wall_seconds": record.get("wall_seconds"),
                "params": record.get("params"),
                "latency_ms": record.get("latency_ms"),
                "test_accuracy": record.get("test_accuracy"),
                "early_stopped": record.get("early_stopped"),
                "stopped_by": record.get("stopped_by"),
                "error": record.get("error") or _last_line(trial.get("message")),
                "ended_at": record.get("ended_at"),
                "rss_mb": record.get("rss_mb"),
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values("trial_id", key=lambda s: s.astype(int)).reset_index(drop=True)
    return frame


def _best_metrics(trial: dict) -> dict:
    out = {}
    for name, entry in (trial.get("metrics", {}).get("metrics") or {}).items():
        if name not in METRICS:
            continue
        values = [obs["value"][0] for obs in entry.get("observations", []) if obs.get("value")]
        if values:
            out[name] = max(values) if entry.get("direction", METRICS[name]) == "max" else min(values)
    return out


def _last_line(message):
    if not message:
        return None
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def pareto_front(
    frame: pd.DataFrame, objective: str, cost: str, direction: str | None = None
) -> pd.DataFrame:
    """The completed trials no other trial beats on both ``objective`` and ``cost`` (lower cost is
    better, e.g. ``params`` or ``latency_ms``), sorted by cost."""
    direction = direction or METRICS.get(objective, "max")
    done = frame[(frame["status"] == "COMPLETED") & frame[objective].notna() & frame[cost].notna()].copy()
    if done.empty:
        return done
    sign = 1 if direction == "max" else -1
    keep = []
    for i, row in done.iterrows():
        dominated = (
            (sign * done[objective] >= sign * row[objective])
            & (done[cost] <= row[cost])
            & ((sign * done[objective] > sign * row[objective]) | (done[cost] < row[cost]))
        ).any()
        if not dominated:
            keep.append(i)
    return done.loc[keep].sort_values(cost)


def best_trial(frame: pd.DataFrame, objective: str, direction: str | None = None) -> pd.Series:
    direction = direction or METRICS.get(objective, "max")
    done = frame[(frame["status"] == "COMPLETED") & frame[objective].notna()]
    if done.empty:
        raise RuntimeError("no trial completed: nothing to report (see the error column of trials.csv).")
    return done.loc[done[objective].idxmax() if direction == "max" else done[objective].idxmin()]


def best_config(project_dir, frame: pd.DataFrame, objective: str, out: Path) -> Path:
    """The best trial's recipe config as YAML (its ``config.yaml`` with the run folder cleared and
    Hyperband's epochs made whole): ``python -m recipes.train MODEL --config best.yaml`` reruns it."""
    import yaml

    best = best_trial(frame, objective)
    source = Path(project_dir) / f"trial_{best['trial_id']}" / "run" / "config.yaml"
    values = yaml.safe_load(source.read_text())
    values["run_dir"] = None
    epochs = best.get("hp:tuner/epochs")
    if epochs is not None and epochs == epochs:  # Hyperband: the bracket's full length
        values["epochs"] = int(epochs)
    out = Path(out)
    out.write_text(
        f"# best of {len(frame)} trials by {objective} (trial {best['trial_id']}: {best[objective]:.4f})\n"
        + yaml.safe_dump(values, sort_keys=False)
    )
    return out


def plot(frame: pd.DataFrame, project_dir, objective: str, out_dir, cost: str | None = None) -> list[Path]:
    """PNG plots: the objective per trial over time, the objective against each hyperparameter,
    the best trial's curves, and (with ``cost``) the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = frame[(frame["status"] == "COMPLETED") & frame[objective].notna()]
    if done.empty:
        return []
    paths = [_plot_objective_per_trial(done, objective, out_dir)]
    hps = [
        c
        for c in done.columns
        if c.startswith("hp:") and not c.startswith("hp:tuner/") and done[c].nunique() > 1
    ]
    if hps:
        paths.append(_plot_objective_vs_hyperparameters(done, hps, objective, out_dir))
    best = best_trial(frame, objective)
    history = read_records(project_dir).get(str(best["trial_id"]), {}).get("history", [])
    if history:
        paths.append(_plot_best_curves(pd.DataFrame(history), best["trial_id"], out_dir))
    if cost:
        paths.append(_plot_pareto(done, pareto_front(frame, objective, cost), objective, cost, out_dir))
    return paths


def _plot_objective_per_trial(done: pd.DataFrame, objective: str, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    better = max if METRICS.get(objective, "max") == "max" else min
    fig, ax = plt.subplots(figsize=(6, 4))
    order = done.sort_values("ended_at", na_position="first") if "ended_at" in done else done
    ax.plot(range(1, len(order) + 1), order[objective], "o", label="trial")
    running = [better(order[objective].iloc[: i + 1]) for i in range(len(order))]
    ax.plot(range(1, len(order) + 1), running, "-", label="best so far")
    ax.set(xlabel="trial (in order of completion)", ylabel=objective, title="objective per trial")
    ax.legend()
    return _save(fig, out_dir / "objective_per_trial.png")


def _plot_objective_vs_hyperparameters(done: pd.DataFrame, hps: list, objective: str, out_dir: Path) -> Path:
    """One panel per hyperparameter that varied: numbers on their axis (log when they span more
    than 50x), categories in sorted order."""
    import matplotlib.pyplot as plt

    cols = min(3, len(hps))
    rows = -(-len(hps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, col in zip(axes.flat, hps):
        values = done[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            ax.plot(values, done[objective], "o")
            if (values > 0).all() and values.max() / max(values.min(), 1e-12) > 50:
                ax.set_xscale("log")
        else:
            cats = sorted(values.astype(str).unique())
            ax.plot([cats.index(v) for v in values.astype(str)], done[objective], "o")
            ax.set_xticks(range(len(cats)), cats, rotation=30, fontsize=7)
        ax.set(xlabel=col[3:], ylabel=objective)
    for ax in list(axes.flat)[len(hps) :]:
        ax.axis("off")
    return _save(fig, out_dir / "objective_vs_hyperparameters.png")


def _plot_best_curves(curves: pd.DataFrame, trial_id, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for col in (metric, f"val_{metric}"):
            if col in curves:
                ax.plot(curves.index + 1, curves[col], marker="o", label=col)
        ax.set(xlabel="epoch", ylabel=metric)
        ax.legend()
    fig.suptitle(f"best trial {trial_id}")
    return _save(fig, out_dir / "best_trial_curves.png")


def _plot_pareto(done: pd.DataFrame, front: pd.DataFrame, objective: str, cost: str, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(done[cost], done[objective], "o", alpha=0.5, label="trials")
    ax.plot(front[cost], front[objective], "s-", color="C3", label="Pareto front")
    ax.set(xlabel=cost, ylabel=objective, title=f"{objective} against {cost}")
    if (done[cost] > 0).all() and done[cost].max() / done[cost].min() > 50:
        ax.set_xscale("log")
    ax.legend()
    return _save(fig, out_dir / "pareto_front.png")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def importance(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Which hyperparameters mattered: for each, the spread of the mean objective across its
    values (numeric ones binned into quartiles) and the rank correlation with the objective.
    A quick first-order reading, not a causal one."""
    done = frame[(frame["status"] == "COMPLETED") & frame[objective].notna()]
    rows = []
    for col in [c for c in done.columns if c.startswith("hp:") and not c.startswith("hp:tuner/")]:
        values = done[col]
        present = values.notna()
        if values[present].nunique() < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        groups = (
            pd.qcut(values[present].rank(method="first"), min(4, values[present].nunique()), labels=False)
            if numeric
            else values[present].astype(str)
        )
        means = done.loc[present, objective].groupby(groups).mean()
        corr = (
            done.loc[present, objective].corr(values[present].astype(float), method="spearman")
            if numeric
            else None
        )
        rows.append(
            {
                "hyperparameter": col[3:],
                "trials": int(present.sum()),
                "spread_of_means": float(means.max() - means.min()),
                "spearman": corr,
            }
        )
    result = pd.DataFrame(rows, columns=["hyperparameter", "trials", "spread_of_means", "spearman"])
    return result.sort_values("spread_of_means", ascending=False).reset_index(drop=True)
