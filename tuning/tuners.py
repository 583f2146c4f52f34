"""KerasTuner's tuners made to run the recipes: one name per tuner (``random``, ``hyperband``,
``bayesian``, ``grid``), the recipe-running mixin that makes each trial an ordinary run of the
loop with the median stopping rule, and the repairs a resumed project needs (GridSearch's resume,
keras-tuner 1055; a finished search's last trial never run again)."""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from pathlib import Path


def _grid_oracle_class():
    import keras_tuner

    from tuning import private_keras_tuner as private

    class ResumableGridSearchOracle(keras_tuner.oracles.GridSearchOracle):
        """keras-tuner 1.4.8 does not save the grid's order (issue 1055): a resumed grid search
        fails with KeyError. Its two pieces of state are saved and restored here."""

        def get_state(self):
            return {**super().get_state(), "grid_order": private.grid_order_state(self)}

        def set_state(self, state):
            super().set_state(state)
            if state.get("grid_order"):
                private.set_grid_order_state(self, state["grid_order"])

    keras_tuner.oracles.ResumableGridSearchOracle = ResumableGridSearchOracle  # reachable for deserialisation
    return ResumableGridSearchOracle


def open_project(project_dir: Path, chosen, *, overwrite: bool) -> bool:
    """The search's folder, emptied for ``overwrite`` and repaired for a resume (never by a
    distributed worker: the launcher or the chief did), with the chosen space in ``space.yaml``.
    Whether this process is such a worker."""
    from tuning.private_keras_tuner import is_distributed_worker

    worker = is_distributed_worker()
    if overwrite and not worker and project_dir.exists():
        shutil.rmtree(project_dir)
    if not worker:
        dropped = repair(project_dir)
        if dropped:
            print(f"resume: trial(s) {', '.join(dropped)} had finished; not run again")
    project_dir.mkdir(parents=True, exist_ok=True)
    (project_dir / "space.yaml").write_text(chosen.to_yaml())
    return worker


def run_search(kt, project_dir: Path, verbose: int) -> None:
    """``kt.search``; when KerasTuner gives up after consecutive failed trials, one line saying
    how many failed and the last one's error."""
    from modelzoo.validation import UserError
    from tuning.hypermodel import read_records

    try:
        kt.search(verbose=verbose)
    except RuntimeError as err:
        if "consecutive failures" not in str(err):
            raise
        errors = [r["error"] for r in read_records(project_dir).values() if r.get("status") == "FAILED"]
        raise UserError(
            f"the search stopped after {len(errors)} failed trials; the last failed with: "
            f"{errors[-1] if errors else err}"
        ) from None


def make_tuner(
    kind: str,
    hypermodel,
    *,
    objective,
    max_trials,
    epochs,
    seed,
    directory,
    project,
    overwrite,
    median_stop: bool | None,
    factor: int = 3,
    hyperband_iterations: int = 1,
):
    """A KerasTuner tuner of ``kind`` whose trials run through ``hypermodel`` (the recipe), with
    the median rule when ``median_stop`` (None: on, except for Hyperband, which stops its own)."""

    median_stop = kind != "hyperband" if median_stop is None else median_stop
    common = dict(
        hypermodel=hypermodel,
        directory=str(directory),
        project_name=project,
        overwrite=overwrite,
        max_consecutive_failed_trials=3,
    )
    base, args = _tuner_class_and_args(
        kind, objective, max_trials, epochs, seed, factor, hyperband_iterations
    )
    if kind == "grid":  # the grid's oracle takes it
        common.pop("max_consecutive_failed_trials")
    rule = {"median_stop_objective": objective.name if median_stop else None}
    cls = type(f"Recipe{base.__name__}", (_RecipeTunerMixin, base), rule)
    return cls(**args, **common)


def _tuner_class_and_args(kind, objective, max_trials, epochs, seed, factor, hyperband_iterations):
    """KerasTuner's tuner class for ``kind`` and the arguments that differ between kinds."""
    import keras_tuner

    if kind == "hyperband":
        return keras_tuner.Hyperband, dict(
            objective=objective,
            max_epochs=epochs,
            factor=factor,
            hyperband_iterations=hyperband_iterations,
            seed=seed,
        )
    if kind == "grid":
        oracle = _grid_oracle_class()(
            objective=objective, max_trials=max_trials, seed=seed, max_consecutive_failed_trials=3
        )
        return keras_tuner.Tuner, dict(oracle=oracle)
    base = keras_tuner.RandomSearch if kind == "random" else keras_tuner.BayesianOptimization
    return base, dict(objective=objective, max_trials=max_trials, seed=seed)


class _RecipeTunerMixin:
    """Before a KerasTuner tuner class: hands the trial id to the hypermodel, adds the median rule
    (on ``median_stop_objective``, when set) and records a failed trial's error."""

    median_stop_objective: str | None = None

    def _populate_initial_space(self):
        # KerasTuner builds the model once per conditional scope to discover the space; ours
        # is declared as data, so it is registered without building (or loading) anything.
        hp = self.oracle.get_space()
        self.hypermodel.space.register(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        from tuning.hypermodel import MedianStop, write_record

        self.hypermodel.trial_id = trial.trial_id
        callbacks = list(kwargs.pop("callbacks", []))
        if self.median_stop_objective:
            callbacks.append(MedianStop(self.project_dir, self.median_stop_objective))
        started = time.time()
        try:
            fail_if_it_killed_its_worker(Path(self.project_dir), self.tuner_id, trial.trial_id)
            result = super().run_trial(trial, *args, callbacks=callbacks, **kwargs)
        except Exception:
            write_record(
                self.project_dir,
                trial.trial_id,
                {
                    "trial_id": trial.trial_id,
                    "status": "FAILED",
                    "error": traceback.format_exc().strip().splitlines()[-1],
                    "traceback": traceback.format_exc()[-4000:],
                    "wall_seconds": round(time.time() - started, 2),
                    "ended_at": time.time(),
                    "history": [],
                },
            )
            raise
        finally:
            _running_file(Path(self.project_dir), self.tuner_id).unlink(missing_ok=True)
        return result


# Signals a process sends itself when it crashes (a native fault, an abort): the trial that was
# running would crash its worker again. Any other signal (SIGKILL from a user, the OOM killer or a
# preempted machine, SIGTERM) may be passing, so that trial resumes once.
CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE")
# Set by the launcher (tuning.launcher.launch) for a worker it restarts after a signal ended it.
DIED_OF = "MODELZOO_TUNER_DIED_OF"


def _running_file(project_dir: Path, tuner_id: str) -> Path:
    return project_dir / "running" / f"{tuner_id}.json"


def fail_if_it_killed_its_worker(project_dir: Path, tuner_id: str, trial_id: str) -> None:
    """A distributed worker's trial whose run killed the worker's process: recorded FAILED with the
    signal's name when the signal was a crash or when it is the trial's second death, so the search
    goes on (the chief hands a restarted worker back its trial, which would crash it again and
    again). Otherwise the trial's death is noted in ``running/<tuner_id>.json`` and it resumes."""
    import keras_tuner

    path = _running_file(project_dir, tuner_id)
    signal_name = os.environ.pop(DIED_OF, None)
    before = json.loads(path.read_text()) if path.is_file() else {}
    same_trial = before.get("trial_id") == trial_id
    deaths = before.get("deaths", []) if same_trial else []
    if signal_name and same_trial:
        deaths = [*deaths, signal_name]
        if signal_name in CRASH_SIGNALS or len(deaths) > 1:
            raise keras_tuner.errors.FailedTrialError(
                f"trial {trial_id} ended its worker {tuner_id}'s process with {', then '.join(deaths)}: "
                "recorded as failed; the search goes on"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trial_id": trial_id, "pid": os.getpid(), "deaths": deaths}))


def repair(project_dir: Path) -> list[str]:
    """Before resuming: KerasTuner saves ``oracle.json`` before it drops a finished trial from
    the ongoing ones, so a finished search would train its last trial again on reload. Ongoing
    trials whose ``trial.json`` says they ended are dropped (one with no trial file is kept: it
    was interrupted and resumes). Returns the trial ids dropped."""
    path = Path(project_dir) / "oracle.json"
    if not path.is_file():
        return []
    state = json.loads(path.read_text())
    dropped = []
    for tuner_id, trial_id in list(state.get("ongoing_trials", {}).items()):
        trial_file = Path(project_dir) / f"trial_{trial_id}" / "trial.json"
        status = json.loads(trial_file.read_text()).get("status") if trial_file.is_file() else None
        if status in ("COMPLETED", "FAILED", "INVALID", "STOPPED"):
            del state["ongoing_trials"][tuner_id]
            dropped.append(trial_id)
    if dropped:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)
    return dropped
