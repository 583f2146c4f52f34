"""What a model does to an example before it sees it: decode, the papers' crops,
resize, channels, normalisation, augmentation, all inside the ``tf.data`` graph.

Every random draw is stateless, seeded by (run seed, step, row), so a resumed run crops and flips
each example as the uninterrupted run did.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from modelzoo.registry import IMAGENET_MEAN, IMAGENET_STD
from recipes.data.base import DataError
from recipes.data.text import bert_inputs


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """Per-model preprocessing inside the pipeline: resize, channels, augmentation."""

    image_size: tuple[int, int] | None = None  # None: keep the data's size
    channels: int | None = None  # None: keep; 3 from 1 repeats the grey channel
    crop: bool = False  # random crop after zero-padding each side (AlexNet/VGG/ResNet style)
    crop_padding: float = 0.125  # the padding as a share of the side: the augmentation's strength
    flip: bool = False  # random horizontal flip (only where the label allows it)
    bert_inputs: tuple = ()  # token ids become a BERT-family dict of these inputs (ids, segments, mask)
    # ImageNet papers' crops, per image before batching (sizes vary): "pad" is the padded random crop
    # above; "random_resized" Szegedy et al. 2015's (area, aspect 3/4-4/3; Goyal et al. 2017, ResNet
    # recipes); "scale_jitter" Simonyan & Zisserman 2014's (shorter side random in scale_range, then crop).
    crop_mode: str = "pad"
    scale_range: tuple | None = (
        None  # random_resized: area share (default 0.08-1); scale_jitter: pixels (256-512)
    )
    eval_crop: float | None = None  # evaluation: shorter side to image_size / eval_crop, then the centre crop
    mean: tuple | None = None  # per-channel mean subtracted from [0, 1] images (then divided by std)
    std: tuple | None = None


NORMALIZE = {  # normalize: name -> (mean, std) on [0, 1] images, ImageNet's statistics
    "none": (None, None),
    "imagenet_mean": (IMAGENET_MEAN, None),  # AlexNet and VGG: the training set's mean RGB subtracted
    "imagenet_mean_std": (IMAGENET_MEAN, IMAGENET_STD),  # torchvision / timm ResNets
}
# normalize: family takes the (mean, std) the model's family records (``ModelEntry.mean_std``)


CROP_MODES = ("pad", "random_resized", "scale_jitter")


def _paper_crop(x, pre: Preprocess, seed):
    """One training image (encoded bytes or pixels) cropped as ``pre.crop_mode`` says, resized to
    ``image_size``, in [0, 1]; ``seed`` (``example_seed``: run seed, step, row) makes the draw a
    function of where the example falls in the run, so a resumed run crops it the same way."""
    image = (
        tf.io.decode_image(x, channels=pre.channels or 3, expand_animations=False)
        if x.dtype == tf.string
        else x
    )
    image = tf.image.convert_image_dtype(image, tf.float32)
    shape = tf.shape(image)
    if pre.crop_mode == "random_resized":
        area = pre.scale_range or (0.08, 1.0)
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            shape,
            tf.zeros([1, 0, 4]),
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=area,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return tf.ensure_shape(
            tf.image.resize(tf.slice(image, begin, size), pre.image_size), [*pre.image_size, image.shape[-1]]
        )
    low, high = pre.scale_range or (256, 512)
    size_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    side = tf.random.stateless_uniform([], seed=size_seed, minval=low, maxval=high + 1, dtype=tf.int32)
    image = _shorter_side(image, tf.maximum(side, max(pre.image_size)))
    channels = image.shape[-1]
    return tf.ensure_shape(
        tf.image.stateless_random_crop(image, [*pre.image_size, tf.shape(image)[-1]], seed=crop_seed),
        [*pre.image_size, channels],
    )


def example_seed(seed, step, row):
    """The stateless seed of one example's random crop: (run seed, step and row in the global batch)."""
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 1_000_003 + tf.cast(row, tf.int64)])


def _shorter_side(image, side):
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    scale = tf.cast(side, tf.float32) / tf.minimum(h, w)
    return tf.image.resize(image, tf.cast(tf.round([h * scale, w * scale]), tf.int32))


def _centre_crop(image, pre: Preprocess):
    """Evaluation as the papers do it: the shorter side to ``image_size / eval_crop``, the centre."""
    image = _shorter_side(image, round(max(pre.image_size) / pre.eval_crop))
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (h - pre.image_size[0]) // 2, (w - pre.image_size[1]) // 2
    return image[top : top + pre.image_size[0], left : left + pre.image_size[1]]


def prepare_train(x, pre: Preprocess, seed):
    """One training example's per-image work: the paper's crop where ``crop_mode`` asks for one,
    else the deterministic decode/resize (the pad crop happens per batch)."""
    if pre.crop and pre.crop_mode != "pad":
        return _channels(_paper_crop(x, pre, seed), pre)
    return prepare(x, pre)


def prepare(x, pre: Preprocess, evaluation: bool = False):
    """Decode, resize (evaluation with ``eval_crop``: the centre crop of one image) and match channels."""
    if x.dtype == tf.string and pre.image_size is not None:  # encoded image bytes
        x = tf.io.decode_image(x, channels=pre.channels or 3, expand_animations=False)
    if x.dtype == tf.uint8:
        x = tf.image.convert_image_dtype(x, tf.float32)
    if pre.image_size is not None and pre.eval_crop and evaluation:
        x = _centre_crop(x, pre)
    elif pre.image_size is not None:
        x = tf.image.resize(x, pre.image_size, method="bilinear")
    return _channels(x, pre)


def _channels(x, pre: Preprocess):
    if pre.channels is not None and x.shape[-1] != pre.channels:
        if x.shape[-1] == 4 and pre.channels in (1, 3):  # drop alpha
            x = x[..., :3]
        if x.shape[-1] == 3 and pre.channels == 1:
            x = tf.image.rgb_to_grayscale(x)
        elif x.shape[-1] == 1:
            x = tf.repeat(x, pre.channels, axis=-1)
        if x.shape[-1] != pre.channels:
            raise DataError(f"cannot turn {x.shape[-1]}-channel images into {pre.channels} channels.")
    return x


def augment_batch(images, seed, pre: Preprocess, global_batch: int, first=0):
    """Stateless random crop (after zero-padding each side by ``crop_padding`` of it) and flip, for a whole batch
    at once: the same ``seed`` (the run's seed and the global step) always gives the same batch. ``images``
    may be a replica's share of a global batch, rows ``first`` on: drawn as in the whole one."""
    if not (pre.crop or pre.flip):
        return images
    if pre.crop_mode != "pad":  # the paper's crop happened per image (prepare_train); the flip is here
        pre = dataclasses.replace(pre, crop=False)
    batch, h, w = tf.shape(images)[0], int(images.shape[1]), int(images.shape[2])
    first = tf.cast(first, tf.int32)
    u = tf.random.stateless_uniform([global_batch, 3], seed=seed)[first : first + batch]
    if pre.crop:
        pad_h, pad_w = max(1, int(h * pre.crop_padding)), max(1, int(w * pre.crop_padding))
        padded = tf.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        top = tf.cast(u[:, 0] * (2 * pad_h + 1), tf.int32)
        left = tf.cast(u[:, 1] * (2 * pad_w + 1), tf.int32)
        rows = top[:, None] + tf.range(h)[None]
        cols = left[:, None] + tf.range(w)[None]
        images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    if pre.flip:
        images = tf.where((u[:, 2] < 0.5)[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


def features(x, pre: Preprocess):
    if pre.mean is not None:
        x = x - tf.constant(pre.mean, x.dtype)
    if pre.std is not None:
        x = x / tf.constant(pre.std, x.dtype)
    return bert_inputs(x, pre.bert_inputs) if pre.bert_inputs else x
