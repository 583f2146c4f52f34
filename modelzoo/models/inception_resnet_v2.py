"""Inception-ResNet v2 (Szegedy, Ioffe, Vanhoucke & Alemi 2017).

"Inception-v4, Inception-ResNet and the impact of residual connections on learning", AAAI 2017,
arXiv 1602.07261. Inception modules whose concatenated branches are projected by a linear 1x1
convolution back to the block's width and added to its input, scaled down first (section 3.3:
0.17, 0.1 and 0.2 on the 35x35, 17x17 and 8x8 grids) so that the wide residual stacks train: 10
Inception-ResNet-A blocks (Figure 16), a reduction (Figure 7), 20 B blocks (Figure 17), a second
reduction (Figure 18), 10 C blocks (Figure 19), a 1x1 convolution to 1536 maps, global average
pooling and the classifier.

This is the network as released with the authors' TF-slim checkpoint, which keras.applications'
``InceptionResNetV2`` and timm follow, not Figure 3's stem: the stem is Inception v3's (Table 1
of Szegedy et al. 2016) followed by a 320-map mixed block, so the grids are 320, 1088 and 2080
maps wide. Branches are built in keras.applications' order with its batch norms without scale,
so its ImageNet weights convert layer by layer in build order (most of its layers are unnamed).
The last C block has no ReLU and scale 1, as there. What differs: ``width_multiplier`` scales
every convolution's maps and ``block_repeats`` the three stacks' depths (1.0 and (10, 20, 10)
are the paper's), for small tests and tuning; dropout before the classifier is ``dropout_rate``
(0 by default, as keras.applications; the paper keeps 0.8 of activations).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.models.inception_v3 import Convs, module_35, stem
from modelzoo.registry import register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)

# block type -> residual scale, branches as (maps, kernel) chains from the block's input
_BLOCKS = {
    "block35": (0.17, (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3)))),
    "block17": (0.1, (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1))))),
    "block8": (0.2, (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1))))),
}


def residual_block(x, conv, kind: str, index: int, last: bool = False):
    """An Inception-ResNet block: its branches concatenated, a linear 1x1 convolution (with bias,
    no batch norm) to the input's width, scaled and added to the input, then ReLU (none after the
    network's last block, whose scale is 1)."""
    scale, chains = _BLOCKS[kind]
    name = f"{kind}_{index}"
    branches = []
    for b, chain in enumerate(chains):
        y = x
        for step, (maps, kernel) in enumerate(chain):
            y = conv(y, maps, kernel, f"{name}_b{b}_{step}")
        branches.append(y)
    mixed = layers.Concatenate(name=f"{name}_mixed")(branches)
    up = layers.Conv2D(x.shape[-1], 1, name=f"{name}_conv")(mixed)
    up = layers.Rescaling(1.0 if last else scale, name=f"{name}_scale")(up)
    x = layers.Add(name=name)([x, up])
    return x if last else layers.Activation("relu", name=f"{name}_ac")(x)


def reduction_a(x, conv, name: str = "mixed_6a"):
    """Figure 7 with (k, l, m, n) = (256, 256, 384, 384): 35x35 to 17x17."""
    b0 = conv(x, 384, 3, f"{name}_b0", strides=2, padding="valid")
    b1 = conv(conv(x, 256, 1, f"{name}_b1_0"), 256, 3, f"{name}_b1_1")
    b1 = conv(b1, 384, 3, f"{name}_b1_2", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([b0, b1, bp])


def reduction_b(x, conv, name: str = "mixed_7a"):
    """Figure 18: 17x17 to 8x8, three strided convolution branches and max pooling."""
    b0 = conv(conv(x, 256, 1, f"{name}_b0_0"), 384, 3, f"{name}_b0_1", strides=2, padding="valid")
    b1 = conv(conv(x, 256, 1, f"{name}_b1_0"), 288, 3, f"{name}_b1_1", strides=2, padding="valid")
    b2 = conv(conv(x, 256, 1, f"{name}_b2_0"), 288, 3, f"{name}_b2_1")
    b2 = conv(b2, 320, 3, f"{name}_b2_2", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return layers.Concatenate(name=name)([b0, b1, b2, bp])


def _grids(x, conv, repeats: tuple[int, int, int]):
    """mixed_5b, the three residual stacks and the reductions; each grid's last output."""
    x = module_35(x, conv, 64, "mixed_5b", one_maps=96)
    for i in range(1, repeats[0] + 1):
        x = residual_block(x, conv, "block35", i)
    g35 = x
    x = reduction_a(x, conv)
    for i in range(1, repeats[1] + 1):
        x = residual_block(x, conv, "block17", i)
    g17 = x
    x = reduction_b(x, conv)
    for i in range(1, repeats[2] + 1):
        x = residual_block(x, conv, "block8", i, last=i == repeats[2])
    return g35, g17, conv(x, 1536, 1, "conv_7b")


def inception_resnet_v2(
    num_classes=1000,
    input_shape=(299, 299, 3),
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    width_multiplier=1.0,
    block_repeats=(10, 20, 10),
):
    """Inception-ResNet v2 (Szegedy et al. 2017) at 299x299 by default, 75x75 at least.

    Stages, as timm's: conv3 (64 maps at stride 2), conv5 (192 at 4), the last block35 (320 at
    8), the last block17 (1088 at 16), conv_7b (1536 at 32).
    """
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    repeats = v.check_int_tuple("block_repeats", block_repeats, maximum=v.MAX_DEPTH, length=3)
    args = blocks.image_args(
        locals(), default_input_shape=(299, 299, 3), min_input_size=75, default_name="inception_resnet_v2"
    )
    conv = Convs(mult)
    inputs = blocks.image_input(args)
    x, stages = stem(inputs, conv)
    g35, g17, x = _grids(x, conv, repeats)
    stages += [Stage(g35, 8), Stage(g17, 16), Stage(x, 32)]
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


register_model(
    inception_resnet_v2,
    paper=(
        "Szegedy, Ioffe, Vanhoucke & Alemi, Inception-v4, Inception-ResNet and the impact of "
        "residual connections on learning"
    ),
    year=2017,
    url="https://arxiv.org/abs/1602.07261",
    reference="keras.applications InceptionResNetV2",
    min_input_size=75,
    tiny_config={"width_multiplier": 0.0625, "block_repeats": (1, 1, 2)},
)
