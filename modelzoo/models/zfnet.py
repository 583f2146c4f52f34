"""ZFNet (Zeiler & Fergus 2013).

"Visualizing and understanding convolutional networks", ECCV 2014 (arXiv 1311.2901). AlexNet
revised after its deconvnet visualisations: a 7x7/2 first convolution (AlexNet: 11x11/4) and a
5x5/2 second one, which keep more mid-frequency information; maps as in the paper's Figure 3:
224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6, then 4096-4096-classes.
Contrast normalisation across maps after the first two pools is AlexNet's LRN.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, register_model

LAYOUT, LAYOUT_NOTE = blocks.FC678_LAYOUT, blocks.FC678_LAYOUT_NOTE  # keras.distribution (model parallel)
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, None)  # on [0, 1] RGB images: as AlexNet


@register_model(
    paper="Zeiler & Fergus, Visualizing and understanding convolutional networks",
    year=2013,
    url="https://arxiv.org/abs/1311.2901",
    reference="paper Figure 3 arithmetic: 62,357,608",
    min_input_size=53,
    tiny_config={"fc_units": 64},
)
def zfnet(
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
    batch_norm=False,
    fc_units=4096,
):
    """ZFNet. Stages: conv1 (stride 2), conv2 (8), conv5 (16); ``include_top=False`` ends after pool5 (32).

    ``batch_norm=True`` puts batch normalisation after every convolution and drops the normalisation layers.
    """
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=53, default_name="zfnet"
    )
    batch_norm = v.check_bool("batch_norm", batch_norm)
    fc_units = v.check_int("fc_units", fc_units, minimum=1)

    def conv(x, filters, kernel, name, strides=1, padding="same"):
        return blocks.conv_bn_act(
            x, filters, kernel, strides=strides, padding=padding, name=name, batch_norm=batch_norm
        )

    def norm(x, name):
        return x if batch_norm else blocks.LocalResponseNormalization(name=name)(x)

    inputs = blocks.image_input(args)
    x = layers.ZeroPadding2D(1, name="conv1_pad")(inputs)
    c1 = conv(x, 96, 7, "conv1", strides=2, padding="valid")  # 224 -> 110
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(c1)  # -> 55
    x = norm(x, "pool1_norm")
    c2 = conv(x, 256, 5, "conv2", strides=2, padding="valid")  # -> 26
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2")(c2)  # -> 13
    x = norm(x, "pool2_norm")
    x = conv(x, 384, 3, "conv3")
    x = conv(x, 384, 3, "conv4")
    c5 = conv(x, 256, 3, "conv5")
    x = layers.MaxPooling2D(3, 2, name="pool5")(c5)  # -> 6

    return blocks.assemble(
        args, inputs, [Stage(c1, 2), Stage(c2, 8), Stage(c5, 16)], x, blocks.fc678_head(args, fc_units)
    )
