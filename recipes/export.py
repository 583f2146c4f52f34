"""A finished run's model for serving, checked by the runtime that will serve it:
``modelzoo export RUN_DIR --format savedmodel|litert|onnx [--quantize int8|float16] [--fold-bn]``.

- ``savedmodel``: TensorFlow's SavedModel whose default signature takes the raw input (uint8
  images of any size, encoded image files, strings for a text model) and does the run's
  preprocessing in the graph (``recipes.serving``); served by TensorFlow (Serving).
- ``litert``: a ``.tflite`` file from TensorFlow's converter through ``model.export(format=
  "litert")``, float32, float16 weights, or full-integer int8 calibrated on examples of the run's
  training split; served by the ``ai-edge-litert`` interpreter with XNNPACK.
- ``onnx``: through ``tf2onnx`` (``model.export(format="onnx")``); served by ``onnxruntime``.

``--fold-bn`` first folds every batch norm into the convolution before it
(``modelzoo.surgery.fold_batch_norm``) and keeps that model as ``export/folded.keras``.

Each export is run by its own runtime on the run's test split and compared with the Keras model
the run trained (unfolded): the largest difference of the outputs, its share of the largest
output, both top-1 accuracies and how often they agree, in ``export/<name>/report.json`` (name:
the format, then the quantization and ``folded`` where asked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from recipes.cli import run

FORMATS = ("savedmodel", "litert", "onnx")
QUANTIZE = ("int8", "float16")
CALIBRATION_EXAMPLES = 200  # int8: training examples the converter measures ranges on
EXTRA = "pip install 'modelzoo[export]' (ai-edge-litert, tf2onnx, onnxruntime)"


def export(run_dir, fmt: str = "savedmodel", quantize: str | None = None, fold_bn: bool = False) -> dict:
    """Export the run's model as ``fmt``, verify it on the test split, write its report; the report."""
    from recipes.run_folder import RunFolder

    _check_choices(fmt, quantize)
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir, compile=False)
    name = "_".join([fmt, *([quantize] if quantize else []), *(["folded"] if fold_bn else [])])
    out = run_dir / "export" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    model, pairs = folder.model, []
    if fold_bn:
        from modelzoo.surgery import fold_batch_norm

        model, pairs = fold_batch_norm(model)
        model.save(run_dir / "export" / "folded.keras")
    began = time.monotonic()
    calibrate = calibration(folder) if quantize == "int8" else None
    predict, files, runtime = WRITERS[fmt](model, out, quantize, folder.preprocessor, calibrate)
    seconds = round(time.monotonic() - began, 1)
    x, labels = test_arrays(folder)
    report = {
        "format": fmt,
        "quantize": quantize,
        "folded_batch_norms": len(pairs) if fold_bn else None,
        "runtime": runtime,
        "files": {str(f.relative_to(out)): f.stat().st_size for f in files},
        "export_seconds": seconds,
        **compare(_batched(folder.model.predict_on_batch, x), _batched(predict, x), labels),
    }
    if fmt == "savedmodel":
        report["raw_input"] = raw_input_check(out, folder)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _check_choices(fmt: str, quantize: str | None) -> None:
    from modelzoo.validation import UserError, did_you_mean

    if fmt not in FORMATS:
        raise UserError(
            f"export format must be one of {list(FORMATS)}, got {fmt!r}." + did_you_mean(fmt, FORMATS)
        )
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {list(QUANTIZE)}, got {quantize!r}.")
    if quantize is not None and fmt != "litert":
        raise UserError(f"--quantize {quantize} is for --format litert; {fmt} exports float32.")


def test_arrays(folder) -> tuple:
    """The run's test split as the model takes it (arrays, or a dict of arrays) and its labels."""
    xs, ys = [], []
    for x, y in folder.test_batches():
        xs.append(x)
        ys.append(np.argmax(np.asarray(y[0] if isinstance(y, tuple) else y), axis=-1))
    import keras

    x = keras.tree.map_structure(lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *xs)
    return x, np.concatenate(ys)


def _batched(predict, x, batch: int = 32) -> np.ndarray:
    import keras

    n = len(keras.tree.flatten(x)[0])
    rows = [slice(i, i + batch) for i in range(0, n, batch)]
    parts = [predict(keras.tree.map_structure(lambda a, r=r: a[r], x)) for r in rows]
    return np.concatenate([np.asarray(p, "float32") for p in parts])


def compare(expected: np.ndarray, got: np.ndarray, labels: np.ndarray) -> dict:
    """How far the export's outputs are from the Keras model's, and what that does to top-1."""
    difference = float(np.abs(got - expected).max())
    largest = float(np.abs(expected).max())
    return {
        "test_examples": int(len(labels)),
        "max_abs_difference": difference,
        "max_abs_output": largest,
        "relative_difference": difference / largest if largest else difference,
        "keras_accuracy": float((expected.argmax(-1) == labels).mean()),
        "export_accuracy": float((got.argmax(-1) == labels).mean()),
        "top1_agreement": float((expected.argmax(-1) == got.argmax(-1)).mean()),
    }


# ---- the formats: each writes ``model`` into ``out`` and returns (predict, files, runtime), where
# predict runs the written files in their runtime; the benchmark calls them on models of no run


def savedmodel(model, out: Path, quantize=None, preprocessor=None, calibrate=None):
    """A SavedModel with the raw-input signatures of ``preprocessor``'s run (``serve_features``
    alone without one)."""
    import tensorflow as tf

    from recipes import serving

    endpoints = serving.write(model, preprocessor, out)
    loaded = tf.saved_model.load(str(out))  # held: its functions need its variables

    def predict(x):
        return loaded.serve_features(x).numpy()

    files = [f for f in out.rglob("*") if f.is_file()]
    return predict, files, {"tensorflow": tf.__version__, "signatures": endpoints}


def litert(model, out: Path, quantize=None, preprocessor=None, calibrate=None):
    """A ``.tflite`` file in float32, with float16 weights, or full-integer int8 calibrated on the
    examples ``calibrate()`` yields; run by the LiteRT interpreter on every core."""
    import tensorflow as tf

    try:
        from ai_edge_litert import __version__ as litert_version
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise _missing("LiteRT export", "ai_edge_litert") from None
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "float16":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    elif quantize == "int8":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": calibrate,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        }
    path = out / "model.tflite"
    model.export(str(path), format="litert", verbose=False, **options)
    runner = Interpreter(model_path=str(path), num_threads=os.cpu_count()).get_signature_runner()
    names = list(runner.get_input_details())

    def predict(x):
        feed = x if isinstance(x, dict) else {names[0]: x}
        (output,) = runner(**{k: np.asarray(v) for k, v in feed.items()}).values()
        return output

    runtime = {"ai_edge_litert": litert_version, "threads": os.cpu_count(), "delegate": "XNNPACK (default)"}
    return predict, [path], runtime


def calibration(folder):
    """int8's representative data set: the first examples of the run's training split, prepared
    as evaluation prepares them (no augmentation), one at a time."""
    from recipes.data import pipeline
    from recipes.trainer import batch_options

    pre = folder.preprocessor.evaluation()
    train = folder.data.train
    options = batch_options(folder.data, pre, len(folder.model.outputs))

    def examples():
        seen = 0
        for x, _ in pipeline.eval_batches(train, batch_size=1, **options):
            # by name: the converter's input order is not the model's (a BERT's token ids went to
            # its segment embedding's gather: "gather index out of bounds")
            yield {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else [x]
            seen += 1
            if seen >= CALIBRATION_EXAMPLES:
                return

    return examples


def onnx(model, out: Path, quantize=None, preprocessor=None, calibrate=None):
    """An ONNX graph by tf2onnx, run by onnxruntime's CPU provider."""
    import tensorflow as tf

    try:
        import onnxruntime
        import tf2onnx
    except ImportError:
        raise _missing("ONNX export", "tf2onnx and onnxruntime") from None
    from modelzoo.validation import UserError

    path = out / "model.onnx"
    try:
        from recipes.serving import feature_signature

        model.export(str(path), format="onnx", verbose=False, input_signature=[feature_signature(model)])
    except Exception as err:  # the converter's own failure on this model or TensorFlow version
        raise UserError(
            f"tf2onnx {tf2onnx.__version__} could not convert this model on TensorFlow {tf.__version__}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def predict(x):
        if not isinstance(x, dict):
            return session.run(None, {names[0]: np.asarray(x)})[0]
        # tf2onnx names a dict's entries args_0_<key>
        return session.run(
            None, {n: np.asarray(x[n if n in x else n.removeprefix("args_0_")]) for n in names}
        )[0]

    runtime = {"onnxruntime": onnxruntime.__version__, "tf2onnx": tf2onnx.__version__}
    return predict, [path], runtime


WRITERS = {"savedmodel": savedmodel, "litert": litert, "onnx": onnx}


def _missing(what: str, modules: str):
    from modelzoo.validation import UserError

    return UserError(f"{what} needs {modules}: {EXTRA}.")


def raw_input_check(out: Path, folder, n: int = 16) -> dict:
    """The default signature on raw input against the run's own preprocessing in Python (the
    ``predict`` path): the first test images as uint8, or the first test texts, or rows."""
    import tensorflow as tf

    served = tf.saved_model.load(str(out)).signatures["serving_default"]
    pre = folder.preprocessor
    if pre.kind == "text":
        raw = _raw_texts(folder.cfg, n)
        model_input, given = pre.texts(raw), tf.constant(raw)
    elif pre.kind == "image":
        rows = np.asarray(folder.data.test.x[:n])
        if rows.dtype != np.uint8 and not np.issubdtype(rows.dtype, np.floating):
            return {"skipped": f"the test split holds {rows.dtype} images, not arrays"}
        raw = rows if rows.dtype == np.uint8 else np.round(np.clip(rows, 0, 1) * 255).astype("uint8")
        model_input, given = np.stack([pre.example(r / 255.0) for r in raw]), tf.constant(raw)
    else:
        raw = np.asarray(folder.data.test.x[:n], "float32")
        model_input, given = np.stack([pre.example(r) for r in raw]), tf.constant(raw)
    (got,) = served(given).values()
    expected = np.asarray(folder.model.predict_on_batch(model_input))
    return {"examples": len(raw), "max_abs_difference": float(np.abs(got.numpy() - expected).max())}


def _raw_texts(cfg, n: int) -> list[str]:
    """The first ``n`` test texts of the run's data set, untokenized (the split is the run's)."""
    from recipes.trainer import source_data

    return [str(t) for t in source_data(cfg).test.x[:n]]


def main(argv=None, prog="python -m recipes.export") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Export a run's model for serving and verify it with its own runtime."
    )
    p.add_argument("run_dir")
    p.add_argument("--format", default="savedmodel", help=f"one of {', '.join(FORMATS)}")
    p.add_argument("--quantize", default=None, help=f"litert only: one of {', '.join(QUANTIZE)}")
    p.add_argument("--fold-bn", action="store_true", help="fold batch norms into the convolutions first")
    args = p.parse_args(argv)

    def go():
        report = export(args.run_dir, args.format, args.quantize, args.fold_bn)
        print(
            f"{args.format}{' ' + args.quantize if args.quantize else ''}: max |difference| "
            f"{report['max_abs_difference']:.3g} ({report['relative_difference']:.2g} of the largest output), "
            f"test accuracy {report['export_accuracy']:.4f} (Keras {report['keras_accuracy']:.4f}); "
            f"{Path(args.run_dir) / 'export'}"
        )

    return run(p.prog, go)


if __name__ == "__main__":
    sys.exit(main())
