"""BERT encoders (Devlin et al. 2018) at every published size, with classification and masked-LM heads.

"BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
arXiv:1810.04805. Token + position + segment embeddings, layer norm, then post-norm Transformer
encoder layers (GELU feed-forward of 4x the hidden size), a tanh pooler on the first ([CLS])
token. The small sizes are those of Turc et al. 2019 ("Well-Read Students Learn Better",
arXiv:1908.08962).

The layers are keras-hub's own (``ReversibleEmbedding``, ``PositionEmbedding``,
``TransformerEncoder``), arranged and named as in ``keras_hub.models.BertBackbone``, so a
backbone's weights load layer by layer (``load_keras_hub_backbone``) and parameter counts match by
construction. Inputs are keras-hub's: ``token_ids``, ``segment_ids``, ``padding_mask``, of any length up to
``max_sequence_length`` (the position table's size) in one built model, as keras-hub's backbones
take them.

Heads: ``head="classification"`` (pooled [CLS] -> dropout -> dense, the fine-tuning head) or
``head="masked_lm"`` (the pretraining head: gather the masked positions, dense + GELU + layer
norm, then logits through the *tied* token embedding plus a bias; an extra ``mask_positions``
input). The MLM head reuses the embedding layer in the graph (``reverse=True``), so the tie
survives a ``.keras`` save and load. Pretraining here is masked-LM only (no next-sentence task,
as in RoBERTa), so the MLM model carries no pooler: keras-hub's ``BertMaskedLM`` minus its
``pooled_dense``.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import layers, ops

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.registry import make_variant, register_model


def megatron_layout(attention: str) -> dict:
    """Megatron-LM's tensor parallelism (Shoeybi et al. 2019, "Megatron-LM", section 3) as
    keras.distribution layout rules (variable path regex -> mesh axis per dimension) for the
    keras-hub Transformer layers the zoo uses, ``attention`` naming their attention sublayer: the
    token embedding split by vocabulary; query/key/value kernels split by heads, the attention
    output by heads (its input rows); the feed-forward's first kernel by columns and its second by
    rows. Each half-block is then one all-reduce. LayerNorms, biases after a row split, position and
    segment embeddings are replicated. keras-hub has layouts for Gemma/Llama/Qwen, none for BERT or
    GPT-2 (keras-hub 2807 and 2827 are bugs of axes copied between families: these follow the
    kernels' own shapes, (hidden, heads, head_dim) and (heads, head_dim, hidden))."""
    return {
        "token_embedding/embeddings": ("model", None),
        f".*/{attention}/(query|key|value)/kernel": (None, "model", None),
        f".*/{attention}/(query|key|value)/bias": ("model", None),
        f".*/{attention}/attention_output/kernel": ("model", None, None),
        ".*/feedforward_intermediate_dense/kernel": (None, "model"),
        ".*/feedforward_intermediate_dense/bias": ("model",),
        ".*/feedforward_output_dense/kernel": ("model", None),
    }


MEGATRON_NOTE = (
    "Megatron: embedding by vocabulary, attention by heads, "
    "feed-forward column then row (one all-reduce each)"
)
LAYOUT, LAYOUT_NOTE = (
    megatron_layout("self_attention_layer"),
    MEGATRON_NOTE,
)  # keras.distribution (model parallel)

HEADS = ("classification", "masked_lm")
INPUTS = ("token_ids", "segment_ids", "padding_mask")  # keras-hub's names; the recipes feed these


@keras.saving.register_keras_serializable(package="modelzoo")
class TransformerEncoder(keras_hub.layers.TransformerEncoder):
    """keras-hub's encoder layer, unchanged, with a MAC count for ``modelzoo.count_flops``."""

    def count_macs(self, in_shape, out_shape):
        return transformer_layer_macs(in_shape, self.intermediate_dim)


@keras.saving.register_keras_serializable(package="modelzoo")
class TokenPositionEmbedding(keras_hub.layers.PositionEmbedding):
    """keras-hub's learned positions, unchanged, with one check: a sequence longer than the table
    (``max_sequence_length``) is a clear error, where keras-hub's slice would fail with a backend's
    message or, under JAX, be clamped."""

    def call(self, inputs, start_index=0, positions=None):
        if positions is None:
            check_length(inputs.shape[-2], self.sequence_length)
        return super().call(inputs, start_index=start_index, positions=positions)


def check_length(length, limit: int) -> None:
    """A sequence longer than the position table (``max_sequence_length``), where its length is
    known when the graph is traced, is one line naming both."""
    if isinstance(length, int) and length > limit:
        raise v.UserError(
            f"a sequence of {length} tokens; this model takes at most max_sequence_length={limit}."
        )


def counted_length(in_shape) -> int:
    """The sequence length a layer's MACs are counted at; a model of any input length without a
    position table (sinusoidal positions) is counted at a length the caller gives."""
    if in_shape[1] is None:
        raise v.UserError(
            "this model takes sequences of any length; count it at one: count_flops(model, length=N)."
        )
    return int(in_shape[1])


def transformer_layer_macs(in_shape, intermediate_dim: int) -> int:
    """MACs of one self-attention Transformer layer on a (sequence, hidden) input."""
    seq, hidden = counted_length(in_shape), int(in_shape[2])
    projections = 4 * seq * hidden * hidden  # query, key, value, output
    attention = 2 * seq * seq * hidden  # scores and the weighted sum
    return projections + attention + 2 * seq * hidden * intermediate_dim


@keras.saving.register_keras_serializable(package="modelzoo")
class GatherPositions(layers.Layer):
    """``x[b, positions[b, i]]``: the encodings at the masked positions."""

    def call(self, x, positions):
        return ops.take_along_axis(x, ops.expand_dims(ops.cast(positions, "int32"), -1), axis=1)


@keras.saving.register_keras_serializable(package="modelzoo")
class Bias(layers.Layer):
    """A learned bias over the last axis (the MLM head's output bias)."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, x):
        return x + ops.cast(self.bias, x.dtype)

    def count_macs(self, in_shape, out_shape):
        return 0  # element-wise


def _init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@register_model(
    paper="Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
    year=2018,
    url="https://arxiv.org/abs/1810.04805",
    reference="keras_hub.models.BertBackbone of the same configuration (+ the head)",
    task="text_classification",
    default_input_shape=(512,),
    min_input_size=1,
    tiny_config={
        "vocabulary_size": 50,
        "max_sequence_length": 16,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
    },
)
def bert(
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
    hidden_dim=768,
    intermediate_dim=3072,
    num_segments=2,
    head="classification",
):
    """A BERT encoder of any size. ``dropout_rate`` is BERT's dropout everywhere (0.1 in the paper).

    ``include_top=False`` returns the pooled [CLS] vector; ``features_only`` each layer's sequence
    output. ``head="masked_lm"`` replaces the classifier with the tied pretraining head.
    """
    args = model_args(
        {**locals(), "input_shape": None}, input_shape=(max_sequence_length,), default_name="bert"
    )
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    max_sequence_length = v.check_int("max_sequence_length", max_sequence_length, minimum=1)
    num_layers, num_heads, hidden_dim, intermediate_dim = check_transformer_sizes(
        num_layers, num_heads, hidden_dim, intermediate_dim
    )
    num_segments = v.check_int("num_segments", num_segments, minimum=1)
    head = v.check_choice("head", head, HEADS)
    inputs = token_inputs(*INPUTS)
    x, token_embedding = _embeddings(
        inputs, vocabulary_size, max_sequence_length, num_segments, hidden_dim, args.dropout_rate
    )
    stages = encoder_layers(
        x, inputs["padding_mask"], num_layers, num_heads, intermediate_dim, args.dropout_rate
    )
    if head == "masked_lm":
        return masked_lm_top(args, inputs, stages[-1].tensor, token_embedding, "gelu")
    return pooled_top(args, inputs, stages, hidden_dim)


def pooled_top(args, inputs, stages, hidden_dim: int, dropout_name: str = "classifier_dropout"):
    """The BERT family's top: the [CLS] encoding through the tanh pooler (``pooled_dense``), the
    model's output with ``include_top=False``; else dropout and a dense layer to logits."""
    cls = ClsToken(name="cls_token")(stages[-1].tensor)
    pooled = layers.Dense(hidden_dim, activation="tanh", kernel_initializer=_init(), name="pooled_dense")(cls)
    if not args.include_top and not args.features_only:
        return keras.Model(inputs, pooled, name=args.name)

    def classifier(h):
        if args.dropout_rate > 0:
            h = layers.Dropout(args.dropout_rate, name=dropout_name)(h)
        return layers.Dense(args.num_classes, kernel_initializer=_init(), name="logits")(h)

    return assemble(args, inputs, stages, pooled, classifier)


def vocabulary_sizes(given: dict) -> dict:
    """A token model's vocabulary and position-table sizes from its builder's arguments, checked."""
    return dict(
        vocabulary_size=v.check_int("vocabulary_size", given["vocabulary_size"], minimum=2),
        max_sequence_length=v.check_int("max_sequence_length", given["max_sequence_length"], minimum=1),
    )


def embedding_sizes(given: dict, hidden_dim: int) -> dict:
    """``factorized_embeddings``' sizes from a builder's arguments, checked."""
    return dict(
        **vocabulary_sizes(given),
        num_segments=v.check_int("num_segments", given["num_segments"], minimum=1),
        embedding_dim=v.check_int("embedding_dim", given["embedding_dim"], minimum=1),
        hidden_dim=hidden_dim,
    )


def factorized_embeddings(inputs, sizes: dict, dropout_rate: float, projection: str, always: bool):
    """ALBERT's and ELECTRA's input: BERT's token, position and segment embeddings at
    ``embedding_dim``, then a dense projection to ``hidden_dim`` (named ``projection``; ELECTRA has
    it only where the two differ, ``always`` False). ``sizes`` holds vocabulary_size,
    max_sequence_length, num_segments, embedding_dim and hidden_dim. Returns the projected
    embeddings and the token table (a masked-LM head's tied output)."""
    x, token_embedding = _embeddings(
        inputs,
        sizes["vocabulary_size"],
        sizes["max_sequence_length"],
        sizes["num_segments"],
        sizes["embedding_dim"],
        dropout_rate,
    )
    if always or sizes["embedding_dim"] != sizes["hidden_dim"]:
        x = layers.Dense(sizes["hidden_dim"], kernel_initializer=_init(), name=projection)(x)
    return x, token_embedding


def token_inputs(*names: str) -> dict:
    """Named int32 inputs of any length (keras-hub's input names and shapes, ``(batch, None)``):
    one built model takes batches of any length up to its ``max_sequence_length``, the size of
    its position table."""
    return {name: keras.Input((None,), dtype="int32", name=name) for name in names}


def check_transformer_sizes(num_layers, num_heads, hidden_dim, intermediate_dim) -> tuple[int, int, int, int]:
    """A Transformer stack's sizes, checked (BERT's and GPT's): whole numbers from 1, and a hidden
    size the heads divide."""
    num_layers = v.check_int("num_layers", num_layers, minimum=1, maximum=v.MAX_DEPTH)
    num_heads = v.check_int("num_heads", num_heads, minimum=1)
    hidden_dim = v.check_int("hidden_dim", hidden_dim, minimum=1)
    intermediate_dim = v.check_int("intermediate_dim", intermediate_dim, minimum=1)
    if hidden_dim % num_heads:
        raise v.UserError(f"hidden_dim={hidden_dim} must be divisible by num_heads={num_heads}.")
    return num_layers, num_heads, hidden_dim, intermediate_dim


def encoder_layers(
    x, padding_mask, num_layers, num_heads, intermediate_dim, dropout_rate, activation=None, epsilon=1e-12
) -> list:
    """Post-norm Transformer encoder layers (keras-hub's) named ``transformer_layer_{i}``, with
    BERT's tanh-approximated GELU and epsilon unless given (RoBERTa and DistilBERT use the exact
    GELU): each layer's output, a feature stage."""
    stages = []
    for i in range(num_layers):
        x = TransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation=activation or gelu_approximate,
            dropout=dropout_rate,
            layer_norm_epsilon=epsilon,
            kernel_initializer=_init(),
            name=f"transformer_layer_{i}",
        )(x, padding_mask=padding_mask)
        stages.append(Stage(x, None))
    return stages


def token_position_encoder(inputs, sizes: dict, dropout_rate: float, *, embedding: str, epsilon: float):
    """RoBERTa's and DistilBERT's encoder as keras-hub builds it: a token-and-position embedding
    (``embedding`` names it), layer norm, dropout and post-norm layers with the exact GELU. ``sizes``:
    vocabulary_size, max_sequence_length, num_layers, num_heads, hidden_dim, intermediate_dim. The
    embedding (its token table ties a masked-LM head) and each layer's output."""
    table = TokenAndPositionEmbedding(
        vocabulary_size=sizes["vocabulary_size"],
        sequence_length=sizes["max_sequence_length"],
        embedding_dim=sizes["hidden_dim"],
        embeddings_initializer=_init(),
        name=embedding,
    )
    x = layers.LayerNormalization(epsilon=epsilon, name="embeddings_layer_norm")(table(inputs["token_ids"]))
    x = layers.Dropout(dropout_rate, name="embeddings_dropout")(x)
    sizes = {k: sizes[k] for k in ("num_layers", "num_heads", "intermediate_dim")}
    stages = encoder_layers(
        x, inputs["padding_mask"], **sizes, dropout_rate=dropout_rate, activation="gelu", epsilon=epsilon
    )
    return table, stages


@keras.saving.register_keras_serializable(package="modelzoo")
class TokenAndPositionEmbedding(keras_hub.layers.TokenAndPositionEmbedding):
    """keras-hub's token and position embedding, with ``TokenPositionEmbedding``'s check of the
    sequence's length, and ``reverse=True``: vectors times the token table transposed (a tied
    masked-LM head's logits). The head calls this layer again, where keras-hub's ``MaskedLMHead``
    holds the table by reference, which a ``.keras`` save does not keep."""

    def call(self, inputs, start_index=0, positions=None, reverse=False):
        if reverse:
            return self.token_embedding(inputs, reverse=True)
        if positions is None:
            check_length(inputs.shape[-1], self.sequence_length)
        return super().call(inputs, start_index=start_index, positions=positions)

    def compute_output_spec(self, inputs, start_index=0, positions=None, reverse=False):
        if reverse:
            shape = (*inputs.shape[:-1], self.token_embedding.input_dim)
            return keras.KerasTensor(shape, dtype=self.compute_dtype)
        return super().compute_output_spec(inputs, start_index=start_index, positions=positions)


def _embeddings(inputs, vocabulary_size, max_sequence_length, num_segments, hidden_dim, dropout_rate):
    """Token, position and segment embeddings summed, normalised and dropped out (BERT's input),
    and the token embedding (the masked-LM head reuses it, transposed)."""
    token_embedding = keras_hub.layers.ReversibleEmbedding(
        vocabulary_size, hidden_dim, embeddings_initializer=_init(), name="token_embedding"
    )
    tokens = token_embedding(inputs["token_ids"])
    positions = TokenPositionEmbedding(max_sequence_length, initializer=_init(), name="position_embedding")(
        tokens
    )
    segments = layers.Embedding(
        num_segments, hidden_dim, embeddings_initializer=_init(), name="segment_embedding"
    )(inputs["segment_ids"])
    x = layers.Add(name="embeddings_add")([tokens, positions, segments])
    x = layers.LayerNormalization(epsilon=1e-12, name="embeddings_layer_norm")(x)
    return layers.Dropout(dropout_rate, name="embeddings_dropout")(x), token_embedding


def masked_lm_top(args, inputs, sequence, table, activation):
    """The pretraining model, keras-hub's ``MaskedLMHead``: the sequence at ``mask_positions``
    through a dense layer of the token table's width with ``activation``, layer norm, and the
    token table transposed (``table(h, reverse=True)``: tied, one table), to a softmax over the
    vocabulary. The table is called again in the graph, so the tie survives a save and load."""
    if args.features_only or not args.include_top:
        raise v.UserError("head='masked_lm' needs include_top=True and features_only=False.")
    width = table.embedding_dim if isinstance(table, TokenAndPositionEmbedding) else table.output_dim
    positions_in = keras.Input((None,), dtype="int32", name="mask_positions")
    h = GatherPositions(name="mlm_gather")(sequence, positions_in)
    h = layers.Dense(width, activation=activation, kernel_initializer=_init(), name="mlm_dense")(h)
    h = layers.LayerNormalization(epsilon=1e-5, name="mlm_layer_norm")(h)
    logits = Bias(name="mlm_bias")(table(h, reverse=True))
    probs = layers.Activation(args.classifier_activation, dtype="float32", name="predictions")(logits)
    return keras.Model({**inputs, "mask_positions": positions_in}, probs, name=args.name)


@keras.saving.register_keras_serializable(package="modelzoo")
def gelu_approximate(x):
    """GELU with the tanh approximation, as in BERT's original code."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="modelzoo")
class ClsToken(layers.Layer):
    """The first token's encoding (BERT's [CLS])."""

    def call(self, x):
        return x[:, 0, :]


# Turc et al. 2019 (small BERTs) and Devlin et al. 2018 (base, large): layers, hidden, heads.
SIZES = {
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_medium": (8, 512, 8),
    "bert_base": (12, 768, 12),
    "bert_large": (24, 1024, 16),
}
_TINY = {"vocabulary_size": 50, "max_sequence_length": 16}


def _sized(name: str):
    num_layers, hidden, heads = SIZES[name]
    small = hidden < 768
    return register_model(
        make_variant(
            bert,
            name,
            f"BERT with {num_layers} layers, hidden size {hidden}, {heads} heads, feed-forward {4 * hidden}.",
            num_layers=num_layers,
            hidden_dim=hidden,
            num_heads=heads,
            intermediate_dim=4 * hidden,
        ),
        paper="Turc et al., Well-Read Students Learn Better (BERT of Devlin et al. 2018)"
        if small
        else "Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        year=2019 if small else 2018,
        url="https://arxiv.org/abs/1908.08962" if small else "https://arxiv.org/abs/1810.04805",
        reference="keras_hub.models.BertBackbone of the same configuration (+ the head)",
        task="text_classification",
        default_input_shape=(512,),
        min_input_size=1,
        tiny_config=_TINY,
    )


bert_tiny = _sized("bert_tiny")
bert_mini = _sized("bert_mini")
bert_small = _sized("bert_small")
bert_medium = _sized("bert_medium")
bert_base = _sized("bert_base")
bert_large = _sized("bert_large")


def load_keras_hub_backbone(model: keras.Model, backbone) -> keras.Model:
    """Copy a keras-hub backbone's weights (``BertBackbone``, ``GPT2Backbone``) into a zoo model of
    the same family and size.

    Layers correspond by name (the zoo uses the backbone's names); the head is left as it is, and
    a zoo model without a pooler (the masked-LM model, GPT) skips the backbone's. A zoo model of
    fewer positions than the backbone takes the first ones (512 learned positions serve any
    shorter length); one of more positions, or any other size mismatch, raises ``UserError``
    naming the layer.
    """
    for layer in backbone.layers:
        if not layer.weights:
            continue
        try:
            target = model.get_layer(layer.name)
        except ValueError:
            if layer.name == "pooled_dense":
                continue
            raise v.UserError(
                f"the zoo model has no layer {layer.name!r}: is it of the backbone's family "
                f"({type(backbone).__name__}) with as many layers?"
            ) from None
        target.set_weights(_backbone_weights(layer, target))
    return model


def load_keras_hub_masked_lm(model: keras.Model, masked_lm) -> keras.Model:
    """Copy a keras-hub masked-LM task (``BertMaskedLM``, ``RobertaMaskedLM``,
    ``DistilBertMaskedLM``, ``AlbertMaskedLM``) into a zoo model built with ``head="masked_lm"``:
    its backbone as ``load_keras_hub_backbone`` does, then its ``MaskedLMHead`` (the dense layer,
    the layer norm and the output bias; the output table is the token embedding, already copied)."""
    load_keras_hub_backbone(model, masked_lm.backbone)
    head = masked_lm.masked_lm_head
    by_path = {w.path.removeprefix(f"{head.name}/"): keras.ops.convert_to_numpy(w) for w in head.weights}
    pairs = {
        "mlm_dense": ("intermediate_dense/kernel", "intermediate_dense/bias"),
        "mlm_layer_norm": ("intermediate_layer_norm/gamma", "intermediate_layer_norm/beta"),
        "mlm_bias": ("output_bias",),
    }
    for name, paths in pairs.items():
        try:
            target = model.get_layer(name)
        except ValueError:
            raise v.UserError(
                "the zoo model has no masked-LM head: build it with head='masked_lm'."
            ) from None
        target.set_weights([by_path[p] for p in paths])
    return model


def _backbone_weights(layer, target) -> list:
    """``layer``'s weights in the shapes of the zoo's ``target`` layer: its first positions where
    the zoo model takes shorter sequences; any other difference is an error naming the layer."""
    weights = layer.get_weights()
    if layer.name == "position_embedding":
        length, available = target.get_weights()[0].shape[0], weights[0].shape[0]
        if length > available:
            raise v.UserError(
                f"the zoo model takes sequences of {length} tokens, longer than the backbone's "
                f"max_sequence_length={available}; build it with max_sequence_length<={available}."
            )
        weights = [weights[0][:length]]
    shapes = [tuple(w.shape) for w in weights]
    if shapes != [tuple(w.shape) for w in target.get_weights()]:
        raise v.UserError(
            f"layer {layer.name!r}: the backbone's weights have shapes {shapes}, the zoo model's differ."
        )
    return weights
