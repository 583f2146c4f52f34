"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen 2018).

"MobileNetV2: Inverted residuals and linear bottlenecks", CVPR 2018 (arXiv 1801.04381). Table 2:
a 3x3/2 convolution of 32 maps, then seventeen inverted residual blocks (1x1 expansion by t,
3x3 depthwise, 1x1 linear projection with no activation; a residual connection where stride is 1
and the width is kept), a 1x1 convolution to 1280 maps, global average pooling and the classifier.
ReLU6 throughout; batch norm after every convolution. The width multiplier scales every layer's
maps, rounded to a multiple of 8 (the paper's Table 6 at 0.35-1.4); the last convolution keeps its
1280 maps below 1.0, as in the paper and keras.applications.

Layer names follow keras.applications' ``MobileNetV2`` (``block_3_expand``, ``Conv_1_bn``...), so its
ImageNet weights load by name; strided depthwise convolutions pad as it does (one more row and
column at the bottom and right for an even input). The classifier is ``fc`` here (keras.applications:
``predictions``) and has no dropout unless ``dropout_rate`` asks for it (timm uses 0.2).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)

# Table 2: expansion t, output maps c, repeats n, first stride s
SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_BN = dict(epsilon=1e-3, momentum=0.999)


def _bn(x, name):
    return layers.BatchNormalization(**_BN, name=name)(x)


def _conv(x, filters, name):
    return layers.Conv2D(filters, 1, padding="same", use_bias=False, name=name)(x)


def inverted_residual(x, expansion: int, filters: int, strides: int, prefix: str):
    """1x1 expand (skipped at t=1), 3x3 depthwise, 1x1 linear projection; identity added when the
    shape is kept."""
    inputs = x
    if expansion != 1:
        x = _conv(x, expansion * int(x.shape[-1]), f"{prefix}expand")
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(_bn(x, f"{prefix}expand_BN"))
    if strides == 2:
        x = blocks.pad_for_stride(x, 3, f"{prefix}pad")
    x = layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(_bn(x, f"{prefix}depthwise_BN"))
    x = _bn(_conv(x, filters, f"{prefix}project"), f"{prefix}project_BN")
    if strides == 1 and int(inputs.shape[-1]) == filters:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


_PAPER = dict(
    paper="Sandler, Howard, Zhu, Zhmoginov & Chen, MobileNetV2: Inverted residuals and linear bottlenecks",
    year=2018,
    url="https://arxiv.org/abs/1801.04381",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.25},
)


def mobilenet_v2(
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    width_multiplier=1.0,
):
    """MobileNetV2 at any width multiplier (keras.applications' ``alpha``).

    Stages: the last block at each stride, as timm: 2 (16 maps at 1.0), 4 (24), 8 (32), 16 (96),
    32 (320); the backbone's output (``include_top=False``) is the final 1x1 convolution's 1280.
    """
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    args = blocks.image_args(
        locals(),
        default_input_shape=(224, 224, 3),
        min_input_size=32,
        default_name=f"mobilenet_v2_{round(mult * 100):03d}" if mult != 1.0 else "mobilenet_v2",
    )
    inputs = blocks.image_input(args)
    x = layers.Conv2D(
        blocks.make_divisible(32 * mult), 3, strides=2, padding="same", use_bias=False, name="Conv1"
    )(inputs)
    x = layers.ReLU(6.0, name="Conv1_relu")(_bn(x, "bn_Conv1"))
    stages, reduction, block = [], 2, 0
    for expansion, channels, repeats, first_stride in SETTINGS:
        if first_stride == 2:
            stages.append(Stage(x, reduction))
            reduction *= 2
        for i in range(repeats):
            prefix = f"block_{block}_" if block else "expanded_conv_"
            strides = first_stride if i == 0 else 1
            x = inverted_residual(x, expansion, blocks.make_divisible(channels * mult), strides, prefix)
            block += 1
    stages.append(Stage(x, reduction))
    last = blocks.make_divisible(1280 * mult) if mult > 1.0 else 1280
    x = _bn(_conv(x, last, "Conv_1"), "Conv_1_bn")
    x = layers.ReLU(6.0, name="out_relu")(x)
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(mult: float, count: str):
    name = f"mobilenet_v2_{round(mult * 100):03d}"
    doc = f"MobileNetV2 with width multiplier {mult} (Sandler et al. 2018, Table 6). See ``mobilenet_v2``."
    # the width is the variant, so it is tested at its own (0.35, the narrowest, has 1.7 M weights)
    paper = {**_PAPER, "tiny_config": {}}
    fn = make_variant(mobilenet_v2, name, doc, width_multiplier=mult)
    return register_model(fn, reference=count, **paper)


# keras.applications publishes ImageNet weights at these six widths (MobileNetV2(alpha=...)).
mobilenet_v2_035 = _variant(0.35, "keras.applications MobileNetV2(alpha=0.35)")
mobilenet_v2_050 = _variant(0.5, "keras.applications MobileNetV2(alpha=0.5)")
mobilenet_v2_075 = _variant(0.75, "keras.applications MobileNetV2(alpha=0.75)")
register_model(
    mobilenet_v2, reference="keras.applications MobileNetV2: 3,504,872 trainable, 3,538,984 total", **_PAPER
)
mobilenet_v2_130 = _variant(1.3, "keras.applications MobileNetV2(alpha=1.3)")
mobilenet_v2_140 = _variant(1.4, "keras.applications MobileNetV2(alpha=1.4)")
