"""Throughput of zoo models against the references a user would otherwise pick, side by side.

``python -m benchmarks.run [--quick | --tiny] [--out DIR]`` (also ``modelzoo bench``) measures, in
one process and with interleaved repeats so that machine noise hits both sides alike (the best
round of each side is kept: on a shared machine, noise only ever makes a round slower):

* each zoo model against its reference with the same architecture (``vgg16`` vs
  ``keras.applications.VGG16``, ``resnet50`` vs ``ResNet50``, ``densenet121`` vs ``DenseNet121``,
  ``mobilenet_v2``, ``efficientnet_b0`` and ``convnext_tiny`` vs theirs;
  ``bert_small`` and ``bert_base`` vs keras-hub's ``BertTextClassifier`` on a ``BertBackbone`` of
  the same size): inference and training-step samples per second at the same batch, input, dtype
  and compile settings, and the ratio zoo / reference;
* deploy (``deploy.csv``): the zoo's exports (SavedModel, folded; LiteRT float32 and int8; ONNX
  Runtime) served at batch 1 and 32 against keras.applications' model as a TensorFlow graph;
* peers (``peers.csv``): the zoo beside timm on PyTorch (``pip install -e ".[bench]"``) for the
  same architectures: inference and training samples/s on TensorFlow, JAX and Keras's PyTorch
  backend, and each one's ratio to timm;
* training (``training.csv``): each recipe, with its measured compile choice, against a plain
  ``model.fit`` of the same model and data with Keras's defaults;
* hardware efficiency: FLOPs per sample (counted on the built model by ``modelzoo.count_flops``;
  a training step counted as 3x the forward pass) times samples per second, over the peak FLOP/s
  of a large float32 matrix multiply measured in the same run;
* input-pipeline efficiency: steps per second of a recipe's real ``tf.data`` pipeline against the
  same model fed one cached batch (both through ``model.fit``);
* streaming (``streaming.csv``): on a generated set of JPEGs in class folders, streamed from the
  folder, from TFRecords of it and through a local tf.data service: decode images/s on 1 and 2
  cores, the streaming ratio of a model's training (steps/s streamed / steps/s on one cached
  batch), and the seconds a resumed run waits for its first batch at 90% of an epoch;
* corpus (``corpus.csv``): a pretraining corpus held in memory and streamed: the peak memory of
  preparing it at two sizes, the resumed run's wait at 90% of an epoch, and the streaming ratio;
* sharding (``sharding.csv``): parameter memory per device of the model-parallel layouts (JAX,
  simulated devices), beside data parallel's 100%;
* parameters, FLOPs, and peak accelerator memory where TensorFlow reports it.

Results go to ``results.csv`` and ``results.md`` (with the machine: CPU, cores, GPU, versions).
``--quick`` fits in about 10 minutes on 2 CPU cores (small batch and input, few repeats); the full
mode is for a GPU or TPU host, where mixed precision and XLA are on. Figures are printed, never
asserted: absolute times are noise on a shared machine, ratios measured side by side are not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import accelerator, machine, markdown, matmul_peak, settings_for
from benchmarks.corpus import CORPUS_FORMAT, bench_corpus
from benchmarks.deploy import DEPLOY_FORMAT, bench_deploy
from benchmarks.isa import ISA_FORMAT, bench_isa
from benchmarks.pairs import PAIR_FORMAT, bench_pair
from benchmarks.pipeline import PIPE_FORMAT, bench_pipeline
from benchmarks.sharding import SHARD_FORMAT, bench_sharding
from benchmarks.streaming import STREAM_FORMAT, bench_streaming

SECTIONS = ("pairs", "deploy", "isa", "peers", "training", "pipeline", "streaming", "corpus", "sharding")


def _table(result: dict, out: Path, name: str, rows: list, fmt: dict, note: str, csv: str = "") -> str:
    """A section's rows as ``result[name]`` and ``OUT/<csv or name>.csv``; its Markdown and ``note``."""
    import pandas as pd

    result[name] = pd.DataFrame(rows)
    result[name].to_csv(out / (csv or f"{name}.csv"), index=False)
    return markdown(result[name], fmt) + "\n\n" + note


def _pairs(settings, out: Path, result: dict, log) -> str:
    """Zoo/reference pairs (and the matmul peak they are measured against)."""
    import keras

    keras.mixed_precision.set_global_policy(settings.precision)
    compute_dtype = keras.mixed_precision.dtype_policy().compute_dtype
    peak = result["peak_flops"] = matmul_peak(settings.matmul_size, dtype=compute_dtype)
    log(f"matmul peak ({compute_dtype}, up to {settings.matmul_size}^2): {peak / 1e9:.1f} GFLOP/s")
    names = (*settings.pairs, *settings.text_pairs)
    rows = [row for name in names for row in bench_pair(name, settings, peak, log)]
    note = (
        "Ratios are zoo / reference samples per second, in the same run. Peak share = FLOPs per sample x "
        "samples/s / matmul peak (training counted as 3x the forward FLOPs)."
    )
    return _table(result, out, "pairs", rows, PAIR_FORMAT, note, csv="results.csv")


def _deploy(settings, out: Path, result: dict, log) -> str:
    """The zoo's exports served, against keras.applications' model as a TensorFlow graph."""
    note = (
        "Deploy: float32 images of the pairs' size (LeNet-5: 32x32x1) and random weights, copied into "
        "keras.applications' model where it has one (its row is the reference; else the zoo's Keras model "
        "as a TF graph is); each export written by `modelzoo export`'s writers, batch norms folded where "
        "the row says, int8 calibrated on the batch; samples/s from the fastest step, on every core; ratio "
        "= samples/s / the reference's; relative difference = the largest logit difference from the zoo's "
        "Keras model over its largest logit."
    )
    return _table(result, out, "deploy", bench_deploy(settings, log), DEPLOY_FORMAT, note)


def _isa(settings, out: Path, result: dict, log) -> str:
    """The cost of capping oneDNN below AVX-512 (the recipes' workaround for its crash)."""
    note = (
        "ISA: samples/s of each zoo model (the pairs' batch and input) with oneDNN's full instruction set and "
        "capped below AVX-512 (recipes/runtime/native.py: its AVX-512 backward-weights kernel crashes), each "
        "in a fresh process, alternating; ratio = capped / full."
    )
    if not settings.isa_models:
        return "ISA: not measured in this mode."
    rows = bench_isa(settings, result["mode"], log)
    if not rows:
        return "ISA: this CPU has no AVX-512, so the recipes cap nothing and nothing is measured."
    return _table(result, out, "isa", rows, ISA_FORMAT, note)


def _peers(settings, out: Path, result: dict, log) -> str:
    """The zoo beside timm on PyTorch, and on each Keras backend."""
    from benchmarks.peers import PEER_FORMAT, bench_peers, timm_installed

    if not settings.peers:
        return "Peers: not measured in this mode."
    if not timm_installed():
        return 'Peers: timm and torch are not installed (pip install -e ".[bench]").'
    note = (
        "Peers: samples/s at the pairs' batch and input, every core, each side in a fresh process, alternating; "
        "timm on PyTorch (eager); the zoo on TensorFlow with oneDNN capped below AVX-512 as the recipes run it "
        "(tensorflow) and uncapped (tensorflow_full_isa), on Keras's JAX backend (jitted) and its PyTorch "
        "backend (eager); SGD with momentum on cross-entropy; ratio = the zoo side / timm."
    )
    return _table(result, out, "peers", bench_peers(settings, result["mode"], log), PEER_FORMAT, note)


def _training(settings, out: Path, result: dict, log) -> str:
    """Each recipe against a plain ``model.fit`` of the same model and data."""
    from benchmarks.training import TRAINING_FORMAT, bench_training

    note = (
        f"Training: each recipe for {settings.training_epochs} epoch(s) with `jit_compile: auto` (picked: what "
        "its measurement chose, with both rates in steps/s) and `steps_per_execution: auto` (the count it "
        "picked, and `fit`'s steps/s at one step a call and at the count it measured against it, where the "
        "step was short enough to measure) against a plain `model.fit` of the same zoo model "
        "on the recipe's preprocessed arrays with Keras's defaults (no XLA on a CPU-only TensorFlow) and the "
        "recipe's optimizer; samples/s over each side's whole training (the recipe's: its summary's, which "
        "includes its pipeline, augmentation, checkpoints and validation), alternating rounds, fastest kept; "
        "ratio = recipe / plain; accuracy on the test split."
    )
    rows = [bench_training(recipe, settings, log) for recipe in settings.training]
    return _table(result, out, "training", rows, TRAINING_FORMAT, note)


def _pipeline(settings, out: Path, result: dict, log) -> str:
    """Each recipe's tf.data pipeline against one cached batch."""
    rows = [bench_pipeline(recipe, settings, log) for recipe in settings.pipeline]
    note = "Pipeline ratio = steps/s with the recipe's tf.data pipeline / steps/s on one cached batch."
    return _table(result, out, "pipeline", rows, PIPE_FORMAT, note)


def _streaming(settings, out: Path, result: dict, log) -> str:
    """Streamed image sets."""

    classes, per_class, size = settings.stream_set
    note = (
        f"Streaming: {classes * per_class:,} generated "
        f"{size}x{size} JPEGs in {classes} class folders (72% train), crop and flip; decode = images/s of the "
        "training pipeline alone on a private pool of 1 or 2 threads; streaming ratio = steps/s streamed / "
        "steps/s on one cached batch; first batch = seconds from building the pipeline to its first batch, "
        "from the start and resumed at 90% of an epoch."
    )
    return _table(result, out, "streaming", bench_streaming(settings, log), STREAM_FORMAT, note)


def _corpus(settings, out: Path, result: dict, log) -> str:
    """The pretraining corpus in memory and streamed."""
    note = (
        f"Corpus: the stdlib corpus repeated to "
        f"{settings.corpus_mb:g} MB in {settings.corpus_files} .txt files, masked-LM pretraining of "
        f"{settings.corpus_model} (128 tokens); peak RSS of a fresh process that prepares the corpus, at a "
        "quarter of the size and at full size (held in memory, it grows with the text; streamed, it does "
        "not); prepare = vocabulary plus the counting pass (which, in memory, also keeps the rows); first batch "
        "at 90% = the resumed run's wait (streamed: the rows before it are re-read and re-tokenized); "
        "streaming ratio = training steps/s / steps/s on one cached batch."
    )
    return _table(result, out, "corpus", bench_corpus(settings, log), CORPUS_FORMAT, note)


def _sharding(settings, out: Path, result: dict, log) -> str:
    """Model-parallel parameter memory per device."""
    note = (
        "Sharding: each model built (not trained) under "
        "model_parallel on a 1xN mesh of N simulated JAX CPU devices; device = parameter MB on the fullest "
        "device, measured from the shards; data parallel holds every parameter on every device (100%). "
        "Split otherwise = variables whose laid-out dimension N does not divide, split along another "
        "dimension (BERT's 30,522-token embedding: by its hidden columns)."
    )
    return _table(result, out, "sharding", bench_sharding(settings, log), SHARD_FORMAT, note)


SECTION_RUNS = {
    "pairs": _pairs,
    "deploy": _deploy,
    "isa": _isa,
    "peers": _peers,
    "training": _training,
    "pipeline": _pipeline,
    "streaming": _streaming,
    "corpus": _corpus,
    "sharding": _sharding,
}


def _header(mode, sections, settings, info: dict, peak) -> str:
    """The tables' first lines: the command, the sizes and settings, the machine."""
    return (
        f"Measured with `python -m benchmarks.run --mode {mode}"
        + (f" --only {' '.join(sections)}" if tuple(sections) != SECTIONS else "")
        + f"`: images batch {settings.batch_size} at {settings.image_size}x{settings.image_size}x3, text batch "
        f"{settings.text_batch_size} of {settings.sequence_length} tokens, {settings.precision}, XLA "
        f"{'on' if settings.jit_compile else 'off'}, best of {settings.repeats} interleaved rounds of "
        f"{settings.steps} steps.\n"
        f"Machine: {info['cpu']}, {info['cores']} cores, GPU: {info['gpu']}; TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}, Python {info['python']}."
        + (
            f" Matmul peak: {peak / 1e9:.1f} GFLOP/s (best square matmul up to {settings.matmul_size})."
            if peak
            else ""
        )
        + "\n"
    )


def run(mode: str = "quick", out: str | Path = "benchmarks/results", log=print, sections=SECTIONS) -> dict:
    """Run the measurements of ``mode`` (the ``sections`` asked for); write CSV and Markdown to
    ``out`` (``results.md`` for every section, else ``<sections>.md``); return the tables."""
    import keras

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        from modelzoo.validation import UserError

        raise UserError(f"unknown benchmark section(s) {unknown}; choose from {list(SECTIONS)}.")
    acc = accelerator()
    settings = settings_for(mode, acc)
    info = machine()
    log(f"benchmark mode={mode} on {info['cpu']} ({info['cores']} cores), GPU: {info['gpu']}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result, parts = {"machine": info, "mode": mode}, []
    for name in SECTIONS:
        if name == "pipeline":
            keras.mixed_precision.set_global_policy("float32")  # recipes pick their own precision
        if name in sections:
            parts.append(SECTION_RUNS[name](settings, out, result, log))
    keras.mixed_precision.set_global_policy("float32")
    header = _header(mode, sections, settings, info, result.get("peak_flops"))
    text = header + "\n" + "\n\n".join(parts) + "\n"
    (out / ("results.md" if tuple(sections) == SECTIONS else "-".join(sections) + ".md")).write_text(text)
    log("\n" + text)
    result["markdown"] = text
    return result


def main(argv=None, prog="python -m benchmarks.run") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Zoo vs reference throughput, hardware and pipeline efficiency."
    )
    p.add_argument(
        "--mode",
        choices=("tiny", "quick", "full"),
        default="quick",
        help="quick: ~10 min on 2 CPU cores; full: GPU/TPU host sizes; tiny: a smoke test",
    )
    p.add_argument(
        "--out",
        default="benchmarks/results",
        help="folder for results.csv, pipeline.csv, streaming.csv, results.md",
    )
    p.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these sections"
    )
    args = p.parse_args(argv)
    from recipes.cli import run as run_cli

    return run_cli(prog, run, args.mode, args.out, sections=tuple(args.only))


if __name__ == "__main__":
    sys.exit(main())
