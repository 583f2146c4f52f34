"""``jit_compile: auto``: XLA or not by measurement, on a clone, cached in the run folder; the
run trains exactly as a run told the chosen setting (measuring draws nothing from its streams)."""

import json

import pytest

from recipes import compile_choice
from recipes import config as config_lib
from recipes.tasks.classify import train


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
