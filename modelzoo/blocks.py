"""Blocks shared by two or more families, and the common tail of every image builder.

Every image builder validates its common arguments with ``image_args``, builds its body as a list
of ``Stage`` outputs, and hands them to ``assemble``, which returns the classifier, the headless
backbone (``include_top=False`` with optional pooling) or the feature extractor
(``features_only=True``), so these behave the same in every family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import layers, ops

from modelzoo import private_keras
from modelzoo import validation as v


@dataclasses.dataclass(frozen=True)
class ModelArgs:
    num_classes: int
    input_shape: tuple[int, int, int]
    include_top: bool
    pooling: str | None
    dropout_rate: float
    classifier_activation: str | Callable | None
    name: str
    features_only: bool
    out_indices: Sequence[int] | None


COMMON_KEYWORDS = tuple(f.name for f in dataclasses.fields(ModelArgs))


def image_args(
    values: dict,
    *,
    default_input_shape: tuple[int, int, int],
    min_input_size: int,
    default_name: str,
) -> ModelArgs:
    """Validate the keywords every image builder shares; raise ``UserError`` naming the bad one.

    ``values`` is the builder's ``locals()`` at entry: only the shared keywords are read.
    """
    shape = v.check_image_shape(values["input_shape"], default=default_input_shape, min_size=min_input_size)
    return model_args(values, input_shape=shape, default_name=default_name)


def model_args(values: dict, *, input_shape: tuple, default_name: str) -> ModelArgs:
    """Validate the shared keywords other than ``input_shape``, which the caller has checked."""
    num_classes, _, include_top, pooling, dropout_rate, activation, name, features_only, out_indices = (
        values[k] for k in COMMON_KEYWORDS
    )
    include_top = v.check_bool("include_top", include_top)
    features_only = v.check_bool("features_only", features_only)
    pooling = v.check_choice("pooling", pooling, v.POOLING_CHOICES)
    if include_top and pooling is not None and not features_only:
        raise v.UserError(
            f"pooling={pooling!r} applies only with include_top=False; with include_top=True the "
            "network's own head (from its paper) decides how features are pooled."
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise v.UserError(f"name must be a non-empty string, got {name!r}.")
    return ModelArgs(
        num_classes=v.check_int("num_classes", num_classes, minimum=1),
        input_shape=tuple(input_shape),
        include_top=include_top,
        pooling=pooling,
        dropout_rate=v.check_float("dropout_rate", dropout_rate, minimum=0.0, maximum=1.0),
        classifier_activation=v.check_activation("classifier_activation", activation),
        name=name or default_name,
        features_only=features_only,
        out_indices=out_indices,
    )


@dataclasses.dataclass(frozen=True)
class Stage:
    """One feature-extraction point: a tensor and its nominal stride (reduction) from the input."""

    tensor: object
    reduction: int | None


def assemble(
    args: ModelArgs,
    inputs,
    stages: Sequence[Stage],
    backbone_output,
    head: Callable,
) -> keras.Model:
    """The common tail of every builder.

    ``head(x)`` turns ``backbone_output`` into logits (a tensor, or a dict ``{prefix: logits}``
    for extra heads such as GoogLeNet's auxiliary classifiers, where ``""`` is the main head).
    Each logits tensor ends in an ``Activation`` named ``<prefix>predictions`` in float32, so mixed
    precision keeps its outputs in float32 and ``reset_classifier`` can find every head.
    """
    info = [
        {
            "index": i,
            "layer": _layer_name(s.tensor),
            "channels": int(s.tensor.shape[-1]),
            "reduction": s.reduction,
            "shape": tuple(None if d is None else int(d) for d in s.tensor.shape[1:]),
        }
        for i, s in enumerate(stages)
    ]
    if args.features_only:
        indices = v.check_out_indices(args.out_indices, len(stages))
        model = keras.Model(inputs, [stages[i].tensor for i in indices], name=f"{args.name}_features")
        model.feature_info = [info[i] for i in indices]
        return model
    if args.out_indices is not None:
        raise v.UserError("out_indices applies only with features_only=True.")
    if args.include_top:
        logits = head(backbone_output)
        heads = logits if isinstance(logits, dict) else {"": logits}
        outputs = [
            layers.Activation(
                args.classifier_activation or "linear", dtype="float32", name=f"{prefix}predictions"
            )(t)
            for prefix, t in heads.items()
        ]
        outputs = outputs[0] if len(outputs) == 1 else outputs
    else:
        outputs = backbone_output
        if args.pooling == "avg":
            outputs = layers.GlobalAveragePooling2D(name="avg_pool")(outputs)
        elif args.pooling == "max":
            outputs = layers.GlobalMaxPooling2D(name="max_pool")(outputs)
    model = keras.Model(inputs, outputs, name=args.name)
    model.feature_info = info
    return model


def _layer_name(tensor) -> str:
    layer = private_keras.producer(tensor)
    return layer.name if layer is not None else ""


def image_input(args: ModelArgs):
    return keras.Input(shape=args.input_shape, name="input")


def conv_bn_act(
    x,
    filters: int,
    kernel_size,
    *,
    strides=1,
    padding: str = "same",
    name: str,
    batch_norm: bool = True,
    activation: str | None = "relu",
    bn_epsilon: float = 1.001e-5,
    bn_momentum: float = 0.9,
    use_bias: bool | None = None,
    groups: int = 1,
    gamma_initializer: str = "ones",
):
    """Conv (no bias when a batch norm follows), optional batch norm, optional activation.

    Layers are named ``{name}_conv``, ``{name}_bn``, ``{name}_{activation}``.
    """
    if use_bias is None:
        use_bias = not batch_norm
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        groups=groups,
        kernel_initializer="he_normal" if activation == "relu" else "glorot_uniform",
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(
            epsilon=bn_epsilon, momentum=bn_momentum, gamma_initializer=gamma_initializer, name=f"{name}_bn"
        )(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def scaled(maps: int, multiplier: float) -> int:
    """A layer's ``maps`` under a width multiplier: rounded, and at least one."""
    return max(1, round(maps * multiplier))


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never more than 10% below it: the
    width rounding of the MobileNetV2 and EfficientNet reference code, which their published widths
    follow. ``round_limit=0`` drops the 10% guard, as EfficientNetV2's release (B3's 16 x 1.2 maps
    round to 16 there, not 24)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def pad_for_stride(x, kernel_size: int, name: str):
    """TensorFlow's "same" padding for a stride-2 ``kernel_size`` convolution, made explicit (one
    more row and column at the bottom and right for an even input), as keras.applications'
    ``correct_pad``: its MobileNet and EfficientNet weights were trained with it."""
    half = kernel_size // 2
    extra = [1 - int(d) % 2 for d in x.shape[1:3]]
    return layers.ZeroPadding2D(((half - extra[0], half), (half - extra[1], half)), name=name)(x)


def fc_head(
    x,
    *,
    units: Sequence[int],
    num_classes: int,
    dropout_rate: float,
    names: Sequence[str],
    activation: str = "relu",
    flatten: bool = True,
):
    """Flatten, fully connected layers each followed by dropout (AlexNet/VGG style), then logits.

    ``names`` has one entry per hidden layer plus the classifier (e.g. fc6, fc7, fc8).
    """
    if len(names) != len(units) + 1:
        raise v.UserError("fc_head needs one name per hidden layer plus the classifier.")
    if flatten:
        x = layers.Flatten(name="flatten")(x)
    for width, lname in zip(units, names[:-1]):
        x = layers.Dense(width, activation=activation, name=lname)(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"{lname}_dropout")(x)
    return layers.Dense(num_classes, name=names[-1])(x)


# Model parallelism for the AlexNet/ZFNet/VGG classifier (keras.distribution layout rules: variable
# path regex -> mesh axis per dimension). fc6 and fc7 hold most of the weights (VGG16: 120 of
# 138 M), so they are split the Megatron way: fc6's kernel by output columns, fc7's by input rows,
# so the pair needs one all-reduce; fc8 and the convolutions (small kernels, large activations)
# are replicated.
FC678_LAYOUT = {"fc6/kernel": (None, "model"), "fc6/bias": ("model",), "fc7/kernel": ("model", None)}
FC678_LAYOUT_NOTE = (
    "fc6/fc7 split over 'model' (column then row: one all-reduce); convolutions and fc8 replicated"
)
CONV_LAYOUT_NOTE = (
    "data parallel only: no model-parallel layout (convolution kernels are small beside their "
    "activations, so splitting output channels would move activations at every layer; the whole "
    "model fits one device); under model_parallel its weights are replicated over 'model'"
)


def fc678_head(args: ModelArgs, fc_units: int) -> Callable:
    """The AlexNet/ZFNet/VGG classifier: fc6 and fc7 of ``fc_units`` with dropout, fc8 logits."""
    return lambda x: fc_head(
        x,
        units=(fc_units, fc_units),
        num_classes=args.num_classes,
        dropout_rate=args.dropout_rate,
        names=("fc6", "fc7", "fc8"),
    )


def gap_head(args: ModelArgs, name: str = "fc") -> Callable:
    """The NiN-onwards classifier: global average pooling, dropout, one linear layer to logits."""

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if args.dropout_rate > 0:
            x = layers.Dropout(args.dropout_rate, name="head_dropout")(x)
        return layers.Dense(args.num_classes, name=name)(x)

    return head


@keras.saving.register_keras_serializable(package="modelzoo")
class LocalResponseNormalization(layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, section 3.3).

    ``b = a / (k + alpha * sum_{j in window} a_j^2) ** beta`` over ``size`` adjacent channels, with
    the paper's ``k=2, size=5, alpha=1e-4, beta=0.75``. The paper's alpha multiplies the sum as it
    stands (TensorFlow's convention); Caffe divides alpha by ``size``. The windowed sum is one
    matrix product with a banded 0/1 matrix, so it runs on every backend and device.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.size = v.check_int("size", size, minimum=1)
        if self.size % 2 == 0:
            raise v.UserError(f"size must be odd (a window centred on each channel), got {size}.")
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        idx = np.arange(channels)
        self._band = (np.abs(idx[:, None] - idx[None, :]) <= self.size // 2).astype("float32")

    def call(self, x):
        band = ops.convert_to_tensor(self._band, dtype=x.dtype)
        norm = ops.matmul(ops.square(x), band)
        return x * ops.power(self.k + self.alpha * norm, -self.beta)

    def count_macs(self, in_shape, out_shape):
        return 0  # element-wise normalisation: not counted, like batch norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "alpha": self.alpha,
            "beta": self.beta,
            "k": self.k,
        }


@keras.saving.register_keras_serializable(package="modelzoo")
class LayerScale(layers.Layer):
    """A learned per-channel scale on a residual branch, started small (Touvron et al. 2021, "Going
    deeper with image transformers"; ConvNeXt starts it at 1e-6), so a deep net starts near the
    identity. Its weight is ``gamma``, as in keras.applications' ConvNeXt."""

    def __init__(self, init_value: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_value = v.check_float("init_value", init_value, minimum=0.0, maximum=1e9)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(self.init_value),
        )

    def call(self, x):
        return x * ops.cast(self.gamma, x.dtype)

    def count_macs(self, in_shape, out_shape):
        return 0  # element-wise: not counted, like batch norm's scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


def drop_path(x, rate: float, name: str):
    """Stochastic depth (Huang et al. 2016) on a residual branch: each sample's branch is dropped
    with probability ``rate`` in training and the kept ones scaled by ``1 / (1 - rate)``
    (a ``Dropout`` whose noise is one value per sample)."""
    if rate <= 0:
        return x
    return layers.Dropout(rate, noise_shape=(None,) + (1,) * (len(x.shape) - 1), name=name)(x)


def squeeze_excite(x, squeezed: int, names: dict, inner: str = "relu", gate: str = "sigmoid"):
    """Squeeze-and-excitation (Hu et al. 2018), written once for every family: channel gates from
    the pooled maps, through a bottleneck of ``squeezed`` units (``inner`` activation), then
    ``gate``, multiplied into the maps.

    ``names`` holds each layer's name in its family's reference, so weights convert by name:
    ``pool``, ``reduce``, ``expand`` and ``excite`` always; ``reshape`` where the pool flattens and a
    ``Reshape`` restores the 1x1 map (keras.applications' EfficientNets); ``inner_act`` and
    ``gate_act`` where the activations are layers of their own (MobileNetV3).
    """
    maps = int(x.shape[-1])
    se = layers.GlobalAveragePooling2D(keepdims="reshape" not in names, name=names["pool"])(x)
    if "reshape" in names:
        se = layers.Reshape((1, 1, maps), name=names["reshape"])(se)
    se = _conv_1x1(se, squeezed, inner, names["reduce"], names.get("inner_act"))
    se = _conv_1x1(se, maps, gate, names["expand"], names.get("gate_act"))
    return layers.Multiply(name=names["excite"])([x, se])


def _conv_1x1(x, maps: int, activation: str, name: str, activation_name: str | None):
    """A biased 1x1 convolution, its activation inside it or, given ``activation_name``, a layer."""
    if activation_name is None:
        return layers.Conv2D(maps, 1, activation=activation, name=name)(x)
    x = layers.Conv2D(maps, 1, name=name)(x)
    return layers.Activation(activation, name=activation_name)(x)
