"""The deformable convolution against a direct NumPy implementation of Dai et al. 2017's equation
(2) and Zhu et al. 2019's modulated form, and ResNet-50 with it (``resnet50_dcn``)."""

import keras
import numpy as np
import pytest

import modelzoo
from modelzoo.deformable import DeformableConv2D


def _bilinear(image, y, x):
    """image (H, W, C) at (y, x), zero outside: the sum over the four neighbours of g(.)g(.)x."""
    h, w, _ = image.shape
    total = np.zeros(image.shape[-1])
    for yy in (np.floor(y), np.floor(y) + 1):
        for xx in (np.floor(x), np.floor(x) + 1):
            if 0 <= yy < h and 0 <= xx < w:
                total += max(0, 1 - abs(y - yy)) * max(0, 1 - abs(x - xx)) * image[int(yy), int(xx)]
    return total


def _reference(x, kernel, bias, offsets, stride, pad, modulated):
    """y(p0) = sum_k w_k x(p0 + p_k + dp_k) [m_k], taps in row-major order, offsets (dy, dx) per tap."""
    n, _, _, _ = x.shape
    k = kernel.shape[0]
    _, out_h, out_w, _ = offsets.shape
    out = np.zeros((n, out_h, out_w, kernel.shape[-1]))
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for t in range(k * k):
                    ky, kx = divmod(t, k)
                    y = i * stride - pad + ky + offsets[b, i, j, 2 * t]
                    xx = j * stride - pad + kx + offsets[b, i, j, 2 * t + 1]
                    value = _bilinear(x[b], y, xx)
                    if modulated:
                        value = value / (1 + np.exp(-offsets[b, i, j, 2 * k * k + t]))
                    out[b, i, j] += value @ kernel[ky, kx]
    return out + bias


@pytest.mark.parametrize("stride,modulated", [(1, False), (2, False), (1, True)])
def test_deformable_convolution_equals_the_direct_sum(stride, modulated):
    rng = np.random.default_rng(stride + 2 * modulated)
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    layer = DeformableConv2D(4, 3, strides=stride, modulated=modulated)
    layer(x)  # built
    layer.offset.kernel.assign(rng.normal(0, 0.7, layer.offset.kernel.shape))  # offsets of up to a few pixels
    layer.offset.bias.assign(rng.normal(0, 0.5, layer.offset.bias.shape))
    layer.bias.assign(rng.normal(size=4))
    offsets = np.asarray(layer.offset(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])))
    assert np.abs(offsets).max() > 1.5  # some taps move by more than a pixel, some leave the image
    expected = _reference(x, np.asarray(layer.kernel), np.asarray(layer.bias), offsets, stride, 1, modulated)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


def test_zero_offsets_are_the_plain_convolution_and_gradients_reach_the_offsets():
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 2)).astype("float32")
    layer = DeformableConv2D(3, 3, use_bias=False)
    plain = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)
    plain.build(x.shape)
    layer.build(x.shape)
    plain.kernel.assign(layer.kernel)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(plain(x)), rtol=1e-5, atol=1e-5)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.convert_to_tensor(layer(x)) ** 2)
    grads = tape.gradient(loss, [layer.offset.kernel.value])
    assert float(tf.reduce_max(tf.abs(grads[0]))) > 0


def test_resnet50_dcn_puts_deformable_3x3s_in_stages_3_to_5():
    model = modelzoo.resnet50_dcn()
    deformable = [layer.name for layer in model.layers if isinstance(layer, DeformableConv2D)]
    assert len(deformable) == 4 + 6 + 3 and all(
        name.startswith(("conv3", "conv4", "conv5")) for name in deformable
    )
    assert isinstance(model.get_layer("conv2_block1_2_conv"), keras.layers.Conv2D)
    # ResNet-50 plus one 3x3 offset convolution (18 maps, with bias) per deformable 3x3
    offsets = sum(n * (3 * 3 * c * 18 + 18) for c, n in [(128, 4), (256, 6), (512, 3)])
    counts = modelzoo.count_params(model)
    assert counts["trainable_params"] == 25_557_032 + offsets
    v2 = modelzoo.resnet50_dcn(deformable_modulated=True, input_shape=(64, 64, 3), num_classes=3)
    assert v2.get_layer("conv5_block1_2_conv").offset.filters == 27
