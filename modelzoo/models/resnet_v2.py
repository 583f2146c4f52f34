"""ResNet v2, with pre-activation (He, Zhang, Ren & Sun 2016).

"Identity mappings in deep residual networks", ECCV 2016 (arXiv 1603.05027). Each bottleneck
block normalises and activates its input first (batch norm, ReLU), then runs 1x1, 3x3, 1x1
convolutions whose sum with the shortcut passes on unchanged, so the identity path stays clean
from the first block to the last; a final batch norm and ReLU close the network before pooling.

The layout is keras.applications' ``ResNet50V2`` / ``101V2`` / ``152V2`` (from TF-slim's
``resnet_v2``), whose ImageNet weights load by name here: each stage downsamples in its last
block (the paper's first), with the shortcut a 1x1/2 max pool there; the projection shortcut sits
in each stage's first block and reads the pre-activated input; the stem, the projections and each
block's last 1x1 convolution carry biases (no batch norm follows them directly). The classifier is
``fc`` here (``predictions`` there).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_BN = dict(epsilon=1.001e-5, momentum=0.99)


def _bn_relu(x, name):
    x = layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def preact_bottleneck(x, filters: int, strides: int, project: bool, name: str):
    """Batch norm and ReLU on the input, then 1x1, 3x3 (strided), 1x1 to 4x ``filters``; the
    shortcut is a projection of the activated input (``project``), a strided 1x1 max pool, or the
    input itself."""
    preact = _bn_relu(x, f"{name}_preact")
    if project:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(preact)
    elif strides > 1:
        shortcut = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    y = _bn_relu(y, f"{name}_1")
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"{name}_2_conv")(y)
    y = _bn_relu(y, f"{name}_2")
    y = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y)
    return layers.Add(name=f"{name}_out")([shortcut, y])


_PAPER = dict(
    paper="He, Zhang, Ren & Sun, Identity mappings in deep residual networks",
    year=2016,
    url="https://arxiv.org/abs/1603.05027",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.125},
)


def resnet_v2(
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
    depth=50,
    width_multiplier=1.0,
):
    """Pre-activation ResNet of depth 50, 101 or 152, ``width_multiplier`` scaling every stage's
    maps (1.0: 64-128-256-512 bottleneck widths).

    Stages: the last map at each stride: the stem convolution (2), then the block before each
    stage's strided last block (4, 8, 16), and the final batch norm and ReLU (32).
    """
    depth = v.check_choice("depth", depth, sorted(DEPTHS))
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"resnet{depth}_v2"
    )
    inputs = blocks.image_input(args)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(blocks.scaled(64, mult), 7, strides=2, name="conv1_conv")(x)
    stages = [Stage(x, 2)]
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    counts = DEPTHS[depth]
    for s, n in enumerate(counts):
        filters = blocks.scaled(64 * 2**s, mult)
        for b in range(1, n + 1):
            strided = b == n and s < len(counts) - 1
            if strided:
                stages.append(Stage(x, 2 ** (s + 2)))
            x = preact_bottleneck(x, filters, 2 if strided else 1, b == 1, f"conv{s + 2}_block{b}")
    x = _bn_relu(x, "post")
    stages.append(Stage(x, 32))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(depth: int):
    name = f"resnet{depth}_v2"
    doc = f"ResNet-{depth} v2, pre-activation (He et al. 2016). See ``resnet_v2``."
    fn = make_variant(resnet_v2, name, doc, depth=depth)
    return register_model(fn, reference=f"keras.applications ResNet{depth}V2", **_PAPER)


resnet50_v2 = _variant(50)
resnet101_v2 = _variant(101)
resnet152_v2 = _variant(152)
