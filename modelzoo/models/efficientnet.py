"""EfficientNet B0-B7 (Tan & Le 2019).

"EfficientNet: Rethinking model scaling for convolutional neural networks", ICML 2019 (arXiv
1905.11946). B0 (Table 1) is a mobile inverted-bottleneck network found by architecture search:
a 3x3/2 stem of 32 maps, sixteen MBConv blocks in seven stages (1x1 expansion by 1 or 6, a 3x3 or
5x5 depthwise convolution, squeeze-and-excitation on a quarter of the block's input maps, a 1x1
linear projection, an identity shortcut where the shape is kept), a 1x1 convolution to 1280 maps,
global average pooling, dropout and the classifier. Swish (SiLU) throughout; batch norm after every
convolution. B1-B7 scale B0 by the compound rule (section 3.3): maps by ``width_coefficient``
(rounded to multiples of 8, never 10% down), each stage's repeats by ``depth_coefficient``
(rounded up) and the input resolution, with the dropout rising from 0.2 to 0.5. Stochastic depth
(Huang et al. 2016) drops each residual branch with a probability rising linearly over the blocks
to ``drop_path_rate`` (0.2, the paper's survival probability of 0.8).

Layer names follow keras.applications' ``EfficientNetB0``... (``block2a_expand_conv``,
``block2a_se_reduce``, ``top_conv``...), and strided depthwise convolutions pad as it does, so its
ImageNet weights load by name. What differs: keras.applications puts the input scaling (x / 255,
then ImageNet's mean and standard deviation) inside the model; here, as in every zoo model, inputs
arrive normalised (the recipes' preprocessing), so its 7 statistics are not weights here. The
classifier is ``fc`` (keras.applications: ``predictions``).
"""

from __future__ import annotations

import math

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD, make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
# on [0, 1] RGB images: keras.applications normalises inside its model; the zoo's leaves it out
MEAN_STD = (IMAGENET_MEAN, IMAGENET_STD)

# Table 1 (B0): expansion, kernel, first stride, input maps, output maps, repeats
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
SE_RATIO = 0.25
# name: (width, depth, resolution, dropout), the compound-scaled sizes of the paper's release
SIZES = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
_BN = dict(epsilon=1e-3, momentum=0.99)


def _bn(x, name):
    return layers.BatchNormalization(**_BN, name=name)(x)


def squeeze_excite(x, squeezed: int, prefix: str):
    """Squeeze-and-excitation (Hu et al. 2018) with swish inside, in keras.applications' names."""
    names = {"pool": f"{prefix}se_squeeze", "reshape": f"{prefix}se_reshape"}
    names.update({part: f"{prefix}se_{part}" for part in ("reduce", "expand", "excite")})
    return blocks.squeeze_excite(x, squeezed, names, inner="swish")


def block_plan(first_strides, repeats, drop_path: float):
    """Each block of the stages in order: (stage, strides, stochastic-depth rate, name prefix), the
    rate rising linearly over the blocks to ``drop_path``, blocks named keras.applications' way
    (``block2a_``, ``block2b_``...)."""
    total, index = sum(repeats), 0
    for stage, (first_stride, count) in enumerate(zip(first_strides, repeats)):
        for i in range(count):
            strides = first_stride if i == 0 else 1
            yield stage, strides, drop_path * index / total, f"block{stage + 1}{chr(ord('a') + i)}_"
            index += 1


def mbconv(x, expansion: int, kernel: int, strides: int, filters: int, drop: float, prefix: str):
    """The MBConv block: 1x1 expand (skipped at 1), depthwise, squeeze-excite, 1x1 linear projection;
    with the same shape, a shortcut whose branch stochastic depth drops with probability ``drop``."""
    inputs, maps_in = x, int(x.shape[-1])
    if expansion != 1:
        x = layers.Conv2D(maps_in * expansion, 1, use_bias=False, name=f"{prefix}expand_conv")(x)
        x = layers.Activation("swish", name=f"{prefix}expand_activation")(_bn(x, f"{prefix}expand_bn"))
    if strides == 2:
        x = blocks.pad_for_stride(x, kernel, f"{prefix}dwconv_pad")
    x = layers.DepthwiseConv2D(
        kernel,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        name=f"{prefix}dwconv",
    )(x)
    x = layers.Activation("swish", name=f"{prefix}activation")(_bn(x, f"{prefix}bn"))
    x = squeeze_excite(x, max(1, int(maps_in * SE_RATIO)), prefix)
    x = _bn(layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project_conv")(x), f"{prefix}project_bn")
    if strides != 1 or maps_in != filters:
        return x
    x = blocks.drop_path(x, drop, f"{prefix}drop")
    return layers.Add(name=f"{prefix}add")([x, inputs])


_PAPER = dict(
    paper="Tan & Le, EfficientNet: Rethinking model scaling for convolutional neural networks",
    year=2019,
    url="https://arxiv.org/abs/1905.11946",
    min_input_size=32,
)


def efficientnet(
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    width_coefficient=1.0,
    depth_coefficient=1.0,
    drop_path_rate=0.2,
):
    """EfficientNet at any compound scaling (B0 at the defaults; the registered B0-B7 fix both).

    Stages: the last block at each stride, as timm: 2 (16 maps at B0), 4 (24), 8 (40), 16 (112),
    32 (320); the backbone's output (``include_top=False``) is the final 1x1 convolution's 1280.
    """
    width = v.check_float(
        "width_coefficient", width_coefficient, minimum=1e-3, maximum=16.0, include_max=True
    )
    depth = v.check_float(
        "depth_coefficient", depth_coefficient, minimum=1e-3, maximum=16.0, include_max=True
    )
    drop_path = v.check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="efficientnet"
    )
    inputs = blocks.image_input(args)
    x = blocks.pad_for_stride(inputs, 3, "stem_conv_pad")
    x = layers.Conv2D(blocks.make_divisible(32 * width), 3, strides=2, use_bias=False, name="stem_conv")(x)
    x = layers.Activation("swish", name="stem_activation")(_bn(x, "stem_bn"))
    repeats = [math.ceil(depth * n) for *_, n in STAGES]
    stages, reduction = [], 2
    for stage, strides, drop, prefix in block_plan([row[2] for row in STAGES], repeats, drop_path):
        if strides == 2:  # a stage's first block: the last block at the previous stride is a feature
            stages.append(Stage(x, reduction))
            reduction *= 2
        expansion, kernel, _, _, maps, _ = STAGES[stage]
        x = mbconv(x, expansion, kernel, strides, blocks.make_divisible(maps * width), drop, prefix)
    stages.append(Stage(x, reduction))
    x = layers.Conv2D(blocks.make_divisible(1280 * width), 1, use_bias=False, name="top_conv")(x)
    x = layers.Activation("swish", name="top_activation")(_bn(x, "top_bn"))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


# The generic builder, registered like ``bert``: B0 at the defaults. Its tiny config keeps every
# stage at a quarter of the maps and 10 blocks (1,1,1,2,2,2,1: residual blocks in three stages)
# instead of 16: the family's representative in the other backends' model suites (B0 was their
# second-longest compile).
efficientnet = register_model(
    efficientnet,
    reference="keras.applications EfficientNetB0 at the defaults, less its input normalisation",
    tiny_config={"width_coefficient": 0.25, "depth_coefficient": 0.5},
    **_PAPER,
)


def _variant(size: str, reference: str):
    width, depth, resolution, dropout = SIZES[size]
    name = f"efficientnet_{size}"
    doc = (
        f"EfficientNet-{size.upper()} (Tan & Le 2019): width x{width}, depth x{depth}, "
        f"{resolution}x{resolution} input, dropout {dropout}. See ``efficientnet``."
    )
    fn = make_variant(
        efficientnet,
        name,
        doc,
        defaults={"input_shape": (resolution, resolution, 3), "dropout_rate": dropout, "name": name},
        width_coefficient=width,
        depth_coefficient=depth,
    )
    return register_model(fn, reference=reference, tiny_config={}, **_PAPER)


efficientnet_b0 = _variant("b0", "keras.applications EfficientNetB0, less its input normalisation")
efficientnet_b1 = _variant("b1", "keras.applications EfficientNetB1, less its input normalisation")
efficientnet_b2 = _variant("b2", "keras.applications EfficientNetB2, less its input normalisation")
efficientnet_b3 = _variant("b3", "keras.applications EfficientNetB3, less its input normalisation")
efficientnet_b4 = _variant("b4", "keras.applications EfficientNetB4, less its input normalisation")
efficientnet_b5 = _variant("b5", "keras.applications EfficientNetB5, less its input normalisation")
efficientnet_b6 = _variant("b6", "keras.applications EfficientNetB6, less its input normalisation")
efficientnet_b7 = _variant("b7", "keras.applications EfficientNetB7, less its input normalisation")
