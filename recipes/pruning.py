"""Magnitude pruning during training (Zhu & Gupta 2017, "To prune, or not to prune").

Keras 3 has no maintained pruning library (tensorflow-model-optimization needs Keras 2), so this
is a small, general mechanism: every Dense, EinsumDense and Conv kernel is pruned to a target
sparsity on the polynomial schedule ``s_t = s (1 - (1 - p)^3)``, ``p`` the progress from
``prune_begin_epoch`` to ``prune_end_epoch``; the smallest-magnitude weights of each kernel are
set to zero and kept at zero after every step (the optimizer cannot revive them), so the saved
and exported model holds real zeros. Masks are recomputed from the weights themselves, so a
resumed run prunes exactly as an unbroken one.
"""

from __future__ import annotations

import gzip

import keras
import numpy as np

from modelzoo import private_keras

# The layers whose kernels are pruned (and given a config's L1/L2 penalty, ``trainer.regularize``).
KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)


def prunable_kernels(model: keras.Model) -> list:
    return [
        layer.kernel
        for layer in private_keras.all_layers(model)
        if isinstance(layer, KERNEL_LAYERS) and getattr(layer, "kernel", None) is not None
    ]


def target_sparsity(step: int, final: float, begin: int, end: int) -> float:
    """The sparsity due at ``step``: 0 before ``begin``, ``final`` from ``end`` on, cubic between."""
    if step < begin:
        return 0.0
    if step >= end:
        return final
    progress = (step - begin) / max(1, end - begin)
    return final * (1 - (1 - progress) ** 3)


class MagnitudePruning(keras.callbacks.Callback):
    """Prune every kernel to the scheduled sparsity (re-ranked every ``frequency`` steps) and keep
    the pruned weights at zero after each step."""

    def __init__(self, final_sparsity: float, begin_step: int, end_step: int, frequency: int = 10):
        super().__init__()
        self.final, self.begin, self.end, self.frequency = (
            final_sparsity,
            begin_step,
            end_step,
            max(1, frequency),
        )
        self.masks = None

    def _rank(self, sparsity: float):
        self.masks = []
        for kernel in prunable_kernels(self.model):
            w = np.abs(np.asarray(kernel))
            k = int(round(sparsity * w.size))
            if k == 0:
                self.masks.append(None)
                continue
            threshold = np.partition(w.ravel(), k - 1)[k - 1]
            self.masks.append(keras.ops.convert_to_tensor((w > threshold).astype(w.dtype)))

    def _apply(self):
        # every step: multiplied where the weights live, no copy through host memory
        for kernel, mask in zip(prunable_kernels(self.model), self.masks or []):
            if mask is not None:
                kernel.assign(keras.ops.multiply(kernel, mask))

    def on_train_begin(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step >= self.begin:  # resumed inside the schedule: masks from the restored weights
            self._rank(target_sparsity(step, self.final, self.begin, self.end))
            self._apply()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step < self.begin:
            return
        if (
            step <= self.end
            and (step - self.begin) % self.frequency == 0
            or step == self.end
            or self.masks is None
        ):
            self._rank(target_sparsity(step, self.final, self.begin, self.end))
        self._apply()


def sparsity(model: keras.Model) -> float:
    """The share of zeros over every prunable kernel."""
    kernels = [np.asarray(k) for k in prunable_kernels(model)]
    total = sum(k.size for k in kernels)
    return float(sum((k == 0).sum() for k in kernels) / total) if total else 0.0


def weights_gzip_bytes(model: keras.Model) -> int:
    """Bytes of the model's weights (float32, optimizer state excluded) after gzip: what the zeros
    buy when the model is shipped compressed."""
    raw = b"".join(np.asarray(w, "float32").tobytes() for w in model.weights)
    return len(gzip.compress(raw, compresslevel=6))
