"""ALBERT (Lan et al. 2019): BERT with a factorised embedding and layers shared across depth.

"ALBERT: A Lite BERT for Self-supervised Learning of Language Representations", arXiv:1909.11942.
Section 3.1: the token embedding is ``embedding_dim`` wide (E = 128) and projected to the hidden
size H, so its parameters are V x E + E x H instead of V x H; every layer shares one set of weights
(cross-layer sharing, ``num_groups=1``: the 12-layer base model has one layer's weights, called 12
times). keras-hub's ``AlbertBackbone`` generalises the sharing to ``num_groups`` groups of
``num_inner_repetitions`` layers; the zoo builds it the same way under its layer names, so
``load_keras_hub_backbone`` copies one in. Each call's output is a feature stage, marked by an
``Identity`` layer (``layer_{i}``) since the layers it came from are shared. BERT's tanh pooler
and inputs (``token_ids``, ``segment_ids``, ``padding_mask``, any length up to
``max_sequence_length``); dropout 0 as the paper. Heads: ``head="classification"``, keras-hub's
``AlbertTextClassifier``'s (dropout, logits on the pooled vector); ``head="masked_lm"``,
``AlbertMaskedLM``'s: a dense layer of the embedding's width E with the tanh GELU, layer norm, and
the E-wide token table transposed (tied). The paper's sentence-order head is not built (as BERT's
next-sentence head is not: pretraining here is masked LM only).
"""

from __future__ import annotations

from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, model_args
from modelzoo.models.bert import (
    HEADS,
    INPUTS,
    MEGATRON_NOTE,
    TransformerEncoder,
    _init,
    check_transformer_sizes,
    embedding_sizes,
    factorized_embeddings,
    gelu_approximate,
    masked_lm_top,
    megatron_layout,
    pooled_top,
    token_inputs,
)
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = megatron_layout("self_attention_layer"), MEGATRON_NOTE  # keras.distribution
CARD = dict(
    paper="Lan et al., ALBERT: A Lite BERT for Self-supervised Learning of Language Representations",
    year=2019,
    url="https://arxiv.org/abs/1909.11942",
    reference="keras_hub.models.AlbertBackbone of the same configuration (+ the head)",
    task="text_classification",
    default_input_shape=(512,),
    min_input_size=1,
)
_TINY = {"vocabulary_size": 50, "max_sequence_length": 16}


@register_model(
    **CARD,
    tiny_config={
        **_TINY,
        "num_layers": 4,
        "num_heads": 2,
        "embedding_dim": 8,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "num_groups": 2,
    },
)
def albert(
    vocabulary_size=30000,
    max_sequence_length=512,
    num_classes=2,
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    num_layers=12,
    num_heads=12,
    embedding_dim=128,
    hidden_dim=768,
    intermediate_dim=3072,
    num_groups=1,
    num_inner_repetitions=1,
    num_segments=2,
    head="classification",
):
    """An ALBERT of any size (the base model at the defaults). ``num_layers`` calls in all, spread
    over ``num_groups`` groups of ``num_inner_repetitions`` distinct layers each."""
    given = dict(locals())
    args = model_args({**given, "input_shape": None}, input_shape=(None,), default_name="albert")
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        num_layers, num_heads, hidden_dim, intermediate_dim
    )
    num_groups = v.check_int("num_groups", num_groups, minimum=1)
    repetitions = v.check_int("num_inner_repetitions", num_inner_repetitions, minimum=1, maximum=v.MAX_DEPTH)
    if num_layers % num_groups:
        raise v.UserError(f"num_layers={num_layers} must be divisible by num_groups={num_groups}.")
    head = v.check_choice("head", head, HEADS)
    sizes = embedding_sizes(given, hidden_dim)
    inputs = token_inputs(*INPUTS)
    x, table = factorized_embeddings(inputs, sizes, args.dropout_rate, "embedding_projection", always=True)
    layer = dict(num_heads=num_heads, intermediate_dim=intermediate_dim, dropout=args.dropout_rate)
    stages = _shared_layers(x, inputs["padding_mask"], layer, num_layers, num_groups, repetitions)
    if head == "masked_lm":
        return masked_lm_top(args, inputs, stages[-1].tensor, table, gelu_approximate)
    return pooled_top(args, inputs, stages, hidden_dim, dropout_name="output_dropout")


def _shared_layers(x, padding_mask, layer: dict, num_layers: int, num_groups: int, repetitions: int) -> list:
    """keras-hub's sharing: ``num_groups`` groups of ``repetitions`` distinct encoder layers (BERT's
    GELU and epsilon), each group called in turn until ``num_layers`` calls are made; each call's
    output, through an ``Identity`` named ``layer_{i}``, is a feature stage."""
    shared = [
        [
            TransformerEncoder(
                **layer,
                activation=gelu_approximate,
                layer_norm_epsilon=1e-12,
                kernel_initializer=_init(),
                name=f"group_{g}_inner_layer_{i}",
            )
            for i in range(repetitions)
        ]
        for g in range(num_groups)
    ]
    stages = []
    for group in shared:
        for _ in range(num_layers // num_groups):
            for encoder in group:
                x = layers.Identity(name=f"layer_{len(stages)}")(encoder(x, padding_mask=padding_mask))
                stages.append(Stage(x, None))
    return stages


# layers, hidden, heads (Lan et al. 2019, Table 1; E = 128, feed-forward 4H, one shared group)
SIZES = {"albert_base": (12, 768, 12), "albert_large": (24, 1024, 16)}


def _sized(name: str):
    num_layers, hidden, heads = SIZES[name]
    doc = f"ALBERT {name.split('_')[1]}: {num_layers} layers sharing one set of weights, H {hidden}, E 128."
    fn = make_variant(
        albert,
        name,
        doc,
        num_layers=num_layers,
        hidden_dim=hidden,
        num_heads=heads,
        intermediate_dim=4 * hidden,
    )
    return register_model(fn, **CARD, tiny_config={**_TINY, "embedding_dim": 8})


albert_base = _sized("albert_base")
albert_large = _sized("albert_large")
