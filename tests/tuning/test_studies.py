"""The studies behind README's tuning numbers run end to end (quick budgets: machinery, not claims)."""

import json

import pytest

from tuning import studies
from tuning.hypermodel import read_records
from tuning.results import trials_frame

pytestmark = pytest.mark.slow


def test_regularization_study_reports_both_sides(tmp_path):
    report = studies.regularization(tmp_path, quick=True, log=lambda *a: None)
    assert len(report["untuned_test_accuracy"]) == len(report["tuned_test_accuracy"]) == 1
    assert report["completed"] == report["trials"] == 2
    assert set(report["best_hyperparameters"]) <= set(studies.REGULARIZERS)
    assert report["margin_points"] == pytest.approx(100 * (report["tuned_mean"] - report["untuned_mean"]))
    assert json.loads((tmp_path / "regularization.json").read_text())["trials"] == 2


def test_hyperband_study_counts_epochs_on_both_sides(tmp_path):
    report = studies.hyperband_vs_grid(tmp_path, quick=True, log=lambda *a: None)
    assert report["grid_trials"] == report["grid_points"] == 4
    assert report["grid_epochs_spent"] == 4 * report["max_epochs"]  # no early stopping in the grid
    assert 0 < report["hyperband_epochs_spent"] and report["epoch_ratio"] == pytest.approx(
        report["hyperband_epochs_spent"] / report["grid_epochs_spent"]
    )
    # Hyperband's brackets (also the search's own test of them: one run serves both)
    frame = trials_frame(tmp_path / "hyperband")
    assert (frame["status"] == "COMPLETED").all() and len(frame) >= 3
    assert set(frame["hp:tuner/epochs"]) == {1, 3}  # factor 3 over at most 3 epochs
    records = read_records(tmp_path / "hyperband")
    continued = frame[frame["hp:tuner/initial_epoch"] > 0]
    assert len(continued) >= 1
    # the parent's state (weights and optimizer step) carried on to the bracket's end
    for _, row in continued.iterrows():
        record = records[row["trial_id"]]
        assert record["start_step"] > 0 and record["start_step"] % record["steps_per_epoch"] == 0
        assert (
            record["start_step"] // record["steps_per_epoch"] + record["epochs_run"] == row["hp:tuner/epochs"]
        )
