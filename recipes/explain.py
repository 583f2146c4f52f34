"""Where a run's model looks: ``python -m recipes.explain RUN_DIR [IMAGE ...] [--test N]``.

Two heat maps, each upsampled to the input and laid over the image as a PNG:

- CAM, class activation mapping (Zhou et al. 2016, "Learning deep features for discriminative
  localization", https://arxiv.org/abs/1512.04150): for a model that ends in global average
  pooling followed by affine layers (NiN, GoogLeNet, ResNet, DenseNet), the class score is the
  spatial mean of a per-position score, so applying the head to every position of the last
  feature map gives the map exactly. Checked on every batch: the maps' means must equal the
  model's logits, so a model whose head is not affine is refused rather than explained wrongly.
- Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391): for any conv net, the
  feature maps of one layer (default: the last with more than one position) weighted by the
  spatial mean of the class logit's gradient, then ReLU. In a Vision Transformer the default
  layer is the last block's first layer norm (the pytorch-grad-cam project's choice): its patch
  tokens, the prefix tokens left out, laid back on the patch grid.

``--test N`` explains the first N test images of the run's data set and writes ``explain.json``
with the share of images whose heat-map peak lies on the image's bright pixels (the ink of a
digit on a dark ground; meaningful for such data only) next to the share of bright pixels (the
chance level of a peak placed at random).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from recipes.cli import run

METHODS = ("cam", "gradcam")
SWEEP = (0.1, 0.25, 0.5)  # ink thresholds also reported, so that the measure's dependence on one shows


@functools.lru_cache(maxsize=8)
def _cam_parts(model):
    """(features model, head model): input -> last map before global average pooling; pooled
    vector -> logits. Built once per model, not once per batch."""
    import keras

    from modelzoo.validation import UserError

    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise UserError(
            f"CAM needs a model that ends in global average pooling; {model.name!r} has none "
            "(use --method gradcam)."
        )
    pool = pools[-1]
    return keras.Model(model.input, pool.input), _tail(model, pool.output)


def _has_cam(model) -> bool:
    try:
        _cam_parts(model)
    except ValueError:
        return False
    return True


def _tail(model, tensor):
    """The part of ``model`` from an inner ``tensor`` to the logits, as a callable (identity when
    the tensor is the logits, as in NiN, whose pooled class maps are the scores)."""
    import keras

    from recipes.trainer import logits_tensor

    logits = logits_tensor(model)
    if tensor is logits:
        return lambda v, training=False: v
    return keras.Model(tensor, logits)


def cam(model, x, classes):
    """CAM of ``classes`` (one per image) on the last feature map: (N, h, w), and the logits."""
    import numpy as np

    from modelzoo.validation import UserError

    features, head = _cam_parts(model)
    maps = np.asarray(features(x, training=False))
    n, h, w, c = maps.shape
    per_position = np.asarray(head(maps.reshape(n * h * w, c), training=False)).reshape(n, h, w, -1)
    logits = np.asarray(head(maps.mean(axis=(1, 2)), training=False))
    if not np.allclose(
        per_position.mean(axis=(1, 2)), logits, rtol=1e-3, atol=1e-3 * max(1.0, np.abs(logits).max())
    ):
        raise UserError(
            f"the layers after global average pooling in {model.name!r} are not affine, so CAM does not "
            "apply (use --method gradcam)."
        )
    bias = np.asarray(head(np.zeros((1, c), "float32"), training=False))[0]
    scores = per_position - bias  # the paper's sum_k w_k^c f_k(x, y)
    return scores[np.arange(n), :, :, classes], logits


def token_grid(model):
    """A Vision Transformer's (prefix tokens, patch grid), read off its position embedding; None
    for a conv net."""
    from modelzoo.models.vit import PositionEmbedding

    for layer in model.layers:
        if isinstance(layer, PositionEmbedding):
            return layer.prefix, layer.grid
    return None


def _is_token_map(shape, tokens) -> bool:
    """A (N, prefix + h w, D) output of a model with ``tokens`` = (prefix, (h, w))."""
    return tokens is not None and len(shape) == 3 and shape[1] == tokens[0] + tokens[1][0] * tokens[1][1]


def default_gradcam_layer(model) -> str:
    """The last layer whose output is a feature map with more than one position; in a Vision
    Transformer, its last block's first layer norm (the patch tokens as a grid: after the last
    block's attention they no longer reach the class token, so their gradient is zero)."""
    import keras

    from modelzoo.validation import UserError

    tokens = token_grid(model)
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            break
        shape = layer.output.shape
        if (
            tokens is not None
        ):  # the last block's first layer norm: its patch tokens still reach the class token
            norm1 = isinstance(layer, keras.layers.LayerNormalization) and layer.name.endswith("norm1")
            if norm1 and _is_token_map(shape, tokens):
                return layer.name
        elif shape and len(shape) == 4 and (shape[1] or 0) * (shape[2] or 0) > 1:
            return layer.name
    raise UserError(
        f"{model.name!r} has no feature map with more than one position: CAM and Grad-CAM need a conv net."
    )


@functools.lru_cache(maxsize=8)
def _gradcam_parts(model, layer: str):
    """A compiled function: (images, classes) -> the layer's maps, the class logit's gradient
    with respect to them, and the logits. Compiled, so only the gradient that is fetched is
    computed (eagerly, TF 2.21 also ran the convolutions' filter gradients, and oneDNN's CPU
    kernel for those crashed on inference-mode ResNets here)."""
    import keras
    import tensorflow as tf

    from recipes.trainer import logits_tensor

    both = keras.Model(model.input, [model.get_layer(layer).output, logits_tensor(model)])

    @tf.function
    def parts(x, classes):
        with tf.GradientTape() as tape:
            maps, logits = both(x, training=False)
            score = tf.gather(logits, classes, axis=1, batch_dims=1)
        return maps, tape.gradient(score, maps), logits

    return parts


def gradcam(model, x, classes, layer: str | None = None):
    """Grad-CAM of ``classes`` at ``layer``: (N, h, w), and the logits."""
    import numpy as np
    import tensorflow as tf

    from modelzoo.validation import UserError

    name = layer or default_gradcam_layer(model)
    try:
        target = model.get_layer(name)
    except ValueError:
        names = [lay.name for lay in model.layers if len(getattr(lay.output, "shape", ())) == 4]
        from modelzoo.validation import did_you_mean

        raise UserError(f"no layer {name!r} in {model.name!r}." + did_you_mean(name, names)) from None
    maps, grads, logits = _gradcam_parts(model, target.name)(
        tf.convert_to_tensor(x), tf.convert_to_tensor(classes)
    )
    tokens = token_grid(model)
    if _is_token_map(maps.shape, tokens):  # patch tokens back on their grid, row by row
        prefix, grid = tokens
        maps, grads = (tf.reshape(t[:, prefix:], (-1, *grid, t.shape[-1])) for t in (maps, grads))
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return np.maximum(np.asarray(tf.reduce_sum(weights * maps, axis=-1)), 0.0), np.asarray(logits)


def heatmaps(model, x, method: str, classes=None, layer: str | None = None):
    """Maps in [0, 1] at the input's size, with the classes they explain (default: the predicted
    ones) and the model's probabilities."""
    import numpy as np
    import tensorflow as tf

    from modelzoo.validation import UserError

    if method not in METHODS:
        raise UserError(f"method {method!r} is unknown; choose from {list(METHODS)}.")
    x = np.asarray(x, "float32")
    probs = np.asarray(model(x, training=False))
    classes = probs.argmax(-1) if classes is None else np.broadcast_to(np.asarray(classes), (len(x),))
    maps, _ = cam(model, x, classes) if method == "cam" else gradcam(model, x, classes, layer)
    maps = np.asarray(tf.image.resize(maps[..., None], x.shape[1:3], method="bilinear"))[..., 0]
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0), classes, probs


def bright(x, threshold: float = 0.25):
    """Pixels at or above ``threshold`` of each image's range (channels averaged): a digit's ink
    (0.25 is 4 of the 16 grey levels of scikit-learn's digits)."""
    import numpy as np

    grey = np.asarray(x, "float32").mean(axis=-1)
    low = grey.min(axis=(1, 2), keepdims=True)
    high = grey.max(axis=(1, 2), keepdims=True)
    return grey >= low + threshold * (high - low)


def peak_on(maps, mask) -> list[bool]:
    """Whether each map's highest point lies inside its mask."""
    import numpy as np

    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return [bool(m.reshape(-1)[i]) for m, i in zip(np.asarray(mask), flat)]


def save_overlay(image, heat, path, title: str):
    """The image, and the image with ``heat`` over it (jet, half transparent), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    image = np.asarray(image, "float32")
    image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
    shown = image[..., 0] if image.shape[-1] == 1 else image
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.8))
    for ax in axes:
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        ax.axis("off")
    axes[1].imshow(heat, cmap="jet", alpha=0.45)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _rows(run, images, test: int, batch_size: int) -> list:
    """(name, image, label or None) for each given image file and the first ``test`` test images,
    each prepared by the run's saved preprocessor (``run``: a ``RunFolder``)."""
    import numpy as np

    from modelzoo.validation import UserError

    rows = [(Path(f).stem, run.preprocessor.file(f), None) for f in images]  # as the run evaluates
    if test:
        xs = np.concatenate([np.asarray(x) for x, _ in run.test_batches(batch_size)])[:test]
        labels = np.asarray(run.data.test.y)[:test]
        rows += [(f"test_{i:04d}", x, int(y)) for i, (x, y) in enumerate(zip(xs, labels))]
    if not rows:
        raise UserError("nothing to explain: give IMAGE files or --test N.")
    return rows


def _explain_with(model, method, rows, x_all, layer, names, out, batch_size, threshold) -> dict:
    """One method's overlays for every row, and how often its peak lies on the bright pixels."""
    import numpy as np

    all_maps, pngs = [], 0
    for start in range(0, len(rows), batch_size):
        chunk, x = rows[start : start + batch_size], x_all[start : start + batch_size]
        maps, classes, probs = heatmaps(model, x, method, layer=layer)
        all_maps.append(maps)
        for (stem, image, label), heat, c, p in zip(chunk, maps, classes, probs):
            truth = "" if label is None else f", true {names[label]}"
            save_overlay(
                image, heat, out / f"{stem}_{method}.png", f"{method}: {names[c]} ({p[c]:.2f}){truth}"
            )
            pngs += 1
    all_maps = np.concatenate(all_maps)
    result = {
        "pngs": pngs,
        "peak_on_bright": float(np.mean(peak_on(all_maps, bright(x_all, threshold)))),
        "by_threshold": {str(t): float(np.mean(peak_on(all_maps, bright(x_all, t)))) for t in SWEEP},
    }
    if method == "gradcam":
        result["layer"] = layer
    return result


def explain(
    run_dir,
    images=(),
    *,
    methods=None,
    test: int = 0,
    out=None,
    layer: str | None = None,
    batch_size: int = 64,
    threshold: float = 0.25,
) -> dict:
    """Write overlay PNGs for ``images`` and the first ``test`` test images; return what was
    measured (also written to ``OUT/explain.json`` when ``test`` > 0)."""
    import numpy as np

    from modelzoo.validation import UserError
    from recipes.run_folder import RunFolder

    run = RunFolder(run_dir)
    cfg, model = run.cfg, run.model
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3:
        raise UserError(
            f"explain needs an image model; {cfg.model!r} in {str(run_dir)!r} takes inputs of shape {shape}."
        )
    layer = layer or default_gradcam_layer(model)
    methods = _methods(model, methods)
    names = run.class_names
    out = Path(out or Path(run_dir) / "explain")
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(run, images, test, batch_size)
    report = {
        "run_dir": str(run_dir),
        "model": cfg.model,
        "images": len(rows),
        "out": str(out),
        "methods": {},
    }
    x_all = np.stack([x for _, x, _ in rows])
    for method in methods:
        report["methods"][method] = _explain_with(
            model, method, rows, x_all, layer, names, out, batch_size, threshold
        )
    report["bright_share"] = float(bright(x_all, threshold).mean())
    report["threshold"] = threshold
    report["bright_share_by_threshold"] = {str(t): float(bright(x_all, t).mean()) for t in SWEEP}
    if test:
        (out / "explain.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _methods(model, methods) -> list[str]:
    """The methods asked for, checked; by default CAM where the model has the pooled head it
    needs, and Grad-CAM always."""
    from modelzoo.validation import UserError

    if methods is None:
        methods = [m for m in METHODS if m != "cam" or _has_cam(model)]
    methods = [methods] if isinstance(methods, str) else list(methods)
    for m in methods:
        if m not in METHODS:
            raise UserError(f"method {m!r} is unknown; choose from {list(METHODS)}.")
    return methods


def main(argv=None, prog="python -m recipes.explain") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="CAM and Grad-CAM heat maps of a run's model, as PNG overlays."
    )
    p.add_argument("run_dir", help="a finished run folder")
    p.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...) or .npy examples")
    p.add_argument(
        "--test",
        type=int,
        default=0,
        help="also explain the first N test images and measure where the peaks fall",
    )
    p.add_argument(
        "--method",
        choices=(*METHODS, "both"),
        help="default: CAM where the model ends in global average pooling, and Grad-CAM",
    )
    p.add_argument(
        "--layer",
        help="Grad-CAM's layer (default: the last feature map with more than one position; a ViT's last block)",
    )
    p.add_argument("--out", help="folder for the PNGs (default: RUN_DIR/explain)")
    p.add_argument(
        "--threshold", type=float, default=0.25, help="bright pixels: above this share of each image's range"
    )
    args = p.parse_args(argv)

    def go():
        report = explain(
            args.run_dir,
            args.images,
            methods=METHODS if args.method == "both" else args.method,
            test=args.test,
            out=args.out,
            layer=args.layer,
            threshold=args.threshold,
        )
        for method, r in report["methods"].items():
            bright = f"(bright share {report['bright_share']:.1%})"
            where = f"; peak on bright pixels in {r['peak_on_bright']:.1%} of images {bright}"
            print(f"{method}: {r['pngs']} PNGs in {report['out']}" + (where if args.test else ""))

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
