"""DistilBERT (Sanh et al. 2019): BERT-base distilled into half its layers.

"DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter", arXiv:1910.01108:
6 layers of BERT-base's width, no segment embeddings and no pooler, trained to match BERT's
outputs (the distillation itself is the paper's training, not the architecture). Built as
keras-hub's ``DistilBertBackbone`` builds it (a token-and-position embedding, layer norm with
epsilon 1e-12, the exact GELU) under its layer names, so ``load_keras_hub_backbone`` copies one in.
Inputs: ``token_ids`` and ``padding_mask``, of any length up to ``max_sequence_length``.

Heads: ``head="classification"``, keras-hub's ``DistilBertTextClassifier``'s (the first token's
encoding, a ReLU dense layer of the hidden size, dropout, logits); ``head="masked_lm"``,
``DistilBertMaskedLM``'s tied pretraining head (as RoBERTa's).
"""

from __future__ import annotations

import keras

from modelzoo.models import roberta
from modelzoo.models.bert import MEGATRON_NOTE, megatron_layout
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = megatron_layout("self_attention_layer"), MEGATRON_NOTE  # keras.distribution
HEADS, INPUTS = roberta.HEADS, roberta.INPUTS  # the registry reads them per family
CARD = dict(
    paper="Sanh et al., DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter",
    year=2019,
    url="https://arxiv.org/abs/1910.01108",
    reference="keras_hub.models.DistilBertBackbone of the same configuration (+ the head)",
    task="text_classification",
    default_input_shape=(512,),
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
def distilbert(
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
    num_layers=6,
    num_heads=12,
    hidden_dim=768,
    intermediate_dim=3072,
    head="classification",
):
    """A DistilBERT encoder of any size (the paper's at the defaults). ``include_top=False``
    returns the first token's encoding; ``features_only`` each layer's sequence output."""
    given = dict(locals())
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    embedding = "token_and_position_embedding"
    return roberta.relative(
        given, "distilbert", embedding=embedding, epsilon=1e-12, pooled=("relu", init, False)
    )


distilbert_base = register_model(
    make_variant(
        distilbert, "distilbert_base", "DistilBERT-base: 6 layers, hidden 768, 12 heads.", num_layers=6
    ),
    **CARD,
    tiny_config={"vocabulary_size": 50, "max_sequence_length": 16},
)
