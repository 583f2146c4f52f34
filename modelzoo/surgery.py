"""Changing a built zoo model: a new classifier for a new label set, keeping every other weight."""

from __future__ import annotations

import keras

from modelzoo import private_keras
from modelzoo import validation as v


def reset_classifier(model: keras.Model, num_classes: int, classifier_activation="keep") -> keras.Model:
    """A model sharing ``model``'s layers (and so its weights) up to each classifier, with new,
    freshly initialised classifiers of ``num_classes`` outputs (timm's ``reset_classifier``).

    Each head of a zoo model ends in an ``Activation`` layer named ``*predictions``; the layer
    with weights found first walking back from it (past weightless layers such as pooling) is the
    classifier, rebuilt from its config with the new width. ``classifier_activation="keep"`` keeps
    the old activation; None gives logits.
    """
    num_classes = v.check_int("num_classes", num_classes, minimum=1)
    if classifier_activation != "keep":
        v.check_activation("classifier_activation", classifier_activation)
    heads = [t for t in model.outputs if private_keras.producer(t).name.endswith("predictions")]
    if not heads:
        raise v.UserError(
            f"model {model.name!r} has no output layer named '*predictions': it was built with "
            "include_top=False or features_only=True, or is not a zoo classifier."
        )
    new_outputs = []
    for out in model.outputs:
        pred = private_keras.producer(out)
        if not pred.name.endswith("predictions"):
            new_outputs.append(out)
            continue
        chain = _classifier_chain(pred)
        classifier = chain[-1]
        x = classifier.input
        for layer in reversed(chain):
            config = layer.get_config()
            if layer is classifier:
                key = "units" if "units" in config else "filters"
                if key not in config:
                    raise v.UserError(
                        f"classifier layer {layer.name!r} ({type(layer).__name__}) has no units or filters."
                    )
                config[key] = num_classes
            elif layer is pred and classifier_activation != "keep":
                config["activation"] = classifier_activation or "linear"
            x = type(layer).from_config(config)(x)
        new_outputs.append(x)
    outputs = new_outputs[0] if len(new_outputs) == 1 else new_outputs
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=model.name)


def _classifier_chain(pred) -> list:
    """From an output layer ``*predictions`` back to the classifier (the first layer with weights)."""
    chain = [pred]
    while not chain[-1].weights:
        parents = keras.tree.flatten(chain[-1].input)
        if len(parents) != 1:
            raise v.UserError(f"cannot find a single classifier layer before {pred.name!r}.")
        chain.append(private_keras.producer(parents[0]))
    return chain


def classifier_layers(model: keras.Model) -> list[str]:
    """The names of the classifier layers (the weighted layer before each ``*predictions``
    output): what a new label set replaces."""
    preds = [p for p in map(private_keras.producer, model.outputs) if p.name.endswith("predictions")]
    return [_classifier_chain(pred)[-1].name for pred in preds]


# Layers whose output channels are the last axis of their last kernel: a batch norm after one
# folds into that kernel and the bias. (A separable convolution's pointwise kernel is its last.)
FOLDS_INTO = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)


def fold_batch_norm(model: keras.Model) -> tuple[keras.Model, list[tuple[str, str]]]:
    """``model`` with every batch norm that directly follows a convolution or dense layer folded
    into it (Jacob et al. 2018, section 3.2: in inference a batch norm is a per-channel affine map,
    so ``W * s`` and ``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)`` do the same in
    one layer); the folded-away batch norms become ``Identity`` layers of the same names.

    A pair folds where the layer has no activation of its own (the batch norm must see its
    linear output), feeds only that batch norm, is called once, and the batch norm normalises the
    last (channel) axis; other batch norms stay. The result is an ordinary functional model of
    Keras's own layers (it saves and loads with ``safe_mode``), for inference: its layers hold no
    batch statistics to train. Returns the model and the (layer, batch norm) names folded.
    """
    pairs = _foldable_pairs(model)
    into = {layer.name: bn for layer, bn in pairs}
    folded = {bn.name for _, bn in pairs}

    def clone(layer):
        if layer.name in folded:
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        if layer.name in into:
            config["use_bias"] = True
        return type(layer).from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name in folded:  # the batch norm's call took a mask and training; Identity neither
            return layer(args[0])
        return layer(*args, **kwargs)

    new = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in model.layers:
        if layer.name in into:
            new.get_layer(layer.name).set_weights(_folded_weights(layer, into[layer.name]))
        elif layer.name not in folded and layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    return new, [(layer.name, bn.name) for layer, bn in pairs]


def _foldable_pairs(model: keras.Model) -> list:
    """(layer, batch norm) pairs that fold exactly (see ``fold_batch_norm``)."""
    uses: dict[int, int] = {}
    for layer in model.layers:
        for inputs, _ in private_keras.layer_calls(layer):
            for t in keras.tree.flatten(inputs):
                uses[id(t)] = uses.get(id(t), 0) + 1
    for t in model.outputs:
        uses[id(t)] = uses.get(id(t), 0) + 1
    pairs = []
    for bn in model.layers:
        calls = private_keras.layer_calls(bn)
        if not isinstance(bn, keras.layers.BatchNormalization) or len(calls) != 1:
            continue
        source = calls[0][0][0]
        layer = private_keras.producer(source)
        if (
            isinstance(layer, FOLDS_INTO)
            and len(private_keras.layer_calls(layer)) == 1
            and uses.get(id(source)) == 1
            and keras.activations.serialize(layer.activation) == "linear"
            and bn.axis in (-1, len(source.shape) - 1)
        ):
            pairs.append((layer, bn))
    return pairs


def _folded_weights(layer, bn) -> list:
    """``layer``'s weights with ``bn`` folded in: the last kernel scaled per output channel, a
    bias made from the batch norm's statistics (``layer``'s own bias included)."""
    import numpy as np

    stats = {w.path.rsplit("/", 1)[-1]: keras.ops.convert_to_numpy(w).astype("float64") for w in bn.weights}
    channels = stats["moving_mean"].shape[0]
    gamma, beta = stats.get("gamma", np.ones(channels)), stats.get("beta", np.zeros(channels))
    scale = gamma / np.sqrt(stats["moving_variance"] + bn.epsilon)
    weights = [np.asarray(w, "float64") for w in layer.get_weights()]
    kernels = weights[:-1] if layer.use_bias else weights
    bias = weights[-1] if layer.use_bias else np.zeros(channels)
    last = kernels[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (h, w, in, multiplier): channel = in * m + j
        last = last * scale.reshape(last.shape[-2:])
    else:
        last = last * scale
    dtype = layer.get_weights()[0].dtype
    new = [*kernels[:-1], last, (bias - stats["moving_mean"]) * scale + beta]
    return [w.astype(dtype) for w in new]
