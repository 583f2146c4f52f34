"""Classify files with a finished run's model: ``python -m recipes.predict RUN_DIR FILES...``.

Images (PNG, JPEG, BMP, GIF) are decoded, resized and channel-matched as in training; ``.npy``
files hold one example each (an image or a feature vector). Prints the top classes per file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes.cli import run


def predict(run_dir, files, top: int = 3) -> list[dict]:
    import numpy as np

    from recipes import data as data_lib
    from recipes.trainer import load_run

    cfg, model = load_run(run_dir)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    names = summary["class_names"]
    shape = tuple(model.inputs[0].shape[1:])
    rows = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise ValueError(f"no such file: {str(path)!r}")
        if path.suffix.lower() == ".npy":
            x = np.load(path, allow_pickle=False).astype("float32")
        elif path.suffix.lower() in data_lib.IMAGE_EXTENSIONS:
            x = data_lib._decode(str(path))
        else:
            raise ValueError(f"{str(path)!r}: expected an image ({', '.join(data_lib.IMAGE_EXTENSIONS)}) or a .npy file.")
        if len(shape) == 3:
            if x.ndim == 2:
                x = x[..., None]
            pre = data_lib.Preprocess(image_size=shape[:2], channels=shape[-1])
            x = data_lib._prepare(x, pre).numpy()
        if tuple(x.shape) != shape:
            raise ValueError(f"{str(path)!r} has shape {tuple(x.shape)}; the model takes {shape}.")
        probs = model.predict(x[None], verbose=0)
        probs = np.asarray(probs[0] if isinstance(probs, list) else probs)[0]
        best = np.argsort(probs)[::-1][:top]
        rows.append({"file": str(path), "top": [{"class": names[i], "probability": round(float(probs[i]), 4)} for i in best]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.predict", description=__doc__)
    p.add_argument("run_dir")
    p.add_argument("files", nargs="+")
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args(argv)

    def show():
        for row in predict(args.run_dir, args.files, args.top):
            print(row["file"] + ": " + ", ".join(f"{t['class']} ({t['probability']:.3f})" for t in row["top"]))

    return run(p.prog, show)


if __name__ == "__main__":
    sys.exit(main())
