"""Pretrained weights: ``create_model(name, weights="imagenet" | PATH)``.

ImageNet weights come from keras.applications, fetched by Keras's own download and cache
(``keras.utils.get_file`` under ``~/.keras/models``), for the zoo models it publishes them for, and
are converted to the zoo's layout:

* VGG16/19: the same layers; the classifier is named ``fc6, fc7, fc8`` here (the paper's names)
  and ``fc1, fc2, predictions`` there.
* ResNet-50/101/152: keras.applications gives each convolution a bias before its batch norm; the
  zoo's convolutions have none (as in the paper and torchvision), so each bias is folded into the
  following batch norm's moving mean: ``BN(conv(x) + b) = BN'(conv(x))`` with ``mean' = mean - b``.
* ResNet-50/101/152 v2: the same names (the zoo keeps keras.applications' layout and biases).
* DenseNet-121/169/201: the same layers under other names, paired in build order (shapes checked).
* MobileNetV2 at its six widths: the same names; the classifier is ``fc`` here.
* MobileNet (v1) at its four widths: the same names; the classifier is a 1x1 convolution
  ``conv_preds`` there, the Dense ``fc`` here (its kernel reshaped).
* MobileNetV3 Large and Small (1.0, 0.75, minimalistic): the same names; the two head
  convolutions on the pooled map (``conv_2``, ``logits``) are Dense layers here (``conv_2``, ``fc``).
* ConvNeXt Tiny to XLarge: the same names without keras.applications' model-name prefix, its
  nested stem and downsampling models opened; the classifier is ``head_dense`` there; its 7x7
  ``Conv2D(groups=maps)`` is a ``DepthwiseConv2D`` here (the same weights, reshaped).
* Inception v3: its convolutions and batch norms are unnamed there; paired in build order (the
  zoo builds the branches in its order).
* Xception: the same names; its shortcut convolutions and batch norms are unnamed there
  (``block{i}_shortcut``, ``block{i}_shortcut_bn`` here) and paired in build order.
* EfficientNet-B0 to B7: the same names; keras.applications' input scaling (x / 255, ImageNet's
  mean and standard deviation) is a layer there and the recipes' preprocessing here.

keras-hub presets load into the text families whose layers are keras-hub's (BERT, GPT, RoBERTa,
DistilBERT, ALBERT, ELECTRA):
``create_model("bert_base", weights="bert_base_en_uncased")`` (a built-in preset name, a
``kaggle://`` or ``hf://`` handle, or a preset directory written by ``save_to_preset``) builds the
backbone with keras-hub's own ``Backbone.from_preset`` and copies it layer by layer; the zoo model
must have the preset's sizes (vocabulary, layers, width), and may take fewer positions.

The classifier's weights are copied when the zoo model takes its default input (224x224x3;
EfficientNet's own sizes) with 1,000 classes (VGG's fully connected layers only exist at that
input); otherwise those Dense layers keep their fresh initialisation, the usual start for
fine-tuning, and the loader says so. ``PATH`` loads a ``.weights.h5`` saved from the same zoo
model, or copies the layers of a ``.keras`` model whose names and shapes match (a ViT's position
embeddings saved at another input size are interpolated to this one's patch grid).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from modelzoo.validation import UserError

# zoo family -> the keras-hub backbone class whose presets load into it
KERAS_HUB = {
    "bert": "BertBackbone",
    "gpt": "GPT2Backbone",
    "roberta": "RobertaBackbone",
    "distilbert": "DistilBertBackbone",
    "albert": "AlbertBackbone",
    "electra": "ElectraBackbone",
}

# zoo name -> keras.applications constructor with published ImageNet weights
IMAGENET = {
    "vgg16": ("VGG16", {}),
    "vgg19": ("VGG19", {}),
    "resnet50": ("ResNet50", {}),
    "resnet101": ("ResNet101", {}),
    "resnet152": ("ResNet152", {}),
    **{f"resnet{d}_v2": (f"ResNet{d}V2", {}) for d in (50, 101, 152)},
    "densenet121": ("DenseNet121", {}),
    "densenet169": ("DenseNet169", {}),
    "densenet201": ("DenseNet201", {}),
    "mobilenet_v2": ("MobileNetV2", {}),
    **{f"mobilenet_v2_{a:03d}": ("MobileNetV2", {"alpha": a / 100}) for a in (35, 50, 75, 130, 140)},
    **{f"efficientnet_b{i}": (f"EfficientNetB{i}", {}) for i in range(8)},
    # the zoo's EfficientNetV2 takes normalised inputs: keras.applications' scaling is left out
    **{
        f"efficientnet_v2_{size}": (f"EfficientNetV2{size.upper()}", {"include_preprocessing": False})
        for size in ("b0", "b1", "b2", "b3", "s", "m", "l")
    },
    # the zoo's ConvNeXt takes normalised inputs: keras.applications' normalisation layer is left out
    **{
        f"convnext_{size}": (f"ConvNeXt{title}", {"include_preprocessing": False})
        for size, title in (
            ("tiny", "Tiny"),
            ("small", "Small"),
            ("base", "Base"),
            ("large", "Large"),
            ("xlarge", "XLarge"),
        )
    },
    "xception": ("Xception", {}),
    "inception_v3": ("InceptionV3", {}),
    "inception_resnet_v2": ("InceptionResNetV2", {}),
    "nasnet_mobile": ("NASNetMobile", {}),
    "nasnet_large": ("NASNetLarge", {}),
    "mobilenet": ("MobileNet", {}),
    **{f"mobilenet_{a:03d}": ("MobileNet", {"alpha": a / 100}) for a in (25, 50, 75)},
    # the zoo's MobileNetV3 takes inputs in [-1, 1]: keras.applications' rescaling layer is left out
    **{
        f"mobilenet_v3_{size}{suffix}": (f"MobileNetV3{size.title()}", {"include_preprocessing": False, **kw})
        for size in ("large", "small")
        for suffix, kw in (("", {}), ("_075", {"alpha": 0.75}), ("_minimal", {"minimalistic": True}))
    },
}
# families paired layer by layer in build order (the names differ: DenseNet's; unnamed in
# keras.applications' InceptionV3 and InceptionResNetV2), shapes checked
IN_BUILD_ORDER = ("densenet", "inception_v3", "inception_resnet_v2")
# families whose keras.applications model leaves some weighted layers unnamed (Xception's shortcut
# convolutions and batch norms): those pair in build order with the zoo's layers no name matched
UNNAMED_THERE = ("xception",)
# the classifier's names there, by family (others: "fc" here is "predictions" there)
HEADS = {
    "vgg": {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"},
    "mobilenet": {"fc": "conv_preds"},  # a 1x1 convolution there, a Dense layer here
    "mobilenet_v3": {"fc": "logits"},  # as conv_2, a 1x1 convolution there
    "convnext": {"fc": "head_dense"},
}


def load(model: keras.Model, name: str, weights) -> keras.Model:
    """Put ``weights`` (None, "imagenet" or a file path) into ``model`` built as ``name``."""
    if weights is None:
        return model
    if weights == "imagenet":
        if name not in IMAGENET:
            raise UserError(f"no ImageNet weights for {name!r}; they exist for: {', '.join(IMAGENET)}.")
        fresh = from_keras_applications(model, imagenet_reference(name, model), name)
        if fresh:
            print(
                f"{name}: ImageNet weights loaded; {', '.join(fresh)} freshly initialised (input or classes differ)."
            )
        return model
    if is_keras_hub_preset(name, weights):
        return from_keras_hub_preset(model, name, weights)
    path = Path(str(weights))
    if not path.is_file():
        presets = " or a keras-hub preset" if _family(name) in KERAS_HUB else ""
        raise UserError(
            f"weights must be None, 'imagenet'{presets} or a weights file; {str(weights)!r} does not exist."
        )
    if path.suffix == ".keras":
        source = keras.saving.load_model(path, safe_mode=True, compile=False)
        copied = copy_matching(model, source)
        if not copied:
            raise UserError(f"{str(path)!r} shares no layer (same name and shapes) with {name!r}.")
        return model
    if not path.name.endswith(".weights.h5"):
        raise UserError(f"weights file {str(path)!r} must be a .weights.h5 or a .keras file.")
    model.load_weights(path)
    return model


def _family(name: str) -> str:
    from modelzoo.registry import get_entry

    return get_entry(name).family


def is_keras_hub_preset(name: str, weights) -> bool:
    """Whether ``weights`` names a keras-hub preset for ``name``'s family: one of its backbone's
    built-in presets, a ``scheme://`` handle, or a directory."""
    family = _family(name)
    if family not in KERAS_HUB or not isinstance(weights, str | Path):
        return False
    import keras_hub

    presets = getattr(keras_hub.models, KERAS_HUB[family]).presets
    return str(weights) in presets or "://" in str(weights) or Path(str(weights)).is_dir()


def from_keras_hub_preset(model: keras.Model, name: str, preset) -> keras.Model:
    """Build the preset's backbone with keras-hub's ``Backbone.from_preset`` (its download and
    cache for a name or handle) and copy its layers into ``model``."""
    import keras_hub

    from modelzoo.models.bert import load_keras_hub_backbone

    expected = KERAS_HUB[_family(name)]
    preset = str(preset)
    if Path(preset).is_dir() and not (Path(preset) / "config.json").is_file():
        raise UserError(f"{preset!r} is not a keras-hub preset directory (it has no config.json).")
    backbone = keras_hub.models.Backbone.from_preset(preset)
    if type(backbone).__name__ != expected:
        raise UserError(
            f"preset {preset!r} holds a {type(backbone).__name__}; {name!r} loads {expected} presets."
        )
    return load_keras_hub_backbone(model, backbone)


def imagenet_reference(name: str, model: keras.Model) -> keras.Model:
    """The keras.applications model with ImageNet weights at the zoo model's input shape (with
    its classifier when that shape is the model's default, the only one keras.applications gives
    it at: 224x224x3, EfficientNet-B7's 600x600x3)."""
    shape = tuple(model.inputs[0].shape[1:])
    if shape[-1] != 3:
        raise UserError(f"ImageNet weights need 3-channel inputs; {name!r} was built for {shape}.")
    from modelzoo.registry import get_entry

    constructor = reference_constructor(name)
    if shape == get_entry(name).default_input_shape:  # keras.applications' classifier size
        return constructor(weights="imagenet", include_top=True)
    return constructor(weights="imagenet", include_top=False, input_shape=shape)


def reference_constructor(name: str):
    """The keras.applications constructor for ``name``, with its width fixed where it has one."""
    import functools

    constructor, kwargs = IMAGENET[name]
    return functools.partial(getattr(keras.applications, constructor), **kwargs)


def _weighted(model):
    """Layers with weights, in build order, nested models (keras.applications' ConvNeXt stem)
    opened."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_weighted(layer))
        elif layer.weights:
            found.append(layer)
    return found


def _unprefixed(name: str, model_name: str) -> str:
    """keras.applications' ConvNeXt starts every layer name with the model's (``convnext_tiny_``)."""
    return name[len(model_name) + 1 :] if name.startswith(model_name + "_") else name


def _in_head(layer) -> bool:
    """A classifier layer: a Dense layer, or one named ``head_*`` (ConvNeXt's layer norm)."""
    return isinstance(layer, keras.layers.Dense) or layer.name.startswith("head_")


def _pairs(model: keras.Model, reference: keras.Model, family: str) -> list[tuple]:
    """(zoo layer, keras.applications layer or None) for each of ``model``'s weighted layers."""
    ours = _weighted(model)
    if family in IN_BUILD_ORDER:  # same layers in the same build order, other names
        theirs = _weighted(reference)
        return list(zip(ours, theirs)) + [(layer, None) for layer in ours[len(theirs) :]]
    theirs = {_unprefixed(layer.name, reference.name): layer for layer in _weighted(reference)}
    rename = HEADS.get(family, {"fc": "predictions"})
    pairs = [(layer, theirs.get(rename.get(layer.name, layer.name))) for layer in ours]
    if family in UNNAMED_THERE:  # the layers left on both sides, in build order
        taken = {id(source) for _, source in pairs if source is not None}
        left = iter(layer for layer in _weighted(reference) if id(layer) not in taken)
        pairs = [
            (layer, next(left, None) if source is None and not _in_head(layer) else source)
            for layer, source in pairs
        ]
    return pairs


def _reshaped(target, source, values: list) -> list:
    """keras.applications' kernels in the zoo layer's form: a 1x1 convolution on a pooled map as a
    Dense kernel; ConvNeXt's ``Conv2D(groups=maps)`` kernel (k, k, 1, maps) as a depthwise one
    (k, k, maps, 1)."""
    L = keras.layers
    if isinstance(target, L.Dense) and isinstance(source, L.Conv2D):
        return [values[0].reshape(values[0].shape[-2:]), *values[1:]]
    if isinstance(target, L.DepthwiseConv2D) and not isinstance(source, L.DepthwiseConv2D):
        return [values[0].reshape(tuple(target.kernel.shape)), *values[1:]]
    return values


def _fold_bias(target, values: list, biases: dict) -> list:
    """ResNet: a keras.applications conv bias is kept aside for the zoo's bias-free convolution,
    then folded into the following batch norm's moving mean."""
    if isinstance(target, keras.layers.Conv2D) and len(values) == 2 and not target.use_bias:
        biases[target.name] = values[1]
        return values[:1]
    conv = target.name[:-3] + "_conv"
    if target.name.endswith("_bn") and conv in biases:
        gamma, beta, mean, var = values
        return [gamma, beta, mean - biases.pop(conv), var]
    return values


def from_keras_applications(model: keras.Model, reference: keras.Model, name: str) -> list[str]:
    """Copy ``reference`` (a keras.applications model of the same architecture, with or without
    its classifier) into ``model``; return the names of the layers left freshly initialised
    (classifier layers the reference lacks, or a classifier for another number of classes)."""
    from modelzoo.registry import get_entry

    family = get_entry(name).family  # vgg, resnet, densenet convert their own way; others by name
    fresh, biases = [], {}
    for target, source in _pairs(model, reference, family):
        values = None if source is None else source.get_weights()
        if values:
            values = _reshaped(target, source, values)
        if values and family == "resnet":
            values = _fold_bias(target, values, biases)
        shapes = [tuple(w.shape) for w in target.weights]
        if values is None or shapes != [tuple(np.shape(v)) for v in values]:
            if _in_head(target):
                fresh.append(target.name)  # classifier layers: kept fresh (another input size or label set)
                continue
            found = (
                "no counterpart"
                if source is None
                else f"shapes {[np.shape(v) for v in values]} in {source.name!r}"
            )
            raise UserError(
                f"layer {target.name!r} of {name!r} ({shapes}) has {found} in keras.applications.{reference.name}."
            )
        target.set_weights(values)
    if biases:
        raise UserError(f"conv biases with no batch norm to fold them into: {sorted(biases)}.")
    return fresh


def matching_layers(model: keras.Model, source: keras.Model) -> list[tuple]:
    """Pairs (layer of ``model``, layer of ``source``) with the same name and weight shapes, or
    with the same name where ``model``'s layer adapts other shapes (``adapt_weights``: a ViT's
    position embeddings saved at another input size)."""
    theirs = {layer.name: layer for layer in _weighted(source)}
    pairs = []
    for layer in _weighted(model):
        other = theirs.get(layer.name)
        if other is None:
            continue
        same = [tuple(w.shape) for w in other.weights] == [tuple(w.shape) for w in layer.weights]
        if same or hasattr(layer, "adapt_weights"):
            pairs.append((layer, other))
    return pairs


def copy_pairs(pairs: list[tuple]) -> list[str]:
    """Copy each (layer, source layer) pair of ``matching_layers``; return the layers' names."""
    for layer, other in pairs:
        values = other.get_weights()
        if [np.shape(w) for w in values] != [tuple(w.shape) for w in layer.weights]:
            values = layer.adapt_weights(values)
        layer.set_weights(values)
    return [layer.name for layer, _ in pairs]


def copy_matching(model: keras.Model, source: keras.Model) -> list[str]:
    """Copy every layer of ``source`` whose name and weight shapes match one of ``model``'s."""
    return copy_pairs(matching_layers(model, source))
