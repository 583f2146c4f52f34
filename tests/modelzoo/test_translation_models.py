"""Translation models: the encoder-decoder Transformer (Vaswani et al. 2017) and the LSTM
encoder-decoder (Sutskever et al. 2014): counts against the papers, weight sharing, causality,
padding masks, the reversed source and attention."""

import keras
import numpy as np
import pytest

import modelzoo

TINY = dict(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32)


def layer_params(num_layers: int, d: int, ff: int) -> int:
    """The paper's arithmetic for N encoder and N decoder layers: attention is four d x d maps with
    biases, the feed-forward two with biases, a layer norm 2d; the decoder has two attentions and
    three norms."""
    attention = 4 * (d * d + d)
    feed_forward = d * ff + ff + ff * d + d
    encoder = attention + feed_forward + 2 * 2 * d
    decoder = 2 * attention + feed_forward + 3 * 2 * d
    return num_layers * (encoder + decoder)


def test_base_and_big_have_the_papers_arithmetic_at_a_shared_37000_token_vocabulary():
    """Table 3 gives 65M (base) and 213M (big) without the vocabulary; section 5.1's shared
    byte-pair vocabulary of about 37,000 tokens gives 63.1M and 214.2M. The vocabularies that
    round to the paper's numbers do not overlap (base needs 39,769-41,721 tokens, big
    35,296-36,272), so no one vocabulary reproduces both."""
    base, big = (modelzoo.model_info(n)["params"] for n in ("transformer_base", "transformer_big"))
    assert base == layer_params(6, 512, 2048) + 37000 * 512 == 63_082_496
    assert big == layer_params(6, 1024, 4096) + 37000 * 1024 == 214_245_376

    def vocabularies(layers: int, d: int, paper: float) -> range:
        low = int(np.ceil((paper - 0.5e6 - layers) / d))
        high = int(np.ceil((paper + 0.5e6 - layers) / d))
        return range(low, high)

    for_base = vocabularies(layer_params(6, 512, 2048), 512, 65e6)
    for_big = vocabularies(layer_params(6, 1024, 4096), 1024, 213e6)
    assert (for_base.start, for_base.stop - 1, for_big.start, for_big.stop - 1) == (
        39769,
        41721,
        35296,
        36272,
    )
    assert not set(for_base) & set(for_big)
    info = modelzoo.model_info("transformer_base")
    assert info["task"] == "translation" and info["paper"].startswith("Vaswani")


@pytest.mark.slow
def test_the_registered_sizes_build_to_their_counts():
    sizes = {"transformer_base": (512, 2048, 8, 0.1), "transformer_big": (1024, 4096, 16, 0.3)}
    with keras.StatelessScope():
        for name, (d, ff, heads, dropout) in sizes.items():
            model = modelzoo.create_model(name)
            assert model.count_params() == modelzoo.model_info(name)["params"]
            layer = model.get_layer("transformer_decoder_layer_5")
            assert (layer.num_heads, layer.intermediate_dim, layer.dropout) == (heads, ff, dropout)
            assert model.get_layer("token_embedding").output_dim == d


def _batch(source_length=7, target_length=5, n=2, vocabulary=50, target_vocabulary=50):
    rng = np.random.default_rng(0)
    source = rng.integers(1, vocabulary, (n, source_length)).astype("int32")
    target = rng.integers(1, target_vocabulary, (n, target_length)).astype("int32")
    return {
        "encoder_token_ids": source,
        "encoder_padding_mask": np.ones_like(source),
        "decoder_token_ids": target,
        "decoder_padding_mask": np.ones_like(target),
    }


def _run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_embeddings_are_shared_as_asked():
    d, layers = 16, layer_params(2, 16, 32)
    shared = modelzoo.create_model("transformer", **TINY)
    assert shared.count_params() == layers + 50 * d  # one table: source, target and pre-softmax
    decoder = modelzoo.create_model(
        "transformer", **TINY, target_vocabulary_size=40, share_embeddings="decoder"
    )
    assert decoder.count_params() == layers + 50 * d + 40 * d
    none = modelzoo.create_model("transformer", **TINY, target_vocabulary_size=40, share_embeddings="none")
    assert none.count_params() == layers + 50 * d + 2 * 40 * d
    assert _run(none, _batch(target_vocabulary=40)).shape == (2, 5, 40)
    with pytest.raises(ValueError, match="share_embeddings='all' needs one vocabulary"):
        modelzoo.create_model("transformer", **TINY, target_vocabulary_size=40)
    with pytest.raises(ValueError, match="num_classes=3: the decoder predicts its 50 target tokens"):
        modelzoo.create_model("transformer", **TINY, num_classes=3)
    with pytest.raises(ValueError, match="share_embeddings must be one of"):
        modelzoo.create_model("transformer", **TINY, share_embeddings="encoder")


def test_the_decoder_is_causal_and_padding_is_ignored():
    model = modelzoo.create_model("transformer", **TINY)
    x = _batch()
    y = _run(model, x)
    assert y.shape == (2, 5, 50)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    later = {k: v.copy() for k, v in x.items()}
    later["decoder_token_ids"][:, 3] = 7
    changed = _run(model, later)
    np.testing.assert_array_equal(changed[:, :3], y[:, :3])  # no target position sees the future
    assert not np.allclose(changed[:, 3:], y[:, 3:])
    source = {k: v.copy() for k, v in x.items()}
    source["encoder_token_ids"][:, -1] = 9
    assert not np.allclose(_run(model, source)[:, 0], y[:, 0])  # every position reads the whole source
    # a source padded to 10 tokens (masked) reads as the 7 tokens alone
    padded = dict(x)
    padded["encoder_token_ids"] = np.pad(x["encoder_token_ids"], ((0, 0), (0, 3)))
    padded["encoder_padding_mask"] = np.pad(x["encoder_padding_mask"], ((0, 0), (0, 3)))
    np.testing.assert_allclose(_run(model, padded), y, atol=1e-6)


def test_macs_are_counted_at_a_given_length_and_features_cover_both_sides():
    model = modelzoo.create_model("transformer", **TINY)
    with pytest.raises(ValueError, match=r"count it at one: count_flops\(model, length=N\)"):
        modelzoo.count_flops(model)
    d, ff, n = 16, 32, 10
    layer = 4 * n * d * d + 2 * n * n * d + 2 * n * d * ff
    expected = 2 * layer + 2 * (layer + 4 * n * d * d + 2 * n * n * d) + n * d * 50
    assert modelzoo.count_flops(model, length=n)["macs"] == expected
    names = [f["layer"] for f in model.feature_info]
    assert names == [f"transformer_{side}_layer_{i}" for side in ("encoder", "decoder") for i in (0, 1)]
    features = modelzoo.create_model("transformer", **TINY, features_only=True, out_indices=(1, 3))
    encoded, decoded = features(_batch())
    assert tuple(encoded.shape) == (2, 7, 16) and tuple(decoded.shape) == (2, 5, 16)


LSTM_TINY = dict(vocabulary_size=50, target_vocabulary_size=40, embedding_dim=8, units=8, num_layers=2)


def lstm_params(layers: int, inputs: int, units: int) -> int:
    """Stacked LSTMs: four gates of (inputs + units) x units weights and units biases per layer."""
    first = 4 * ((inputs + units) * units + units)
    return first + (layers - 1) * 4 * ((units + units) * units + units)


def test_lstm_seq2seq_has_the_papers_384m_parameters():
    """Section 3.4: 4 layers of 1,000 cells, 1,000-dimensional embeddings, 160,000 source and
    80,000 target words: "384M parameters, of which 64M are pure recurrent connections (32M for the
    encoder and 32M for the decoder)"."""
    recurrent = 2 * lstm_params(4, 1000, 1000)
    assert 63.5e6 < recurrent < 64.5e6
    expected = recurrent + (160_000 + 80_000) * 1000 + 1000 * 80_000 + 80_000
    assert modelzoo.model_info("lstm_seq2seq")["params"] == expected == 384_112_000


def _tokens(source_length=7, target_length=5, n=2):
    x = _batch(source_length, target_length, n, vocabulary=50, target_vocabulary=40)
    return {k: x[k] for k in ("encoder_token_ids", "decoder_token_ids")}


def test_lstm_seq2seq_attention_reversal_and_causality():
    plain = modelzoo.create_model("lstm_seq2seq", **LSTM_TINY)
    base = 2 * lstm_params(2, 8, 8) + (50 + 40) * 8 + 8 * 40 + 40
    assert plain.count_params() == base
    luong = modelzoo.create_model("lstm_seq2seq", **LSTM_TINY, attention="luong")
    assert luong.count_params() == base + 16 * 8 + 8  # W_c over [context; h_t]
    bahdanau = modelzoo.create_model("lstm_seq2seq", **LSTM_TINY, attention="bahdanau")
    assert bahdanau.count_params() == base + 16 * 8 + 8 + 8  # and the additive score's scale
    x = _tokens()
    for model in (plain, luong, bahdanau):
        y = _run(model, x)
        assert y.shape == (2, 5, 40)
        later = {k: v.copy() for k, v in x.items()}
        later["decoder_token_ids"][:, 3] = 7
        np.testing.assert_array_equal(_run(model, later)[:, :3], y[:, :3])
    # The reversed source: a right-padded sentence reads as its words last to first, the padding
    # (now in front) skipped, so it equals the same weights given the reversed words unreversed.
    forward = modelzoo.create_model("lstm_seq2seq", **LSTM_TINY, attention="luong", reverse_source=False)
    forward.set_weights(luong.get_weights())
    padded = {k: v.copy() for k, v in x.items()}
    padded["encoder_token_ids"] = np.pad(x["encoder_token_ids"], ((0, 0), (0, 3)))
    reversed_words = dict(padded, encoder_token_ids=np.pad(x["encoder_token_ids"][:, ::-1], ((0, 0), (0, 3))))
    np.testing.assert_allclose(_run(luong, padded), _run(forward, reversed_words), atol=1e-6)
    np.testing.assert_allclose(_run(luong, padded), _run(luong, x), atol=1e-6)  # padding is masked
    with pytest.raises(ValueError, match="attention must be one of"):
        modelzoo.create_model("lstm_seq2seq", **LSTM_TINY, attention="general")
