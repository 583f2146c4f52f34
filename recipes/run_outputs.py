"""What a run leaves in its folder: the per-epoch log (``metrics.csv``, TensorBoard, with this
process's memory), the curves, the saved and exported model, ``summary.json`` (each worker's too,
so a person or a test can check they agree) and the weights' digest that tells bit-identical
runs apart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras

from recipes.runtime.backend import Runtime


class MemoryLog(keras.callbacks.Callback):
    """This process's resident memory at each epoch end, now and at its peak (GiB), in the epoch's
    logs (so in ``metrics.csv`` and TensorBoard): a streamed run's should stay flat."""

    def on_epoch_end(self, epoch, logs=None):
        statm = Path("/proc/self/statm")
        if logs is not None and statm.is_file():  # Linux
            import resource

            logs["rss_gb"] = os.sysconf("SC_PAGE_SIZE") * int(statm.read_text().split()[1]) / 2**30
            logs["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def log_callbacks(rt: Runtime, run_dir: Path) -> list:
    if not rt.chief:
        return []
    return [
        MemoryLog(),
        keras.callbacks.CSVLogger(str(run_dir / "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
    ]


def write_summary(rt: Runtime, run_dir: Path, summary: dict) -> None:
    """The chief's ``summary.json``; another worker's ``workers/<id>.json``: each says what it ended
    with, so a person (or a test) can check they agree."""
    path = run_dir / ("summary.json" if rt.chief else f"workers/{rt.worker_id}.json")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))


def finish(rt: Runtime, model, run_dir: Path, summary: dict, *, title: str, export: bool) -> None:
    """The chief saves the model, export, curves and summary; other workers their summary."""
    if not rt.chief:
        write_summary(rt, run_dir, summary)
        return
    summary["onednn_max_cpu_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA")  # recipes/runtime/native.py
    model.save(run_dir / "model.keras")
    if export:
        try:
            model.export(
                str(run_dir / "export" / "savedmodel"), verbose=False
            )  # `modelzoo export` writes beside it
        except Exception as err:  # export must not cost the trained model; say why it failed
            summary["export_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    plot_curves(run_dir / "metrics.csv", run_dir / "curves.png", title=title)
    write_summary(rt, run_dir, summary)


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of every weight's bytes, in order: equal digests mean bit-identical models."""
    import hashlib

    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(w.tobytes())
    return digest.hexdigest()


def plot_curves(csv_path: Path, png_path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and validation, from ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not Path(csv_path).is_file():
        return
    frame = pd.read_csv(csv_path).drop_duplicates("epoch", keep="last")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for col, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if col in frame:
                ax.plot(frame["epoch"] + 1, frame[col], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
