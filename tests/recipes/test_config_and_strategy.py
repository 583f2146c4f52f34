"""Bad configs and strategies fail before training starts, with a message naming the field."""

import pytest
import tensorflow as tf

from recipes import config as config_lib
from recipes import train as train_cli
from recipes.runtime.strategy import StrategyError, make_strategy


@pytest.mark.parametrize(
    "override, field",
    [
        ({"optimizer": "adamm"}, "optimizer='adamm'.*Did you mean 'adam'"),
        ({"learning_rate": -0.1}, "learning_rate=-0.1"),
        ({"strategy": "mirrorred"}, "strategy='mirrorred'.*'mirrored'"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"epochs": "ten"}, "epochs='ten'.*expected int"),
        ({"schedule": "step"}, "step_epochs"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"mixed_precision": "fp8"}, "mixed_precision"),
    ],
)
def test_bad_fields_are_named(override, field):
    with pytest.raises(ValueError, match=field):
        config_lib.resolve("lenet5", overrides=override)


def test_unknown_field_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown field 'learning_rat'.*'learning_rate'"):
        config_lib.resolve("lenet5", overrides={"learning_rat": 0.1})


def test_recipe_yaml_then_overrides(tmp_path):
    cfg = config_lib.resolve("alexnet")  # recipes/configs/alexnet_digits.yaml
    assert cfg.image_size == 67 and cfg.schedule == "cosine"
    cfg = config_lib.resolve("alexnet", overrides={"epochs": 2})
    assert cfg.epochs == 2
    path = tmp_path / "c.yaml"
    config_lib.save(cfg, path)
    assert config_lib.from_dict(config_lib.load_yaml(path)) == cfg
    assert config_lib.parse_override("step_epochs=[30, 60]") == ("step_epochs", [30, 60])


def test_cli_prints_one_line_and_exits_2(capsys):
    assert train_cli.main(["lenet5", "--set", "optimizer=rmsprop"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optimizer='rmsprop'" in err[0]
    assert train_cli.main(["lenett5"]) == 2
    assert "Did you mean 'lenet5'" in capsys.readouterr().err


def test_strategies_are_checked_against_the_hardware(monkeypatch):
    with pytest.raises(StrategyError, match="num_gpus=2 needs 2 GPU"):
        make_strategy("mirrored", num_gpus=2)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="TF_CONFIG"):
        make_strategy("multi_worker_mirrored")
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(StrategyError, match="needs an address"):
        make_strategy("tpu")
    if not tf.config.list_physical_devices("TPU"):  # TF 2.21 has no TPU build: one line that says what to use
        with pytest.raises(
            StrategyError,
            match=r"cannot reach TPU 'local'.*has no TPU build.*--backend jax --distribution data_parallel",
        ):
            make_strategy("tpu", tpu="local")
    with pytest.raises(StrategyError, match="strategy must be one of"):
        make_strategy("horovod")
    # one device (no GPU here): TensorFlow's default strategy, not OneDeviceStrategy's per-iterator cost
    assert make_strategy("auto") is tf.distribute.get_strategy()
    assert type(make_strategy("one_device")).__name__ == "OneDeviceStrategy"
    assert make_strategy("off").num_replicas_in_sync == 1
