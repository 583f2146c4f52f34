"""RoBERTa (Liu et al. 2019): BERT's encoder, pretrained longer, on more data, without the
next-sentence task, with a byte-level BPE vocabulary of 50,265 tokens.

"RoBERTa: A Robustly Optimized BERT Pretraining Approach", arXiv:1907.11692. Architecturally
BERT without segment embeddings or a pooler: a token-and-position embedding, layer norm (epsilon
1e-5), dropout and post-norm encoder layers with the exact GELU, as keras-hub's ``RobertaBackbone``
builds it, under its layer names (``load_keras_hub_backbone`` copies one in; parameter counts equal
by construction). Inputs: ``token_ids`` and ``padding_mask``, of any length up to
``max_sequence_length``.

Heads: ``head="classification"``, keras-hub's ``RobertaTextClassifier``'s (the start token's
encoding, dropout, a tanh dense layer of the hidden size, dropout, logits); ``head="masked_lm"``,
the pretraining head of ``RobertaMaskedLM`` (``bert.masked_lm_top``: the exact GELU, tied to the
token table through the embedding layer itself, so the tie survives a ``.keras`` save).
"""

from __future__ import annotations

import keras
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import assemble, model_args
from modelzoo.models.bert import (
    MEGATRON_NOTE,
    ClsToken,
    check_transformer_sizes,
    masked_lm_top,
    megatron_layout,
    token_inputs,
    token_position_encoder,
    vocabulary_sizes,
)
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = megatron_layout("self_attention_layer"), MEGATRON_NOTE  # keras.distribution
HEADS = ("classification", "masked_lm")
INPUTS = ("token_ids", "padding_mask")  # no segments
CARD = dict(
    paper="Liu et al., RoBERTa: A Robustly Optimized BERT Pretraining Approach",
    year=2019,
    url="https://arxiv.org/abs/1907.11692",
    reference="keras_hub.models.RobertaBackbone of the same configuration (+ the head)",
    task="text_classification",
    default_input_shape=(512,),
    min_input_size=1,
)
_TINY = {"vocabulary_size": 50, "max_sequence_length": 16}


@register_model(
    **CARD,
    tiny_config={**_TINY, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32},
)
def roberta(
    vocabulary_size=50265,
    max_sequence_length=512,
    num_classes=2,
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
    head="classification",
):
    """A RoBERTa encoder of any size (the base model at the defaults). ``include_top=False``
    returns the start token's encoding; ``features_only`` each layer's sequence output."""
    return relative(locals(), "roberta", embedding="embeddings", epsilon=1e-5, pooled=("tanh", None, True))


def relative(given: dict, default_name: str, *, embedding: str, epsilon: float, pooled: tuple):
    """A BERT relative built from its builder's arguments: the token-and-position encoder with
    the family's embedding name and epsilon, then the masked-LM head, or the first token's encoding
    and keras-hub's classifier: ``pooled`` is (activation, kernel initializer, dropout before) of
    its dense layer."""
    args = model_args({**given, "input_shape": None}, input_shape=(None,), default_name=default_name)
    sizes = relative_sizes(given)
    head = v.check_choice("head", given["head"], HEADS)
    inputs = token_inputs(*INPUTS)
    table, stages = token_position_encoder(
        inputs, sizes, args.dropout_rate, embedding=embedding, epsilon=epsilon
    )
    if head == "masked_lm":
        return masked_lm_top(args, inputs, stages[-1].tensor, table, "gelu")
    cls = ClsToken(name="cls_token")(stages[-1].tensor)
    if not args.include_top and not args.features_only:
        return keras.Model(inputs, cls, name=args.name)
    activation, initializer, dropout_before = pooled

    def classifier(h):
        if dropout_before:
            h = layers.Dropout(args.dropout_rate, name="pooled_dropout")(h)
        h = layers.Dense(
            sizes["hidden_dim"],
            activation=activation,
            kernel_initializer=initializer or "glorot_uniform",
            name="pooled_dense",
        )(h)
        h = layers.Dropout(args.dropout_rate, name="output_dropout")(h)
        return layers.Dense(args.num_classes, kernel_initializer=_init(), name="logits")(h)

    return assemble(args, inputs, stages, cls, classifier)


def relative_sizes(given: dict) -> dict:
    """A BERT relative's sizes, checked: vocabulary, positions and the Transformer stack's."""
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        given["num_layers"], given["num_heads"], given["hidden_dim"], given["intermediate_dim"]
    )
    return dict(
        **vocabulary_sizes(given),
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
    )


def _init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


# layers, hidden, heads (Liu et al. 2019, after BERT's base and large)
SIZES = {"roberta_base": (12, 768, 12), "roberta_large": (24, 1024, 16)}


def _sized(name: str):
    num_layers, hidden, heads = SIZES[name]
    doc = f"RoBERTa with {num_layers} layers, hidden size {hidden}, {heads} heads, feed-forward {4 * hidden}."
    fn = make_variant(
        roberta,
        name,
        doc,
        num_layers=num_layers,
        hidden_dim=hidden,
        num_heads=heads,
        intermediate_dim=4 * hidden,
    )
    return register_model(fn, **CARD, tiny_config=_TINY)


roberta_base = _sized("roberta_base")
roberta_large = _sized("roberta_large")
