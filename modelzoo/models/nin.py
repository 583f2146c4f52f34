"""Network in Network (Lin, Chen & Yan 2013).

"Network in network", ICLR 2014 (arXiv 1312.4400). Each "mlpconv" block is a convolution followed
by two 1x1 convolutions (a small MLP shared across positions), all with ReLU; the last block emits
one map per class and global average pooling replaces the dense classifier. Layout of the authors'
ImageNet model: 96-256-384-1024 maps, 11x11/4 first, 3x3/2 max pooling, dropout 0.5 after block 3.
Departure: the class maps feed the softmax directly, as the paper's text says; the authors' Caffe
model also puts a ReLU on them (``classifier_relu=True``). With that ReLU every logit is >= 0 and
one large step can zero them all for good: here two SGD steps (lr 0.01) left the loss stuck at ln C.
"""

from __future__ import annotations

from keras import layers

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import register_model

# (maps, kernel, stride, padding) of each block's spatial convolution.
BLOCKS = ((96, 11, 4, "valid"), (256, 5, 1, "same"), (384, 3, 1, "same"), (1024, 3, 1, "same"))


def _mlpconv(x, filters, kernel, strides, padding, block: int, num_1x1: int = 2):
    x = blocks.conv_bn_act(
        x, filters, kernel, strides=strides, padding=padding, batch_norm=False, name=f"conv{block}"
    )
    for j in range(1, num_1x1 + 1):
        x = blocks.conv_bn_act(x, filters, 1, batch_norm=False, name=f"cccp{block}_{j}")
    return x


@register_model(
    paper="Lin, Chen & Yan, Network in network",
    year=2013,
    url="https://arxiv.org/abs/1312.4400",
    reference="authors' ImageNet model (Caffe model zoo) arithmetic: 7,595,176",
    min_input_size=67,
)
def nin(
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
    classifier_relu=False,
):
    """NiN. Stages: blocks 1-4 (strides 4, 8, 16, 32).

    With ``include_top`` the final 1x1 convolution (``classifier``) maps the 1024 features of
    block 4 to ``num_classes`` maps, then averages them (``classifier_relu``: see the module doc).
    ``dropout_rate`` is the dropout after block 3 (paper: 0.5).
    """
    args = blocks.image_args(
        locals(), default_input_shape=(224, 224, 3), min_input_size=67, default_name="nin"
    )
    classifier_relu = v.check_bool("classifier_relu", classifier_relu)
    inputs = blocks.image_input(args)
    x, stages = inputs, []
    for b, (filters, kernel, strides, padding) in enumerate(BLOCKS, start=1):
        # The classifier conv of block 4 is the head; the body keeps one 1x1 there.
        x = _mlpconv(x, filters, kernel, strides, padding, b, num_1x1=2 if b < 4 else 1)
        stages.append(Stage(x, 4 * 2 ** (b - 1)))
        if b < 4:
            x = layers.MaxPooling2D(3, 2, name=f"pool{b}")(x)
        if b == 3 and args.dropout_rate > 0:
            x = layers.Dropout(args.dropout_rate, name="pool3_dropout")(x)

    def head(x):
        x = layers.Conv2D(
            args.num_classes, 1, activation="relu" if classifier_relu else None, name="classifier"
        )(x)
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)

    return blocks.assemble(args, inputs, stages, x, head)
