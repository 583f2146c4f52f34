"""Post-training quantization of a finished run with Keras's own ``model.quantize``:
``python -m recipes.quantize RUN_DIR [--mode int8|int4|float8]``.

Loads the run's ``model.keras``, measures test accuracy, quantizes the weights of every layer
Keras can quantize (Dense, EinsumDense, Embedding...), measures again, and saves
``quantized_<mode>.keras`` next to the model with ``quantize_<mode>.json``: accuracy before and
after, file sizes and their ratio, the layers quantized. ``gptq`` and ``awq`` need calibration data
and are not offered here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes.cli import run

MODES = ("int8", "int4", "float8")


def quantize(run_dir, mode: str = "int8") -> dict:
    import keras

    from modelzoo.validation import UserError, did_you_mean
    from recipes.run_folder import RunFolder

    if mode not in MODES:
        raise UserError(
            f"quantization mode must be one of {list(MODES)}, got {mode!r}." + did_you_mean(mode, MODES)
        )
    run_dir = Path(run_dir)
    run = RunFolder(run_dir, compile=False)  # weights only: no optimizer state
    cfg, model, test = run.cfg, run.model, run.test_batches()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(test, verbose=0, return_dict=True)
    size = _saved_size(model)
    quantized = _quantize_layers(model, mode, cfg.model)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    after = model.evaluate(test, verbose=0, return_dict=True)
    out = run_dir / f"quantized_{mode}.keras"
    model.save(out)
    keras.saving.load_model(out, safe_mode=True, compile=False)  # it must load as it is served
    new_size = out.stat().st_size
    report = {
        "mode": mode,
        "test_accuracy_before": float(before["accuracy"]),
        "test_accuracy_after": float(after["accuracy"]),
        "accuracy_change_points": 100 * float(after["accuracy"] - before["accuracy"]),
        "float_bytes": size,
        "quantized_bytes": new_size,
        "size_ratio": new_size / size,
        "layers_quantized": quantized,
        "file": str(out),
    }
    (run_dir / f"quantize_{mode}.json").write_text(json.dumps(report, indent=2))
    print(
        f"{mode}: test accuracy {report['test_accuracy_before']:.4f} -> {report['test_accuracy_after']:.4f}; "
        f"{size:,} -> {new_size:,} bytes ({report['size_ratio']:.2f}x); {len(quantized)} layers; {out}"
    )
    return report


def _saved_size(model) -> int:
    """Bytes of the float model saved as the quantized one will be, for a fair size ratio."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        float_copy = Path(tmp) / "float.keras"
        model.save(float_copy)
        return float_copy.stat().st_size


def _quantize_layers(model, mode: str, name: str) -> list[str]:
    """Quantize ``model`` in place (Keras's ``Model.quantize``); the layers it changed, sorted."""
    import warnings

    from modelzoo import private_keras
    from modelzoo.validation import UserError

    policies = {layer.name: layer.dtype_policy.name for layer in private_keras.all_layers(model)}
    with warnings.catch_warnings():  # Keras warns once per layer it has nothing to do for
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        model.quantize(mode)
    quantized = sorted(
        layer.name
        for layer in private_keras.all_layers(model)
        if layer.dtype_policy.name != policies.get(layer.name) and mode in layer.dtype_policy.name
    )
    if not quantized:
        raise UserError(
            f"{name!r} has no layer that Keras can quantize to {mode} (Dense, EinsumDense, Embedding...)."
        )
    return quantized


def main(argv=None, prog="python -m recipes.quantize") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Post-training quantization of a run's model (Keras model.quantize)."
    )
    p.add_argument("run_dir")
    p.add_argument("--mode", default="int8", help=f"one of {', '.join(MODES)}")
    args = p.parse_args(argv)
    return run(p.prog, quantize, args.run_dir, args.mode)


if __name__ == "__main__":
    sys.exit(main())
