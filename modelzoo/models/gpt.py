"""GPT-style causal decoders (Radford et al. 2018, 2019) with a tied language-model head.

"Language Models are Unsupervised Multitask Learners" (GPT-2), 2019. Token + learned position
embeddings, pre-norm Transformer decoder layers with causal self-attention and a GELU
feed-forward of 4x the hidden size, a final layer norm, and next-token probabilities through the
token embedding (weight tying, no output bias).

The layers are keras-hub's own (``ReversibleEmbedding``, ``PositionEmbedding``,
``TransformerDecoder`` with ``normalize_first=True``), named as in ``keras_hub.models.GPT2Backbone``,
so backbone parameter counts match by construction. ``gpt2_small`` is GPT-2's 124M model; the
smaller presets keep its shape at fewer layers and widths for experiments on small machines.
Inputs: ``token_ids`` and ``padding_mask``; output: (batch, length, vocabulary) probabilities.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.models.bert import (
    MEGATRON_NOTE,
    TokenPositionEmbedding,
    check_transformer_sizes,
    gelu_approximate,
    megatron_layout,
    token_inputs,
    transformer_layer_macs,
)
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = megatron_layout("self_attention"), MEGATRON_NOTE  # keras.distribution (model parallel)


@keras.saving.register_keras_serializable(package="modelzoo")
class TransformerDecoder(keras_hub.layers.TransformerDecoder):
    """keras-hub's decoder layer, unchanged, with a MAC count for ``modelzoo.count_flops``."""

    def count_macs(self, in_shape, out_shape):
        return transformer_layer_macs(in_shape, self.intermediate_dim)


def _init(stddev=0.02):
    return keras.initializers.RandomNormal(stddev=stddev)


CARD = dict(
    paper="Radford et al., Language Models are Unsupervised Multitask Learners",
    year=2019,
    url="https://openai.com/research/better-language-models",
    reference="keras_hub.models.GPT2Backbone of the same configuration (head tied: no extra weights)",
    task="causal_lm",
    default_input_shape=(1024,),
    min_input_size=1,
)


@register_model(
    **CARD,
    tiny_config={
        "vocabulary_size": 50,
        "max_sequence_length": 16,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
    },
)
def gpt(
    vocabulary_size=50257,
    max_sequence_length=1024,
    num_classes=None,
    include_top=True,
    pooling=None,
    dropout_rate=0.1,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    num_layers=12,
    num_heads=12,
    hidden_dim=768,
    intermediate_dim=3072,
):
    """A GPT decoder of any size. ``num_classes`` is the vocabulary (the LM head predicts tokens)
    and must be left None or equal to ``vocabulary_size``; ``include_top=False`` returns the final
    layer-normed sequence, ``features_only`` each decoder layer's output."""
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    num_classes = v.check_token_classes(
        num_classes, vocabulary_size, "a language model predicts its {} tokens"
    )
    args = model_args(
        {**locals(), "input_shape": None}, input_shape=(max_sequence_length,), default_name="gpt"
    )
    max_sequence_length = v.check_int("max_sequence_length", max_sequence_length, minimum=1)
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        num_layers, num_heads, hidden_dim, intermediate_dim
    )
    inputs = token_inputs("token_ids", "padding_mask")
    token_embedding = keras_hub.layers.ReversibleEmbedding(
        vocabulary_size, hidden_dim, embeddings_initializer=_init(0.01), name="token_embedding"
    )
    tokens = token_embedding(inputs["token_ids"])
    positions = TokenPositionEmbedding(max_sequence_length, initializer=_init(), name="position_embedding")(
        tokens
    )
    x = layers.Add(name="embeddings_add")([tokens, positions])
    x = layers.Dropout(args.dropout_rate, name="embeddings_dropout")(x)
    stages = _decoder_layers(
        x, inputs["padding_mask"], num_layers, num_heads, intermediate_dim, args.dropout_rate
    )
    sequence = layers.LayerNormalization(epsilon=1e-5, name="layer_norm")(stages[-1].tensor)
    return assemble(args, inputs, stages, sequence, lambda h: token_embedding(h, reverse=True))


def _decoder_layers(x, padding_mask, num_layers, num_heads, intermediate_dim, dropout_rate) -> list:
    """GPT-2's pre-norm causal decoder layers (keras-hub's, no cross-attention): each layer's
    output, a feature stage."""
    stages = []
    for i in range(num_layers):
        x = TransformerDecoder(
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            dropout=dropout_rate,
            layer_norm_epsilon=1e-5,
            activation=gelu_approximate,
            kernel_initializer=_init(),
            normalize_first=True,
            name=f"transformer_layer_{i}",
        )(x, decoder_padding_mask=padding_mask)
        stages.append(Stage(x, None))
    return stages


# layers, hidden, heads; gpt2_small is GPT-2's 124M model (Radford et al. 2019, Table 2).
SIZES = {
    "gpt_tiny": (2, 128, 2),
    "gpt_mini": (4, 256, 4),
    "gpt_small": (6, 512, 8),
    "gpt2_small": (12, 768, 12),
}
_TINY = {"vocabulary_size": 50, "max_sequence_length": 16}


def _sized(name: str):
    num_layers, hidden, heads = SIZES[name]
    return register_model(
        make_variant(
            gpt,
            name,
            f"GPT with {num_layers} layers, hidden size {hidden}, {heads} heads.",
            num_layers=num_layers,
            hidden_dim=hidden,
            num_heads=heads,
            intermediate_dim=4 * hidden,
        ),
        **CARD,
        tiny_config=_TINY,
    )


gpt_tiny = _sized("gpt_tiny")
gpt_mini = _sized("gpt_mini")
gpt_small = _sized("gpt_small")
gpt2_small = _sized("gpt2_small")
