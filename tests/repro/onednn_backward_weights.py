"""oneDNN's AVX-512 backward-weights convolution kernel corrupts memory: a reproducer without Keras.

    python tests/repro/onednn_backward_weights.py            # crashes on an AVX-512 CPU (rc 134/139)
    ONEDNN_MAX_CPU_ISA=AVX2_VNNI_2 python tests/repro/...     # runs ("ok ...")

Seen on an AMD EPYC with AVX-512 (VNNI, BF16), TensorFlow 2.21.0, 2 cores: ``malloc(): corrupted
top size`` at a batch of 64, a segmentation fault at 8 and 32. The same fault killed PyTorch's
training of the same ResNet (its bundled oneDNN). recipes/runtime/native.py has the workaround.
"""

import sys

import tensorflow as tf

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 32
x = tf.random.normal([batch, 56, 56, 8], seed=0)  # channels last
w = tf.Variable(tf.random.normal([1, 1, 8, 16], seed=1))  # 1x1, 8 -> 16 channels
for _ in range(20):
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(x, w, strides=2, padding="SAME")
        loss = tf.reduce_sum(y * y)
    gradient = tape.gradient(loss, w)  # the weight gradient: oneDNN's backward-weights kernel
print("ok", float(tf.reduce_sum(gradient)))
