"""Xception (Chollet 2017).

"Xception: Deep learning with depthwise separable convolutions", CVPR 2017, arXiv 1610.02357.
Figure 5: an entry flow (two 3x3 convolutions, then three blocks of two separable convolutions and
a 3x3/2 max pooling, each with a strided 1x1 convolution on its shortcut), a middle flow of eight
identical blocks of three separable convolutions with identity shortcuts, and an exit flow (one
more strided block, then separable convolutions to 1536 and 2048 maps), global average pooling and
the classifier; batch norm after every convolution. 36 convolutions in all.

Layer names follow keras.applications' ``Xception`` (``block4_sepconv2_bn``, ``block14_sepconv1``),
so its ImageNet weights load by name; its shortcut convolutions and their batch norms have no
names there and are ``block{i}_shortcut`` and ``block{i}_shortcut_bn`` here, paired in build order
on conversion. What differs: ``width_multiplier`` scales every layer's maps and ``middle_blocks``
sets the middle flow's depth (1.0 and 8 are the paper's), for small tests and tuning; the paper's
optional dropout before the classifier is ``dropout_rate`` (0 by default, as keras.applications).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)


def _separable(x, filters: int, name: str, relu_first: bool):
    """(ReLU,) 3x3 separable convolution, batch norm: the flows' unit."""
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_act")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def strided_block(x, filters: tuple[int, int], block: int, relu_first: bool = True):
    """Two separable convolutions and a 3x3/2 max pooling, added to a strided 1x1 shortcut."""
    shortcut = layers.Conv2D(
        filters[1], 1, strides=2, padding="same", use_bias=False, name=f"block{block}_shortcut"
    )(x)
    shortcut = layers.BatchNormalization(name=f"block{block}_shortcut_bn")(shortcut)
    x = _separable(x, filters[0], f"block{block}_sepconv1", relu_first)
    if not relu_first:  # block 2 follows the stem's ReLU: its second ReLU keeps keras.applications' name
        x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _separable(x, filters[1], f"block{block}_sepconv2", relu_first)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
    return layers.Add(name=f"block{block}_add")([x, shortcut])


def middle_block(x, filters: int, block: int):
    """Three ReLU-separable convolution-batch norm units and an identity shortcut."""
    shortcut = x
    for unit in (1, 2, 3):
        x = _separable(x, filters, f"block{block}_sepconv{unit}", relu_first=True)
    return layers.Add(name=f"block{block}_add")([x, shortcut])


def _stem(inputs, width):
    """Two unpadded 3x3 convolutions, the first strided: 299 -> 149 -> 147."""
    x = inputs
    for i, (maps, strides) in enumerate(((32, 2), (64, 1)), start=1):
        x = layers.Conv2D(width(maps), 3, strides=strides, use_bias=False, name=f"block1_conv{i}")(x)
        x = layers.BatchNormalization(name=f"block1_conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"block1_conv{i}_act")(x)
    return x


def _exit(x, width, block: int):
    """Separable convolutions to 1536 and 2048 maps, each with batch norm and ReLU."""
    for unit, maps in enumerate((1536, 2048), start=1):
        name = f"block{block}_sepconv{unit}"
        x = layers.SeparableConv2D(width(maps), 3, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.Activation("relu", name=f"{name}_act")(x)
    return x


def xception(
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
    middle_blocks=8,
):
    """Xception (Chollet 2017, Figure 5) at 299x299 by default.

    Stages, as timm's: the stem (64 maps at stride 2), the entry flow's first two blocks (128 at 4,
    256 at 8), the middle flow's end (728 at 16) and the exit flow (2048 at 32).
    """
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    middle_blocks = v.check_int("middle_blocks", middle_blocks, minimum=1, maximum=v.MAX_DEPTH)
    args = blocks.image_args(
        locals(), default_input_shape=(299, 299, 3), min_input_size=32, default_name="xception"
    )

    def width(maps):
        return blocks.scaled(maps, mult)

    inputs = blocks.image_input(args)
    x = _stem(inputs, width)
    stages = [Stage(x, 2)]
    x = strided_block(x, (width(128), width(128)), 2, relu_first=False)
    stages.append(Stage(x, 4))
    x = strided_block(x, (width(256), width(256)), 3)
    stages.append(Stage(x, 8))
    x = strided_block(x, (width(728), width(728)), 4)
    for block in range(5, 5 + middle_blocks):
        x = middle_block(x, width(728), block)
    stages.append(Stage(x, 16))
    last = 5 + middle_blocks
    x = strided_block(x, (width(728), width(1024)), last)
    x = _exit(x, width, last + 1)
    stages.append(Stage(x, 32))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


register_model(
    xception,
    paper="Chollet, Xception: Deep learning with depthwise separable convolutions",
    year=2017,
    url="https://arxiv.org/abs/1610.02357",
    reference="keras.applications Xception",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.0625, "middle_blocks": 2},
)
