"""Recurrent text classifiers: LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014).

An embedding, ``num_layers`` stacked recurrent layers (optionally bidirectional, Schuster & Paliwal
1997), the last layer's final state, dropout and a linear classifier: the baselines that
text-classification papers compare against. Padding (token id 0) is masked out.
"""

from __future__ import annotations

import keras
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.registry import make_variant, register_model

CELLS = ("lstm", "gru")


def rnn_classifier(
    vocabulary_size=20000,
    max_sequence_length=128,
    num_classes=2,
    include_top=True,
    pooling=None,
    dropout_rate=0.5,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    cell="lstm",
    embedding_dim=128,
    units=128,
    num_layers=1,
    bidirectional=False,
    recurrent_dropout=0.0,
):
    """Embedding -> ``num_layers`` x LSTM/GRU(``units``) -> final state -> dropout -> dense.

    ``dropout_rate`` applies between layers and before the classifier; each layer's output
    sequence (the last layer's final state) is a feature stage.
    """
    args = model_args(
        {**locals(), "input_shape": None},
        input_shape=(max_sequence_length,),
        default_name=f"{cell}_classifier",
    )
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    max_sequence_length = v.check_int("max_sequence_length", max_sequence_length, minimum=1)
    cell = v.check_choice("cell", cell, CELLS)
    embedding_dim = v.check_int("embedding_dim", embedding_dim, minimum=1)
    units = v.check_int("units", units, minimum=1)
    num_layers = v.check_int("num_layers", num_layers, minimum=1, maximum=v.MAX_DEPTH)
    bidirectional = v.check_bool("bidirectional", bidirectional)
    recurrent_dropout = v.check_float("recurrent_dropout", recurrent_dropout, minimum=0.0, maximum=1.0)
    inputs = keras.Input((max_sequence_length,), dtype="int32", name="token_ids")
    x = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(inputs)
    stages = _recurrent_layers(
        x, cell, units, num_layers, bidirectional, recurrent_dropout, args.dropout_rate
    )
    x = stages[-1].tensor

    def head(h):
        if args.dropout_rate > 0:
            h = layers.Dropout(args.dropout_rate, name="dropout")(h)
        return layers.Dense(args.num_classes, name="logits")(h)

    return assemble(args, inputs, stages, x, head)


def _recurrent_layers(x, cell, units, num_layers, bidirectional, recurrent_dropout, dropout_rate) -> list:
    """The stacked LSTM/GRU layers (dropout between them): each one's output, a feature stage;
    the last gives its final state."""
    Cell = layers.LSTM if cell == "lstm" else layers.GRU
    stages = []
    for i in range(1, num_layers + 1):
        last = i == num_layers
        rnn = Cell(units, return_sequences=not last, recurrent_dropout=recurrent_dropout, name=f"{cell}{i}")
        x = layers.Bidirectional(rnn, name=f"bi{cell}{i}")(x) if bidirectional else rnn(x)
        if not last and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"{cell}{i}_dropout")(x)
        stages.append(Stage(x, None))
    return stages


_TINY = {"vocabulary_size": 50, "max_sequence_length": 12, "embedding_dim": 8, "units": 8, "num_layers": 2}
lstm_classifier = register_model(
    make_variant(
        rnn_classifier,
        "lstm_classifier",
        "An LSTM text classifier (Hochreiter & Schmidhuber 1997).",
        cell="lstm",
    ),
    paper="Hochreiter & Schmidhuber, Long Short-Term Memory",
    year=1997,
    url="https://doi.org/10.1162/neco.1997.9.8.1735",
    reference="arithmetic: 4 x ((embedding + units) x units + units) per LSTM layer (x2 bidirectional)",
    task="text_classification",
    default_input_shape=(128,),
    min_input_size=1,
    tiny_config=_TINY,
)
gru_classifier = register_model(
    make_variant(rnn_classifier, "gru_classifier", "A GRU text classifier (Cho et al. 2014).", cell="gru"),
    paper="Cho et al., Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation",
    year=2014,
    url="https://arxiv.org/abs/1406.1078",
    reference="arithmetic: 3 x ((embedding + units) x units + 2 x units) per GRU layer (Keras reset_after)",
    task="text_classification",
    default_input_shape=(128,),
    min_input_size=1,
    tiny_config=_TINY,
)
