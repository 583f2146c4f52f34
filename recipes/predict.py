"""Classify files with a finished run's model: ``python -m recipes.predict RUN_DIR FILES...``.

Images (PNG, JPEG, BMP, GIF) are decoded, resized and channel-matched as in training; ``.npy``
files hold one example each (an image or a feature vector). For a text model, each ``.txt`` file
is one text (or pass ``--text "..."``), tokenized with the run's own ``vocab.txt`` and sequence
length exactly as in training. Prints the top classes per input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes.cli import run


def predict(run_dir, files=(), top: int = 3, texts=()) -> list[dict]:
    """Top-``top`` classes for each file (and each string of ``texts``, for text models)."""
    import numpy as np

    from modelzoo.validation import UserError
    from recipes.trainer import load_run

    cfg, model = load_run(run_dir)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    names = summary["class_names"]
    vocab_file = Path(run_dir) / "vocab.txt"
    if vocab_file.is_file():
        inputs = _text_inputs(model, vocab_file, files, texts)
    elif texts:
        raise UserError(
            f"--text needs a text model; {cfg.model!r} in {str(run_dir)!r} was trained on {cfg.dataset!r}."
        )
    else:
        inputs = [(str(f), _example(Path(f), tuple(model.inputs[0].shape[1:]), cfg)[None]) for f in files]
    rows = []
    for label, x in inputs:
        probs = model.predict(x, verbose=0)
        probs = np.asarray(probs[0] if isinstance(probs, list) else probs)[0]
        best = np.argsort(probs)[::-1][:top]
        rows.append(
            {
                "file": label,
                "top": [{"class": names[i], "probability": round(float(probs[i]), 4)} for i in best],
            }
        )
    return rows


def _example(path: Path, shape: tuple, cfg):
    """One image or ``.npy`` example, prepared as the run evaluates (its centre crop and
    normalisation, from ``cfg``, the run's config)."""
    import numpy as np

    from modelzoo.validation import UserError
    from recipes.data import folder, preprocess

    _check_file(path)
    if path.suffix.lower() == ".npy":
        x = np.load(path, allow_pickle=False).astype("float32")
    elif path.suffix.lower() in folder.IMAGE_EXTENSIONS:
        x = folder.decode(str(path))
    else:
        raise UserError(
            f"{str(path)!r}: expected an image ({', '.join(folder.IMAGE_EXTENSIONS)}) or a .npy file."
        )
    if len(shape) == 3:
        if x.ndim == 2:
            x = x[..., None]
        mean, std = preprocess.NORMALIZE[cfg.normalize] if shape[-1] == 3 else (None, None)
        pre = preprocess.Preprocess(
            image_size=shape[:2],
            channels=shape[-1],
            eval_crop=cfg.eval_crop,
            mean=mean,
            std=std,
        )
        x = preprocess.features(preprocess.prepare(x, pre, evaluation=True), pre).numpy()
    if tuple(x.shape) != shape:
        raise UserError(f"{str(path)!r} has shape {tuple(x.shape)}; the model takes {shape}.")
    return x


def _text_inputs(model, vocab_file: Path, files, texts) -> list[tuple]:
    """(label, model input) per text: the run's vocabulary, length and BERT framing."""
    import numpy as np

    from recipes.data import text

    labelled = []
    for f in files:
        path = Path(f)
        _check_file(path)
        labelled.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
    labelled += [(repr(t if len(t) <= 40 else t[:37] + "..."), t) for t in texts]
    vocabulary = vocab_file.read_text().split("\n")[:-1]
    bert = isinstance(model.input, dict)
    length = (model.input["token_ids"] if bert else model.inputs[0]).shape[1]
    ids = text.text_encoder(vocabulary, length, cls_sep=bert)([t for _, t in labelled])
    rows = []
    for (label, _), row in zip(labelled, ids):
        x = row[None]
        rows.append((label, {k: np.asarray(v) for k, v in text.bert_inputs(x).items()} if bert else x))
    return rows


def _check_file(path: Path):
    from modelzoo.validation import UserError

    if not path.is_file():
        raise UserError(f"no such file: {str(path)!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.predict", description=__doc__)
    p.add_argument("run_dir")
    p.add_argument("files", nargs="*", help="images, .npy examples, or .txt files for a text model")
    p.add_argument("--text", action="append", default=[], help="a text to classify (text models; repeatable)")
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args(argv)
    if not args.files and not args.text:
        p.error("give FILES or --text")

    def show():
        for row in predict(args.run_dir, args.files, args.top, texts=args.text):
            print(
                row["file"] + ": " + ", ".join(f"{t['class']} ({t['probability']:.3f})" for t in row["top"])
            )

    return run(p.prog, show)


if __name__ == "__main__":
    sys.exit(main())
