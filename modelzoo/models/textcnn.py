"""TextCNN (Kim 2014): one convolutional layer over word vectors, max-over-time pooling.

"Convolutional Neural Networks for Sentence Classification", EMNLP 2014, arXiv:1408.5882.
Filter widths 3, 4, 5 with 100 feature maps each, ReLU, max-over-time pooling, dropout 0.5 and
a max-norm (l2 = 3) constraint on the softmax layer's weights. Embedding modes as in the paper:
``random`` (CNN-rand), ``static`` (pretrained vectors, frozen), ``non-static`` (pretrained,
fine-tuned) and ``multichannel`` (a frozen and a fine-tuned copy; every filter spans both
channels, which is one 1-D convolution over the two copies side by side).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.registry import register_model

EMBEDDING_MODES = ("random", "static", "non-static", "multichannel")


@register_model(
    paper="Kim, Convolutional Neural Networks for Sentence Classification",
    year=2014,
    url="https://arxiv.org/abs/1408.5882",
    reference="arithmetic: vocabulary x dim (x2 multichannel) + sum_w (w x dim x channels + 1) x maps + head",
    task="text_classification",
    default_input_shape=(64,),
    min_input_size=5,
    tiny_config={"vocabulary_size": 50, "max_sequence_length": 16, "embedding_dim": 8, "num_filters": 4},
)
def textcnn(
    vocabulary_size=20000,
    max_sequence_length=64,
    num_classes=2,
    include_top=True,
    pooling=None,
    dropout_rate=0.5,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    embedding_dim=300,
    filter_sizes=(3, 4, 5),
    num_filters=100,
    embedding_mode="random",
    embeddings=None,
    max_norm=3.0,
):
    """Kim's CNN. ``embeddings`` (an array of shape (vocabulary_size, embedding_dim), e.g. word2vec
    rows in vocabulary order) is required by the static, non-static and multichannel modes.

    Input: token ids of length ``max_sequence_length`` (0 is padding). ``include_top=False``
    returns the pooled features; the feature stages are each filter width's pooled maps.
    """
    args = model_args(
        {**locals(), "input_shape": None}, input_shape=(max_sequence_length,), default_name="textcnn"
    )
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    max_sequence_length = v.check_int("max_sequence_length", max_sequence_length, minimum=1)
    embedding_dim = v.check_int("embedding_dim", embedding_dim, minimum=1)
    filter_sizes = _checked_filter_sizes(filter_sizes, max_sequence_length)
    num_filters = v.check_int("num_filters", num_filters, minimum=1)
    embedding_mode = v.check_choice("embedding_mode", embedding_mode, EMBEDDING_MODES)
    if max_norm is not None:
        max_norm = v.check_float("max_norm", max_norm, minimum=0.0, maximum=float("inf"))
    embeddings = _checked_embeddings(embeddings, embedding_mode, vocabulary_size, embedding_dim)
    inputs = keras.Input((max_sequence_length,), dtype="int32", name="token_ids")
    x = _embedded(inputs, vocabulary_size, embedding_dim, embedding_mode, embeddings)
    pooled = _max_over_time(x, filter_sizes, num_filters)
    features = layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0]

    def head(h):
        if args.dropout_rate > 0:
            h = layers.Dropout(args.dropout_rate, name="dropout")(h)
        constraint = keras.constraints.MaxNorm(max_norm, axis=0) if max_norm else None
        return layers.Dense(args.num_classes, kernel_constraint=constraint, name="logits")(h)

    return assemble(args, inputs, [Stage(p, None) for p in pooled], features, head)


def _checked_filter_sizes(filter_sizes, max_sequence_length) -> tuple[int, ...]:
    filter_sizes = v.check_int_tuple("filter_sizes", filter_sizes)
    if max(filter_sizes) > max_sequence_length:
        raise v.UserError(
            f"filter_sizes {filter_sizes} must not exceed max_sequence_length={max_sequence_length}."
        )
    return filter_sizes


def _checked_embeddings(embeddings, embedding_mode, vocabulary_size, embedding_dim):
    """The given word vectors as float32, of the vocabulary's shape; none for ``random`` mode."""
    if embedding_mode == "random":
        if embeddings is not None:
            raise v.UserError(
                "embeddings were given with embedding_mode='random'; "
                "choose 'static', 'non-static' or 'multichannel'."
            )
        return None
    if embeddings is None:
        raise v.UserError(
            f"embedding_mode={embedding_mode!r} needs embeddings (an array of shape (vocabulary_size, "
            "embedding_dim))."
        )
    embeddings = np.asarray(embeddings, dtype="float32")
    if embeddings.shape != (vocabulary_size, embedding_dim):
        raise v.UserError(
            f"embeddings have shape {embeddings.shape}; expected ({vocabulary_size}, {embedding_dim})."
        )
    return embeddings


def _embedded(inputs, vocabulary_size, embedding_dim, embedding_mode, embeddings):
    """The embedded tokens, each table holding ``embeddings`` when given; with ``multichannel``, a
    frozen copy beside the tuned one, as two channels."""
    embed = layers.Embedding(
        vocabulary_size, embedding_dim, trainable=embedding_mode != "static", name="embedding"
    )
    x = embed(inputs)
    tables = [embed]
    if embedding_mode == "multichannel":
        static = layers.Embedding(vocabulary_size, embedding_dim, trainable=False, name="embedding_static")
        x = layers.Concatenate(name="channels")([static(inputs), x])
        tables.append(static)
    if embeddings is not None:
        for table in tables:
            table.set_weights([embeddings])
    return x


def _max_over_time(x, filter_sizes, num_filters) -> list:
    """One convolution per filter width over the sequence, each max-pooled over time."""
    pooled = []
    for width in filter_sizes:
        h = layers.Conv1D(num_filters, width, activation="relu", name=f"conv_w{width}")(x)
        pooled.append(layers.GlobalMaxPooling1D(name=f"max_over_time_w{width}")(h))
    return pooled
