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
