"""ResNet (He, Zhang, Ren & Sun 2015).

"Deep residual learning for image recognition", CVPR 2016 (arXiv 1512.03385). Table 1: a 7x7/2 stem
and 3x3/2 max pool, then stages conv2_x..conv5_x of basic blocks (ResNet-18/34) or bottleneck
blocks (50/101/152), identity shortcuts with 1x1 projections where the shape changes (option B),
batch norm after every convolution, global average pooling and a 1000-way dense layer.
As in the paper (and keras.applications), a bottleneck downsamples in its first 1x1 convolution;
``stride_in_1x1=False`` moves the stride to the 3x3 ("ResNet v1.5", torchvision and timm).
Convolutions before batch norm have no bias (torchvision and timm; keras.applications keeps one).

The same builder makes ResNet's descendants, each a keyword of ``resnet`` and registered under
timm's and torchvision's names, with the stride in the 3x3 as their reference code has it:

* ResNeXt (Xie, Girshick, Dollar, Tu & He 2017, "Aggregated residual transformations for deep
  neural networks", arXiv 1611.05431): the bottleneck's 3x3 convolution split into ``groups``
  paths of ``width_per_group`` maps each (``resnext50_32x4d``: 32 paths of 4 at the first stage);
* Wide ResNet (Zagoruyko & Komodakis 2016, "Wide residual networks", arXiv 1605.07146), in
  torchvision's bottleneck form: ``width_per_group=128`` doubles every bottleneck's inner maps
  (``wide_resnet50_2``);
* squeeze-and-excitation (Hu, Shen & Sun 2018, "Squeeze-and-excitation networks", arXiv
  1709.01507): ``se_ratio=1/16`` gates each block's last batch norm output per channel before the
  shortcut is added (``seresnet50``, ``seresnext50_32x4d``).
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.deformable import DeformableConv2D
from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD, make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, blocks.CONV_LAYOUT_NOTE  # keras.distribution: data parallel only
TRAIN_CROP = True  # the paper trains with random crops (and flips where the labels allow)
MEAN_STD = (IMAGENET_MEAN, IMAGENET_STD)  # on [0, 1] RGB images: torchvision's and timm's recipes

# Table 1: blocks per stage, and whether the stage uses bottleneck blocks.
DEPTHS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
_BN = dict(bn_epsilon=1.001e-5, bn_momentum=0.9)


def _conv(x, filters, kernel, name, strides=1, activation="relu", zero_gamma=False, groups=1):
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
        groups=groups,
        **_BN,
    )


def basic_block(x, filters: int, strides: int, name: str, zero_init: bool = False, se_ratio=None, **_):
    """Two 3x3 convolutions (ResNet-18/34)."""
    shortcut = _shortcut(x, filters, strides, name)
    y = _conv(x, filters, 3, f"{name}_1", strides=strides)
    y = _conv(y, filters, 3, f"{name}_2", activation=None, zero_gamma=zero_init)
    return _merge(shortcut, _squeeze_excite(y, se_ratio, name), name)


def bottleneck_block(
    x,
    filters: int,
    strides: int,
    name: str,
    zero_init: bool = False,
    stride_in_1x1: bool = True,
    groups: int = 1,
    width_per_group: int = 64,
    se_ratio=None,
    deformable: bool = False,
    modulated: bool = False,
):
    """1x1 reduce, 3x3 (in ``groups`` paths; deformable with ``deformable``), 1x1 expand to 4x
    ``filters`` (ResNet-50/101/152).
    The inner maps are ``filters * width_per_group / 64 * groups`` (torchvision's rule: ResNet's
    own ``filters`` at the defaults)."""
    inner = int(filters * width_per_group / 64) * groups
    if inner < 1:
        raise v.UserError(
            f"width_per_group={width_per_group} leaves no maps in a {filters}-filter bottleneck "
            f"({filters} x {width_per_group} / 64 < 1): raise width_per_group or width_multiplier."
        )
    shortcut = _shortcut(x, 4 * filters, strides, name)
    y = _conv(x, inner, 1, f"{name}_1", strides=strides if stride_in_1x1 else 1)
    if deformable:
        y = _deformable_conv(y, inner, f"{name}_2", 1 if stride_in_1x1 else strides, modulated)
    else:
        y = _conv(y, inner, 3, f"{name}_2", strides=1 if stride_in_1x1 else strides, groups=groups)
    y = _conv(y, 4 * filters, 1, f"{name}_3", activation=None, zero_gamma=zero_init)
    return _merge(shortcut, _squeeze_excite(y, se_ratio, name), name)


def _deformable_conv(y, maps: int, name: str, strides: int, modulated: bool):
    """The bottleneck's 3x3 as a deformable convolution (Dai et al. 2017; modulated: Zhu et al.
    2019), then batch norm and ReLU."""
    y = DeformableConv2D(maps, 3, strides=strides, modulated=modulated, use_bias=False, name=f"{name}_conv")(
        y
    )
    y = layers.BatchNormalization(epsilon=_BN["bn_epsilon"], momentum=_BN["bn_momentum"], name=f"{name}_bn")(
        y
    )
    return layers.Activation("relu", name=f"{name}_relu")(y)


def _squeeze_excite(y, se_ratio, name):
    """Channel gates from the pooled maps (Hu et al. 2018): a bottleneck of ``se_ratio`` x maps
    (a multiple of 8, as timm) with ReLU, then a sigmoid; nothing when ``se_ratio`` is None."""
    if se_ratio is None:
        return y
    squeezed = max(8, int(int(y.shape[-1]) * se_ratio + 4) // 8 * 8)
    names = {part: f"{name}_se_{part}" for part in ("pool", "reduce", "expand", "excite")}
    return blocks.squeeze_excite(y, squeezed, names)


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
    groups=1,
    width_per_group=64,
    se_ratio=None,
    deformable_stages=(),
    deformable_modulated=False,
):
    """ResNet of any Table 1 depth (18, 34, 50, 101, 152).

    ``width_multiplier`` scales every stage's maps (1.0: the paper's 64-128-256-512 base widths).
    ``zero_init_residual`` starts each block's last batch-norm scale at 0 (Goyal et al. 2017), so
    every residual block begins as the identity. ``dropout_rate`` is applied before the classifier.
    ``groups`` and ``width_per_group`` shape the bottleneck's 3x3 (ResNeXt, Wide ResNet; basic
    blocks take neither, as in torchvision); ``se_ratio`` adds squeeze-and-excitation.
    ``deformable_stages`` (any of 2-5) makes those stages' bottleneck 3x3s deformable (Dai et al.
    2017; ``deformable_modulated``: Zhu et al. 2019's v2).
    Stages: conv1 (stride 2), conv2_x (4), conv3_x (8), conv4_x (16), conv5_x (32).
    """
    depth = v.check_choice("depth", depth, sorted(DEPTHS))
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=32, default_name=f"resnet{depth}"
    )
    mult = v.check_float("width_multiplier", width_multiplier, minimum=1e-3, maximum=16.0, include_max=True)
    counts, bottleneck = DEPTHS[depth]
    block = bottleneck_block if bottleneck else basic_block
    keywords = _block_keywords(bottleneck, locals())

    inputs = blocks.image_input(args)
    c1 = _conv(inputs, blocks.scaled(64, mult), 7, "conv1", strides=2)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(c1)
    x = layers.MaxPooling2D(3, 2, name="pool1_pool")(x)
    x, stages = _residual_stages(x, counts, mult, block, keywords)
    stages.insert(0, Stage(c1, 2))

    return blocks.assemble(args, inputs, stages, x, blocks.gap_head(args))


def _residual_stages(x, counts, mult: float, block, keywords: dict):
    """conv2_x to conv5_x: ``counts`` blocks each, the first of conv3_x-conv5_x strided; the output
    and each stage's ``Stage``."""
    stages = []
    keywords = dict(keywords)
    deformable = keywords.pop("deformable_stages", ())
    for s, n in enumerate(counts):
        filters = blocks.scaled(64 * 2**s, mult)
        if deformable:
            keywords["deformable"] = s + 2 in deformable
        for b in range(1, n + 1):
            strides = 2 if (b == 1 and s > 0) else 1
            x = block(x, filters, strides, f"conv{s + 2}_block{b}", **keywords)
        stages.append(Stage(x, 2 ** (s + 2)))
    return x, stages


def _block_keywords(bottleneck: bool, given: dict) -> dict:
    """The checked block keywords from ``resnet``'s arguments (``given``): the stride's place,
    zero-initialised residuals, ResNeXt's, Wide ResNet's and squeeze-excite's shapes (bottleneck
    blocks only, but squeeze-excite), and the deformable stages."""
    se_ratio, groups, width_per_group = given["se_ratio"], given["groups"], given["width_per_group"]
    keywords = {
        "stride_in_1x1": v.check_bool("stride_in_1x1", given["stride_in_1x1"]),
        "zero_init": v.check_bool("zero_init_residual", given["zero_init_residual"]),
        "se_ratio": None,
        **_deformable_keywords(bottleneck, groups, given["deformable_stages"], given["deformable_modulated"]),
    }
    if se_ratio is not None:
        keywords["se_ratio"] = v.check_float(
            "se_ratio", se_ratio, minimum=1e-3, maximum=1.0, include_max=True
        )
    groups = v.check_int("groups", groups, minimum=1)
    width_per_group = v.check_int("width_per_group", width_per_group, minimum=1)
    if not bottleneck and (groups, width_per_group) != (1, 64):
        raise v.UserError(
            f"groups={groups} and width_per_group={width_per_group} need bottleneck blocks (depth 50, "
            "101 or 152); ResNet-18/34's basic blocks take groups=1, width_per_group=64."
        )
    if bottleneck:
        keywords.update(groups=groups, width_per_group=width_per_group)
    return keywords


def _deformable_keywords(bottleneck: bool, groups, stages, modulated) -> dict:
    """Which stages' 3x3s are deformable (bottleneck blocks without groups only)."""
    if stages is not None and (isinstance(stages, (str, bytes)) or not isinstance(stages, (list, tuple))):
        raise v.UserError(f"deformable_stages must be a list of stages from 2, 3, 4, 5; got {stages!r}.")
    stages = tuple(stages or ())
    if any(s not in (2, 3, 4, 5) for s in stages) or len(set(stages)) != len(stages):
        raise v.UserError(f"deformable_stages must be distinct stages of 2, 3, 4, 5; got {stages!r}.")
    modulated = v.check_bool("deformable_modulated", modulated)
    if stages and (not bottleneck or groups != 1):
        raise v.UserError(
            f"deformable_stages={stages!r} needs bottleneck blocks (depth 50, 101 or 152) without groups."
        )
    return {"deformable_stages": stages, "modulated": modulated} if stages else {}


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


def _descendant(name: str, depth: int, doc: str, reference: str, paper: dict, **shape):
    """A registered ResNeXt / Wide / SE ResNet: depth and block shape fixed, the stride in the 3x3
    as its reference code has it."""
    fn = make_variant(
        resnet, name, doc, defaults={"name": name, "stride_in_1x1": False}, depth=depth, **shape
    )
    # the tests' tiny width: 16 base maps, so ResNeXt's 32 paths get one map each
    return register_model(
        fn, reference=reference, **{**_PAPER, **paper, "tiny_config": {"width_multiplier": 0.25}}
    )


_RESNEXT = dict(
    paper="Xie, Girshick, Dollar, Tu & He, Aggregated residual transformations for deep neural networks",
    year=2017,
    url="https://arxiv.org/abs/1611.05431",
)
_WIDE = dict(
    paper="Zagoruyko & Komodakis, Wide residual networks", year=2016, url="https://arxiv.org/abs/1605.07146"
)
_SE = dict(
    paper="Hu, Shen & Sun, Squeeze-and-excitation networks", year=2018, url="https://arxiv.org/abs/1709.01507"
)
resnext50_32x4d = _descendant(
    "resnext50_32x4d",
    50,
    "ResNeXt-50 32x4d (Xie et al. 2017, Table 1): 32 paths of 4 maps. See ``resnet``.",
    "torchvision resnext50_32x4d",
    _RESNEXT,
    groups=32,
    width_per_group=4,
)
resnext101_32x8d = _descendant(
    "resnext101_32x8d",
    101,
    "ResNeXt-101 32x8d (Xie et al. 2017): 32 paths of 8 maps. See ``resnet``.",
    "torchvision resnext101_32x8d",
    _RESNEXT,
    groups=32,
    width_per_group=8,
)
wide_resnet50_2 = _descendant(
    "wide_resnet50_2",
    50,
    "Wide ResNet-50-2 (Zagoruyko & Komodakis 2016; torchvision's bottleneck form). See ``resnet``.",
    "torchvision wide_resnet50_2",
    _WIDE,
    width_per_group=128,
)
seresnet50 = _descendant(
    "seresnet50",
    50,
    "SE-ResNet-50 (Hu et al. 2018): squeeze-and-excitation at 1/16 in every block. See ``resnet``.",
    "timm seresnet50",
    _SE,
    se_ratio=1 / 16,
)
seresnext50_32x4d = _descendant(
    "seresnext50_32x4d",
    50,
    "SE-ResNeXt-50 32x4d (Hu et al. 2018, Table 2): ResNeXt-50 with squeeze-and-excitation. See ``resnet``.",
    "timm seresnext50_32x4d",
    _SE,
    groups=32,
    width_per_group=4,
    se_ratio=1 / 16,
)
resnet50_dcn = register_model(
    make_variant(
        resnet,
        "resnet50_dcn",
        "ResNet-50 with deformable 3x3 convolutions in conv3_x-conv5_x (Dai et al. 2017, section 3; "
        "``deformable_modulated=True``: Zhu et al. 2019's v2). See ``resnet``.",
        defaults={"name": "resnet50_dcn"},
        depth=50,
        deformable_stages=(3, 4, 5),
    ),
    reference="torchvision resnet50 + one 3x3 offset convolution (18 maps, bias) per deformable 3x3: 26,137,874",
    paper="Dai, Qi, Xiong, Li, Zhang, Hu & Wei, Deformable convolutional networks",
    year=2017,
    url="https://arxiv.org/abs/1703.06211",
    min_input_size=32,
    tiny_config={"width_multiplier": 0.25},
)
