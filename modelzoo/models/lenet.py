"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998).

"Gradient-based learning applied to document recognition", Proc. IEEE 86(11). Layers C1-S2-C3-S4-C5-F6
as in the paper: trainable subsampling (average, times a per-map coefficient, plus a bias), the
partial C3 connection table of Table I, and the scaled tanh ``1.7159 tanh(2/3 a)`` of Appendix A.
Departure: the output layer is a dense classifier instead of Euclidean RBF units over fixed
7x12 bitmaps, which exist only for the paper's character set.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from modelzoo import blocks
from modelzoo import validation as v
from modelzoo.blocks import Stage
from modelzoo.registry import register_model

# Table I: which S2 maps (rows) feed each C3 map (columns 0..15).
C3_TABLE = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


@keras.saving.register_keras_serializable(package="modelzoo")
def lecun_tanh(x):
    """The squashing function of LeCun et al. 1998, Appendix A: ``1.7159 * tanh(2x/3)``."""
    return 1.7159 * ops.tanh(x * (2.0 / 3.0))


@keras.saving.register_keras_serializable(package="modelzoo")
class ConnectionTableConv2D(layers.Layer):
    """A valid convolution where output map ``j`` sees only the input maps in ``table[j]``.

    Only the connected weights exist (LeNet-5's C3: 1,500 weights + 16 biases); they are scattered
    into a dense kernel at each call, so the convolution itself is one ordinary ``ops.conv``.
    Weights start uniform in +-2.4/F_i (the paper's Appendix C), F_i the mean fan-in.
    """

    def __init__(self, kernel_size: int, table, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.table = tuple(tuple(int(i) for i in row) for row in table)

    def build(self, input_shape):
        cin, cout, k = int(input_shape[-1]), len(self.table), self.kernel_size
        bad = sorted({i for row in self.table for i in row if not 0 <= i < cin})
        if bad:
            raise v.UserError(f"connection table refers to input maps {bad}, but the input has {cin} maps.")
        n = sum(len(row) for row in self.table) * k * k
        fan_in = n / cout
        self.kernel = self.add_weight(
            name="kernel",
            shape=(n,),
            initializer=keras.initializers.RandomUniform(-2.4 / fan_in, 2.4 / fan_in),
        )
        self.bias = self.add_weight(name="bias", shape=(cout,), initializer="zeros")
        # Position of every dense-kernel entry in [kernel..., 0]; unconnected entries read the 0.
        index = np.full((k, k, cin, cout), n, dtype="int32")
        pos = 0
        for j, row in enumerate(self.table):
            for i in row:
                index[:, :, i, j] = np.arange(pos, pos + k * k).reshape(k, k)
                pos += k * k
        self._index = index

    def call(self, x):
        flat = ops.concatenate([self.kernel, ops.zeros((1,), dtype=self.kernel.dtype)])
        kernel = ops.take(flat, ops.convert_to_tensor(self._index))
        return ops.conv(x, ops.cast(kernel, x.dtype), padding="valid") + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        k = self.kernel_size - 1
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else h - k, None if w is None else w - k, len(self.table))

    def count_macs(self, in_shape, out_shape):
        connections = sum(len(row) for row in self.table)
        return int(np.prod(out_shape[1:3])) * connections * self.kernel_size**2

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "table": [list(r) for r in self.table],
        }


def _subsample(x, name: str):
    """S2/S4: 2x2 average, times a trainable coefficient plus a trainable bias per map, squashed."""
    x = layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    x = layers.DepthwiseConv2D(1, use_bias=True, name=name)(x)
    return layers.Activation(lecun_tanh, name=f"{name}_act")(x)


@register_model(
    paper="LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document recognition",
    year=1998,
    url="https://doi.org/10.1109/5.726791",
    reference="paper section II.B: 60,840 with RBF outputs; 60,850 here with a dense 10-way output",
    min_input_size=32,
)
def lenet5(
    num_classes=10,
    input_shape=(32, 32, 1),
    include_top=True,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    name=None,
    features_only=False,
    out_indices=None,
    *,
    connection_table=True,
):
    """LeNet-5 on 32x32 inputs (MNIST's 28x28 digits padded by 2, as in the paper).

    ``connection_table=False`` connects C3 to all six S2 maps (the common modern simplification).
    Stages: C1 (stride 1), C3 (2), C5 (4).
    """
    args = blocks.image_args(
        locals(), default_input_shape=(32, 32, 1), min_input_size=32, default_name="lenet5"
    )
    connection_table = v.check_bool("connection_table", connection_table)
    inputs = blocks.image_input(args)
    c1 = layers.Conv2D(6, 5, activation=lecun_tanh, name="c1")(inputs)
    x = _subsample(c1, "s2")
    if connection_table:
        x = ConnectionTableConv2D(5, C3_TABLE, name="c3")(x)
    else:
        x = layers.Conv2D(16, 5, name="c3")(x)
    c3 = layers.Activation(lecun_tanh, name="c3_act")(x)
    x = _subsample(c3, "s4")
    c5 = layers.Conv2D(120, 5, activation=lecun_tanh, name="c5")(x)

    def head(x):
        return blocks.fc_head(
            x,
            units=(84,),
            num_classes=args.num_classes,
            dropout_rate=args.dropout_rate,
            names=("f6", "output"),
            activation=lecun_tanh,
        )

    return blocks.assemble(args, inputs, [Stage(c1, 1), Stage(c3, 2), Stage(c5, 4)], c5, head)
