"""Vision Transformer (Dosovitskiy et al. 2020) and DeiT (Touvron et al. 2021).

"An image is worth 16x16 words: Transformers for image recognition at scale", ICLR 2021 (arXiv
2010.11929). The image is cut into ``patch_size`` squares, each linearly embedded (a strided
convolution), a learned class token is prepended and learned position embeddings added; then
``depth`` pre-norm Transformer blocks (layer norm, multi-head self-attention, residual; layer norm,
a GELU MLP of 4x the width, residual), a final layer norm, and the classifier reads the class
token. Table 1's sizes: Base 12 x 768 (12 heads), Large 24 x 1024 (16); Tiny 12 x 192 (3) and
Small 12 x 384 (6) are DeiT's (timm's ``vit_tiny``/``vit_small``).

"Training data-efficient image transformers & distillation through attention", ICML 2021 (arXiv
2012.12877). DeiT is ViT trained on ImageNet alone, with strong augmentation and stochastic depth
(0.1); its distillation token (``distilled=True``) is a second learned token beside the class
token, read by a second classifier ``fc_dist`` trained on a teacher's hard labels. A distilled
model has two outputs, ``predictions`` (class token) and ``dist_predictions``; DeiT predicts with
their average.

Any input whose sides are multiples of the patch works; the position embeddings of weights saved
at another size are interpolated to this one's grid (bicubic, as timm) when they load
(``PositionEmbedding.adapt_weights``).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import make_variant, register_model

LAYOUT, LAYOUT_NOTE = {}, "data parallel only: no model-parallel layout yet"

# size: (depth, width, heads); the MLP is 4x the width
SIZES = {
    "tiny": (12, 192, 3),
    "small": (12, 384, 6),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}
EPSILON = 1e-6


def _init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="modelzoo")
class PrefixTokens(layers.Layer):
    """``count`` learned tokens (the class token, and DeiT's distillation token) put before the
    patch tokens."""

    def __init__(self, count: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.count = v.check_int("count", count, minimum=1)

    def build(self, input_shape):
        self.tokens = self.add_weight(
            name="tokens", shape=(1, self.count, int(input_shape[-1])), initializer=_init()
        )

    def call(self, x):
        tokens = ops.broadcast_to(
            ops.cast(self.tokens, x.dtype), (ops.shape(x)[0], self.count, ops.shape(x)[-1])
        )
        return ops.concatenate([tokens, x], axis=1)

    def count_macs(self, in_shape, out_shape):
        return 0

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + self.count
        return (input_shape[0], n, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="modelzoo")
class PositionEmbedding(layers.Layer):
    """Learned position embeddings added to ``prefix`` tokens and a ``grid`` of patch tokens."""

    def __init__(self, grid=(14, 14), prefix: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.grid = tuple(int(g) for g in grid)
        self.prefix = int(prefix)

    def build(self, input_shape):
        length = self.prefix + self.grid[0] * self.grid[1]
        self.embedding = self.add_weight(
            name="embedding", shape=(1, length, int(input_shape[-1])), initializer=_init()
        )

    def call(self, x):
        return x + ops.cast(self.embedding, x.dtype)

    def count_macs(self, in_shape, out_shape):
        return 0

    def compute_output_shape(self, input_shape):
        return input_shape

    def adapt_weights(self, values: list) -> list:
        """Embeddings saved for another patch grid, the grid part resized to this one's (bicubic)."""
        (table,) = values
        prefix, grid = table[:, : self.prefix], table[:, self.prefix :]
        side = int(round(grid.shape[1] ** 0.5))
        if side * side != grid.shape[1]:
            raise v.UserError(
                f"{self.name}: saved position embeddings of {grid.shape[1]} patches are not a square grid; "
                f"cannot resize them to {self.grid}."
            )
        square = ops.reshape(ops.convert_to_tensor(grid), (1, side, side, grid.shape[-1]))
        resized = ops.image.resize(square, self.grid, interpolation="bicubic")
        resized = ops.reshape(resized, (1, self.grid[0] * self.grid[1], grid.shape[-1]))
        return [ops.convert_to_numpy(ops.concatenate([ops.convert_to_tensor(prefix), resized], axis=1))]

    def get_config(self):
        return {**super().get_config(), "grid": self.grid, "prefix": self.prefix}


def encoder_block(x, heads: int, drop: float, prefix: str):
    """Pre-norm Transformer block: x + attention(norm(x)), then x + MLP(norm(x)), each branch
    dropped whole by stochastic depth at rate ``drop``."""
    width = int(x.shape[-1])
    y = layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_norm1")(x)
    y = layers.MultiHeadAttention(heads, width // heads, kernel_initializer=_init(), name=f"{prefix}_attn")(
        y, y
    )
    x = layers.Add(name=f"{prefix}_add1")([x, blocks.drop_path(y, drop, f"{prefix}_drop_path1")])
    y = layers.LayerNormalization(epsilon=EPSILON, name=f"{prefix}_norm2")(x)
    y = layers.Dense(4 * width, activation="gelu", kernel_initializer=_init(), name=f"{prefix}_mlp_fc1")(y)
    y = layers.Dense(width, kernel_initializer=_init(), name=f"{prefix}_mlp_fc2")(y)
    return layers.Add(name=f"{prefix}_add2")([x, blocks.drop_path(y, drop, f"{prefix}_drop_path2")])


def _patch_grid(args, patch: int) -> tuple[int, int]:
    """The (rows, cols) of patches; the input's sides must be multiples of the patch."""
    if args.input_shape[0] % patch or args.input_shape[1] % patch:
        raise v.UserError(
            f"input_shape={args.input_shape!r}: height and width must be multiples of patch_size={patch}."
        )
    if args.pooling is not None and not args.features_only:
        raise v.UserError("pooling applies to convolutional maps; a ViT's backbone output is its tokens.")
    return (args.input_shape[0] // patch, args.input_shape[1] // patch)


def embed(inputs, patch: int, width: int, grid: tuple, prefix: int):
    """Patches linearly embedded (a strided convolution), the prefix tokens put first, positions added."""
    x = layers.Conv2D(width, patch, strides=patch, name="patch_embed")(inputs)
    x = layers.Reshape((grid[0] * grid[1], width), name="patch_tokens")(x)
    x = PrefixTokens(prefix, name="prefix_tokens")(x)
    return PositionEmbedding(grid, prefix, name="position_embedding")(x)


def _grid(x, prefix_tokens: int, grid: tuple, name: str):
    """Patch tokens back on their grid (timm's feature maps of a ViT): (batch, rows, cols, width)."""
    tokens = x[:, prefix_tokens:, :]
    return layers.Reshape((*grid, int(x.shape[-1])), name=name)(tokens)


def _head(args, distilled: bool):
    """The classifier on the class token (and DeiT's second one on the distillation token)."""

    def classifier(token, name):
        if args.dropout_rate > 0:
            token = layers.Dropout(args.dropout_rate, name=f"{name}_dropout")(token)
        return layers.Dense(args.num_classes, kernel_initializer=_init(), name=name)(token)

    def head(x):
        logits = {"": classifier(x[:, 0], "fc")}
        if distilled:
            logits["dist_"] = classifier(x[:, 1], "fc_dist")
        return logits

    return head


_VIT = dict(
    paper=("Dosovitskiy et al., An image is worth 16x16 words: Transformers for image recognition at scale"),
    year=2020,
    url="https://arxiv.org/abs/2010.11929",
)


def vit(
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
    patch_size=16,
    depth=12,
    width=768,
    heads=12,
    drop_path_rate=0.0,
    distilled=False,
):
    """A Vision Transformer of any size (ViT-B/16 at the defaults); ``distilled`` adds DeiT's
    distillation token and its classifier. Height and width must be multiples of ``patch_size``.

    Stages: the patch tokens on their grid (stride ``patch_size``) after each quarter of the blocks,
    as dense-prediction heads read a ViT (ViTDet); the backbone's output is the normalised tokens.
    """
    patch = v.check_int("patch_size", patch_size, minimum=1)
    depth = v.check_int("depth", depth, minimum=1, maximum=v.MAX_DEPTH)
    heads = v.check_int("heads", heads, minimum=1)
    width = v.check_int("width", width, minimum=1)
    if width % heads:
        raise v.UserError(
            f"width={width} must be a multiple of heads={heads} (each head gets width / heads)."
        )
    drop_path = v.check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    distilled = v.check_bool("distilled", distilled)
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=patch, default_name="vit"
    )
    grid = _patch_grid(args, patch)
    prefix = 2 if distilled else 1
    inputs = blocks.image_input(args)
    x = embed(inputs, patch, width, grid, prefix)
    taps = {round(depth * q / 4) for q in (1, 2, 3, 4)}
    stages = []
    for i in range(depth):
        x = encoder_block(x, heads, drop_path * i / max(1, depth - 1), f"block{i}")
        if i + 1 in taps:
            stages.append(Stage(_grid(x, prefix, grid, f"block{i}_grid"), patch))
    x = layers.LayerNormalization(epsilon=EPSILON, name="norm")(x)
    return blocks.assemble(args, inputs, stages, x, _head(args, distilled))


def _sized(name: str, size: str, patch: int, paper: dict, drop_path: float, reference: str):
    depth, width, heads = SIZES[size]
    doc = f"{name}: {depth} blocks of width {width}, {heads} heads, {patch}x{patch} patches. See ``vit``."
    defaults = {"name": name, "depth": depth, "width": width, "heads": heads, "drop_path_rate": drop_path}
    fn = make_variant(vit, name, doc, defaults=defaults, patch_size=patch)
    # the tests' tiny model keeps the depth at a width of 32 (ViT-L is 304 M weights at any input)
    tiny = {"width": 32, "heads": 2}
    return register_model(fn, reference=reference, tiny_config=tiny, **{**paper, "min_input_size": patch})


_DEIT = dict(
    paper="Touvron et al., Training data-efficient image transformers & distillation through attention",
    year=2021,
    url="https://arxiv.org/abs/2012.12877",
)
vit_tiny_patch16_224 = _sized("vit_tiny_patch16_224", "tiny", 16, _VIT, 0.0, "timm vit_tiny_patch16_224")
vit_small_patch16_224 = _sized("vit_small_patch16_224", "small", 16, _VIT, 0.0, "timm vit_small_patch16_224")
vit_base_patch16_224 = _sized("vit_base_patch16_224", "base", 16, _VIT, 0.0, "timm vit_base_patch16_224")
vit_large_patch16_224 = _sized("vit_large_patch16_224", "large", 16, _VIT, 0.0, "timm vit_large_patch16_224")
vit_base_patch32_224 = _sized("vit_base_patch32_224", "base", 32, _VIT, 0.0, "timm vit_base_patch32_224")
deit_tiny_patch16_224 = _sized("deit_tiny_patch16_224", "tiny", 16, _DEIT, 0.1, "timm deit_tiny_patch16_224")
deit_small_patch16_224 = _sized(
    "deit_small_patch16_224", "small", 16, _DEIT, 0.1, "timm deit_small_patch16_224"
)
deit_base_patch16_224 = _sized("deit_base_patch16_224", "base", 16, _DEIT, 0.1, "timm deit_base_patch16_224")
