"""Multilayer perceptron (Rumelhart, Hinton & Williams 1986).

"Learning representations by back-propagating errors", Nature 323. Fully connected hidden layers
trained by back-propagation; depth, widths, activation, dropout and batch norm are options.
"""

from __future__ import annotations

import keras
from keras import layers

from modelzoo import validation as v
from modelzoo.blocks import Stage, assemble, model_args
from modelzoo.registry import register_model


@register_model(
    paper="Rumelhart, Hinton & Williams, Learning representations by back-propagating errors",
    year=1986,
    url="https://doi.org/10.1038/323533a0",
    reference="arithmetic: sum of (fan_in + 1) x units over the layers",
    task="tabular_classification",
    min_input_size=1,
    tiny_config={"hidden_units": (32, 16)},
)
def mlp(
    num_classes=10,
    input_shape=(784,),
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    hidden_units=(512, 256),
    activation="relu",
    batch_norm=False,
):
    """An MLP classifier: ``hidden_units`` sets depth (its length) and widths.

    Any input shape is flattened first. Each hidden layer is Dense (-> BatchNorm) -> activation
    (-> Dropout); the stages for ``features_only`` are the hidden layers' outputs.
    ``pooling`` does not apply to an MLP and must stay None.
    """
    if pooling is not None:
        raise v.UserError(f"pooling={pooling!r} does not apply to an MLP; leave it None.")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise v.UserError(f"input_shape must be a non-empty tuple such as (784,), got {input_shape!r}.")
    shape = tuple(v.check_int("input_shape", d, minimum=1) for d in input_shape)
    args = model_args(locals(), input_shape=shape, default_name="mlp")
    hidden_units = v.check_int_tuple("hidden_units", hidden_units)
    batch_norm = v.check_bool("batch_norm", batch_norm)
    activation = v.check_activation("activation", activation)
    if activation is None:
        raise v.UserError("activation must be set for hidden layers (e.g. 'relu', 'tanh', 'sigmoid').")
    inputs = keras.Input(shape=shape, name="input")
    x = layers.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    stages = []
    for i, width in enumerate(hidden_units, start=1):
        x = layers.Dense(width, use_bias=not batch_norm, name=f"hidden{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=0.9, name=f"hidden{i}_bn")(x)
        x = layers.Activation(activation, name=f"hidden{i}_act")(x)
        if args.dropout_rate > 0:
            x = layers.Dropout(args.dropout_rate, name=f"hidden{i}_dropout")(x)
        stages.append(Stage(x, None))
    return assemble(args, inputs, stages, x, lambda h: layers.Dense(args.num_classes, name="output")(h))
