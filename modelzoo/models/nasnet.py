"""NASNet-A (Zoph, Vasudevan, Shlens & Le 2018).

"Learning transferable architectures for scalable image recognition", CVPR 2018, arXiv 1707.07012.
A controller searched on CIFAR-10 for two cells, a normal cell (same map size) and a reduction
cell (half the size); ImageNet models stack them (Figure 2): a strided 3x3 stem convolution, two
reduction cells, then ``N`` normal cells, a reduction, ``N`` normal cells, a reduction and ``N``
normal cells. Every cell reads the two previous cells' outputs; where those differ in size or
width, the older one is adjusted first (a factorized reduction: two 1x1 convolutions on
stride-2 samples offset by one pixel, concatenated; or a 1x1 projection). Each branch's separable
convolution is applied twice (ReLU, separable, batch norm), as in the released models. A model is
named ``N @ P`` by its repeats and the penultimate layer's width ``P`` (24 x the first cells'
filters): NASNet-A Mobile is 4 @ 1056 at 224x224, Large 6 @ 4032 at 331x331 (Table 2).

Layer names follow keras.applications' ``NASNetMobile``/``NASNetLarge`` for every layer with
weights (``normal_left1_5``'s ``separable_conv_1_normal_left1_5``, ``adjust_conv_1_stem_2``,
``reduction_bn_1_reduce_4``), so its ImageNet weights load by name; the weightless layers it leaves
unnamed (activations, the adjustment's shift, a reduction cell's fourth sum) have names here.
Large keeps the pre-reduction map as the next cell's second input (``skip_reduction``), as
keras.applications does. What differs: the keywords ``penultimate_filters``, ``cell_repeats`` and
``stem_filters`` make any ``N @ P`` (for small tests and tuning); ``dropout_rate`` adds the paper's
dropout before the classifier (0 by default, as keras.applications).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
_BN = dict(momentum=0.9997, epsilon=1e-3)


def _relu(x, name: str):
    return layers.Activation("relu", name=name)(x)


def _bn(x, name: str):
    return layers.BatchNormalization(**_BN, name=name)(x)


def separable(x, filters: int, kernel: int, strides: int, block: str):
    """A branch's operation: (ReLU, separable convolution, batch norm) twice, the first strided
    (padded as TensorFlow's "same" would, explicitly, as the released weights were trained)."""
    x = _relu(x, f"separable_conv_1_relu_{block}")
    padding = "same"
    if strides == 2:
        x = blocks.pad_for_stride(x, kernel, f"separable_conv_1_pad_{block}")
        padding = "valid"
    x = layers.SeparableConv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"separable_conv_1_{block}"
    )(x)
    x = _bn(x, f"separable_conv_1_bn_{block}")
    x = _relu(x, f"separable_conv_2_relu_{block}")
    x = layers.SeparableConv2D(
        filters, kernel, padding="same", use_bias=False, name=f"separable_conv_2_{block}"
    )(x)
    return _bn(x, f"separable_conv_2_bn_{block}")


def _conv_1x1(x, filters: int, name: str):
    return layers.Conv2D(
        filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal", name=name
    )(x)


def _factorized_reduction(p, filters: int, cell: str):
    """Half the size, ``filters`` maps: 1x1 convolutions on two stride-2 samplings of ``p``, the
    second shifted one pixel down and right, concatenated."""
    p = _relu(p, f"adjust_relu_1_{cell}")
    p1 = layers.AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_1_{cell}")(p)
    p1 = _conv_1x1(p1, filters // 2, f"adjust_conv_1_{cell}")
    p2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"adjust_shift_pad_{cell}")(p)
    p2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"adjust_shift_crop_{cell}")(p2)
    p2 = layers.AveragePooling2D(1, strides=2, name=f"adjust_avg_pool_2_{cell}")(p2)
    p2 = _conv_1x1(p2, filters // 2, f"adjust_conv_2_{cell}")
    p = layers.Concatenate(name=f"adjust_concat_{cell}")([p1, p2])
    return _bn(p, f"adjust_bn_{cell}")


def adjust(p, x, filters: int, cell: str):
    """The older input ``p`` fitted to the newer ``x``: ``x`` itself for the first cell, reduced
    where it is larger, projected where its width differs from ``filters``."""
    if p is None:
        return x
    if p.shape[2] != x.shape[2]:
        return _factorized_reduction(p, filters, cell)
    if p.shape[-1] != filters:
        p = _relu(p, f"adjust_projection_relu_{cell}")
        p = _conv_1x1(p, filters, f"adjust_conv_projection_{cell}")
        return _bn(p, f"adjust_bn_{cell}")
    return p


def _squeeze(x, filters: int, kind: str, cell: str):
    """ReLU, 1x1 convolution to the cell's width, batch norm: the newer input ``h``."""
    h = _relu(x, f"{kind}_relu_1_{cell}")
    h = _conv_1x1(h, filters, f"{kind}_conv_1_{cell}")
    return _bn(h, f"{kind}_bn_1_{cell}")


def _pool(x, kind: str, strides: int, name: str):
    pool = layers.AveragePooling2D if kind == "avg" else layers.MaxPooling2D
    return pool(3, strides=strides, padding="same" if strides == 1 else "valid", name=name)(x)


def normal_cell(x, p, filters: int, cell: str):
    """Figure 4 (left): five pairwise sums over the two inputs, concatenated with the older one."""
    p = adjust(p, x, filters, cell)
    h = _squeeze(x, filters, "normal", cell)

    def add(a, b, i):
        return layers.Add(name=f"normal_add_{i}_{cell}")([a, b])

    b1 = add(
        separable(h, filters, 5, 1, f"normal_left1_{cell}"),
        separable(p, filters, 3, 1, f"normal_right1_{cell}"),
        1,
    )
    b2 = add(
        separable(p, filters, 5, 1, f"normal_left2_{cell}"),
        separable(p, filters, 3, 1, f"normal_right2_{cell}"),
        2,
    )
    b3 = add(_pool(h, "avg", 1, f"normal_left3_{cell}"), p, 3)
    b4 = add(_pool(p, "avg", 1, f"normal_left4_{cell}"), _pool(p, "avg", 1, f"normal_right4_{cell}"), 4)
    b5 = add(separable(h, filters, 3, 1, f"normal_left5_{cell}"), h, 5)
    return layers.Concatenate(name=f"normal_concat_{cell}")([p, b1, b2, b3, b4, b5]), x


def reduction_cell(x, p, filters: int, cell: str):
    """Figure 4 (right): stride-2 branches; the fourth and fifth sums read the first."""
    p = adjust(p, x, filters, cell)
    h = _squeeze(x, filters, "reduction", cell)
    h3 = blocks.pad_for_stride(h, 3, f"reduction_pad_1_{cell}")

    def sep(t, kernel, strides, branch):
        return separable(t, filters, kernel, strides, f"reduction_{branch}_{cell}")

    def add(a, b, name):
        return layers.Add(name=f"reduction_{name}_{cell}")([a, b])

    b1 = add(sep(h, 5, 2, "left1"), sep(p, 7, 2, "right1"), "add_1")
    b2 = add(_pool(h3, "max", 2, f"reduction_left2_{cell}"), sep(p, 7, 2, "right2"), "add_2")
    b3 = add(_pool(h3, "avg", 2, f"reduction_left3_{cell}"), sep(p, 5, 2, "right3"), "add3")
    b4 = add(b2, _pool(b1, "avg", 1, f"reduction_left4_{cell}"), "add_4")
    b5 = add(sep(b1, 3, 1, "left4"), _pool(h3, "max", 2, f"reduction_right5_{cell}"), "add4")
    return layers.Concatenate(name=f"reduction_concat_{cell}")([b2, b3, b4, b5]), x


def _check(penultimate_filters, cell_repeats, stem_filters, filter_multiplier):
    penultimate = v.check_int("penultimate_filters", penultimate_filters, minimum=24)
    multiplier = v.check_int("filter_multiplier", filter_multiplier, minimum=1)
    if penultimate % (24 * multiplier**2):
        raise v.UserError(
            f"penultimate_filters={penultimate} must be a multiple of 24 x filter_multiplier^2 = "
            f"{24 * multiplier**2} (the last cells' six branches of penultimate / 24 x multiplier^2 maps)."
        )
    repeats = v.check_int("cell_repeats", cell_repeats, minimum=1, maximum=v.MAX_DEPTH)
    return penultimate // 24, repeats, v.check_int("stem_filters", stem_filters, minimum=1), multiplier


def nasnet(
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
    penultimate_filters=1056,
    cell_repeats=4,
    stem_filters=32,
    filter_multiplier=2,
    skip_reduction=False,
):
    """NASNet-A ``cell_repeats @ penultimate_filters`` (Mobile, 4 @ 1056, at the defaults).

    Stages: the stem convolution (stride 2), the first reduction cell (4), and the last cell at
    each size: 8, 16 and 32 (after the final ReLU).
    """
    filters, repeats, stem, mult = _check(penultimate_filters, cell_repeats, stem_filters, filter_multiplier)
    skip_reduction = v.check_bool("skip_reduction", skip_reduction)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name="nasnet"
    )
    inputs = blocks.image_input(args)
    x = layers.Conv2D(stem, 3, strides=2, use_bias=False, kernel_initializer="he_normal", name="stem_conv1")(
        inputs
    )
    x = _bn(x, "stem_bn1")
    stages = [Stage(x, 2)]
    x, p = reduction_cell(x, None, filters // mult**2, "stem_1")
    stages.append(Stage(x, 4))
    x, p = reduction_cell(x, p, filters // mult, "stem_2")
    for group in range(3):
        width = filters * mult**group
        if group:
            x, before = reduction_cell(x, p, width, f"reduce_{group * repeats}")
            p = p if skip_reduction else before
        first = group * repeats + (1 if group else 0)  # keras.applications' numbering
        for i in range(repeats):
            x, p = normal_cell(x, p, width, str(first + i))
        if group < 2:
            stages.append(Stage(x, 8 * 2**group))
    x = _relu(x, "final_relu")
    stages.append(Stage(x, 32))
    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


_PAPER = dict(
    paper="Zoph, Vasudevan, Shlens & Le, Learning transferable architectures for scalable image recognition",
    year=2018,
    url="https://arxiv.org/abs/1707.07012",
    min_input_size=32,
    tiny_config={"penultimate_filters": 96, "cell_repeats": 1, "stem_filters": 8},
)
nasnet_mobile = register_model(
    make_variant(
        nasnet,
        "nasnet_mobile",
        "NASNet-A Mobile, 4 @ 1056 at 224x224 (Zoph et al. 2018, Table 2). See ``nasnet``.",
        defaults={"name": "nasnet_mobile"},
    ),
    reference="keras.applications NASNetMobile",
    **_PAPER,
)
nasnet_large = register_model(
    make_variant(
        nasnet,
        "nasnet_large",
        "NASNet-A Large, 6 @ 4032 at 331x331 (Zoph et al. 2018, Table 2). See ``nasnet``.",
        defaults={
            "name": "nasnet_large",
            "input_shape": (331, 331, 3),
            "penultimate_filters": 4032,
            "cell_repeats": 6,
            "stem_filters": 96,
            "skip_reduction": True,
        },
    ),
    reference="keras.applications NASNetLarge",
    **_PAPER,
)
