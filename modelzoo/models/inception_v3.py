"""Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016).

"Rethinking the Inception architecture for computer vision", CVPR 2016, arXiv 1512.00567. Table
1's network at 299x299: a stem of five convolutions and two poolings, three modules on the 35x35
grid (Figure 5: the 5x5 convolution factorised into two 3x3), a grid reduction (Figure 10), four
modules on the 17x17 grid (Figure 6: n x n factorised into 1 x 7 and 7 x 1), a second reduction,
two modules on the 8x8 grid (Figure 7: expanded 1 x 3 / 3 x 1 banks), global average pooling and
the classifier; every convolution followed by batch norm and ReLU. Section 4's auxiliary
classifier on the last 17x17 grid, with batch norm (section 7's BN-auxiliary), is an option.

Branches are built in keras.applications' ``InceptionV3`` order, and its batch norms have no
scale (``scale=False``) as here, so its ImageNet weights convert layer by layer in build order
(its convolutions are unnamed there). The modules keep its names (``mixed0`` ... ``mixed10``).
What differs: ``width_multiplier`` scales every convolution's maps (1.0 is the paper's), for
small tests and tuning; dropout before the classifier is ``dropout_rate`` (0 by default, as
keras.applications; the paper's Table 1 has none).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)


class Convs:
    """Convolution, batch norm without scale, ReLU: every convolution of the network, its maps
    scaled by the width multiplier."""

    def __init__(self, width_multiplier: float):
        self.mult = width_multiplier

    def __call__(self, x, filters: int, kernel, name: str, strides=1, padding="same"):
        maps = blocks.scaled(filters, self.mult)
        x = layers.Conv2D(
            maps, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)


def _pool_branch(x, conv, filters: int, name: str):
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return conv(x, filters, 1, f"{name}_pool_proj")


def module_35(x, conv, pool_maps: int, name: str, one_maps: int = 64):
    """Figure 5: 1x1; 1x1 then 5x5 (keras.applications' form); 1x1 then two 3x3; pooling then 1x1."""
    b1 = conv(x, one_maps, 1, f"{name}_1x1")
    b5 = conv(conv(x, 48, 1, f"{name}_5x5_reduce"), 64, 5, f"{name}_5x5")
    b3 = conv(x, 64, 1, f"{name}_3x3dbl_reduce")
    b3 = conv(conv(b3, 96, 3, f"{name}_3x3dbl_1"), 96, 3, f"{name}_3x3dbl_2")
    return layers.Concatenate(name=name)([b1, b5, b3, _pool_branch(x, conv, pool_maps, name)])


def reduction_35(x, conv, name: str):
    """Figure 10: 35x35 to 17x17: a strided 3x3, a 1x1 then two 3x3 (the second strided), max pooling."""
    b3 = conv(x, 384, 3, f"{name}_3x3", strides=2, padding="valid")
    bd = conv(conv(x, 64, 1, f"{name}_3x3dbl_reduce"), 96, 3, f"{name}_3x3dbl_1")
    bd = conv(bd, 96, 3, f"{name}_3x3dbl_2", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([b3, bd, bp])


def module_17(x, conv, n: int, name: str):
    """Figure 6 with n maps inside the factorised 7x7 branches: 1x1; 1x7 then 7x1; two of each; pooling."""
    b1 = conv(x, 192, 1, f"{name}_1x1")
    b7 = conv(x, n, 1, f"{name}_7x7_reduce")
    b7 = conv(conv(b7, n, (1, 7), f"{name}_1x7"), 192, (7, 1), f"{name}_7x1")
    bd = conv(x, n, 1, f"{name}_7x7dbl_reduce")
    for i, (kernel, maps) in enumerate((((7, 1), n), ((1, 7), n), ((7, 1), n), ((1, 7), 192)), start=1):
        bd = conv(bd, maps, kernel, f"{name}_7x7dbl_{i}")
    return layers.Concatenate(name=name)([b1, b7, bd, _pool_branch(x, conv, 192, name)])


def reduction_17(x, conv, name: str):
    """17x17 to 8x8: 1x1 then a strided 3x3; 1x1, 1x7, 7x1 then a strided 3x3; max pooling."""
    b3 = conv(conv(x, 192, 1, f"{name}_3x3_reduce"), 320, 3, f"{name}_3x3", strides=2, padding="valid")
    b7 = conv(x, 192, 1, f"{name}_7x7x3_reduce")
    b7 = conv(conv(b7, 192, (1, 7), f"{name}_7x7x3_1"), 192, (7, 1), f"{name}_7x7x3_2")
    b7 = conv(b7, 192, 3, f"{name}_7x7x3_3", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([b3, b7, bp])


def _expanded(x, conv, name: str):
    """Figure 7's bank: a 1x3 and a 3x1 side by side on the same input."""
    a = conv(x, 384, (1, 3), f"{name}_1x3")
    b = conv(x, 384, (3, 1), f"{name}_3x1")
    return layers.Concatenate(name=f"{name}_concat")([a, b])


def module_8(x, conv, name: str):
    """Figure 7: 1x1; 1x1 then the expanded bank; 1x1, 3x3 then the expanded bank; pooling then 1x1."""
    b1 = conv(x, 320, 1, f"{name}_1x1")
    b3 = _expanded(conv(x, 384, 1, f"{name}_3x3_reduce"), conv, f"{name}_3x3")
    bd = conv(conv(x, 448, 1, f"{name}_3x3dbl_reduce"), 384, 3, f"{name}_3x3dbl_1")
    bd = _expanded(bd, conv, f"{name}_3x3dbl")
    return layers.Concatenate(name=name)([b1, b3, bd, _pool_branch(x, conv, 192, name)])


def stem(inputs, conv):
    """Table 1's first rows: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35; the two stem stages."""
    x = conv(inputs, 32, 3, "conv1", strides=2, padding="valid")
    x = conv(x, 32, 3, "conv2", padding="valid")
    s2 = conv(x, 64, 3, "conv3")
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(s2)
    x = conv(x, 80, 1, "conv4", padding="valid")
    s4 = conv(x, 192, 3, "conv5", padding="valid")
    return layers.MaxPooling2D(3, strides=2, name="pool2")(s4), [Stage(s2, 2), Stage(s4, 4)]


def _aux_head(x, conv, num_classes: int):
    """Section 4's auxiliary classifier on the 17x17 grid, with batch norm (section 7): 5x5/3
    average pooling, 1x1 to 128, 5x5 to 768, the classifier."""
    x = layers.AveragePooling2D(5, strides=3, name="aux_pool")(x)
    x = conv(x, 128, 1, "aux_1x1")
    x = conv(x, 768, 5, "aux_5x5", padding="valid")
    x = layers.Flatten(name="aux_flatten")(x)
    return layers.Dense(num_classes, name="aux_fc")(x)


def _grids(x, conv):
    """The three grids' modules; the 35x35 (mixed2), 17x17 (mixed7) and 8x8 (mixed10) outputs."""
    for i, pool_maps in enumerate((32, 64, 64)):
        x = module_35(x, conv, pool_maps, f"mixed{i}")
    m2 = x
    x = reduction_35(x, conv, "mixed3")
    for i, n in enumerate((128, 160, 160, 192), start=4):
        x = module_17(x, conv, n, f"mixed{i}")
    m7 = x
    x = reduction_17(x, conv, "mixed8")
    for i in (9, 10):
        x = module_8(x, conv, f"mixed{i}")
    return m2, m7, x


def inception_v3(
    num_classes=1000,
    input_shape=(299, 299, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    width_multiplier=1.0,
    aux_logits=False,
):
    """Inception v3 (Szegedy et al. 2016, Table 1) at 299x299 by default, 75x75 at least.

    Stages, as timm's: conv3 (64 maps at stride 2), conv5 (192 at 4), mixed2 (288 at 8), mixed7
    (768 at 16), mixed10 (2048 at 32). ``aux_logits=True`` adds the auxiliary classifier: the model
    then has two outputs, ``predictions`` and ``aux_predictions`` (the recipes weight its loss 0.3,
    as GoogLeNet's); it needs the 17x17 grid, so an input of at least 299.
    """
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    aux_logits = v.check_bool("aux_logits", aux_logits)
    args = blocks.image_args(
        locals(), default_input_shape=(299, 299, 3), min_input_size=75, default_name="inception_v3"
    )
    if aux_logits and args.include_top and not args.features_only and min(args.input_shape[:2]) < 299:
        raise v.UserError(
            "aux_logits=True needs input height and width of at least 299 (its 5x5/3 pooling and 5x5 "
            f"convolution on the 17x17 grid), got input_shape={args.input_shape!r}."
        )
    conv = Convs(mult)
    inputs = blocks.image_input(args)
    x, stages = stem(inputs, conv)
    m2, m7, x = _grids(x, conv)
    stages += [Stage(m2, 8), Stage(m7, 16), Stage(x, 32)]

    def head(x):
        logits = blocks.gap_head(args)(x)
        return {"": logits, "aux_": _aux_head(m7, conv, args.num_classes)} if aux_logits else logits

    return blocks.assemble(args, inputs, stages, x, head)


register_model(
    inception_v3,
    paper="Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, Rethinking the Inception architecture for computer vision",
    year=2016,
    url="https://arxiv.org/abs/1512.00567",
    reference="keras.applications InceptionV3",
    min_input_size=75,
    tiny_config={"width_multiplier": 0.125},
)
