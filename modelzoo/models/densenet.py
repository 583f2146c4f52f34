"""DenseNet (Huang, Liu, van der Maaten & Weinberger 2016).

"Densely connected convolutional networks", CVPR 2017 (arXiv 1608.06993). DenseNet-BC of Table 1:
a 7x7/2 stem with 2k maps and 3x3/2 max pool; four dense blocks whose layers are
BN-ReLU-1x1 conv (4k maps)-BN-ReLU-3x3 conv (k maps), each concatenated onto its input; transition
layers BN-ReLU-1x1 conv (compression 0.5)-2x2 average pool; final BN-ReLU, global average pool,
classifier. Growth rate k = 32.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD, make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, IMAGENET_STD)  # on [0, 1] RGB images: keras.applications' 'torch' preprocessing

_BN = dict(epsilon=1.001e-5, momentum=0.9)


def _bn_relu(x, name):
    x = layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def dense_layer(x, growth_rate: int, bn_size: int, name: str):
    """BN-ReLU-Conv1x1(bn_size*k)-BN-ReLU-Conv3x3(k), concatenated onto the input."""
    y = _bn_relu(x, f"{name}_1")
    y = layers.Conv2D(
        bn_size * growth_rate, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_1_conv"
    )(y)
    y = _bn_relu(y, f"{name}_2")
    y = layers.Conv2D(
        growth_rate, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_2_conv"
    )(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x, compression: float, name: str):
    """BN-ReLU-Conv1x1(compression * maps)-AvgPool 2x2/2."""
    x = _bn_relu(x, name)
    filters = max(1, int(x.shape[-1] * compression))
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, 2, name=f"{name}_pool")(x)


_PAPER = dict(
    paper="Huang, Liu, van der Maaten & Weinberger, Densely connected convolutional networks",
    year=2016,
    url="https://arxiv.org/abs/1608.06993",
    min_input_size=32,
    tiny_config={"growth_rate": 4},
)


def densenet(
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
    blocks_per_stage=(6, 12, 24, 16),
    growth_rate=32,
    compression=0.5,
    bn_size=4,
):
    """DenseNet-BC with any block configuration.

    ``growth_rate`` is k (maps each layer adds); the stem has 2k maps; ``bn_size`` x k maps in each
    bottleneck; ``compression`` is the transition's theta. Stages: stem ReLU (stride 2), dense
    blocks 1-3 before their transitions (4, 8, 16), the final BN-ReLU (32).
    """
    counts = v.check_int_tuple("blocks_per_stage", blocks_per_stage, maximum=v.MAX_DEPTH, length=4)
    depth = 2 * sum(counts) + 5  # stem + two convs per dense layer + 3 transitions + classifier
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"densenet{depth}"
    )
    k = v.check_int("growth_rate", growth_rate, minimum=1)
    theta = v.check_float("compression", compression, minimum=1e-3, maximum=1.0, include_max=True)
    bn_size = v.check_int("bn_size", bn_size, minimum=1)

    inputs = blocks.image_input(args)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(2 * k, 7, strides=2, use_bias=False, kernel_initializer="he_normal", name="conv1_conv")(
        x
    )
    c1 = _bn_relu(x, "conv1")
    x = layers.ZeroPadding2D(1, name="pool1_pad")(c1)
    x = layers.MaxPooling2D(3, 2, name="pool1")(x)
    stages = [Stage(c1, 2)]
    for b, n in enumerate(counts, start=1):
        for i in range(1, n + 1):
            x = dense_layer(x, k, bn_size, f"dense{b}_layer{i}")
        if b < len(counts):
            stages.append(Stage(x, 2 ** (b + 1)))
            x = transition(x, theta, f"transition{b}")
    x = _bn_relu(x, "final")
    stages.append(Stage(x, 32))

    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


# The generic builder, registered like ``bert``: DenseNet-121 at the defaults. Its tiny config
# keeps every kind of layer (4 dense blocks, bottlenecks, 3 transitions) at 6 dense layers: the
# family's representative in the other backends' model suites (DenseNet-121's 58 layers were
# their longest compile).
densenet = register_model(
    densenet,
    reference="torchvision densenet121 at the defaults (any block configuration)",
    **{**_PAPER, "tiny_config": {"growth_rate": 4, "blocks_per_stage": (1, 2, 2, 1)}},
)


def _variant(depth: int, config: tuple, count: str):
    doc = f"DenseNet-{depth} (DenseNet-BC, k=32, blocks {config}). See ``densenet``."
    fn = make_variant(densenet, f"densenet{depth}", doc, blocks_per_stage=config)
    return register_model(fn, reference=count, **_PAPER)


densenet121 = _variant(
    121, (6, 12, 24, 16), "torchvision densenet121: 7,978,856 trainable (keras.applications: 8,062,504 total)"
)
densenet169 = _variant(169, (6, 12, 32, 32), "torchvision densenet169: 14,149,480 trainable")
densenet201 = _variant(201, (6, 12, 48, 32), "torchvision densenet201: 20,013,928 trainable")
