"""Recurrent sequence to sequence: Sutskever, Vinyals & Le 2014, with attention as an option.

"Sequence to Sequence Learning with Neural Networks", NeurIPS 2014, arXiv:1409.3215: a deep LSTM
reads the source, reversed (section 3.3: "we reversed the order of the words of the input
sentence", which shortens the distance between the first words of each side), and its final
states start a second deep LSTM that predicts the target one token at a time, through a softmax
over the target vocabulary. The paper's model: 4 layers of 1,000 cells, 1,000-dimensional
embeddings, 160,000 source and 80,000 target words, 384M parameters; no dropout.

``attention`` adds global attention over the encoder's outputs on top of the decoder (Luong, Pham
& Manning 2015, "Effective Approaches to Attention-based Neural Machine Translation",
arXiv:1508.04025, section 3.1): at each target position a context vector is the attention-weighted
sum of the source states, and ``tanh(W_c [context; h_t])`` feeds the softmax. The score is Luong's
``"dot"`` (``keras.layers.Attention``) or Bahdanau, Cho & Bengio's additive score
(``"bahdanau"``, ``keras.layers.AdditiveAttention``; arXiv:1409.0473). Bahdanau's model also feeds
the context back into the decoder's next step and reads the source with a bidirectional encoder;
this one does neither (Luong's input feeding is left out too), so every position is computed at
once under teacher forcing.

Inputs: ``encoder_token_ids`` and ``decoder_token_ids`` of any length, 0 the padding (masked); the
output is the next target token's distribution at each position.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.registry import register_model

LAYOUT, LAYOUT_NOTE = {}, "data parallel only"  # keras.distribution
ATTENTION = (None, "luong", "bahdanau")
INPUTS = ("encoder_token_ids", "decoder_token_ids")


@keras.saving.register_keras_serializable(package="modelzoo")
class ReverseTokens(layers.Layer):
    """The token ids in reverse order. Right-padded sequences become left-padded; the encoder's
    mask skips the padding, so it reads each sentence's words last to first."""

    def call(self, token_ids):
        return ops.flip(token_ids, axis=1)


@register_model(
    paper="Sutskever, Vinyals & Le, Sequence to Sequence Learning with Neural Networks",
    year=2014,
    url="https://arxiv.org/abs/1409.3215",
    reference="paper: 384M (4 x 1,000 LSTM cells, 160k/80k words); arithmetic, MACs at 128 + 128 tokens",
    task="translation",
    default_input_shape=(128,),
    min_input_size=1,
    tiny_config={
        "vocabulary_size": 50,
        "target_vocabulary_size": 50,
        "embedding_dim": 8,
        "units": 8,
        "num_layers": 2,
        "attention": "luong",
    },
)
def lstm_seq2seq(
    vocabulary_size=160000,
    target_vocabulary_size=80000,
    num_classes=None,
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    embedding_dim=1000,
    units=1000,
    num_layers=4,
    attention=None,
    reverse_source=True,
):
    """An LSTM encoder-decoder of any depth and width (the paper's at the defaults).

    ``attention``: None (the paper), ``"luong"`` or ``"bahdanau"`` (see the module). ``dropout_rate``
    applies between stacked layers. ``include_top=False`` returns the decoder's last layer (the
    attentional state with attention); ``features_only`` every encoder layer's output, then every
    decoder layer's.
    """
    vocabulary_size = v.check_int("vocabulary_size", vocabulary_size, minimum=2)
    target = v.check_int("target_vocabulary_size", target_vocabulary_size, minimum=2)
    num_classes = v.check_token_classes(num_classes, target, "the decoder predicts its {} target tokens")
    args = model_args({**locals(), "input_shape": None}, input_shape=(None,), default_name="lstm_seq2seq")
    embedding_dim = v.check_int("embedding_dim", embedding_dim, minimum=1)
    units = v.check_int("units", units, minimum=1)
    num_layers = v.check_int("num_layers", num_layers, minimum=1, maximum=v.MAX_DEPTH)
    attention = v.check_choice("attention", attention, ATTENTION)
    reverse_source = v.check_bool("reverse_source", reverse_source)
    inputs = {key: keras.Input((None,), dtype="int32", name=key) for key in INPUTS}
    x = _source(inputs["encoder_token_ids"], vocabulary_size, embedding_dim, reverse_source)
    encoded, states, stages = _lstms(x, units, num_layers, args.dropout_rate, "encoder")
    y = layers.Embedding(target, embedding_dim, mask_zero=True, name="decoder_embedding")(
        inputs["decoder_token_ids"]
    )
    y, _, decoder_stages = _lstms(y, units, num_layers, args.dropout_rate, "decoder", states)
    if attention is not None:
        y = _attend(y, encoded, units, attention)
    return assemble(
        args, inputs, stages + decoder_stages, y, lambda h: layers.Dense(target, name="logits")(h)
    )


def _source(token_ids, vocabulary_size: int, embedding_dim: int, reverse: bool):
    """The source's tokens, reversed (the paper's section 3.3) unless not asked, embedded; 0 masked."""
    if reverse:
        token_ids = ReverseTokens(name="reverse_source")(token_ids)
    return layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="encoder_embedding")(
        token_ids
    )


def _lstms(x, units: int, num_layers: int, dropout_rate: float, side: str, initial=None):
    """``num_layers`` stacked LSTMs, the ``i``-th started from ``initial[i]`` where given: the last
    output sequence, each layer's final (h, c), each layer's output as a feature stage."""
    states, stages = [], []
    for i in range(num_layers):
        if i and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"{side}_dropout_{i}")(x)
        lstm = layers.LSTM(units, return_sequences=True, return_state=True, name=f"{side}_lstm_{i}")
        x, h, c = lstm(x, initial_state=None if initial is None else initial[i])
        x = layers.Identity(name=f"{side}_lstm_{i}_out")(x)  # the stage: one output, not (x, h, c)
        states.append([h, c])
        stages.append(Stage(x, None))
    return x, states, stages


def _attend(decoded, encoded, units: int, attention: str):
    """Luong's attentional state: tanh(W_c [context; h_t]), the context scored by dot products
    (Luong) or additively (Bahdanau) over the encoder's unmasked outputs."""
    if attention == "luong":
        context = layers.Attention(score_mode="dot", name="attention")([decoded, encoded])
    else:
        context = layers.AdditiveAttention(name="attention")([decoded, encoded])
    joined = layers.Concatenate(name="attention_concat")([context, decoded])
    return layers.Dense(units, activation="tanh", name="attentional_state")(joined)
