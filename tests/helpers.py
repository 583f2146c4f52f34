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
    """An ImageNet-layout folder whose classes are learnable (``recipes.records.write_synthetic_folder``)."""
    from recipes.records import write_synthetic_folder

    return write_synthetic_folder(root, classes=classes, per_class=per_class, size=size, fmt=fmt)
