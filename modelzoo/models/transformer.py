"""The Transformer (Vaswani et al. 2017): the encoder-decoder for sequence to sequence.

"Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762. Token embeddings scaled by
sqrt(d_model) plus sinusoidal positions (section 3.5), dropout; N post-norm encoder layers
(self-attention, then a ReLU feed-forward of ``intermediate_dim``, each wrapped as
LayerNorm(x + Dropout(sublayer(x)))); N decoder layers adding cross-attention over the encoder's
output between its causal self-attention and its feed-forward; a linear map to the target
vocabulary and a softmax. Section 3.4: "we share the same weight matrix between the two embedding
layers and the pre-softmax linear transformation" (``share_embeddings="all"``, which needs one
vocabulary for both languages, as the paper's byte-pair vocabularies are).

The layers are keras-hub's (``ReversibleEmbedding``, ``SinePositionEncoding``,
``TransformerEncoder``, ``TransformerDecoder`` with cross-attention), named as in keras-hub's
encoder-decoder backbones (BART's). keras-hub's ``dropout`` also drops attention weights, which the
paper does not say it does.

Inputs (keras-hub's names, any length): ``encoder_token_ids``, ``encoder_padding_mask``,
``decoder_token_ids``, ``decoder_padding_mask``; the output is, at each target position, the
distribution of the next target token (teacher forcing: the decoder reads the target shifted right).

Sizes (Table 3): base N=6, d_model=512, d_ff=2048, h=8, dropout 0.1; big N=6, d_model=1024,
d_ff=4096, h=16, dropout 0.3 (English-German). The paper's counts, 65M and 213M, depend on the
vocabulary, which Table 3 does not give. Section 5.1's shared byte-pair vocabulary of "about 37000
tokens" gives 63.1M and 214.2M here (``vocabulary_size=37000``, every embedding shared, the
registered default); no one vocabulary gives both (65M needs about 40,700 tokens, 213M about
35,800): see tests/modelzoo/test_transformer.py.
"""

from __future__ import annotations

import math

import keras
import keras_hub
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.models.bert import (
    TransformerEncoder,
    check_transformer_sizes,
    counted_length,
    transformer_layer_macs,
)
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, "data parallel only"  # keras.distribution
SHARING = ("all", "decoder", "none")
INPUTS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")


@keras.saving.register_keras_serializable(package="modelzoo")
class CrossAttentionDecoder(keras_hub.layers.TransformerDecoder):
    """keras-hub's decoder layer with cross-attention, unchanged, with a MAC count for
    ``modelzoo.count_flops``: its causal self-attention, the cross-attention (counted with as many
    source tokens as target tokens) and the feed-forward."""

    def count_macs(self, in_shape, out_shape):
        seq, hidden = counted_length(in_shape), int(in_shape[2])
        cross = 4 * seq * hidden * hidden + 2 * seq * seq * hidden
        return transformer_layer_macs(in_shape, self.intermediate_dim) + cross


CARD = dict(
    paper="Vaswani et al., Attention Is All You Need",
    year=2017,
    url="https://arxiv.org/abs/1706.03762",
    task="translation",
    default_input_shape=(128,),
    min_input_size=1,
)
_TINY = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32}


@register_model(
    **CARD,
    reference="paper's arithmetic (Table 3 sizes, one shared vocabulary); MACs at 128 source and 128 target tokens",
    tiny_config=_TINY,
)
def transformer(
    vocabulary_size=37000,
    target_vocabulary_size=None,
    num_classes=None,
    include_top=True,
    pooling=None,
    dropout_rate=0.1,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    num_layers=6,
    num_heads=8,
    hidden_dim=512,
    intermediate_dim=2048,
    share_embeddings="all",
):
    """An encoder-decoder Transformer of any size (the base model at the defaults).

    ``vocabulary_size`` is the source vocabulary, and the target's unless ``target_vocabulary_size``
    is given; ``num_classes``, like a language model's, is the target vocabulary (leave it None).
    ``share_embeddings``: ``"all"`` (source and target embeddings and the pre-softmax map are one
    matrix, the paper's; one vocabulary), ``"decoder"`` (the target embedding and the pre-softmax map
    only) or ``"none"``. ``include_top=False`` returns the decoder's last layer; ``features_only``
    every encoder layer's output, then every decoder layer's.
    """
    vocabulary_size, target, share = _check_vocabularies(
        vocabulary_size, target_vocabulary_size, share_embeddings
    )
    num_classes = v.check_token_classes(num_classes, target, "the decoder predicts its {} target tokens")
    args = model_args({**locals(), "input_shape": None}, input_shape=(None,), default_name="transformer")
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        num_layers, num_heads, hidden_dim, intermediate_dim
    )
    inputs = {key: keras.Input((None,), dtype="int32", name=key) for key in INPUTS}
    source, target_embedding = _embeddings(vocabulary_size, target, hidden_dim, share)
    sizes = dict(num_heads=num_heads, intermediate_dim=intermediate_dim, dropout=args.dropout_rate)
    x = _embed(inputs["encoder_token_ids"], source, hidden_dim, args.dropout_rate, "encoder")
    stages = _encoder(x, inputs, num_layers, sizes)
    y = _embed(inputs["decoder_token_ids"], target_embedding, hidden_dim, args.dropout_rate, "decoder")
    stages += _decoder(y, stages[-1].tensor, inputs, num_layers, sizes)
    # the pre-softmax map: the target table transposed, or its own untied matrix ("none")
    return assemble(args, inputs, stages, stages[-1].tensor, lambda h: target_embedding(h, reverse=True))


def _check_vocabularies(vocabulary_size, target_vocabulary_size, share_embeddings) -> tuple[int, int, str]:
    """The source and target vocabularies' sizes (the target's the source's unless given) and the
    sharing, checked: sharing everything needs one vocabulary."""
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    target = vocabulary_size if target_vocabulary_size is None else target_vocabulary_size
    target = v.check_int("target_vocabulary_size", target, minimum=2)
    share = v.check_choice("share_embeddings", share_embeddings, SHARING)
    if share == "all" and target != vocabulary_size:
        raise v.UserError(
            f"share_embeddings='all' needs one vocabulary; vocabulary_size={vocabulary_size} and "
            f"target_vocabulary_size={target} differ (use 'decoder' or 'none')."
        )
    return vocabulary_size, target, share


def _encoder(x, inputs, num_layers: int, sizes: dict) -> list:
    """The encoder's layers over the embedded source: each one's output, a feature stage."""
    stages = []
    for i in range(num_layers):
        x = TransformerEncoder(**sizes, **_LAYER, name=f"transformer_encoder_layer_{i}")(
            x, padding_mask=inputs["encoder_padding_mask"]
        )
        stages.append(Stage(x, None))
    return stages


def _decoder(y, encoded, inputs, num_layers: int, sizes: dict) -> list:
    """The decoder's layers over the embedded target, each attending to ``encoded``: each one's
    output, a feature stage."""
    stages = []
    for i in range(num_layers):
        y = CrossAttentionDecoder(**sizes, **_LAYER, name=f"transformer_decoder_layer_{i}")(
            y,
            encoded,
            decoder_padding_mask=inputs["decoder_padding_mask"],
            encoder_padding_mask=inputs["encoder_padding_mask"],
        )
        stages.append(Stage(y, None))
    return stages


# Post-norm (the paper's residual blocks), ReLU feed-forward; epsilon as tensor2tensor's.
_LAYER = dict(activation="relu", layer_norm_epsilon=1e-6, normalize_first=False)


def _embeddings(source_size: int, target_size: int, hidden_dim: int, share: str):
    """The source and target embedding tables (one table when shared); the target's doubles as
    the pre-softmax map unless ``share`` is ``"none"``."""
    init = keras.initializers.RandomNormal(stddev=hidden_dim**-0.5)
    if share == "all":
        table = keras_hub.layers.ReversibleEmbedding(
            source_size, hidden_dim, embeddings_initializer=init, name="token_embedding"
        )
        return table, table
    source = layers.Embedding(
        source_size, hidden_dim, embeddings_initializer=init, name="encoder_token_embedding"
    )
    target = keras_hub.layers.ReversibleEmbedding(
        target_size,
        hidden_dim,
        tie_weights=share == "decoder",
        embeddings_initializer=init,
        name="decoder_token_embedding",
    )
    return source, target


def _embed(token_ids, table, hidden_dim: int, dropout_rate: float, side: str):
    """Tokens embedded, scaled by sqrt(d_model), plus sinusoidal positions, dropped out."""
    x = layers.Rescaling(math.sqrt(hidden_dim), name=f"{side}_embedding_scale")(table(token_ids))
    positions = keras_hub.layers.SinePositionEncoding(name=f"{side}_position_encoding")(x)
    x = layers.Add(name=f"{side}_embeddings_add")([x, positions])
    return layers.Dropout(dropout_rate, name=f"{side}_embeddings_dropout")(x)


# layers, d_model, heads, d_ff, dropout (Table 3; big's dropout is English-German's)
SIZES = {"transformer_base": (6, 512, 8, 2048, 0.1), "transformer_big": (6, 1024, 16, 4096, 0.3)}


def _sized(name: str):
    num_layers, hidden, heads, ff, dropout = SIZES[name]
    doc = (
        f"The Transformer's {name.split('_')[1]} model (Vaswani et al. 2017, Table 3): {num_layers} "
        f"layers each side, d_model {hidden}, {heads} heads, d_ff {ff}, dropout {dropout}."
    )
    fn = make_variant(
        transformer,
        name,
        doc,
        defaults={"dropout_rate": dropout},
        num_layers=num_layers,
        hidden_dim=hidden,
        num_heads=heads,
        intermediate_dim=ff,
    )
    return register_model(
        fn,
        **CARD,
        reference="paper's arithmetic at a shared 37,000-token vocabulary; MACs at 128 source and 128 target tokens",
        tiny_config=_TINY_SIZED,
    )


_TINY_SIZED = {"vocabulary_size": 50}
transformer_base = _sized("transformer_base")
transformer_big = _sized("transformer_big")
