"""keras.distribution on JAX (recipes.runtime.sharding) with the families' layouts: on 8 simulated CPU
devices, in a fresh process (the device count is fixed when JAX starts)."""

import json
import re
import sys

import numpy as np
import pytest

import modelzoo
from recipes.runtime import sharding
from tests import helpers
from tests.helpers import ROOT, fast_compile_flags, subprocess_env


@pytest.fixture(scope="module")
def probe():
    # 24 compiled steps of tiny models: compiling is its time
    env = subprocess_env(JAX_NUM_CPU_DEVICES="8", KERAS_BACKEND="jax", XLA_FLAGS=fast_compile_flags())
    out = helpers.run(
        [sys.executable, "-m", "tests.recipes.sharding_probe"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {(r["model"], r["distribution"]): r for r in rows if "model" in r}, rows[-1]["refusals"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bert_tiny", "gpt_tiny", "vgg11", "resnet18"])
@pytest.mark.parametrize("distribution", ["model_parallel", "data_parallel"])
def test_sharded_weights_follow_the_layout_and_train_as_on_one_device(probe, model, distribution):
    r = probe[0][(model, distribution)]
    assert r["devices"] == 8 and r["wrong"] == [] and r["layout_adjusted"] == {}
    assert (
        r["forward_diff"] <= 1e-5 and r["weights_diff"] <= 1e-5 and r["moved"] > 1e-3
    )  # 3 steps moved the weights
    np.testing.assert_allclose(r["losses"], r["ref_losses"], rtol=1e-5)
    if distribution == "data_parallel" or model == "resnet18":  # resnet: no layout, replicated over "model"
        assert r["sharded"] == 0 and r["device_bytes_share"] == 1.0
    else:
        assert r["sharded"] == {"bert_tiny": 21, "gpt_tiny": 21, "vgg11": 3}[model]
        assert r["device_bytes_share"] < {"bert_tiny": 0.3, "gpt_tiny": 0.3, "vgg11": 1.0}[model]


@pytest.mark.slow
def test_a_bad_mesh_batch_or_name_is_one_line_and_an_indivisible_dimension_moves(probe):
    said = probe[1]
    assert "mesh='3x3' has 9 devices; this run has 8" in said["mesh"]
    assert "batch_size=6 must be divisible by the mesh's batch axis (4 devices)" in said["batch"]
    assert "'data_parallel' puts every device on the batch axis" in said["dp_model_axis"]
    assert "distribution='pipeline' is invalid" in said["name"]
    assert (
        "mesh='1x8' over 2 processes of 4 devices each: the model axis (8) must fit within one process's devices"
        in said["model_axis_across_processes"]
    )
    # 2 heads and a 50-token vocabulary over a model axis of 4: split along a dimension 4 divides instead
    adjusted = said["adjusted"]
    assert adjusted["token_embedding/embeddings"] == [None, "model"]  # (50, 128): by hidden columns
    assert adjusted["transformer_layer_0/self_attention_layer/query/kernel"] == [
        "model",
        None,
        None,
    ]  # (128, 2, 64)
    assert adjusted["transformer_layer_0/self_attention_layer/query/bias"] == [None, "model"]  # (2, 64)
    assert (
        "transformer_layer_0/feedforward_intermediate_dense/kernel" not in adjusted
    )  # 512 columns: as laid out


def test_distributions_need_jax_and_meshes_are_parsed():
    import keras

    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match="distribution='model_parallel' needs the jax backend"):
            sharding.make("model_parallel", "bert_tiny", batch_size=8)
    assert sharding.parse_mesh(None, 8) == (8, 1) and sharding.parse_mesh("2x4", 8) == (2, 4)
    with pytest.raises(ValueError, match="mesh='2by4' is invalid: give BATCHxMODEL"):
        sharding.parse_mesh("2by4", 8)


@pytest.mark.parametrize("name", ["bert_tiny", "gpt_tiny", "vgg11", "alexnet", "zfnet"])
def test_every_layout_rule_matches_a_variable_of_its_rank(name):
    entry = modelzoo.get_entry(name)
    model = modelzoo.create_model(name, **entry.tiny_config)
    assert entry.layout and modelzoo.model_info(name, stats=False)["layout"] == entry.layout_note
    for pattern, axes in entry.layout.items():
        hits = [w for w in model.weights if re.fullmatch(pattern, w.path)]
        assert hits, f"{name}: layout rule {pattern!r} matches no variable"
        assert all(len(w.shape) == len(axes) for w in hits), (pattern, [w.shape for w in hits])


def test_convolutional_families_say_they_are_data_parallel_only():
    for name in ("resnet50", "densenet121", "googlenet", "lenet5"):
        assert (
            modelzoo.get_entry(name).layout == {}
            and "data parallel only" in modelzoo.get_entry(name).layout_note
        )


@pytest.mark.slow
@pytest.mark.parametrize("model, devices, most", [("bert_base", 4, 0.30), ("bert_large", 8, 0.15)])
def test_model_parallel_devices_hold_a_fraction_of_a_large_bert(model, devices, most):
    from benchmarks.common import in_fresh_process
    from benchmarks.sharding import shard_probe

    probe = in_fresh_process(shard_probe, (model,), KERAS_BACKEND="jax", JAX_NUM_CPU_DEVICES=str(devices))
    assert probe["device_mb"] <= most * probe["params_mb"], probe  # data parallel: 100% on every device
    assert probe["adjusted"] == [
        "token_embedding/embeddings"
    ]  # 30,522 tokens: split by hidden columns instead
