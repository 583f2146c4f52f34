"""ConvNeXt (Liu, Mao, Wu, Feichtenhofer, Darrell & Xie 2022).

"A ConvNet for the 2020s", CVPR 2022 (arXiv 2201.03545). A ResNet modernised step by step towards
a Swin Transformer (section 2): a 4x4/4 "patchify" stem with layer norm; four stages of (3, 3, 9,
3) blocks (27 in the third stage from Small up) at (96, 192, 384, 768) maps for Tiny; each block a
7x7 depthwise convolution, layer norm, a 1x1 expansion to 4x the maps with GELU, a 1x1 projection
back, layer scale (started at 1e-6) and stochastic depth on the residual branch; between stages a
layer norm and a 2x2/2 convolution; global average pooling, layer norm and the classifier.

Layer names follow keras.applications' ``ConvNeXtTiny``... without its model-name prefix
(``stage_2_block_5_pointwise_conv_1`` here, ``convnext_tiny_stage_2_block_5_pointwise_conv_1``
there), so its ImageNet weights load by name. What differs: its stem and downsampling layers sit
in nested Sequential models there, flat here; its input normalisation (ImageNet's mean and
standard deviation) is a layer there and the recipes' preprocessing here; the 7x7 depthwise
convolution is a ``DepthwiseConv2D`` here and a ``Conv2D`` with one group per map there (the same
weights: TensorFlow's CPU kernels run the former 5x faster, a training step of the tests' tiny
ConvNeXt-T 0.55 s against 2.7 s). The 1x1 convolutions are Dense layers on the channel axis, as in
the authors' code and keras.applications.
"""

from __future__ import annotations

import numpy as np
from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD, make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
# on [0, 1] RGB images: keras.applications normalises inside its model; the zoo's leaves it out
MEAN_STD = (IMAGENET_MEAN, IMAGENET_STD)

# size: (blocks per stage, maps per stage, stochastic depth the paper trains ImageNet-1K with)
SIZES = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 0.1),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768), 0.4),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024), 0.5),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536), 0.5),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048), 0.5),  # ImageNet-22K only in the paper
}
EPSILON = 1e-6


def _norm(x, name):
    return layers.LayerNormalization(epsilon=EPSILON, name=name)(x)


def convnext_block(x, drop: float, layer_scale: float | None, prefix: str):
    """7x7 depthwise conv, layer norm, 1x1 to 4x with GELU, 1x1 back, layer scale, drop path, add."""
    maps = int(x.shape[-1])
    y = layers.DepthwiseConv2D(7, padding="same", name=f"{prefix}_depthwise_conv")(x)
    y = _norm(y, f"{prefix}_layernorm")
    y = layers.Dense(4 * maps, name=f"{prefix}_pointwise_conv_1")(y)
    y = layers.Activation("gelu", name=f"{prefix}_gelu")(y)
    y = layers.Dense(maps, name=f"{prefix}_pointwise_conv_2")(y)
    if layer_scale is not None:
        y = blocks.LayerScale(layer_scale, name=f"{prefix}_layer_scale")(y)
    y = blocks.drop_path(y, drop, f"{prefix}_stochastic_depth")
    return layers.Add(name=f"{prefix}_add")([x, y])


def _head(args):
    """Global average pooling, layer norm, the classifier."""

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = _norm(x, "head_layernorm")
        if args.dropout_rate > 0:
            x = layers.Dropout(args.dropout_rate, name="head_dropout")(x)
        return layers.Dense(args.num_classes, name="fc")(x)

    return head


_PAPER = dict(
    paper="Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, A ConvNet for the 2020s",
    year=2022,
    url="https://arxiv.org/abs/2201.03545",
    min_input_size=32,
)


def convnext(
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
    depths=(3, 3, 9, 3),
    widths=(96, 192, 384, 768),
    drop_path_rate=0.1,
    layer_scale_init_value=1e-6,
):
    """ConvNeXt with any four stage depths and widths (Tiny at the defaults); stochastic depth
    rises linearly from 0 at the first block to ``drop_path_rate`` at the last;
    ``layer_scale_init_value=None`` leaves layer scale out.

    Stages: each stage's output, at strides 4, 8, 16 and 32 (Tiny: 96, 192, 384, 768 maps).
    """
    depths = v.check_int_tuple("depths", depths, length=4)
    widths = v.check_int_tuple("widths", widths, length=4)
    drop_path = v.check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    if layer_scale_init_value is not None:
        layer_scale_init_value = v.check_float(
            "layer_scale_init_value", layer_scale_init_value, minimum=0.0, maximum=1e9
        )
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="convnext"
    )
    inputs = blocks.image_input(args)
    x = layers.Conv2D(widths[0], 4, strides=4, name="stem_conv")(inputs)
    x = _norm(x, "stem_layernorm")
    drops = np.linspace(0.0, drop_path, sum(depths))
    stages, index = [], 0
    for stage, (count, maps) in enumerate(zip(depths, widths)):
        if stage:
            x = _norm(x, f"downsampling_layernorm_{stage - 1}")
            x = layers.Conv2D(maps, 2, strides=2, name=f"downsampling_conv_{stage - 1}")(x)
        for block in range(count):
            x = convnext_block(x, float(drops[index]), layer_scale_init_value, f"stage_{stage}_block_{block}")
            index += 1
        stages.append(Stage(x, 4 * 2**stage))
    return blocks.assemble(args, inputs, stages, x, _head(args))


def _variant(size: str):
    depths, widths, drop = SIZES[size]
    name = f"convnext_{size}"
    doc = f"ConvNeXt-{size.title()} (Liu et al. 2022): {depths} blocks of {widths} maps. See ``convnext``."
    defaults = {"name": name, "widths": widths, "drop_path_rate": drop}
    fn = make_variant(convnext, name, doc, defaults=defaults, depths=depths)
    title = "XLarge" if size == "xlarge" else size.title()
    reference = f"keras.applications ConvNeXt{title}(include_preprocessing=False)"
    # the tests' tiny model keeps the depths (XLarge is 350 M weights at any input size)
    return register_model(fn, reference=reference, tiny_config={"widths": (16, 32, 64, 128)}, **_PAPER)


convnext_tiny = _variant("tiny")
convnext_small = _variant("small")
convnext_base = _variant("base")
convnext_large = _variant("large")
convnext_xlarge = _variant("xlarge")
