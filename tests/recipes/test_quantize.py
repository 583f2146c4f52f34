"""Post-training quantization with Keras's model.quantize: accuracy kept, file smaller, safe-mode loadable."""

import json

import keras
import pytest

from recipes import config as config_lib
from recipes.quantize import quantize
from recipes.tasks.classify import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("quantize") / "mlp"
    train(config_lib.resolve("mlp", overrides={"epochs": 5, "verbose": 0, "run_dir": str(path)}))
    return path


@pytest.mark.parametrize("mode, max_ratio", [("int8", 0.4), ("int4", 0.3)])
def test_quantized_model_keeps_accuracy_and_shrinks(run_dir, mode, max_ratio):
    report = quantize(run_dir, mode)
    assert abs(report["accuracy_change_points"]) <= 1.0 and report["test_accuracy_before"] > 0.9
    assert report["size_ratio"] < max_ratio and report["layers_quantized"] == [
        "hidden1",
        "hidden2",
        "output",
    ]  # every Dense
    model = keras.saving.load_model(run_dir / f"quantized_{mode}.keras", safe_mode=True)
    assert any(mode in layer.dtype_policy.name for layer in model.layers)
    assert json.loads((run_dir / f"quantize_{mode}.json").read_text())["mode"] == mode


def test_unknown_mode_is_one_clear_error(run_dir):
    with pytest.raises(
        ValueError, match="quantization mode must be one of \\['int8', 'int4', 'float8'\\], got 'int3'"
    ):
        quantize(run_dir, "int3")
