"""Text models: counts pinned to keras-hub and to the papers' arithmetic, weight interchange with
keras-hub's BertBackbone, the tied masked-LM head, and TextCNN's embedding modes."""

import keras
import keras_hub
import numpy as np
import pytest

import modelzoo
from modelzoo.models.bert import SIZES, load_keras_hub_backbone, load_keras_hub_masked_lm
from tests.helpers import shapes_only


def _backbone(name, vocabulary_size=30522, max_sequence_length=512):
    layers, hidden, heads = SIZES[name]
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=4 * hidden,
        max_sequence_length=max_sequence_length,
    )


def _inputs(n=2, length=512, vocabulary_size=30522):
    rng = np.random.default_rng(0)
    mask = np.ones((n, length), "int32")
    mask[1, length // 2 :] = 0
    ids = rng.integers(1, vocabulary_size, (n, length)).astype("int32") * mask
    return {
        "token_ids": ids,
        "segment_ids": (np.arange(length) >= length // 3).astype("int32")[None].repeat(n, 0),
        "padding_mask": mask,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIZES))
def test_bert_sizes_have_the_parameters_of_keras_hub_backbones(name):
    pinned = {
        "bert_tiny": 4_385_920,
        "bert_mini": 11_170_560,
        "bert_small": 28_763_648,
        "bert_medium": 41_373_184,
        "bert_base": 109_482_240,
        "bert_large": 335_141_888,
    }
    with shapes_only():
        zoo = modelzoo.create_model(name, include_top=False)
        assert zoo.count_params() == _backbone(name).count_params() == pinned[name]


def test_bert_loads_a_keras_hub_backbone_and_gives_its_outputs():
    # BERT-Tiny's layers at a 1,000-piece vocabulary and 128 positions: the same interchange as
    # at 30,522 and 512, at a tenth of the eager time (17 s on JAX)
    sizes = dict(vocabulary_size=1000, max_sequence_length=128)
    backbone = _backbone("bert_tiny", **sizes)
    zoo = load_keras_hub_backbone(modelzoo.create_model("bert_tiny", include_top=False, **sizes), backbone)
    x = _inputs(2, 128, 1000)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(zoo(x)),
        keras.ops.convert_to_numpy(backbone(x)["pooled_output"]),
        rtol=0,
        atol=1e-5,
    )
    features = modelzoo.create_model("bert_tiny", features_only=True, out_indices=(-1,), **sizes)
    load_keras_hub_backbone(features, backbone)
    out = features(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(backbone(x)["sequence_output"]), atol=1e-5
    )
    with pytest.raises(ValueError, match="layer 'token_embedding': the backbone's weights have shapes"):
        load_keras_hub_backbone(
            modelzoo.create_model("bert_tiny", include_top=False, **sizes), _backbone("bert_mini", **sizes)
        )
    shallow = modelzoo.create_model(
        "bert", num_layers=1, hidden_dim=128, num_heads=2, intermediate_dim=512, include_top=False, **sizes
    )
    with pytest.raises(ValueError, match="no layer 'transformer_layer_1'"):
        load_keras_hub_backbone(shallow, backbone)
    # fewer positions than the backbone: the first ones, same outputs on the shorter sequences
    short = load_keras_hub_backbone(
        modelzoo.create_model("bert_tiny", include_top=False, vocabulary_size=1000, max_sequence_length=64),
        backbone,
    )
    x64 = {k: v[:, :64] for k, v in x.items()}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(short(x64)),
        keras.ops.convert_to_numpy(backbone(x64)["pooled_output"]),
        atol=1e-5,
    )
    with pytest.raises(
        ValueError, match="sequences of 64 tokens, longer than the backbone's max_sequence_length=32"
    ):
        load_keras_hub_backbone(
            modelzoo.create_model(
                "bert_tiny", include_top=False, vocabulary_size=1000, max_sequence_length=64
            ),
            _backbone("bert_tiny", vocabulary_size=1000, max_sequence_length=32),
        )


def test_one_built_bert_takes_any_length_up_to_its_positions_as_keras_hub_does():
    """keras-hub's backbones take ``(batch, None)`` tokens; so does the zoo's BERT: batches of 64 and
    128 tokens through one model, each equal to the backbone with the same weights, and a 128-token
    batch whose last 64 are padding equal to the 64-token batch on its first 64 positions."""
    backbone = _backbone("bert_tiny", max_sequence_length=128)
    zoo = modelzoo.create_model("bert_tiny", features_only=True, out_indices=(-1,), max_sequence_length=128)
    load_keras_hub_backbone(zoo, backbone)
    assert zoo.inputs[0].shape == (None, None)
    x128 = _inputs(2, 128)
    x64 = {k: v[:, :64] for k, v in x128.items()}
    outputs = {}
    for length, x in ((64, x64), (128, x128)):
        out = keras.ops.convert_to_numpy(keras.tree.flatten(zoo(x))[0])
        assert out.shape == (2, length, 128)
        expected = keras.ops.convert_to_numpy(backbone(x)["sequence_output"])
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
        outputs[length] = out
    padded = {k: v.copy() for k, v in x128.items()}
    padded["padding_mask"][:, 64:] = 0
    first = keras.ops.convert_to_numpy(keras.tree.flatten(zoo(padded))[0])[:, :64]
    np.testing.assert_allclose(first, keras.ops.convert_to_numpy(keras.tree.flatten(zoo(x64))[0]), atol=1e-5)
    with pytest.raises(
        ValueError, match="a sequence of 129 tokens; this model takes at most max_sequence_length=128"
    ):
        zoo(_inputs(2, 129))
    # counted at its longest input by default; per layer 4Lh^2 + 2L^2h + 8Lh^2 multiply-adds
    macs = {n: modelzoo.count_flops(zoo, length=n)["macs"] for n in (64, 128)}
    assert modelzoo.count_flops(zoo)["macs"] == macs[128]
    h = 128
    assert macs[128] - macs[64] == 2 * (12 * (128 - 64) * h * h + 2 * (128**2 - 64**2) * h)


def test_masked_lm_head_is_tied_and_survives_save_and_load(tmp_path):
    kw = dict(vocabulary_size=100, max_sequence_length=16)
    mlm = modelzoo.create_model("bert_tiny", head="masked_lm", **kw)
    hub = keras_hub.models.BertMaskedLM(backbone=_backbone("bert_tiny", 100, 16), preprocessor=None)
    pooler = 128 * 128 + 128
    assert mlm.count_params() == hub.count_params() - pooler  # no next-sentence task, no pooler
    x = {**_inputs(2, 16, 100), "mask_positions": np.array([[1, 2, 3], [4, 5, 6]], "int32")}
    y = keras.ops.convert_to_numpy(mlm(x))
    assert y.shape == (2, 3, 100)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    mlm.save(tmp_path / "mlm.keras")
    loaded = keras.saving.load_model(tmp_path / "mlm.keras", safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), y)
    assert loaded.count_params() == mlm.count_params()  # the tie holds: one embedding table


def test_textcnn_follows_the_paper_and_its_embedding_modes():
    # Kim 2014 at 300-d vectors: 3 widths x 100 maps, dense head
    assert modelzoo.model_info("textcnn", stats=False)["paper"].startswith("Kim")
    kw = dict(vocabulary_size=40, max_sequence_length=10, embedding_dim=6, num_filters=5)
    vectors = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    conv = (3 + 4 + 5) * 6 * 5 + 3 * 5
    head = 15 * 2 + 2
    rand = modelzoo.create_model("textcnn", **kw)
    assert rand.count_params() == 40 * 6 + conv + head
    static = modelzoo.create_model("textcnn", embedding_mode="static", embeddings=vectors, **kw)
    assert not static.get_layer("embedding").trainable
    np.testing.assert_array_equal(static.get_layer("embedding").get_weights()[0], vectors)
    multi = modelzoo.create_model("textcnn", embedding_mode="multichannel", embeddings=vectors, **kw)
    assert (
        multi.count_params() == 2 * 40 * 6 + (3 + 4 + 5) * (2 * 6) * 5 + 3 * 5 + head
    )  # filters span both channels
    assert (
        sum(np.prod(w.shape) for w in multi.trainable_weights) == 40 * 6 + 2 * (3 + 4 + 5) * 6 * 5 + 15 + head
    )
    with pytest.raises(ValueError, match="embedding_mode='static' needs embeddings"):
        modelzoo.create_model("textcnn", embedding_mode="static", **kw)
    with pytest.raises(ValueError, match=r"embeddings have shape \(40, 5\)"):
        modelzoo.create_model("textcnn", embedding_mode="non-static", embeddings=vectors[:, :5], **kw)
    with pytest.raises(ValueError, match="embedding_mode must be one of"):
        modelzoo.create_model("textcnn", embedding_mode="dynamic")


def test_recurrent_classifiers_count_their_gates():
    kw = dict(vocabulary_size=100, max_sequence_length=10, embedding_dim=4, units=8, num_classes=2)
    lstm = modelzoo.create_model("lstm_classifier", **kw)
    assert lstm.count_params() == 100 * 4 + 4 * ((4 + 8) * 8 + 8) + 8 * 2 + 2
    gru = modelzoo.create_model("gru_classifier", bidirectional=True, **kw)
    assert gru.count_params() == 100 * 4 + 2 * 3 * ((4 + 8) * 8 + 2 * 8) + 16 * 2 + 2
    with pytest.raises(ValueError, match="gru_classifier got an unknown keyword 'cell'"):
        modelzoo.create_model("gru_classifier", cell="lstm")


def test_bert_rejects_heads_it_does_not_have():
    with pytest.raises(ValueError, match="hidden_dim=100 must be divisible by num_heads=3"):
        modelzoo.create_model("bert", hidden_dim=100, num_heads=3)
    with pytest.raises(ValueError, match="head must be one of"):
        modelzoo.create_model("bert_tiny", head="nsp")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt_tiny", "gpt2_small"])
def test_gpt_sizes_have_the_parameters_of_keras_hub_backbones(name):
    from modelzoo.models.gpt import SIZES as GPT_SIZES

    layers, hidden, heads = GPT_SIZES[name]
    with shapes_only():
        _check_gpt_counts(name, layers, hidden, heads)


def _check_gpt_counts(name, layers, hidden, heads):
    hub = keras_hub.models.GPT2Backbone(
        vocabulary_size=50257,
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=4 * hidden,
        max_sequence_length=1024,
    )
    tied = modelzoo.create_model(name)
    assert (
        tied.count_params()
        == modelzoo.create_model(name, include_top=False).count_params()
        == hub.count_params()
    )


def test_gpt_is_causal_and_its_head_is_tied(tmp_path):
    model = modelzoo.create_model("gpt_tiny", vocabulary_size=100, max_sequence_length=16)
    x = {
        "token_ids": np.random.default_rng(0).integers(1, 100, (2, 16)).astype("int32"),
        "padding_mask": np.ones((2, 16), "int32"),
    }
    y = keras.ops.convert_to_numpy(model(x))
    later = {k: v.copy() for k, v in x.items()}
    later["token_ids"][:, 10] = 7
    changed = keras.ops.convert_to_numpy(model(later))
    np.testing.assert_array_equal(changed[:, :10], y[:, :10])  # no position sees the future
    assert not np.allclose(changed[:, 10:], y[:, 10:])
    model.save(tmp_path / "gpt.keras")
    loaded = keras.saving.load_model(tmp_path / "gpt.keras", safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), y)
    assert loaded.count_params() == model.count_params()
    with pytest.raises(ValueError, match="num_classes=3: a language model predicts its 100 tokens"):
        modelzoo.create_model("gpt_tiny", vocabulary_size=100, num_classes=3)


def test_keras_hub_presets_load_through_from_preset(tmp_path):
    """``weights=`` a keras-hub preset: a directory saved here by ``save_to_preset`` (presets cannot
    be downloaded on this machine), loaded by keras-hub's own ``from_preset``; built-in names are
    recognised as presets without fetching anything."""
    from modelzoo import pretrained

    bert = _backbone("bert_tiny", vocabulary_size=50, max_sequence_length=32)
    bert.save_to_preset(str(tmp_path / "bert"))
    zoo = modelzoo.create_model(
        "bert_tiny",
        vocabulary_size=50,
        max_sequence_length=32,
        include_top=False,
        weights=str(tmp_path / "bert"),
    )
    x = _inputs(2, 32, 50)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(zoo(x)), keras.ops.convert_to_numpy(bert(x)["pooled_output"]), atol=1e-5
    )
    gpt = keras_hub.models.GPT2Backbone(
        vocabulary_size=50,
        num_layers=2,
        num_heads=2,
        hidden_dim=128,
        intermediate_dim=512,
        max_sequence_length=32,
    )
    gpt.save_to_preset(str(tmp_path / "gpt"))
    lm = modelzoo.create_model(
        "gpt_tiny", vocabulary_size=50, max_sequence_length=32, include_top=False, weights=tmp_path / "gpt"
    )
    tokens = {"token_ids": x["token_ids"], "padding_mask": x["padding_mask"]}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(lm(tokens)), keras.ops.convert_to_numpy(gpt(tokens)), atol=1e-5
    )
    assert pretrained.is_keras_hub_preset("bert_base", "bert_base_en_uncased")
    assert pretrained.is_keras_hub_preset("gpt2_small", "gpt2_base_en")
    assert not pretrained.is_keras_hub_preset("resnet50", str(tmp_path / "bert"))
    with pytest.raises(ValueError, match="holds a BertBackbone; 'gpt_tiny' loads GPT2Backbone presets"):
        modelzoo.create_model("gpt_tiny", vocabulary_size=50, weights=str(tmp_path / "bert"))
    with pytest.raises(ValueError, match="is not a keras-hub preset directory"):
        modelzoo.create_model("bert_tiny", weights=str(tmp_path))
    with pytest.raises(ValueError, match="'imagenet' or a keras-hub preset or a weights file"):
        modelzoo.create_model("bert_tiny", weights="no_such_preset")


# zoo builder: keras-hub backbone, its extra sizes (ALBERT: 4 calls of 2 groups of 2 shared layers)
RELATIVES = {
    "roberta": ("RobertaBackbone", {}),
    "distilbert": ("DistilBertBackbone", {}),
    "albert": (
        "AlbertBackbone",
        {"embedding_dim": 8, "num_groups": 2, "num_inner_repetitions": 2, "num_layers": 4},
    ),
    "electra": ("ElectraBackbone", {"embedding_dim": 8}),
}


def _hub_backbone(backbone: str, **kwargs):
    if backbone == "ElectraBackbone":  # keras-hub's ELECTRA alone names it vocab_size
        kwargs["vocab_size"] = kwargs.pop("vocabulary_size")
    return getattr(keras_hub.models, backbone)(**kwargs)


@pytest.mark.parametrize("name", list(RELATIVES))
def test_bert_relatives_load_keras_hub_backbones_and_give_their_outputs(name):
    backbone, extra = RELATIVES[name]
    sizes = {
        **dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64),
        **extra,
    }
    hub = _hub_backbone(backbone, **sizes, max_sequence_length=32)
    zoo = modelzoo.create_model(name, **sizes, max_sequence_length=32, features_only=True, out_indices=(-1,))
    load_keras_hub_backbone(zoo, hub)
    segments = name in ("albert", "electra")
    for length in (20, 32):  # any length up to the positions
        x = {k: v for k, v in _inputs(2, length, 100).items() if segments or k != "segment_ids"}
        out = keras.ops.convert_to_numpy(keras.tree.flatten(zoo(x))[0])
        expected = hub(x)["sequence_output"] if segments else hub(x)
        np.testing.assert_allclose(out, keras.ops.convert_to_numpy(expected), rtol=0, atol=1e-6)
    classifier = modelzoo.create_model(name, **sizes, max_sequence_length=32, num_classes=3)
    load_keras_hub_backbone(classifier, hub)
    assert classifier.get_layer("logits").units == 3 and classifier(x).shape == (2, 3)
    with pytest.raises(
        ValueError, match="a sequence of 33 tokens; this model takes at most max_sequence_length=32"
    ):
        zoo({k: np.ones((2, 33), "int32") for k in x})


MASKED_LM = {"bert": "BertMaskedLM", "roberta": "RobertaMaskedLM", "distilbert": "DistilBertMaskedLM"}
MASKED_LM["albert"] = "AlbertMaskedLM"


@pytest.mark.parametrize("name", list(MASKED_LM))
def test_masked_lm_heads_give_keras_hub_tasks_outputs_and_keep_their_tie(tmp_path, name):
    backbone, extra = ("BertBackbone", {}) if name == "bert" else RELATIVES[name]
    sizes = {
        **dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64),
        **extra,
    }
    hub = getattr(keras_hub.models, MASKED_LM[name])(
        backbone=_hub_backbone(backbone, **sizes, max_sequence_length=32), preprocessor=None
    )
    for w in hub.masked_lm_head.weights:  # random head weights, not the initial ones and zeros
        w.assign(np.random.default_rng(1).normal(0, 0.2, w.shape))
    zoo = modelzoo.create_model(name, **sizes, max_sequence_length=32, head="masked_lm")
    load_keras_hub_masked_lm(zoo, hub)
    pooler = 32 * 32 + 32 if name in ("bert", "albert") else 0
    assert zoo.count_params() == hub.count_params() - pooler  # one table: the head reuses it
    segments = name in ("bert", "albert")
    x = {k: v for k, v in _inputs(2, 20, 100).items() if segments or k != "segment_ids"}
    x["mask_positions"] = np.array([[1, 5, 19], [0, 2, 7]], "int32")
    y = keras.ops.convert_to_numpy(zoo(x))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(hub(x)))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)
    zoo.save(tmp_path / "mlm.keras")
    loaded = keras.saving.load_model(tmp_path / "mlm.keras", safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), y)
    assert loaded.count_params() == zoo.count_params()  # the tie survives the save
    classifier = modelzoo.create_model(name, **sizes, max_sequence_length=32)
    with pytest.raises(ValueError, match="has no masked-LM head: build it with head='masked_lm'"):
        load_keras_hub_masked_lm(classifier, hub)


def test_electra_generator_head_is_tied_at_the_embedding_width():
    sizes = dict(vocabulary_size=100, num_heads=2, hidden_dim=32, intermediate_dim=64, num_layers=1)
    generator = modelzoo.create_model("electra", **sizes, embedding_dim=8, head="masked_lm")
    encoder = modelzoo.create_model("electra", **sizes, embedding_dim=8, include_top=False)
    pooler = 32 * 32 + 32
    assert (
        generator.count_params() == encoder.count_params() - pooler + (32 * 8 + 8) + 2 * 8 + 100
    )  # dense to E
    x = {**_inputs(2, 20, 100), "mask_positions": np.array([[1, 2], [3, 4]], "int32")}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(generator(x)).sum(-1), 1.0, rtol=1e-5)


def test_electra_discriminator_scores_every_token_and_albert_shares_its_layers(tmp_path):
    sizes = dict(vocabulary_size=100, num_heads=2, hidden_dim=32, intermediate_dim=64, embedding_dim=8)
    electra = modelzoo.create_model("electra", **sizes, num_layers=2, head="discriminator")
    x = _inputs(2, 20, 100)
    replaced = keras.ops.convert_to_numpy(electra(x))
    assert replaced.shape == (2, 20) and ((replaced > 0) & (replaced < 1)).all()  # P(replaced) per token
    electra.save(tmp_path / "electra.keras")
    loaded = keras.saving.load_model(tmp_path / "electra.keras", safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), replaced)
    shared = modelzoo.create_model("albert", **sizes, num_layers=6)
    assert shared.count_params() == modelzoo.create_model("albert", **sizes, num_layers=1).count_params()
    assert [f["layer"] for f in shared.feature_info] == [
        f"layer_{i}" for i in range(6)
    ]  # six calls, one layer
    with pytest.raises(ValueError, match="num_layers=6 must be divisible by num_groups=4"):
        modelzoo.create_model("albert", **sizes, num_layers=6, num_groups=4)


@pytest.mark.slow
def test_bert_relatives_have_the_parameters_of_keras_hub_backbones():
    sizes = {  # backbone, vocabulary, layers, hidden, heads, embedding
        "roberta_base": ("RobertaBackbone", 50265, 12, 768, 12, None),
        "roberta_large": ("RobertaBackbone", 50265, 24, 1024, 16, None),
        "distilbert_base": ("DistilBertBackbone", 30522, 6, 768, 12, None),
        "albert_base": ("AlbertBackbone", 30000, 12, 768, 12, 128),
        "albert_large": ("AlbertBackbone", 30000, 24, 1024, 16, 128),
        "electra_small": ("ElectraBackbone", 30522, 12, 256, 4, 128),
        "electra_base": ("ElectraBackbone", 30522, 12, 768, 12, 768),
    }
    with shapes_only():
        for name, (backbone, vocabulary, layers, hidden, heads, embedding) in sizes.items():
            kwargs = dict(vocabulary_size=vocabulary, num_layers=layers, num_heads=heads, hidden_dim=hidden)
            kwargs.update(intermediate_dim=4 * hidden, max_sequence_length=512)
            hub = _hub_backbone(backbone, **kwargs, **({"embedding_dim": embedding} if embedding else {}))
            assert modelzoo.create_model(name, include_top=False).count_params() == hub.count_params(), name


@pytest.mark.parametrize("name", list(RELATIVES))
def test_bert_relatives_load_locally_saved_keras_hub_presets(tmp_path, name):
    backbone, extra = RELATIVES[name]
    sizes = {
        **dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64),
        **extra,
    }
    hub = _hub_backbone(backbone, **sizes, max_sequence_length=32)
    hub.save_to_preset(str(tmp_path / name))
    zoo = modelzoo.create_model(
        name,
        **sizes,
        max_sequence_length=32,
        features_only=True,
        out_indices=(-1,),
        weights=str(tmp_path / name),
    )
    x = {k: v for k, v in _inputs(2, 20, 100).items() if name in ("albert", "electra") or k != "segment_ids"}
    expected = hub(x)["sequence_output"] if isinstance(hub.output, dict) else hub(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.tree.flatten(zoo(x))[0]),
        keras.ops.convert_to_numpy(expected),
        atol=1e-6,
    )
