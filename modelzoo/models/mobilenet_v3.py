"""MobileNetV3 Small and Large (Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan,
Le & Adam 2019).

"Searching for MobileNetV3", ICCV 2019 (arXiv 1905.02244). Tables 1 (Large) and 2 (Small): a
3x3/2 stem of 16 maps, then MobileNetV2's inverted residual blocks found by architecture search,
some with 5x5 depthwise convolutions and squeeze-and-excitation (a quarter of the expanded maps,
gated by a hard sigmoid), ReLU in the early blocks and hard swish in the later ones; a 1x1
convolution to six times the last block's maps, global average pooling, a 1x1 convolution to
1280 (Large) or 1024 (Small) maps with hard swish and no batch norm, dropout and the classifier.
The "minimalistic" models (the paper's section 6.1.1 for mobile CPUs) drop the 5x5 kernels,
squeeze-and-excitation and hard swish. Widths scale by ``width_multiplier``, rounded to multiples
of 8; the 1280/1024 head only grows above 1.0.

Layer names follow keras.applications' ``MobileNetV3Small``/``Large`` (``expanded_conv_3_expand``,
``expanded_conv_3_squeeze_excite_conv``, ``conv_1``, ``conv_2``...), so its ImageNet weights load by
name. What differs: its input rescaling (x / 127.5 - 1) is a layer there and preprocessing here,
and its two head convolutions on the pooled 1x1 map are Dense layers here (``conv_2`` and the
classifier ``fc``; ``logits`` there) with the same weights.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only

# Tables 1 and 2: kernel, expanded maps, output maps, squeeze-excite, hard swish, stride
LARGE = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
SMALL = (
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
)
SIZES = {"large": (LARGE, 1280), "small": (SMALL, 1024)}
_BN = dict(epsilon=1e-3, momentum=0.999)


def _bn(x, name):
    return layers.BatchNormalization(**_BN, name=name)(x)


def _act(x, hard_swish: bool, name: str):
    return (
        layers.Activation("hard_swish", name=f"{name}hard_swish")(x)
        if hard_swish
        else layers.ReLU(name=f"{name}relu")(x)
    )


def squeeze_excite(x, prefix: str):
    """Squeeze-and-excitation with MobileNetV3's gates: a quarter of the maps (rounded to 8), ReLU,
    then a hard sigmoid, each activation a layer of its own as in keras.applications."""
    parts = {"pool": "avg_pool", "reduce": "conv", "inner_act": "relu", "expand": "conv_1"}
    parts.update({"gate_act": "hard_sigmoid", "excite": "mul"})
    names = {part: f"{prefix}squeeze_excite_{there}" for part, there in parts.items()}
    squeezed = blocks.make_divisible(int(x.shape[-1]) * 0.25)
    return blocks.squeeze_excite(x, squeezed, names, gate="hard_sigmoid")


def bneck(x, ratio: float, filters: int, kernel: int, strides: int, se: bool, hard_swish: bool, block: int):
    """MobileNetV3's block: MobileNetV2's inverted residual, with squeeze-excite after the depthwise
    convolution where the table asks for it. ``ratio`` is the table's expanded over input maps."""
    inputs, maps_in = x, int(x.shape[-1])
    prefix = f"expanded_conv_{block}_" if block else "expanded_conv_"
    if block:  # keras.applications: the first block never expands (its ratio is 1)
        x = layers.Conv2D(blocks.make_divisible(maps_in * ratio), 1, use_bias=False, name=f"{prefix}expand")(
            x
        )
        x = _act(_bn(x, f"{prefix}expand_bn"), hard_swish, f"{prefix}expand_")
    if strides == 2:
        x = blocks.pad_for_stride(x, kernel, f"{prefix}depthwise_pad")
    x = layers.DepthwiseConv2D(
        kernel,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = _act(_bn(x, f"{prefix}depthwise_bn"), hard_swish, f"{prefix}depthwise_")
    if se:
        x = squeeze_excite(x, prefix)
    x = _bn(layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x), f"{prefix}project_bn")
    if strides == 1 and maps_in == filters:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _head(args, maps: int, hard_swish: bool):
    """Pooling, the 1x1 "conv_2" to ``maps`` (a Dense layer on the pooled vector), dropout, logits."""

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = _act(layers.Dense(maps, name="conv_2")(x), hard_swish, "conv_2_")
        if args.dropout_rate > 0:
            x = layers.Dropout(args.dropout_rate, name="head_dropout")(x)
        return layers.Dense(args.num_classes, name="fc")(x)

    return head


_PAPER = dict(
    paper=(
        "Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le & Adam, "
        "Searching for MobileNetV3"
    ),
    year=2019,
    url="https://arxiv.org/abs/1905.02244",
    min_input_size=32,
)


def mobilenet_v3(
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
    size="large",
    width_multiplier=1.0,
    minimalistic=False,
):
    """MobileNetV3 ``size`` "large" or "small", at any width multiplier (keras.applications'
    ``alpha``), optionally minimalistic.

    Stages: the last block at each stride (Large: 16, 24, 40, 112, 160 maps at 1.0; Small: the
    stem's 16, then 16, 24, 48, 96); the backbone's output is the 1x1 convolution to 6x the last
    block's maps (960 and 576).
    """
    size = v.check_choice("size", size, tuple(SIZES))
    alpha = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    minimal = v.check_bool("minimalistic", minimalistic)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"mobilenet_v3_{size}"
    )
    table, head_maps = SIZES[size]
    inputs = blocks.image_input(args)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="conv")(inputs)
    x = _act(_bn(x, "conv_bn"), not minimal, "conv_")
    stages, reduction, maps_in = [], 2, 16
    for block, (kernel, expanded, maps, se, hard_swish, strides) in enumerate(table):
        if strides == 2:
            stages.append(Stage(x, reduction))
            reduction *= 2
        kernel, se, hard_swish = (3, False, False) if minimal else (kernel, se, hard_swish)
        x = bneck(
            x, expanded / maps_in, blocks.make_divisible(maps * alpha), kernel, strides, se, hard_swish, block
        )
        maps_in = maps
    stages.append(Stage(x, reduction))
    x = layers.Conv2D(blocks.make_divisible(int(x.shape[-1]) * 6), 1, use_bias=False, name="conv_1")(x)
    x = _act(_bn(x, "conv_1_bn"), not minimal, "conv_1_")
    head_maps = blocks.make_divisible(head_maps * alpha) if alpha > 1.0 else head_maps
    return blocks.assemble(args, inputs, stages, x, _head(args, head_maps, not minimal))


def _variant(name: str, reference: str, **fixed):
    chosen = ", ".join(f"{k}={val!r}" for k, val in fixed.items())
    doc = f"MobileNetV3 ({chosen}; Howard et al. 2019). See ``mobilenet_v3``."
    fn = make_variant(mobilenet_v3, name, doc, defaults={"name": name}, **fixed)
    return register_model(fn, reference=reference, tiny_config={}, **_PAPER)


# keras.applications publishes ImageNet weights for these six.
mobilenet_v3_large = _variant("mobilenet_v3_large", "keras.applications MobileNetV3Large", size="large")
mobilenet_v3_large_075 = _variant(
    "mobilenet_v3_large_075",
    "keras.applications MobileNetV3Large(alpha=0.75)",
    size="large",
    width_multiplier=0.75,
)
mobilenet_v3_large_minimal = _variant(
    "mobilenet_v3_large_minimal",
    "keras.applications MobileNetV3Large(minimalistic=True)",
    size="large",
    minimalistic=True,
)
mobilenet_v3_small = _variant("mobilenet_v3_small", "keras.applications MobileNetV3Small", size="small")
mobilenet_v3_small_075 = _variant(
    "mobilenet_v3_small_075",
    "keras.applications MobileNetV3Small(alpha=0.75)",
    size="small",
    width_multiplier=0.75,
)
mobilenet_v3_small_minimal = _variant(
    "mobilenet_v3_small_minimal",
    "keras.applications MobileNetV3Small(minimalistic=True)",
    size="small",
    minimalistic=True,
)
