"""Shared by the tests that run recipes in subprocesses and kill them."""

import os
import signal
import time
from pathlib import Path


from recipes.checkpoint import latest_step

ROOT = Path(__file__).resolve().parents[1]


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def subprocess_env(**extra) -> dict:
    """The environment for a recipe subprocess: this checkout importable, TensorFlow quiet."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def kill_mid_epoch(victim, run_dir: Path, steps_per_epoch: int, *, watch=None, timeout: float = 300) -> int | None:
    """SIGKILL ``victim`` once ``run_dir``'s latest checkpoint lies inside epoch 2 (past the first
    epoch, not on an epoch boundary); return that step, or None if ``watch`` (default: the victim)
    ended first or ``timeout`` passed."""
    watch = watch or victim
    deadline = time.time() + timeout
    while time.time() < deadline and watch.poll() is None:
        step = latest_step(Path(run_dir) / "checkpoints") or 0
        if step > steps_per_epoch and step % steps_per_epoch:
            victim.send_signal(signal.SIGKILL)
            return step
        time.sleep(0.02)
    return None


def write_image_folder(root: Path, *, classes: int = 3, per_class: int = 20, size: int = 16, fmt: str = "jpeg") -> Path:
    """An ImageNet-layout folder (one sub-folder of images per class) whose classes are learnable:
    class c's images are bright in channel c, noise elsewhere."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.RandomState(0)
    encode = tf.io.encode_jpeg if fmt == "jpeg" else tf.io.encode_png
    for c in range(classes):
        folder = Path(root) / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.randint(0, 96, size=(size, size, 3)).astype("uint8")
            img[..., c % 3] += 150
            tf.io.write_file(str(folder / f"{i:05d}.{'jpg' if fmt == 'jpeg' else 'png'}"), encode(img))
    return Path(root)
