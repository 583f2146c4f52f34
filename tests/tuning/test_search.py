"""Searches through the recipe: every trial COMPLETED, the DataFrame holds them all, the best
config reruns to the same weights, resume after SIGKILL keeps finished trials, bad input fails
before any trial."""

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from recipes import config as config_lib
from recipes.tasks.classify import train
from tests import helpers
from tests.helpers import ROOT, subprocess_env
from tuning import search as search_lib
from tuning import spaces
from tuning.hypermodel import MedianStop, write_record

FAST = {"batch_size": 32, "classes": [0, 1, 2]}  # three digits: 12 steps per epoch, quick trials
SMALL = ["learning_rate", "model.dropout_rate"]


def _search(tmp_path, **kw):
    args = dict(
        tuner="random", max_trials=3, epochs=2, results_dir=tmp_path, only=SMALL, overrides=FAST, verbose=0
    )
    args.update(kw)
    return search_lib.search("mlp", **args)


def test_random_search_runs_trials_through_the_recipe(tmp_path):
    result = _search(tmp_path, pareto="params")
    frame = result.frame
    assert len(frame) == 3 and (frame["status"] == "COMPLETED").all()
    assert {
        "hp:learning_rate",
        "hp:model.dropout_rate",
        "val_accuracy",
        "wall_seconds",
        "params",
        "latency_ms",
    } <= set(frame.columns)
    assert (frame["epochs_run"] == 2).all() and (frame["latency_ms"] > 0).all()
    assert pd.read_csv(result.project_dir / "trials.csv").shape[0] == 3
    for png in ("objective_per_trial", "objective_vs_hyperparameters", "best_trial_curves", "pareto_front"):
        assert (result.project_dir / "plots" / f"{png}.png").stat().st_size > 1000
    assert result.best["val_accuracy"] == frame["val_accuracy"].max()
    # best.yaml is an ordinary recipe: rerun unchanged, it gives the best trial's very weights
    trial_run = result.project_dir / f"trial_{result.best['trial_id']}" / "run"
    rerun = train(
        config_lib.resolve(
            "mlp", config_file=result.best_config, overrides={"run_dir": str(tmp_path / "again")}
        )
    )
    assert rerun["weights_sha256"] == json.loads((trial_run / "summary.json").read_text())["weights_sha256"]
    assert result.best_run["weights_sha256"] == rerun["weights_sha256"]
    assert len(result.pareto) >= 1  # equal parameter counts: the most accurate trial alone


def test_grid_search_resumes_past_keras_tuner_1055(tmp_path):
    space = {
        "learning_rate": {"type": "choice", "values": [0.001, 0.01]},
        "model.dropout_rate": {"type": "choice", "values": [0.0, 0.3]},
    }
    from tuning.spaces import Space

    first = _search(
        tmp_path, tuner="grid", max_trials=2, epochs=1, space=Space(space), only=None, retrain=False
    )
    assert len(first.frame) == 2
    second = _search(
        tmp_path, tuner="grid", max_trials=4, epochs=1, space=Space(space), only=None, retrain=False
    )
    combos = {(r["hp:learning_rate"], r["hp:model.dropout_rate"]) for _, r in second.frame.iterrows()}
    assert len(second.frame) == 4 and len(combos) == 4 and (second.frame["status"] == "COMPLETED").all()
    # the first two were kept, not redone
    assert list(second.frame["ended_at"][:2]) == list(first.frame["ended_at"])


def test_a_failing_trial_is_recorded_with_its_error_and_the_search_goes_on(tmp_path):
    from tuning.spaces import Space

    space = Space({"batch_size": {"type": "choice", "values": [64, 5000], "default": 64}})
    result = _search(tmp_path, tuner="grid", max_trials=2, epochs=1, space=space, only=None, retrain=False)
    frame = result.frame.set_index("hp:batch_size")
    assert frame.loc[64, "status"] == "COMPLETED" and frame.loc[5000, "status"] == "FAILED"
    assert "batch_size 5000 is larger than the training set" in frame.loc[5000, "error"]
    bad = Space({"batch_size": {"type": "choice", "values": [5000, 6000, 7000], "default": 5000}})
    with pytest.raises(
        ValueError,
        match="the search stopped after 3 failed trials; the last failed with: .*larger than the training set",
    ):
        _search(
            tmp_path, tuner="grid", max_trials=3, epochs=1, space=bad, only=None, retrain=False, project="bad"
        )


def test_median_rule_stops_a_trial_below_the_completed_median(tmp_path):
    import keras

    for i, acc in enumerate([0.8, 0.9, 0.85]):
        write_record(
            tmp_path,
            str(i),
            {
                "trial_id": str(i),
                "status": "COMPLETED",
                "history": [{"val_accuracy": acc - 0.1}, {"val_accuracy": acc}],
            },
        )
    rule = MedianStop(tmp_path, "val_accuracy", min_trials=3, grace_epochs=1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit sets it
    rule.set_model(model)
    rule.on_train_begin()
    rule.on_epoch_end(0, {"val_accuracy": 0.1})  # grace epoch
    assert not rule.model.stop_training
    rule.on_epoch_end(1, {"val_accuracy": 0.84})  # median of 0.8, 0.9, 0.85 is 0.85
    assert rule.model.stop_training and "median rule at epoch 2" in rule.model._zoo_stopped_by


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"tuner": "hyperbnd"}, "tuner must be one of.*Did you mean 'hyperband'"),
        ({"objective": "val_acc"}, "objective 'val_acc' is not a recipe metric.*Did you mean 'val_accuracy'"),
        ({"max_trials": 0}, "budget max_trials=0 must be a whole number >= 1"),
        ({"epochs": 0}, "budget epochs=0"),
        ({"only": []}, "the search space is empty"),
        ({"only": ["model.depth"]}, "'model.depth' is not in the search space"),
        ({"space": "nope.yaml"}, "search space file 'nope.yaml' does not exist"),
    ],
)
def test_bad_input_fails_before_any_trial(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        _search(tmp_path, **kw)
    assert not list(tmp_path.rglob("trial_*"))


def test_a_keyword_the_model_does_not_take_fails_before_any_trial(tmp_path):
    from tuning.spaces import Space

    with pytest.raises(ValueError, match="model 'mlp' does not accept 'num_filters'.* Its builder takes"):
        _search(
            tmp_path, space=Space({"model.num_filters": {"type": "choice", "values": [50, 100]}}), only=None
        )
    assert not list(tmp_path.rglob("trial_*"))


def test_cli_errors_are_one_line(capsys):
    assert search_lib.main(["mlp", "--tuner", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tuning.search: error: tuner must be one of")


def _cmd(results, trials):
    return [
        sys.executable,
        "-m",
        "tuning.search",
        "mlp",
        "--max-trials",
        str(trials),
        "--epochs",
        "2",
        "--results-dir",
        str(results),
        "--only",
        ",".join(SMALL),
        "--set",
        "batch_size=64",
        "--no-retrain",
        "--set",
        "checkpoint_every=5",
    ]


@pytest.mark.slow
def test_a_killed_search_resumes_keeping_finished_trials(tmp_path):
    project = tmp_path / "mlp_digits_random"
    proc = helpers.start(
        _cmd(tmp_path, 5), env=subprocess_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill inside the third trial, after a checkpoint
        if list(project.glob("trial_2/run/checkpoints/ckpt-*.npz")):
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    records = {p.parent.name: json.loads(p.read_text()) for p in project.glob("trial_*/record.json")}
    assert sorted(records) == ["trial_0", "trial_1"], "the search was not killed inside trial 2"
    out = helpers.run(
        _cmd(tmp_path, 5), env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "resuming" in out.stdout  # trial 2 continued from its own checkpoint
    frame = pd.read_csv(project / "trials.csv")
    assert len(frame) == 5 and (frame["status"] == "COMPLETED").all() and frame["trial_id"].is_unique
    for name, record in records.items():  # finished trials were kept, not redone
        assert json.loads((project / name / "record.json").read_text())["ended_at"] == record["ended_at"]
    # and a finished search is not run again (keras-tuner would retrain its last trial)
    again = helpers.run(
        _cmd(tmp_path, 5), env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0 and "Running Trial" not in again.stdout
    assert len(pd.read_csv(project / "trials.csv")) == 5


@pytest.mark.slow
def test_memory_stays_flat_over_twelve_trials(tmp_path):
    # README's measurement ran twenty full-data trials; twelve on three classes keep CI's time down
    result = _search(tmp_path, max_trials=12, epochs=1, retrain=False, median_stop=False)
    frame = result.frame
    assert len(frame) == 12 and (frame["status"] == "COMPLETED").all()
    after_2, after_12 = frame["rss_mb"][1], frame["rss_mb"][11]
    print(f"resident memory after trial 2: {after_2:.0f} MiB, after trial 12: {after_12:.0f} MiB")
    assert after_12 <= 1.2 * after_2


@pytest.mark.slow  # trains for over 10 s
def test_a_translation_model_is_searched_through_the_translation_recipe(tmp_path):
    overrides = {
        "dataset": "csv",
        "data_path": str(helpers.write_pairs_csv(tmp_path / "p.csv")),
        "batch_size": 8,
        "sequence_length": 8,
        "vocabulary_size": 60,
        "optimizer": "adam",
        "learning_rate": 0.005,
        "beam_size": 2,
        "model_kwargs": {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32},
    }
    space = spaces.default_space("transformer")
    assert {"l1", "l2", "input_noise"}.isdisjoint(space.specs)  # not the translation recipe's fields
    assert space.specs["schedule"]["default"] == "inverse_sqrt" and "label_smoothing" in space.specs
    only = ["schedule", "warmup_epochs", "label_smoothing"]
    result = search_lib.search(
        "transformer", max_trials=2, epochs=1, results_dir=tmp_path, only=only, overrides=overrides, verbose=0
    )
    frame = result.frame
    assert len(frame) == 2 and (frame["status"] == "COMPLETED").all() and (frame["latency_ms"] > 0).all()
    assert {"hp:schedule", "hp:label_smoothing", "val_accuracy"} <= set(frame.columns)  # token accuracy
    trial_run = result.project_dir / f"trial_{result.best['trial_id']}" / "run"
    trial = json.loads((trial_run / "summary.json").read_text())
    assert (trial_run / "sentencepiece.model").is_file() and "test_bleu" not in trial  # trials do not decode
    # the best config retrained: the best trial's very weights, then decoded and scored
    assert result.best_run["weights_sha256"] == trial["weights_sha256"]
    assert 0 <= result.best_run["test_bleu"] <= 100
