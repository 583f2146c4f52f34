"""ResNet (He, Zhang, Ren & Sun 2015).

"Deep residual learning for image recognition", CVPR 2016 (arXiv 1512.03385). Table 1: a 7x7/2 stem
and 3x3/2 max pool, then stages conv2_x..conv5_x of basic blocks (ResNet-18/34) or bottleneck
blocks (50/101/152), identity shortcuts with 1x1 projections where the shape changes (option B),
batch norm after every convolution, global average pooling and a 1000-way dense layer.
As in the paper (and keras.applications), a bottleneck downsamples in its first 1x1 convolution;
``stride_in_1x1=False`` moves the stride to the 3x3 ("ResNet v1.5", torchvision and timm).
Convolutions before batch norm have no bias (torchvision and timm; keras.applications keeps one).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only

# Table 1: blocks per stage, and whether the stage uses bottleneck blocks.
DEPTHS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
_BN = dict(bn_epsilon=1.001e-5, bn_momentum=0.9)


def _conv(x, filters, kernel, name, strides=1, activation="relu", zero_gamma=False):
    if strides > 1 and kernel > 1:
        # Symmetric padding as in the paper's implementation; Keras "same" pads one side more.
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return blocks.conv_bn_act(
        x,
        filters,
        kernel,
        strides=strides,
        padding=padding,
        activation=activation,
        name=name,
        gamma_initializer="zeros" if zero_gamma else "ones",
        **_BN,
    )


def basic_block(x, filters: int, strides: int, name: str, zero_init: bool = False, **_):
    """Two 3x3 convolutions (ResNet-18/34)."""
    shortcut = _shortcut(x, filters, strides, name)
    y = _conv(x, filters, 3, f"{name}_1", strides=strides)
    y = _conv(y, filters, 3, f"{name}_2", activation=None, zero_gamma=zero_init)
    return _merge(shortcut, y, name)


def bottleneck_block(
    x, filters: int, strides: int, name: str, zero_init: bool = False, stride_in_1x1: bool = True
):
    """1x1 reduce, 3x3, 1x1 expand (x4) (ResNet-50/101/152)."""
    shortcut = _shortcut(x, 4 * filters, strides, name)
    y = _conv(x, filters, 1, f"{name}_1", strides=strides if stride_in_1x1 else 1)
    y = _conv(y, filters, 3, f"{name}_2", strides=1 if stride_in_1x1 else strides)
    y = _conv(y, 4 * filters, 1, f"{name}_3", activation=None, zero_gamma=zero_init)
    return _merge(shortcut, y, name)


def _shortcut(x, filters, strides, name):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return _conv(x, filters, 1, f"{name}_0", strides=strides, activation=None)


def _merge(shortcut, y, name):
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


_PAPER = dict(
    paper="He, Zhang, Ren & Sun, Deep residual learning for image recognition",
    year=2015,
    url="https://arxiv.org/abs/1512.03385",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.125},
)


def resnet(
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
    stride_in_1x1=True,
    zero_init_residual=False,
):
    """ResNet of any Table 1 depth (18, 34, 50, 101, 152).

    ``width_multiplier`` scales every stage's maps (1.0: the paper's 64-128-256-512 base widths).
    ``zero_init_residual`` starts each block's last batch-norm scale at 0 (Goyal et al. 2017), so
    every residual block begins as the identity. ``dropout_rate`` is applied before the classifier.
    Stages: conv1 (stride 2), conv2_x (4), conv3_x (8), conv4_x (16), conv5_x (32).
    """
    depth = v.check_choice("depth", depth, sorted(DEPTHS))
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"resnet{depth}"
    )
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    stride_in_1x1 = v.check_bool("stride_in_1x1", stride_in_1x1)
    zero_init = v.check_bool("zero_init_residual", zero_init_residual)
    counts, bottleneck = DEPTHS[depth]
    block = bottleneck_block if bottleneck else basic_block

    inputs = blocks.image_input(args)
    stem_width = max(1, round(64 * mult))
    c1 = _conv(inputs, stem_width, 7, "conv1", strides=2)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(c1)
    x = layers.MaxPooling2D(3, 2, name="pool1_pool")(x)
    stages = [Stage(c1, 2)]
    for s, n in enumerate(counts):
        filters = max(1, round(64 * 2**s * mult))
        for b in range(1, n + 1):
            strides = 2 if (b == 1 and s > 0) else 1
            x = block(
                x, filters, strides, f"conv{s + 2}_block{b}", zero_init=zero_init, stride_in_1x1=stride_in_1x1
            )
        stages.append(Stage(x, 2 ** (s + 2)))

    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(depth: int, count: str):
    doc = f"ResNet-{depth} (He et al. 2015, Table 1). See ``resnet``."
    return register_model(make_variant(resnet, f"resnet{depth}", doc, depth=depth), reference=count, **_PAPER)


resnet18 = _variant(18, "torchvision resnet18: 11,689,512 trainable")
resnet34 = _variant(34, "torchvision resnet34: 21,797,672 trainable")
resnet50 = _variant(
    50, "torchvision/timm resnet50: 25,557,032 trainable (keras.applications, biased convs: 25,636,712 total)"
)
resnet101 = _variant(101, "torchvision resnet101: 44,549,160 trainable")
resnet152 = _variant(152, "torchvision resnet152: 60,192,808 trainable")
