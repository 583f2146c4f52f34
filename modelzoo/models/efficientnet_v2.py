"""EfficientNetV2 B0-B3, S, M and L (Tan & Le 2021).

"EfficientNetV2: Smaller models and faster training", ICML 2021 (arXiv 2104.00298). EfficientNet's
MBConv blocks (1x1 expansion, depthwise convolution, squeeze-and-excitation, 1x1 linear projection)
in the late stages, and Fused-MBConv in the early ones (section 3.2: the expansion and the
depthwise convolution fused into one regular 3x3 convolution, faster on accelerators at high
resolution; with expansion 1, that convolution alone, followed by batch norm and swish), smaller
expansion ratios early, 3x3 kernels only, and no squeeze-excite in fused blocks. V2-S is Table 4;
M and L, and the B0-B3 of the authors' release, scale other stage tables. B1-B3 scale B0 by
EfficientNet's compound rule: maps by ``width_coefficient`` (rounded to multiples of 8), each
stage's repeats by ``depth_coefficient`` (rounded up). Stochastic depth drops each residual branch
with a probability rising linearly over the blocks to ``drop_path_rate`` (0.2 as the release).

Layer names follow keras.applications' ``EfficientNetV2B0``... (``block1a_project_conv``,
``block4a_se_reduce``, ``top_conv``...), so its ImageNet weights load by name (the classifier is
``fc`` here, ``predictions`` there). What differs: keras.applications scales the input inside the
model (B0-B3: x / 255, then ImageNet's mean and standard deviation, 7 statistics; S, M and L: x /
128 - 1); here inputs arrive normalised (the recipes' preprocessing). ``width_coefficient`` and
``depth_coefficient`` default to each size's and may be lowered for small tests and tuning.
"""

from __future__ import annotations

import math

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.models.efficientnet import block_plan, squeeze_excite
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)

# stage tables: fused, expansion, first stride, output maps, repeats, squeeze-excite ratio;
# every kernel is 3x3; the stem's maps come first
STAGES = {
    "b": (
        32,
        (
            (True, 1, 1, 16, 1, 0.0),
            (True, 4, 2, 32, 2, 0.0),
            (True, 4, 2, 48, 2, 0.0),
            (False, 4, 2, 96, 3, 0.25),
            (False, 6, 1, 112, 5, 0.25),
            (False, 6, 2, 192, 8, 0.25),
        ),
    ),
    "s": (  # Table 4
        24,
        (
            (True, 1, 1, 24, 2, 0.0),
            (True, 4, 2, 48, 4, 0.0),
            (True, 4, 2, 64, 4, 0.0),
            (False, 4, 2, 128, 6, 0.25),
            (False, 6, 1, 160, 9, 0.25),
            (False, 6, 2, 256, 15, 0.25),
        ),
    ),
    "m": (
        24,
        (
            (True, 1, 1, 24, 3, 0.0),
            (True, 4, 2, 48, 5, 0.0),
            (True, 4, 2, 80, 5, 0.0),
            (False, 4, 2, 160, 7, 0.25),
            (False, 6, 1, 176, 14, 0.25),
            (False, 6, 2, 304, 18, 0.25),
            (False, 6, 1, 512, 5, 0.25),
        ),
    ),
    "l": (
        32,
        (
            (True, 1, 1, 32, 4, 0.0),
            (True, 4, 2, 64, 7, 0.0),
            (True, 4, 2, 96, 7, 0.0),
            (False, 4, 2, 192, 10, 0.25),
            (False, 6, 1, 224, 19, 0.25),
            (False, 6, 2, 384, 25, 0.25),
            (False, 6, 1, 640, 7, 0.25),
        ),
    ),
}
# name: (stage table, width, depth, resolution)
SIZES = {
    "b0": ("b", 1.0, 1.0, 224),
    "b1": ("b", 1.0, 1.1, 240),
    "b2": ("b", 1.1, 1.2, 260),
    "b3": ("b", 1.2, 1.4, 300),
    "s": ("s", 1.0, 1.0, 384),
    "m": ("m", 1.0, 1.0, 480),
    "l": ("l", 1.0, 1.0, 480),
}
_BN = dict(epsilon=1e-3, momentum=0.9)


def _round(maps: float) -> int:
    """Widths to multiples of 8 without EfficientNet's 10% guard, as the release rounds them."""
    return blocks.make_divisible(maps, round_limit=0.0)


def _conv_bn(x, maps: int, kernel: int, strides: int, prefix: str, activation: bool = True):
    """Convolution ``{prefix}_conv``, batch norm ``{prefix}_bn``, swish ``{prefix}_activation``."""
    x = layers.Conv2D(maps, kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
    x = layers.BatchNormalization(**_BN, name=f"{prefix}_bn")(x)
    return layers.Activation("swish", name=f"{prefix}_activation")(x) if activation else x


def _fused_branch(x, expansion: int, strides: int, filters: int, prefix: str):
    """Fused-MBConv (Figure 2): a 3x3 convolution to the expanded maps, then a 1x1 linear projection;
    at expansion 1 the 3x3 convolution alone, with swish."""
    if expansion == 1:
        return _conv_bn(x, filters, 3, strides, f"{prefix}project")
    x = _conv_bn(x, int(x.shape[-1]) * expansion, 3, strides, f"{prefix}expand")
    return _conv_bn(x, filters, 1, 1, f"{prefix}project", activation=False)


def _mbconv_branch(x, expansion: int, strides: int, filters: int, se_ratio: float, prefix: str):
    """MBConv: 1x1 expansion, 3x3 depthwise, squeeze-excite on ``se_ratio`` of the block's input
    maps, 1x1 linear projection."""
    maps_in = int(x.shape[-1])
    x = _conv_bn(x, maps_in * expansion, 1, 1, f"{prefix}expand")
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{prefix}dwconv2")(x)
    x = layers.BatchNormalization(**_BN, name=f"{prefix}bn")(x)
    x = layers.Activation("swish", name=f"{prefix}activation")(x)
    x = squeeze_excite(x, max(1, int(maps_in * se_ratio)), prefix)
    return _conv_bn(x, filters, 1, 1, f"{prefix}project", activation=False)


def block(
    x, fused: bool, expansion: int, strides: int, filters: int, se_ratio: float, drop: float, prefix: str
):
    """One Fused-MBConv or MBConv block; with the same shape, a shortcut whose branch stochastic
    depth drops with probability ``drop``."""
    inputs = x
    if fused:
        x = _fused_branch(x, expansion, strides, filters, prefix)
    else:
        x = _mbconv_branch(x, expansion, strides, filters, se_ratio, prefix)
    if strides != 1 or int(inputs.shape[-1]) != filters:
        return x
    x = blocks.drop_path(x, drop, f"{prefix}drop")
    return layers.Add(name=f"{prefix}add")([x, inputs])


def _body(x, table, width: float, depth: float, drop_path: float):
    """The stages' blocks; the feature stages (the last block at each stride) and the output."""
    repeats = [math.ceil(depth * row[4]) for row in table]
    stages, reduction = [], 2
    for stage, strides, drop, prefix in block_plan([row[2] for row in table], repeats, drop_path):
        if strides == 2:  # a stage's first block: the last block at the previous stride is a feature
            stages.append(Stage(x, reduction))
            reduction *= 2
        fused, expansion, _, maps, _, se = table[stage]
        x = block(x, fused, expansion, strides, _round(maps * width), se, drop, prefix)
    return stages + [Stage(x, reduction)], x


def efficientnet_v2(
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
    stage_table="b",
    width_coefficient=1.0,
    depth_coefficient=1.0,
    drop_path_rate=0.2,
):
    """EfficientNetV2 from a stage table ("b" for B0-B3, "s", "m", "l") at any compound scaling.

    Stages: the last block at each stride, as timm: 2, 4, 8, 16 and 32 (16, 32, 48, 112 and 192
    maps at B0); the backbone's output (``include_top=False``) is the final 1x1 convolution's 1280.
    """
    table = v.check_choice("stage_table", stage_table, tuple(STAGES))
    width = v.check_float(
        "width_coefficient", width_coefficient, minimum=1e-3, maximum=16.0, include_max=True
    )
    depth = v.check_float(
        "depth_coefficient", depth_coefficient, minimum=1e-3, maximum=16.0, include_max=True
    )
    drop_path = v.check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="efficientnet_v2"
    )
    stem_maps, rows = STAGES[table]
    inputs = blocks.image_input(args)
    x = _conv_bn(inputs, _round(stem_maps * width), 3, 2, "stem")
    stages, x = _body(x, rows, width, depth, drop_path)
    x = _conv_bn(x, _round(1280 * width), 1, 1, "top")
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(size: str):
    table, width, depth, resolution = SIZES[size]
    name = f"efficientnet_v2_{size}"
    doc = (
        f"EfficientNetV2-{size.upper()} (Tan & Le 2021): stage table {table!r}, width x{width}, "
        f"depth x{depth}, {resolution}x{resolution} input. See ``efficientnet_v2``."
    )
    fn = make_variant(
        efficientnet_v2,
        name,
        doc,
        defaults={
            "input_shape": (resolution, resolution, 3),
            "name": name,
            "width_coefficient": width,
            "depth_coefficient": depth,
        },
        stage_table=table,
    )
    normalisation = "its input normalisation" if table == "b" else "its input scaling"
    return register_model(
        fn,
        paper="Tan & Le, EfficientNetV2: Smaller models and faster training",
        year=2021,
        url="https://arxiv.org/abs/2104.00298",
        reference=f"keras.applications EfficientNetV2{size.upper()}, less {normalisation}",
        min_input_size=32,
        tiny_config={"width_coefficient": 0.25, "depth_coefficient": 0.1},
    )


efficientnet_v2_b0 = _variant("b0")
efficientnet_v2_b1 = _variant("b1")
efficientnet_v2_b2 = _variant("b2")
efficientnet_v2_b3 = _variant("b3")
efficientnet_v2_s = _variant("s")
efficientnet_v2_m = _variant("m")
efficientnet_v2_l = _variant("l")
