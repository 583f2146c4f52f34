"""Deformable convolution (Dai et al. 2017) and its modulated form (Zhu et al. 2019), in keras.ops.

"Deformable convolutional networks", ICCV 2017 (arXiv 1703.06211), section 2.1: each of the
kernel's K x K taps samples the input at its regular place plus a learned fractional offset,
read by bilinear interpolation (zero outside the image); the offsets come from an ordinary
convolution over the same input, initialised to zero so the layer starts as the plain
convolution. "Deformable ConvNets v2" (Zhu et al. 2019, arXiv 1811.11168, section 3.1) adds a
modulation scalar per tap in [0, 1] (a sigmoid of K x K more channels of the offset convolution:
0.5 at the start). The offsets are laid out as in the authors' code: (dy, dx) for each tap in
row-major order, then the modulation scalars.

Written with ``keras.ops`` only (gather through ``take_along_axis``), so it runs on every backend;
the input's height and width must be known when the model is built.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from modelzoo import validation as v


@keras.saving.register_keras_serializable(package="modelzoo")
class DeformableConv2D(layers.Layer):
    """A K x K convolution whose taps move by learned offsets: ``padding`` zeros on every side
    (symmetric, as the paper's code), ``strides``, no groups. Its offset convolution is the
    sublayer ``offset`` (2 K K maps, 3 K K with ``modulated``)."""

    def __init__(
        self, filters, kernel_size=3, strides=1, padding=None, modulated=False, use_bias=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = v.check_int("filters", filters, minimum=1)
        self.kernel_size = v.check_int("kernel_size", kernel_size, minimum=1)
        self.strides = v.check_int("strides", strides, minimum=1)
        self.padding = (
            self.kernel_size // 2 if padding is None else v.check_int("padding", padding, minimum=0)
        )
        self.modulated = v.check_bool("modulated", modulated)
        self.use_bias = v.check_bool("use_bias", use_bias)
        taps = self.kernel_size**2
        self.offset = layers.Conv2D(
            (3 if self.modulated else 2) * taps,
            self.kernel_size,
            strides=self.strides,
            kernel_initializer="zeros",
            name="offset",
        )

    def build(self, input_shape):
        h, w, c = input_shape[1:]
        if h is None or w is None:
            raise v.UserError(
                f"DeformableConv2D needs a known height and width, got input shape {input_shape}."
            )
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k, k, c, self.filters), initializer="he_normal")
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )
        p = self.padding
        self.offset.build((input_shape[0], h + 2 * p, w + 2 * p, c))

    def _taps(self, offsets, out_h: int, out_w: int):
        """Each tap's sampling place in the unpadded input: (rows, columns), (N, Ho, Wo, K K)."""
        k, s, p = self.kernel_size, self.strides, self.padding
        taps = k * k
        tap_y = ops.cast(ops.repeat(ops.arange(k), k), offsets.dtype)
        tap_x = ops.cast(ops.tile(ops.arange(k), k), offsets.dtype)
        rows = ops.cast(ops.arange(out_h) * s - p, offsets.dtype)[:, None, None] + tap_y
        cols = ops.cast(ops.arange(out_w) * s - p, offsets.dtype)[None, :, None] + tap_x
        return rows + offsets[..., 0 : 2 * taps : 2], cols + offsets[..., 1 : 2 * taps : 2]

    def _bilinear(self, x, rows, cols):
        """``x`` (N, H, W, C) read at fractional places (N, Ho, Wo, T), zero outside: (N, Ho, Wo, T, C)."""
        h, w, c = x.shape[1:]
        flat = ops.reshape(x, (-1, h * w, c))
        y0, x0 = ops.floor(rows), ops.floor(cols)
        total = 0.0
        for dy in (0, 1):
            for dx in (0, 1):
                yy, xx = y0 + dy, x0 + dx
                weight = (1 - ops.abs(rows - yy)) * (1 - ops.abs(cols - xx))
                inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
                weight = weight * ops.cast(inside, weight.dtype)
                index = ops.cast(ops.clip(yy, 0, h - 1) * w + ops.clip(xx, 0, w - 1), "int32")
                values = ops.take_along_axis(
                    flat, ops.reshape(index, (-1, rows.shape[1] * rows.shape[2] * rows.shape[3], 1)), axis=1
                )
                total = total + ops.reshape(values, (-1, *rows.shape[1:], c)) * weight[..., None]
        return total

    def call(self, x):
        p, taps = self.padding, self.kernel_size**2
        offsets = self.offset(ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]))
        out_h, out_w = offsets.shape[1], offsets.shape[2]
        rows, cols = self._taps(offsets, out_h, out_w)
        sampled = self._bilinear(x, rows, cols)
        if self.modulated:
            sampled = sampled * ops.sigmoid(offsets[..., 2 * taps :])[..., None]
        columns = ops.reshape(sampled, (-1, out_h, out_w, taps * x.shape[-1]))
        y = ops.matmul(
            columns, ops.reshape(ops.cast(self.kernel, x.dtype), (taps * x.shape[-1], self.filters))
        )
        return y + ops.cast(self.bias, y.dtype) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1:3]
        k, s, p = self.kernel_size, self.strides, self.padding
        return (input_shape[0], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, self.filters)

    def count_macs(self, in_shape, out_shape):
        """The convolution's and the offset convolution's multiply-adds (bilinear reads not counted)."""
        positions, per_tap = out_shape[1] * out_shape[2], self.kernel_size**2 * in_shape[-1]
        return positions * per_tap * (self.filters + self.offset.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "modulated": self.modulated,
            "use_bias": self.use_bias,
        }
