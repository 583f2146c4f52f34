"""RegNetX and RegNetY (Radosavovic, Kosaraju, Girshick, He & Dollar 2020).

"Designing network design spaces", CVPR 2020, arXiv 2003.13678. A RegNet is a ResNeXt-like stack
whose widths follow a quantised linear rule (section 3.3): block j of d gets the width
``u_j = w0 + wa * j``; each is snapped to ``w0 * wm ** round(log(u_j / w0) / log(wm))`` and
rounded to a multiple of 8; blocks of equal width form a stage. Every block is an X block
(Figure 4: a 1x1 convolution, a 3x3 grouped convolution with ``group_width`` channels per group,
strided in a stage's first block, a 1x1 convolution, batch norm after each, ReLU after the first
two and after the residual sum; bottleneck ratio 1), with a projection shortcut where the stage
starts. RegNetY adds squeeze-and-excitation (Hu et al. 2018) after the 3x3 convolution, on a
quarter of the block's input width (section 5). Widths and depths are generated here from the
paper's (w0, wa, wm, depth, group width) of each model (its appendix and the pycls model zoo),
with the group width capped at the block's width and the width rounded to a multiple of it, as
pycls does; nothing is copied as per-stage numbers.

The sizes are tf.keras 2's ``RegNetX002`` ... ``RegNetY320`` (Keras 3's keras.applications has no
RegNet, so there are no ImageNet weights to convert), whose layer names are kept (without its model
prefix): ``Stage_0_XBlock_0_conv_3x3``... What differs: tf.keras puts the input scaling inside the
model; here inputs arrive normalised. ``width_multiplier`` and ``stage_depths`` scale the network
down for tests and tuning (1.0 and the generated depths are the paper's).
"""

from __future__ import annotations

import numpy as np
from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD, make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, IMAGENET_STD)  # on [0, 1] RGB images: timm's and torchvision's recipes

# name: (depth, w0, wa, wm, group width), the paper's parameters (pycls's configs)
REGNETX = {
    "002": (13, 24, 36.44, 2.49, 8),
    "004": (22, 24, 24.48, 2.54, 16),
    "006": (16, 48, 36.97, 2.24, 24),
    "008": (16, 56, 35.73, 2.28, 16),
    "016": (18, 80, 34.01, 2.25, 24),
    "032": (25, 88, 26.31, 2.25, 48),
    "040": (23, 96, 38.65, 2.43, 40),
    "064": (17, 184, 60.83, 2.07, 56),
    "080": (23, 80, 49.56, 2.88, 120),
    "120": (19, 168, 73.36, 2.37, 112),
    "160": (22, 216, 55.59, 2.1, 128),
    "320": (23, 320, 69.86, 2.0, 168),
}
REGNETY = {
    "002": (13, 24, 36.44, 2.49, 8),
    "004": (16, 48, 27.89, 2.09, 8),
    "006": (15, 48, 32.54, 2.32, 16),
    "008": (14, 56, 38.84, 2.4, 16),
    "016": (27, 48, 20.71, 2.65, 24),
    "032": (21, 80, 42.63, 2.66, 24),
    "040": (22, 96, 31.41, 2.24, 64),
    "064": (25, 112, 33.22, 2.27, 72),
    "080": (17, 192, 76.82, 2.19, 56),
    "120": (19, 168, 73.36, 2.37, 112),
    "160": (18, 200, 106.23, 2.48, 112),
    "320": (20, 232, 115.89, 2.53, 232),
}
_BN = dict(epsilon=1e-5, momentum=0.9)


def stages_from_rule(depth: int, w0: float, wa: float, wm: float, group_width: int, q: int = 8):
    """The paper's rule: per-stage (widths, depths, group widths) from (d, w0, wa, wm, g)."""
    continuous = np.arange(depth) * wa + w0
    exponents = np.round(np.log(continuous / w0) / np.log(wm))
    quantised = (np.round(w0 * np.power(wm, exponents) / q) * q).astype(int)
    widths, depths = np.unique(quantised, return_counts=True)
    groups = [min(group_width, int(w)) for w in widths]  # a group no wider than the block
    widths = [max(g, int(round(w / g) * g)) for w, g in zip(widths, groups)]
    return [int(w) for w in widths], [int(d) for d in depths], groups


def _conv_bn(x, maps: int, kernel: int, name: str, strides: int = 1, groups: int = 1, relu: bool = True):
    x = layers.Conv2D(
        maps, kernel, strides=strides, padding="same", groups=groups, use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _squeeze_excite(x, squeezed: int, name: str):
    """Squeeze-and-excitation with ReLU inside and a sigmoid gate, in tf.keras 2's names."""
    parts = {"pool": "gap", "reduce": "squeeze", "expand": "excite", "excite": "multiply"}
    names = {part: f"{name}_squeeze_and_excite_{there}" for part, there in parts.items()}
    return blocks.squeeze_excite(x, squeezed, names)


def block(x, maps: int, group_width: int, strides: int, se: bool, name: str):
    """The X block (Y with ``se``): 1x1, grouped 3x3 (strided), [squeeze-excite], 1x1; the sum
    with the input (projected where the shape changes), then ReLU."""
    maps_in = int(x.shape[-1])
    shortcut = x
    if strides != 1 or maps_in != maps:
        shortcut = _conv_bn(x, maps, 1, f"{name}_skip_1x1", strides=strides, relu=False)
    y = _conv_bn(x, maps, 1, f"{name}_conv_1x1_1")
    y = _conv_bn(y, maps, 3, f"{name}_conv_3x3", strides=strides, groups=maps // group_width)
    if se:
        y = _squeeze_excite(y, max(1, int(maps_in * 0.25)), name)
    y = _conv_bn(y, maps, 1, f"{name}_conv_1x1_2", relu=False)
    return layers.ReLU(name=f"{name}_exit_relu")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _scaled_stages(params, mult: float, stage_depths):
    """The generated stages, widths scaled (to multiples of their group width) and depths replaced."""
    widths, depths, groups = stages_from_rule(*params)
    if mult != 1.0:
        groups = [max(1, blocks.scaled(g, mult)) for g in groups]
        widths = [max(g, round(w * mult / g) * g) for w, g in zip(widths, groups)]
    if stage_depths is not None:
        if len(stage_depths) != len(depths):
            raise v.UserError(
                f"stage_depths must give one depth for each of the model's {len(depths)} stages, got "
                f"{tuple(stage_depths)!r}."
            )
        depths = list(stage_depths)
    return widths, depths, groups


def regnet(
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
    design=REGNETX["002"],
    squeeze_excite=False,
    width_multiplier=1.0,
    stage_depths=None,
):
    """A RegNet from its design parameters ``(depth, w0, wa, wm, group_width)``; X blocks, or Y
    blocks with ``squeeze_excite``. Stages: the stem (32 maps at stride 2) and each generated
    stage's last block (strides 4, 8, 16, 32)."""
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    if stage_depths is not None:
        stage_depths = v.check_int_tuple("stage_depths", stage_depths, maximum=v.MAX_DEPTH)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="regnet"
    )
    widths, depths, groups = _scaled_stages(design, mult, stage_depths)
    kind = "YBlock" if squeeze_excite else "XBlock"
    inputs = blocks.image_input(args)
    x = _conv_bn(inputs, blocks.scaled(32, mult), 3, "stem_conv", strides=2)
    stages = [Stage(x, 2)]
    for s, (maps, depth, group_width) in enumerate(zip(widths, depths, groups)):
        for b in range(depth):
            x = block(x, maps, group_width, 2 if b == 0 else 1, squeeze_excite, f"Stage_{s}_{kind}_{b}")
        stages.append(Stage(x, 2 ** (s + 2)))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _variant(kind: str, size: str):
    params = (REGNETX if kind == "x" else REGNETY)[size]
    name = f"regnet{kind}_{size}"
    flops = f"{int(size) / 10:g}GF" if int(size) >= 10 else f"{int(size) * 100}MF"
    doc = (
        f"RegNet{kind.upper()}-{flops} (Radosavovic et al. 2020): depth {params[0]}, w0 {params[1]}, "
        f"wa {params[2]}, wm {params[3]}, group width {params[4]}. See ``regnet``."
    )
    fn = make_variant(regnet, name, doc, defaults={"name": name}, design=params, squeeze_excite=kind == "y")
    return register_model(
        fn,
        paper="Radosavovic, Kosaraju, Girshick, He & Dollar, Designing network design spaces",
        year=2020,
        url="https://arxiv.org/abs/2003.13678",
        reference=f"tf.keras 2 RegNet{kind.upper()}{size} (tf_keras 2.21), less its input scaling",
        min_input_size=32,
        tiny_config={"width_multiplier": 0.25, "stage_depths": (1, 1, 1, 1)},
    )


for _kind in ("x", "y"):
    for _size in REGNETX:
        globals()[f"regnet{_kind}_{_size}"] = _variant(_kind, _size)
