"""VGG (Simonyan & Zisserman 2014).

"Very deep convolutional networks for large-scale image recognition", ICLR 2015 (arXiv 1409.1556).
Stacks of 3x3 convolutions (stride 1, same padding) with 2x2/2 max pooling between five blocks,
then 4096-4096-classes with dropout 0.5: configurations A (VGG-11), B (13), D (16) and E (19) of
Table 1. The ``_bn`` variants add batch normalisation after each convolution (Ioffe & Szegedy
2015), keeping the conv bias as torchvision's ``vgg*_bn`` do, so their counts match.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, make_variant, register_model

LAYOUT, LAYOUT_NOTE = blocks.FC678_LAYOUT, blocks.FC678_LAYOUT_NOTE  # keras.distribution (model parallel)
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, None)  # on [0, 1] RGB images: the paper subtracts the mean RGB value

# Table 1: convolutions per block.
CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
_PAPER = dict(
    paper="Simonyan & Zisserman, Very deep convolutional networks for large-scale image recognition",
    year=2014,
    url="https://arxiv.org/abs/1409.1556",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.125, "fc_units": 32},
)


def vgg(
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.5,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    depth=16,
    batch_norm=False,
    width_multiplier=1.0,
    fc_units=4096,
):
    """VGG of any Table 1 depth (11, 13, 16, 19).

    ``width_multiplier`` scales every convolution's maps (1.0: the paper's 64-128-256-512-512);
    ``fc_units`` sets the two hidden dense layers (paper: 4096).
    Stages: the last ReLU of each block before its pool (strides 1, 2, 4, 8, 16);
    ``include_top=False`` ends after pool5 (stride 32), as keras.applications does.
    """
    depth = v.check_choice("depth", depth, sorted(CONFIGS))
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"vgg{depth}"
    )
    batch_norm = v.check_bool("batch_norm", batch_norm)
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    fc_units = v.check_int("fc_units", fc_units, minimum=1)

    inputs = blocks.image_input(args)
    x, stages = inputs, []
    for b, (convs, width) in enumerate(zip(CONFIGS[depth], WIDTHS), start=1):
        filters = blocks.scaled(width, mult)
        for i in range(1, convs + 1):
            cname = f"block{b}_conv{i}"
            x = layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", name=cname)(x)
            if batch_norm:
                x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{cname}_bn")(x)
            x = layers.Activation("relu", name=f"{cname}_relu")(x)
        stages.append(Stage(x, 2 ** (b - 1)))
        x = layers.MaxPooling2D(2, 2, name=f"block{b}_pool")(x)

    return blocks.assemble(args, inputs, stages, x, blocks.fc678_head(args, fc_units))


def _variant(depth: int, bn: bool, count: str):
    label = {11: "A", 13: "B", 16: "D", 19: "E"}[depth]
    name = f"vgg{depth}_bn" if bn else f"vgg{depth}"
    doc = f"VGG-{depth} (configuration {label}){' with batch norm' if bn else ''}. See ``vgg``."
    fn = make_variant(vgg, name, doc, depth=depth, batch_norm=bn)
    return register_model(fn, reference=count, **_PAPER)


vgg11 = _variant(11, False, "torchvision vgg11: 132,863,336")
vgg13 = _variant(13, False, "torchvision vgg13: 133,047,848")
vgg16 = _variant(16, False, "keras.applications VGG16 and torchvision vgg16: 138,357,544")
vgg19 = _variant(19, False, "keras.applications VGG19 and torchvision vgg19: 143,667,240")
vgg11_bn = _variant(11, True, "torchvision vgg11_bn: 132,868,840 trainable")
vgg13_bn = _variant(13, True, "torchvision vgg13_bn: 133,053,736 trainable")
vgg16_bn = _variant(16, True, "torchvision vgg16_bn: 138,365,992 trainable")
vgg19_bn = _variant(19, True, "torchvision vgg19_bn: 143,678,248 trainable")
