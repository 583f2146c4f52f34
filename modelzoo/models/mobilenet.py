"""MobileNet, the first (Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto & Adam 2017).

"MobileNets: Efficient convolutional neural networks for mobile vision applications", arXiv
1704.04861. Table 1: a 3x3/2 convolution of 32 maps, then thirteen depthwise separable
convolutions (a 3x3 depthwise convolution, then a 1x1 pointwise one, each followed by batch norm
and ReLU6), five of them strided, global average pooling and the classifier. The width multiplier
alpha (section 4.2) thins every layer to ``int(alpha * maps)``; the resolution multiplier is the
input size.

Layer names follow keras.applications' ``MobileNet`` (``conv_dw_3``, ``conv_pw_3_bn``...), and a
strided depthwise convolution pads one row and column at the bottom and right as it does, so its
ImageNet weights load by name. What differs: its classifier is a 1x1 convolution (``conv_preds``)
on the pooled map, here a Dense layer ``fc`` with the same weights, and its dropout of 0.001 is
``dropout_rate`` here (0 by default).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)

# Table 1: (pointwise maps, stride) of the thirteen depthwise separable convolutions
SEPARABLE = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
)
_BN = dict(epsilon=1e-3, momentum=0.99)


def depthwise_separable(x, filters: int, strides: int, depth_multiplier: int, block: int):
    """3x3 depthwise, batch norm, ReLU6; 1x1 pointwise to ``filters``, batch norm, ReLU6."""
    if strides == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"conv_dw_{block}",
    )(x)
    x = layers.BatchNormalization(**_BN, name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"conv_pw_{block}")(x)
    x = layers.BatchNormalization(**_BN, name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


_PAPER = dict(
    paper=(
        "Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto & Adam, MobileNets: Efficient "
        "convolutional neural networks for mobile vision applications"
    ),
    year=2017,
    url="https://arxiv.org/abs/1704.04861",
    min_input_size=32,
)


def mobilenet(
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
    depth_multiplier=1,
):
    """MobileNet (v1) at any width multiplier (keras.applications' ``alpha``); ``depth_multiplier``
    gives each depthwise convolution that many maps per input map (keras.applications' too).

    Stages: the last block at each stride: 2 (64 maps at 1.0), 4 (128), 8 (256), 16 (512), 32 (1024).
    """
    alpha = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    depth_multiplier = v.check_int("depth_multiplier", depth_multiplier, minimum=1)
    args = blocks.image_args(
        locals(),
        default_input_shape=(224, 224, 3),
        min_input_size=32,
        default_name=f"mobilenet_{round(alpha * 100):03d}" if alpha != 1.0 else "mobilenet",
    )
    inputs = blocks.image_input(args)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(**_BN, name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    stages, reduction = [], 2
    for block, (maps, strides) in enumerate(SEPARABLE, start=1):
        if strides == 2:
            stages.append(Stage(x, reduction))
            reduction *= 2
        x = depthwise_separable(x, int(maps * alpha), strides, depth_multiplier, block)
    stages.append(Stage(x, reduction))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(alpha: float):
    name = f"mobilenet_{round(alpha * 100):03d}"
    doc = f"MobileNet (v1) with width multiplier {alpha} (Howard et al. 2017, Table 6). See ``mobilenet``."
    fn = make_variant(mobilenet, name, doc, width_multiplier=alpha)
    return register_model(
        fn, reference=f"keras.applications MobileNet(alpha={alpha})", tiny_config={}, **_PAPER
    )


# keras.applications publishes ImageNet weights at these four widths (MobileNet(alpha=...)).
mobilenet_025 = _variant(0.25)
mobilenet_050 = _variant(0.5)
mobilenet_075 = _variant(0.75)
register_model(
    mobilenet, reference="keras.applications MobileNet", tiny_config={"width_multiplier": 0.25}, **_PAPER
)
