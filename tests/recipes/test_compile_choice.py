"""``jit_compile: auto``: XLA or not by measurement, on a clone, cached in the run folder; the
run trains exactly as a run told the chosen setting (measuring draws nothing from its streams).
``steps_per_execution``: several steps a call change no bit of the training, a checkpoint that
one step a call wrote resumes under several, and ``auto`` keeps the faster it measured."""

import json

import keras
import pytest

from recipes import compile_choice, loop
from recipes import config as config_lib
from recipes.tasks.classify import Classify, train


def _config(tmp_path, name, jit):
    overrides = {"epochs": 1, "verbose": 0, "jit_compile": jit, "run_dir": str(tmp_path / name)}
    return config_lib.resolve("mlp", overrides=overrides)  # dropout: a random stream to disturb


def test_auto_measures_both_ways_and_trains_as_the_setting_it_picked(tmp_path, capsys):
    auto = train(_config(tmp_path, "auto", "auto"))
    choice = auto["jit_choice"]
    assert choice["picked_by"] == "measured" and auto["jit_compile"] == choice["jit_compile"]
    rates = choice["steps_per_s"]
    assert rates["xla"] > 0 and rates["no_xla"] > 0
    assert choice["jit_compile"] == (rates["xla"] > rates["no_xla"])
    said = capsys.readouterr().out
    assert f"jit_compile auto: {'XLA' if choice['jit_compile'] else 'no XLA'}, measured (" in said
    told = train(_config(tmp_path, "told", choice["jit_compile"]))
    assert told["weights_sha256"] == auto["weights_sha256"]  # the clone drew nothing from the run's seed
    cached = json.loads((tmp_path / "auto" / compile_choice.CACHE).read_text())
    assert cached["choice"] == choice and cached["key"]["model"] == "mlp"


def test_a_cached_choice_is_not_measured_again(tmp_path, monkeypatch):
    run_dir = tmp_path / "auto"
    run_dir.mkdir()
    cfg = _config(tmp_path, "auto", "auto")
    first = train(cfg)
    (run_dir / "summary.json").unlink()  # the same run again: the cache, no measurement

    def measure(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(compile_choice, "_measure", measure)
    again = train(cfg)
    assert again["jit_choice"] == first["jit_choice"]


def test_auto_is_the_only_word_jit_compile_takes():
    with pytest.raises(
        ValueError, match=r"config field jit_compile='fast' is invalid: one of \[True, False, 'auto'\]"
    ):
        config_lib.resolve("mlp", overrides={"jit_compile": "fast"})


class FailAtStep(keras.callbacks.Callback):
    """A crash in the middle of epoch 1, after the step checkpoint of step 12."""

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 13:
            raise RuntimeError("crash at step 13")


def _steps_config(tmp_path, name, steps_per_execution):
    overrides = {
        "epochs": 2,
        "verbose": 0,
        "checkpoint_every": 3,
        "steps_per_execution": steps_per_execution,
        "run_dir": str(tmp_path / name),
    }
    return config_lib.resolve("mlp", overrides=overrides)


@pytest.mark.slow  # four runs, 12 s
def test_steps_per_execution_trains_the_same_bits_resumes_across_settings_and_auto_keeps_the_faster(
    tmp_path, capsys
):
    one = train(_steps_config(tmp_path, "one", 1))  # 40 steps an epoch
    assert one["steps_per_execution"] == 1 and "steps_per_execution_choice" not in one
    with pytest.raises(RuntimeError, match="crash at step 13"):
        loop.run(Classify(_steps_config(tmp_path, "resumed", 1)), callbacks=[FailAtStep()])
    capsys.readouterr()
    resumed = train(_steps_config(tmp_path, "resumed", 32))  # the rest of epoch 1 one step a call
    assert "resuming" in capsys.readouterr().out.split("at step 12")[0]
    assert resumed["steps_per_execution"] == 20  # the largest divisor of 40 up to 32
    assert resumed["steps_per_execution_choice"]["picked_by"] == "asked"
    assert resumed["weights_sha256"] == one["weights_sha256"] and resumed["steps"] == one["steps"] == 80

    auto = train(_steps_config(tmp_path, "auto", "auto"))
    choice = auto["steps_per_execution_choice"]
    rates = choice["steps_per_s"]
    many = next(int(k) for k in rates if k != "one")  # the count measured against one: divides 40
    assert choice["picked_by"] == "measured" and set(rates) == {"one", str(many)} and 40 % many == 0
    assert auto["steps_per_execution"] == (many if rates[str(many)] > rates["one"] else 1)
    assert f"steps_per_execution auto: {auto['steps_per_execution']}, measured (" in capsys.readouterr().out
    assert auto["weights_sha256"] == one["weights_sha256"]  # measuring drew nothing from the run's seed
    cached = json.loads((tmp_path / "auto" / compile_choice.SPE_CACHE).read_text())
    assert cached["choice"] == choice and cached["key"]["steps_per_epoch"] == 40


def test_gradient_logging_and_pruning_take_one_step_a_call():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")

    class Runtime:
        replicas, distribution, chief = 1, None, True

    for field, value in (("prune_sparsity", 0.5), ("diagnostics", "gradients")):
        cfg = config_lib.resolve("mlp", overrides={"steps_per_execution": 8, field: value})
        task = type("Task", (), {"cfg": cfg})
        choice = compile_choice.steps_choice(task, Runtime, model, None, 40)
        assert choice == {
            "steps_per_execution": 1,
            "picked_by": "gradient logging or pruning acts on every step",
        }
        assert model.steps_per_execution == 1


@pytest.mark.parametrize("value", ["fast", 0, -2])
def test_steps_per_execution_takes_a_positive_int_or_auto(value):
    with pytest.raises(
        ValueError, match=f"config field steps_per_execution={value!r} is invalid: an int >= 1 or 'auto'"
    ):
        config_lib.resolve("mlp", overrides={"steps_per_execution": value})
