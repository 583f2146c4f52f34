"""Counting a built model: parameters and multiply-adds, read off the model's own layers.

``macs`` counts the multiply-accumulates of convolutions, dense layers, self-attention (its
projections, scores and weighted sum, as BERT's layers count) and layers that declare
their own count (a ``count_macs(input_shape, output_shape)`` method), for one sample, as
torchvision, fvcore and timm's profiles do; element-wise work (batch norm, activations, pooling,
LRN) is left out. ``flops`` is ``2 * macs``. A weighted layer of a kind this module does not know
is listed under ``uncounted`` instead of being guessed.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from modelzoo import private_keras


def count_params(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable (e.g. batch-norm moving statistics) and total parameters."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {
        "params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
    }


def _prod(dims) -> int:
    # An unknown length (None, e.g. the number of masked tokens) counts as one: MACs per item.
    return int(math.prod(int(d) for d in dims if d is not None))


def _shape(t, length: int | None) -> tuple:
    """A call's shape, an unknown sequence length (axis 1) read as ``length`` where one is given."""
    shape = tuple(t.shape)
    if length is not None and len(shape) >= 3 and shape[1] is None:
        return (shape[0], length, *shape[2:])
    return shape


def sequence_length(model: keras.Model) -> int | None:
    """The longest sequence a Transformer built with inputs of any length takes: the length of
    its position table (keras-hub's ``PositionEmbedding``), the length its MACs are counted at."""
    lengths = [
        int(layer.sequence_length)
        for layer in _walk(model)
        if type(layer).__name__.endswith("PositionEmbedding") and getattr(layer, "sequence_length", None)
    ]
    return max(lengths) if lengths else None


# Weighted layers whose work is element-wise: not counted, by the convention above.
_ELEMENTWISE = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Embedding,
)


def _layer_macs(layer, in_shape: tuple, out_shape: tuple) -> int | None:
    """Multiply-accumulates for one call of ``layer`` on one sample; None if unknown."""
    hook = getattr(layer, "count_macs", None)
    if callable(hook):
        return int(hook(in_shape, out_shape))
    L = keras.layers
    if isinstance(layer, L.SeparableConv2D | L.SeparableConv1D):
        k = _prod(layer.kernel_size)
        cin = in_shape[-1]
        depthwise = _prod(out_shape[1:-1]) * cin * layer.depth_multiplier * k
        pointwise = _prod(out_shape[1:-1]) * cin * layer.depth_multiplier * out_shape[-1]
        return depthwise + pointwise
    if isinstance(layer, L.DepthwiseConv2D | L.DepthwiseConv1D):
        return _prod(out_shape[1:]) * _prod(layer.kernel_size)
    if isinstance(layer, L.Conv2DTranspose | L.Conv1DTranspose | L.Conv3DTranspose):
        return _prod(in_shape[1:]) * _prod(layer.kernel_size) * out_shape[-1]
    if isinstance(layer, L.Conv1D | L.Conv2D | L.Conv3D):
        cin = in_shape[-1] // layer.groups
        return _prod(out_shape[1:]) * _prod(layer.kernel_size) * cin
    if isinstance(layer, L.Dense):
        return _prod(out_shape[1:]) * in_shape[-1]
    if isinstance(layer, L.EinsumDense):
        # Each output element is a dot product over the kernel's letters absent from the output.
        inputs, output = layer.equation.split("->")
        kernel_letters = inputs.split(",")[1]
        contracted = [d for ch, d in zip(kernel_letters, layer.kernel.shape) if ch not in output]
        return _prod(d for d in out_shape[1:] if d is not None) * _prod(contracted)
    if isinstance(layer, L.MultiHeadAttention):  # self-attention: the keys as many as the queries
        tokens, heads, key, value = _prod(in_shape[1:-1]), layer.num_heads, layer.key_dim, layer.value_dim
        value = value or key
        projections = (
            tokens * in_shape[-1] * heads * (2 * key + value) + tokens * heads * value * out_shape[-1]
        )
        return projections + tokens * tokens * heads * (key + value)  # scores, weighted sum
    if isinstance(layer, L.Attention):  # Luong's and Bahdanau's: as many source as target tokens
        tokens = _prod(in_shape[1:-1])
        return 2 * tokens * tokens * in_shape[-1]  # scores, weighted sum
    if isinstance(layer, L.Bidirectional):
        return 2 * _layer_macs(layer.forward_layer, in_shape, out_shape)
    if isinstance(layer, L.LSTM | L.GRU):  # gates: 4 (LSTM) or 3 (GRU) matmuls per time step
        gates = 4 if isinstance(layer, L.LSTM) else 3
        return _prod(in_shape[1:2]) * gates * (in_shape[-1] + layer.units) * layer.units
    if type(layer).__name__.endswith("Embedding"):  # keras-hub's position/reversible embeddings
        reverse = getattr(layer, "input_dim", None) == out_shape[-1] and len(in_shape) == len(out_shape)
        return _prod(out_shape[1:]) * in_shape[-1] if reverse and in_shape[-1] != out_shape[-1] else 0
    if not layer.weights or isinstance(layer, _ELEMENTWISE):
        return 0
    return None


def count_flops(model: keras.Model, length: int | None = None) -> dict[str, object]:
    """Multiply-accumulates (``macs``) and ``flops`` (2 x macs) per sample, counted layer by layer.

    A model that takes sequences of any length (BERT, GPT) is counted at ``length`` tokens, by
    default its longest (``sequence_length``), as keras-hub and the papers quote them; its
    masked-LM head then counts every position as masked."""
    length = sequence_length(model) if length is None else length
    macs = 0
    uncounted: list[str] = []
    for layer in _walk(model):
        if isinstance(layer, keras.Model):
            continue
        calls = _calls(layer, length)
        for in_shape, out_shape in calls:
            n = _layer_macs(layer, in_shape, out_shape)
            if n is None:
                uncounted.append(layer.name)
                break
            macs += n
    return {"macs": int(macs), "flops": int(2 * macs), "uncounted": sorted(set(uncounted))}


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def _calls(layer, length: int | None) -> list[tuple[tuple, tuple]]:
    """(input shape, output shape) of every call of ``layer`` recorded in the functional graph."""
    calls = []
    for ins, outs in private_keras.layer_calls(layer):
        if not ins or not outs:
            continue
        calls.append((_shape(ins[0], length), _shape(outs[0], length)))
    return calls
