"""Classify files with a finished run's model: ``python -m recipes.predict RUN_DIR FILES...``.

Images (PNG, JPEG, BMP, GIF) are decoded, resized and channel-matched as in training; ``.npy``
files hold one example each (an image or a feature vector). For a text model, each ``.txt`` file
is one text (or pass ``--text "..."``), tokenized with the run's own ``vocab.txt`` and sequence
length exactly as in training. Prints the top classes per input.

For a translation run, each line of each file, and each ``--text``, is one sentence, translated
with the run's own SentencePiece model by beam search (the run's ``beam_size`` and
``length_penalty``, or ``--beam-size``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes.cli import run


def predict(run_dir, files=(), top: int = 3, texts=()) -> list[dict]:
    """Top-``top`` classes for each file (and each string of ``texts``, for text models), each
    prepared by the run's saved preprocessor, as the run evaluated its test split."""
    import numpy as np

    from modelzoo.validation import UserError
    from recipes.run_folder import RunFolder

    run = RunFolder(run_dir)
    prep = run.preprocessor
    if prep.kind == "text":
        inputs = _text_inputs(prep, files, texts)
    elif texts:
        raise UserError(
            f"--text needs a text model; {run.cfg.model!r} in {str(run_dir)!r} was trained on {run.cfg.dataset!r}."
        )
    else:
        inputs = [(str(f), prep.file(f)[None]) for f in files]
    rows = []
    for label, x in inputs:
        probs = run.model.predict(x, verbose=0)
        probs = np.asarray(probs[0] if isinstance(probs, list) else probs)[0]
        best = np.argsort(probs)[::-1][:top]
        rows.append(
            {
                "file": label,
                "top": [
                    {"class": prep.class_names[i], "probability": round(float(probs[i]), 4)} for i in best
                ],
            }
        )
    return rows


def translate(run_dir, files=(), texts=(), beam_size: int | None = None) -> list[dict]:
    """Each line of ``files`` and each string of ``texts`` translated by a translation run."""
    from modelzoo.validation import UserError
    from recipes.tasks.translate import translator

    task = translator(run_dir)
    sources = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise UserError(f"no such file: {str(path)!r}")
        sources += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    sources += list(texts)
    beams = beam_size or task.cfg.beam_size
    return [
        {"source": s, "translation": t}
        for s, t in zip(sources, task.translate(sources, beams, task.cfg.length_penalty))
    ]


def _text_inputs(prep, files, texts) -> list[tuple]:
    """(label, model input) per text file and per string."""
    from modelzoo.validation import UserError

    labelled = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise UserError(f"no such file: {str(path)!r}")
        labelled.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
    labelled += [(repr(t if len(t) <= 40 else t[:37] + "..."), t) for t in texts]
    return [(label, prep.texts([t])) for label, t in labelled]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.predict", description=__doc__)
    p.add_argument("run_dir")
    p.add_argument("files", nargs="*", help="images, .npy examples, or .txt files for a text model")
    p.add_argument("--text", action="append", default=[], help="a text to classify (text models; repeatable)")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--beam-size", dest="beam_size", type=int, help="translation: beams (default: the run's)")
    args = p.parse_args(argv)
    if not args.files and not args.text:
        p.error("give FILES or --text")

    def show():
        if (Path(args.run_dir) / "sentencepiece.model").is_file():  # a translation run
            for row in translate(args.run_dir, args.files, args.text, args.beam_size):
                print(f"{row['source']} -> {row['translation']}")
            return
        for row in predict(args.run_dir, args.files, args.top, texts=args.text):
            print(
                row["file"] + ": " + ", ".join(f"{t['class']} ({t['probability']:.3f})" for t in row["top"])
            )

    return run(p.prog, show)


if __name__ == "__main__":
    sys.exit(main())
