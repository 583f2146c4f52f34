"""The benchmark harness runs in its tiny mode and writes a well-formed table (no timing is asserted)."""

import dataclasses
import math

import pandas as pd
import pytest

from benchmarks import common, pairs
from benchmarks import run as bench


@pytest.mark.slow
def test_tiny_mode_writes_well_formed_tables(tmp_path):
    result = bench.run("tiny", out=tmp_path, log=lambda *a: None)
    pairs = pd.read_csv(tmp_path / "results.csv")
    assert list(pairs["model"]) == [
        "resnet50",
        "keras.applications.ResNet50",
        "bert_tiny",
        "keras_hub.BertTextClassifier",
    ]
    # both sides count the same architecture: equal FLOPs; ResNet parameters differ only by conv
    # biases, BERT's not at all (the same keras-hub layers under the same names)
    assert pairs["gflops_per_sample"][0] == pairs["gflops_per_sample"][1]
    assert pairs["gflops_per_sample"][2] == pairs["gflops_per_sample"][3]
    assert 0 < pairs["params"][1] - pairs["params"][0] < 30_000
    assert pairs["params"][2] == pairs["params"][3]
    assert list(pairs["input"]) == ["32x32x3", "32x32x3", "16 tokens", "16 tokens"]
    for col in ("infer_samples_per_s", "train_samples_per_s", "infer_peak_share", "train_peak_share"):
        assert (pairs[col] > 0).all() and pairs[col].map(math.isfinite).all(), col
    assert pairs["infer_ratio"][0] == pytest.approx(
        pairs["infer_samples_per_s"][0] / pairs["infer_samples_per_s"][1]
    )
    assert pairs["infer_ratio"][1] == pairs["infer_ratio"][3] == 1.0
    pipe = pd.read_csv(tmp_path / "pipeline.csv")
    assert pipe["recipe"].tolist() == ["lenet5 on digits"] and (pipe["pipeline_ratio"] > 0).all()
    stream = pd.read_csv(tmp_path / "streaming.csv")
    assert stream["source"].tolist() == [
        "folder",
        "tfrecord",
        "tfrecord, tf.data service",
        "tfrecord, tf.data service x2",
    ]
    for col in (
        "decode_images_per_s_1_core",
        "decode_images_per_s_2_cores",
        "streaming_ratio",
        "first_batch_at_90pct_s",
    ):
        assert (stream[col] > 0).all() and stream[col].map(math.isfinite).all(), col
    assert stream["streaming_ratio"].tolist() == pytest.approx(
        (stream["stream_steps_per_s"] / stream["cached_steps_per_s"]).tolist()
    )
    corpus = pd.read_csv(tmp_path / "corpus.csv")
    assert corpus["corpus"].tolist() == ["in memory", "streamed"]
    for col in (
        "peak_rss_gb_quarter",
        "peak_rss_gb_full",
        "first_batch_at_90pct_s",
        "sequences_per_s",
        "streaming_ratio",
    ):
        assert (corpus[col] > 0).all() and corpus[col].map(math.isfinite).all(), col
    assert corpus["train_sequences"][0] == pytest.approx(
        corpus["train_sequences"][1], rel=0.05
    )  # the same text either way
    shards = pd.read_csv(tmp_path / "sharding.csv")
    assert shards["model"].tolist() == ["bert_tiny"] and shards["mesh"].tolist() == ["1x4"]
    assert 0.2 < shards["model_parallel_share"][0] < 0.5 and shards["data_parallel_share"][0] == 1.0
    deploy = pd.read_csv(tmp_path / "deploy.csv")
    assert deploy["runtime"].tolist() == [
        "zoo Keras model, TF graph",  # keras.applications has no LeNet-5
        "SavedModel",
        "SavedModel, folded",
        "LiteRT float32, folded",
        "LiteRT int8",
        "ONNX Runtime, folded",
    ]
    assert (deploy["samples_per_s"] > 0).all() and deploy["ratio"][0] == 1.0
    assert (deploy["relative_difference"][:4] < 1e-5).all() and deploy["relative_difference"][5] < 1e-5
    assert math.isfinite(deploy["relative_difference"][4])  # int8: judged on a trained model (test_export)
    training = pd.read_csv(tmp_path / "training.csv")
    assert training["recipe"].tolist() == ["lenet5 on digits"] and training["epochs"].tolist() == [1]
    assert training["picked"][0] == (
        "XLA" if training["steps_per_s_xla"][0] > training["steps_per_s_no_xla"][0] else "no XLA"
    )
    assert training["ratio"][0] == pytest.approx(
        training["recipe_samples_per_s"][0] / training["plain_samples_per_s"][0]
    )
    assert 0 <= training["recipe_accuracy"][0] <= 1 and 0 <= training["plain_accuracy"][0] <= 1
    one, many = training["steps_per_s_one_a_call"][0], training["steps_per_s_many_a_call"][0]
    assert training["steps_per_execution"][0] >= 1 and one > 0  # lenet5's step is short: measured
    assert (training["steps_per_execution"][0] > 1) == (many > one)
    text = (tmp_path / "results.md").read_text()
    assert result["markdown"] == text and "Matmul peak" in text and result["machine"]["cores"] >= 1
    # their tables: the tests below
    assert "ISA: not measured in this mode." in text and "Peers: not measured in this mode." in text
    tables = [line for line in text.splitlines() if line.startswith("|")]
    assert len(tables) == 2 + 4 + 2 + 6 + 2 + 1 + 2 + 1 + 2 + 4 + 2 + 2 + 2 + 1
    # headers and rules; four pairs, six exports, a recipe trained, a pipeline, four streams, two
    # corpora, a model
    assert all(line.count("|") == tables[0].count("|") for line in tables[:6])


def test_one_section_writes_its_own_table_and_an_unknown_one_is_one_line(tmp_path):
    result = bench.run("tiny", out=tmp_path, log=lambda *a: None, sections=("pipeline",))
    assert (
        (tmp_path / "pipeline.md").is_file()
        and not (tmp_path / "results.md").exists()
        and "pairs" not in result
    )
    assert "--only pipeline`" in result["markdown"]
    with pytest.raises(ValueError, match="unknown benchmark section\\(s\\) \\['nope'\\]"):
        bench.run("tiny", out=tmp_path, sections=("nope",))


def test_the_isa_table_compares_each_model_with_and_without_the_cap(monkeypatch):
    from benchmarks import isa
    from recipes.runtime import native

    asked = []

    def fresh(probe, args, **env):  # in this process: the table's shape, not the cap's effect
        asked.append(env[native.ISA_VARIABLE])
        full = env[native.ISA_VARIABLE] == "DEFAULT"
        return {"infer": 2.0 if full else 1.5, "train": 1.0}

    monkeypatch.setattr(isa, "in_fresh_process", fresh)
    monkeypatch.setattr(native, "avx512", lambda: True)
    settings = dataclasses.replace(common.TINY, isa_models=("lenet5",), isa_rounds=2)
    (row,) = isa.bench_isa(settings, "tiny", log=lambda *a: None)
    assert asked == ["DEFAULT", native.BELOW_AVX512, native.BELOW_AVX512, "DEFAULT"]  # alternating
    assert (
        row["infer_ratio"] == 0.75 and row["train_ratio"] == 1.0 and row["capped_to"] == native.BELOW_AVX512
    )
    rates = isa.probe("lenet5", "tiny")  # the probe itself, once, in this process
    assert rates["infer"] > 0 and rates["train"] > 0


def test_the_peers_table_puts_each_zoo_backend_beside_timm(monkeypatch):
    from benchmarks import peers
    from recipes.runtime import native

    rates = {"timm": 4.0, "tensorflow": 3.0, "tensorflow_full_isa": 5.0, "jax": 2.0, "keras_torch": 1.0}
    asked = []

    def fresh(probe, args, **env):  # in this process: the table's shape and each side's setting
        side = args[0]
        asked.append((side, env.get("KERAS_BACKEND"), env.get(native.ISA_VARIABLE)))
        return {"infer": rates[side], "train": rates[side] / 2, "params": 7 if side == "timm" else 8}

    monkeypatch.setattr(native, "avx512", lambda: True)
    settings = dataclasses.replace(common.TINY, peers=("mobilenet_v2",), peer_rounds=2)
    (row,) = peers.bench_peers(settings, "tiny", log=lambda *a: None, measure=fresh)
    sides = list(peers.SIDES)
    assert [side for side, *_ in asked] == sides + sides[::-1]  # alternating rounds
    settings_of = {side: (backend, isa) for side, backend, isa in asked}
    assert settings_of == {
        "timm": (None, "DEFAULT"),
        "tensorflow": ("tensorflow", native.BELOW_AVX512),  # as the recipes run it
        "tensorflow_full_isa": ("tensorflow", "DEFAULT"),
        "jax": ("jax", None),
        "keras_torch": ("torch", "DEFAULT"),
    }
    assert row["timm_model"] == "mobilenetv2_100" and (row["zoo_params"], row["timm_params"]) == (8, 7)
    for side in sides[1:]:
        assert row[f"{side}_infer_ratio"] == row[f"{side}_train_ratio"] == rates[side] / 4.0
    zoo = peers.probe("tensorflow", "mobilenet_v2", "tiny")  # the Keras probe itself, in this process
    assert zoo["infer"] > 0 and zoo["train"] > 0 and zoo["params"] == 3_504_872


@pytest.mark.skipif(not __import__("benchmarks.peers").peers.timm_installed(), reason='needs ".[bench]"')
def test_timm_counts_the_zoos_parameters_for_each_peer():
    # the same architecture on both sides: timm's parameters equal the zoo's trainable ones
    from benchmarks import peers

    timm = common.in_fresh_process(peers.probe, ("timm", "mobilenet_v2", "tiny"), **peers.FULL_ISA)
    assert timm["infer"] > 0 and timm["train"] > 0 and timm["params"] == 3_504_872


def test_settings_are_sane_for_every_mode():
    for mode in ("tiny", "quick", "full"):
        for acc in ("cpu", "gpu", "tpu"):
            s = common.settings_for(mode, acc)
            assert s.batch_size > 0 and s.repeats >= 1 and set(s.pairs) <= set(common.PAIRS)
            assert all(name.startswith("bert") for name in s.text_pairs) and s.sequence_length > 0
    assert (
        common.settings_for("full", "gpu").precision == "mixed_float16"
        and common.settings_for("full", "gpu").jit_compile
    )
    assert common.settings_for("full", "cpu").precision == "float32"


def test_vit_pair_is_keras_hubs_classifier_of_the_same_size():
    # keras.applications has no ViT: the pair is keras-hub's ViTImageClassifier on a ViTBackbone
    # read off the zoo model (patch, depth, heads, widths), so both sides have the same weights
    import modelzoo

    zoo = modelzoo.create_model(
        "vit_tiny_patch16_224", num_classes=7, input_shape=(48, 32, 3), depth=2, width=24, heads=3
    )
    hub = pairs.hub_vit(zoo)
    assert type(hub).__name__ == "ViTImageClassifier" and tuple(hub.inputs[0].shape[1:]) == (48, 32, 3)
    assert hub.count_params() == zoo.count_params()
    sizes = [sorted(math.prod(w.shape) for w in m.weights) for m in (hub, zoo)]
    assert sizes[0] == sizes[1]  # weight for weight (the position table is (7, 24) there, (1, 7, 24) here)
    assert "vit_base_patch16_224" in common.PAIRS


def test_the_deploy_reference_for_bert_is_keras_hubs_classifier_holding_the_zoo_models_weights():
    """The deploy table's text rows compare the zoo BERT with keras-hub's ``BertTextClassifier``:
    the same weights (the backbone and the logits copied), so the same logits."""
    import numpy as np

    from benchmarks import deploy

    zoo, reference, label, x = deploy._models("bert_tiny", 2, common.TINY)
    assert label == "keras_hub.BertTextClassifier, TF graph" and set(x) == set(zoo.input)
    assert reference.backbone.count_params() + 2 * 128 + 2 == zoo.count_params()
    np.testing.assert_allclose(zoo(x, training=False), reference(x, training=False), rtol=1e-6, atol=1e-6)
