"""ELECTRA (Clark et al. 2020): a BERT-shaped discriminator that detects replaced tokens.

"ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators", arXiv:2003.10555.
A small masked-LM generator fills masked positions; the discriminator, the model kept for
fine-tuning, predicts for every token whether it was replaced. The discriminator is BERT's encoder
with a factorised embedding (``embedding_dim``, projected to the hidden size where they differ:
ELECTRA-Small's 128 to 256), built as keras-hub's ``ElectraBackbone`` builds it under its layer
names (``load_keras_hub_backbone`` copies one in). Inputs are BERT's.

Heads: ``head="classification"``, BERT's (dropout and logits on the tanh-pooled [CLS]);
``head="discriminator"``, the paper's replaced-token detection: a dense layer of the hidden size with
GELU, then one logit per token and a sigmoid (the probability that the token was replaced);
``head="masked_lm"``, the generator's head (section 3.2: a dense layer of the embedding's width with
GELU, layer norm, the token table transposed; ``bert.masked_lm_top``). A generator is an ELECTRA of
a quarter to a half of the discriminator's hidden size with this head; keras-hub has no ELECTRA
masked-LM task, and the paper's sharing of the embeddings between the two models, a training
choice, is not built here.
"""

from __future__ import annotations

import keras
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import model_args
from modelzoo.models.bert import (
    INPUTS,
    MEGATRON_NOTE,
    _init,
    check_transformer_sizes,
    embedding_sizes,
    encoder_layers,
    factorized_embeddings,
    masked_lm_top,
    megatron_layout,
    pooled_top,
    token_inputs,
)
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = megatron_layout("self_attention_layer"), MEGATRON_NOTE  # keras.distribution
HEADS = ("classification", "discriminator", "masked_lm")
CARD = dict(
    paper="Clark et al., ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators",
    year=2020,
    url="https://arxiv.org/abs/2003.10555",
    reference="keras_hub.models.ElectraBackbone of the same configuration (+ the head)",
    task="text_classification",
    default_input_shape=(512,),
    min_input_size=1,
)
_TINY = {"vocabulary_size": 50, "max_sequence_length": 16}


@register_model(
    **CARD,
    tiny_config={
        **_TINY,
        "num_layers": 2,
        "num_heads": 2,
        "embedding_dim": 8,
        "hidden_dim": 16,
        "intermediate_dim": 32,
    },
)
def electra(
    vocabulary_size=30522,
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
    embedding_dim=768,
    hidden_dim=768,
    intermediate_dim=3072,
    num_segments=2,
    head="classification",
):
    """An ELECTRA discriminator of any size (the base model at the defaults)."""
    given = dict(locals())
    args = model_args({**given, "input_shape": None}, input_shape=(None,), default_name="electra")
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        num_layers, num_heads, hidden_dim, intermediate_dim
    )
    head = v.check_choice("head", head, HEADS)
    sizes = embedding_sizes(given, hidden_dim)
    inputs = token_inputs(*INPUTS)
    x, table = factorized_embeddings(inputs, sizes, args.dropout_rate, "embeddings_projection", always=False)
    stages = encoder_layers(
        x, inputs["padding_mask"], num_layers, num_heads, intermediate_dim, args.dropout_rate
    )
    if head == "masked_lm":
        return masked_lm_top(args, inputs, stages[-1].tensor, table, "gelu")
    if head == "discriminator":
        if args.features_only or not args.include_top:
            raise v.UserError("head='discriminator' needs include_top=True and features_only=False.")
        h = layers.Dense(
            hidden_dim, activation="gelu", kernel_initializer=_init(), name="discriminator_dense"
        )(stages[-1].tensor)
        h = layers.Dense(1, kernel_initializer=_init(), name="discriminator_logits")(h)
        h = layers.Reshape((-1,), name="discriminator_flatten")(h)
        replaced = layers.Activation("sigmoid", dtype="float32", name="predictions")(h)
        return keras.Model(inputs, replaced, name=args.name)
    return pooled_top(args, inputs, stages, hidden_dim)


# layers, hidden, heads, embedding (Clark et al. 2020, Table 6: Small and Base)
SIZES = {"electra_small": (12, 256, 4, 128), "electra_base": (12, 768, 12, 768)}


def _sized(name: str):
    num_layers, hidden, heads, embedding = SIZES[name]
    doc = f"The ELECTRA-{name.split('_')[1].title()} discriminator: {num_layers} layers, H {hidden}, E {embedding}."
    fn = make_variant(
        electra,
        name,
        doc,
        num_layers=num_layers,
        hidden_dim=hidden,
        num_heads=heads,
        embedding_dim=embedding,
        intermediate_dim=4 * hidden,
    )
    return register_model(fn, **CARD, tiny_config=_TINY)


electra_small = _sized("electra_small")
electra_base = _sized("electra_base")
