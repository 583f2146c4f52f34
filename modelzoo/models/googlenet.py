"""GoogLeNet / Inception v1 (Szegedy et al. 2014).

"Going deeper with convolutions", CVPR 2015 (arXiv 1409.4842). Table 1 layer by layer: the stem with
LRN, nine Inception modules (1x1, 1x1->3x3, 1x1->5x5 and 3x3 pool->1x1 branches concatenated), global
average pooling, dropout 0.4 and a linear classifier. The 5x5 branches really are 5x5 (torchvision's
``googlenet`` uses 3x3 there). Optional auxiliary classifiers on inception 4a and 4d (section 5).
Convolutions have biases and no batch norm, as the paper predates it.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(x, filters, kernel, name, strides=1):
    return blocks.conv_bn_act(x, filters, kernel, strides=strides, batch_norm=False, name=name)


def inception(x, spec, name: str):
    """One Inception module; branch layers are named as in the paper's Table 1."""
    n1, r3, n3, r5, n5, pp = spec
    b1 = _conv(x, n1, 1, f"{name}_1x1")
    b3 = _conv(_conv(x, r3, 1, f"{name}_3x3_reduce"), n3, 3, f"{name}_3x3")
    b5 = _conv(_conv(x, r5, 1, f"{name}_5x5_reduce"), n5, 5, f"{name}_5x5")
    bp = layers.MaxPooling2D(3, 1, padding="same", name=f"{name}_pool")(x)
    bp = _conv(bp, pp, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")([b1, b3, b5, bp])


def _aux_head(x, num_classes: int, name: str):
    """Section 5: 5x5/3 average pool, 1x1x128 conv, 1024 dense, dropout 0.7, linear classifier."""
    x = layers.AveragePooling2D(5, 3, name=f"{name}_pool")(x)
    x = _conv(x, 128, 1, f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc1")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, name=f"{name}_fc2")(x)


@register_model(
    paper="Szegedy et al., Going deeper with convolutions",
    year=2014,
    url="https://arxiv.org/abs/1409.4842",
    reference=(
        "paper Table 1 filter counts with biases: 6,998,552 (torchvision's 6,624,904 has 3x3 '5x5' branches and BN)"
    ),
    min_input_size=32,
)
def googlenet(
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.4,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    aux_logits=False,
):
    """GoogLeNet. Stages: conv1 (stride 2), conv2 (4), inception 3b (8), 4e (16), 5b (32).

    ``aux_logits=True`` adds the two auxiliary classifiers: the model then has three outputs,
    ``predictions``, ``aux1_predictions``, ``aux2_predictions`` (the paper weights their losses 0.3).
    They need inception 4a maps of at least 5x5, so an input of at least 65.
    """
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="googlenet"
    )
    aux_logits = v.check_bool("aux_logits", aux_logits)
    if aux_logits and args.include_top and min(args.input_shape[:2]) < 65:
        raise v.UserError(
            f"aux_logits=True needs input height and width of at least 65 (their 5x5/3 pooling), "
            f"got input_shape={args.input_shape!r}."
        )
    inputs = blocks.image_input(args)
    x, stages = _stem(inputs)
    taps = _inceptions(x)
    x = taps["5b"]
    stages += [Stage(taps["3b"], 8), Stage(taps["4e"], 16), Stage(x, 32)]

    def head(x):
        logits = blocks.gap_head(args)(x)
        if not aux_logits:
            return logits
        return {
            "": logits,
            "aux1_": _aux_head(taps["4a"], args.num_classes, "aux1"),
            "aux2_": _aux_head(taps["4d"], args.num_classes, "aux2"),
        }

    return blocks.assemble(args, inputs, stages, x, head)


def _stem(inputs):
    """The convolutions before the first inception (Table 1), with the paper's local response
    normalisation; the output and the two stem feature stages."""
    c1 = _conv(inputs, 64, 7, "conv1_7x7", strides=2)
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1_3x3")(c1)
    x = blocks.LocalResponseNormalization(k=1.0, name="pool1_norm")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    c2 = _conv(x, 192, 3, "conv2_3x3")
    x = blocks.LocalResponseNormalization(k=1.0, name="conv2_norm")(c2)
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2_3x3")(x)
    return x, [Stage(c1, 2), Stage(c2, 4)]


def _inceptions(x) -> dict:
    """The nine inception modules, max-pooled before 4a and 5a: each module's output by key."""
    taps = {}
    for key, spec in INCEPTION.items():
        if key == "4a":
            x = layers.MaxPooling2D(3, 2, padding="same", name="pool3_3x3")(x)
        if key == "5a":
            x = layers.MaxPooling2D(3, 2, padding="same", name="pool4_3x3")(x)
        x = taps[key] = inception(x, spec, f"inception_{key}")
    return taps
