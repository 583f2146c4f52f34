"""AlexNet (Krizhevsky, Sutskever & Hinton 2012).

"ImageNet classification with deep convolutional neural networks", NeurIPS 2012. Five convolutions
(96-256-384-384-256 maps, 11x11/4 first), ReLU, local response normalisation after conv1 and conv2,
overlapping 3x3/2 max pooling, and three dense layers with dropout 0.5 in the first two.
The input is 227x227: the paper's 224 does not give its 55x55 conv1 maps with an 11x11/4 filter.
Departure: He-normal initialisation instead of the paper's N(0, 0.01) with unit biases.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, register_model

LAYOUT, LAYOUT_NOTE = blocks.FC678_LAYOUT, blocks.FC678_LAYOUT_NOTE  # keras.distribution (model parallel)
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, None)  # on [0, 1] RGB images: the paper subtracts the training set's mean activity


@register_model(
    paper="Krizhevsky, Sutskever & Hinton, ImageNet classification with deep convolutional neural networks",
    year=2012,
    url="https://papers.nips.cc/paper/4824",
    reference="paper layout: 62,378,344 single tower; 60,965,224 with grouped=True (Caffe's bvlc_alexnet)",
    min_input_size=67,
    tiny_config={"fc_units": 64},
)
def alexnet(
    num_classes=1000,
    input_shape=(227, 227, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.5,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    grouped=False,
    batch_norm=False,
    fc_units=4096,
):
    """AlexNet as one tower.

    ``grouped=True`` restores the paper's two-GPU split: conv2, conv4 and conv5 see only the maps
    of their own half (``groups=2``), which removes 1,413,120 weights.
    ``batch_norm=True`` puts batch normalisation after every convolution and drops LRN.
    Stages: conv1 (stride 4), conv2 (8), conv5 (16); ``include_top=False`` ends after pool5 (32).
    """
    args = blocks.image_args(
        locals(), default_input_shape=(227, 227, 3), min_input_size=67, default_name="alexnet"
    )
    grouped = v.check_bool("grouped", grouped)
    batch_norm = v.check_bool("batch_norm", batch_norm)
    fc_units = v.check_int("fc_units", fc_units, minimum=1)
    groups = 2 if grouped else 1

    def conv(x, filters, kernel, name, strides=1, padding="same", g=1):
        return blocks.conv_bn_act(
            x, filters, kernel, strides=strides, padding=padding, groups=g, name=name, batch_norm=batch_norm
        )

    inputs = blocks.image_input(args)
    c1 = conv(inputs, 96, 11, "conv1", strides=4, padding="valid")
    x = blocks.LocalResponseNormalization(name="conv1_lrn")(c1) if not batch_norm else c1
    x = layers.MaxPooling2D(3, 2, name="pool1")(x)
    c2 = conv(x, 256, 5, "conv2", g=groups)
    x = blocks.LocalResponseNormalization(name="conv2_lrn")(c2) if not batch_norm else c2
    x = layers.MaxPooling2D(3, 2, name="pool2")(x)
    x = conv(x, 384, 3, "conv3")
    x = conv(x, 384, 3, "conv4", g=groups)
    c5 = conv(x, 256, 3, "conv5", g=groups)
    x = layers.MaxPooling2D(3, 2, name="pool5")(c5)

    return blocks.assemble(
        args, inputs, [Stage(c1, 4), Stage(c2, 8), Stage(c5, 16)], x, blocks.fc678_head(args, fc_units)
    )
