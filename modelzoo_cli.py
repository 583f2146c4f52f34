"""The ``modelzoo`` command: ``list``, ``info`` (model cards), ``train`` / ``pretrain`` /
``finetune`` / ``distill`` / ``quantize`` / ``export`` / ``explain`` / ``records`` (the recipes' CLIs), ``tune``
(the KerasTuner search) and ``bench`` (the benchmarks). It sits outside the ``modelzoo`` package
so that it can dispatch to ``recipes``, ``tuning`` and ``benchmarks`` while the model code imports none of them.

Errors print one line (``modelzoo: error: ...``) and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the CLI prints its own errors


def _import_modelzoo():
    """``modelzoo`` with its families loaded (and so Keras and TensorFlow, whose start-up chatter
    is silenced); ``modelzoo list`` never calls this."""
    from recipes.cli import import_quietly

    import_quietly("modelzoo.models")
    return import_quietly("modelzoo")


def _fmt_int(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "-"


def _list_rows(names, rows: dict, stats: bool):
    for name in names:
        row = rows[name]
        yield {
            "name": name,
            "family": row["family"],
            "params": row["params"] if stats else None,
            "gmacs": row["macs"] / 1e9 if stats else None,
            "gflops": row["flops"] / 1e9 if stats else None,
            "input": "x".join(str(d) for d in row["default_input_shape"]),
            "paper": f"{row['paper'].split(',')[0]} {row['year']}",
        }


def cmd_list(args) -> int:
    """The table from the recorded counts (``modelzoo.table``): no model is built, no Keras imported."""
    from modelzoo import registry, table

    recorded = table.load()
    kinds = {name: (row["family"], row["task"]) for name, row in recorded.items()}
    names = registry.select(kinds, args.pattern or None, family=args.family, task=args.task)
    if not names:
        raise registry.UserError(
            f"no model matches {' '.join(args.pattern) or '*'}; try `modelzoo list` with no pattern."
        )
    rows = list(_list_rows(names, recorded, stats=not args.no_stats))
    if args.format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return 0
    headers = ["name", "family", "params", "GMACs", "GFLOPs", "input", "paper"]
    cells = [_list_cells(r) for r in rows]
    if args.format == "markdown":
        print(table.markdown_table(headers, cells))
        return 0
    _print_columns(headers, cells, right={2, 3, 4})
    print(
        f"\n{len(rows)} models. MACs: multiply-accumulates per image at the default input; FLOPs = 2 x MACs."
    )
    return 0


def _list_cells(r: dict) -> list[str]:
    gmacs = "-" if r["gmacs"] is None else f"{r['gmacs']:.4g}"
    gflops = "-" if r["gflops"] is None else f"{r['gflops']:.4g}"
    return [r["name"], r["family"], _fmt_int(r["params"]), gmacs, gflops, r["input"], r["paper"]]


def _print_columns(headers: list[str], rows: list[list[str]], right: set[int]) -> None:
    """A plain-text table: columns as wide as their widest cell, those in ``right`` right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def cmd_info(args) -> int:
    modelzoo = _import_modelzoo()

    info = modelzoo.model_info(args.name)
    print(f"{info['name']}  ({info['family']}, {info['task']})")
    print(f"  paper:           {info['paper']} ({info['year']})")
    if info["url"]:
        print(f"  url:             {info['url']}")
    print(f"  default input:   {info['default_input_shape']} (min side {info['min_input_size']})")
    print(
        f"  parameters:      {info['params']:,} total = {info['trainable_params']:,} trainable"
        f" + {info['non_trainable_params']:,} non-trainable"
    )
    print(f"  count follows:   {info['reference']}")
    print(f"  compute:         {info['macs'] / 1e9:.4g} GMACs = {info['flops'] / 1e9:.4g} GFLOPs per sample")
    print(f"  layers:          {info['num_layers']}")
    print("  default config:  " + ", ".join(f"{k}={v!r}" for k, v in info["default_config"].items()))
    if info["features"]:
        print("  feature stages (features_only=True, out_indices=...):")
        for f in info["features"]:
            print(
                f"    [{f['index']}] {f['layer']:<28} channels={f['channels']:<5} "
                f"reduction={f['reduction']}  shape={f['shape']}"
            )
    if args.summary:
        modelzoo.create_model(args.name).summary(line_length=110)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelzoo", description="Paper-faithful Keras 3 models.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model: modelzoo train MODEL [options] (see modelzoo train --help)")
    sub.add_parser("pretrain", help="masked-LM pretraining of a BERT: modelzoo pretrain bert_tiny [options]")
    sub.add_parser("finetune", help="fine-tune a pretraining run: modelzoo finetune RUN_DIR [options]")
    sub.add_parser(
        "distill", help="distil a run into a smaller model: modelzoo distill TEACHER_RUN STUDENT [options]"
    )
    sub.add_parser(
        "quantize", help="post-training quantization of a run: modelzoo quantize RUN_DIR [--mode int8]"
    )
    sub.add_parser(
        "export",
        help="serve a run: modelzoo export RUN_DIR --format savedmodel|litert|onnx [--quantize int8] [--fold-bn]",
    )
    sub.add_parser(
        "explain", help="CAM / Grad-CAM heat maps over images: modelzoo explain RUN_DIR IMAGE... [--test N]"
    )
    sub.add_parser(
        "records", help="write an image folder or TFDS set as sharded TFRecords: modelzoo records SOURCE OUT"
    )
    sub.add_parser(
        "tune",
        help="search hyperparameters: modelzoo tune MODEL [--tuner hyperband ...] (see modelzoo tune --help)",
    )
    sub.add_parser("bench", help="zoo vs keras.applications throughput table (see modelzoo bench --help)")
    p = sub.add_parser("list", help="table of registered models (name, family, params, GFLOPs, paper)")
    p.add_argument("pattern", nargs="*", help="shell wildcards, e.g. 'resnet*' 'vgg1?'")
    p.add_argument("--family")
    p.add_argument("--task")
    p.add_argument("--no-stats", action="store_true", help="leave out the params and GMACs/GFLOPs columns")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="one model's card")
    p.add_argument("name")
    p.add_argument("--summary", action="store_true", help="also print the Keras layer-by-layer summary")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from recipes.cli import select_backend

    select_backend(argv)  # before Keras is imported: it reads KERAS_BACKEND once
    if argv[:1] == ["train"]:  # the recipe's own command line, unchanged
        _import_modelzoo()
        from recipes.train import main as train_main

        return train_main(argv[1:], prog="modelzoo train")
    if argv[:1] in (
        ["pretrain"],
        ["finetune"],
        ["quantize"],
        ["export"],
        ["distill"],
        ["explain"],
        ["records"],
    ):
        # those recipes' own command lines
        _import_modelzoo()
        import importlib

        module = importlib.import_module(f"recipes.{argv[0]}")
        return module.main(argv[1:], prog=f"modelzoo {argv[0]}")
    if argv[:1] == ["tune"]:  # the search's own command line
        from tuning.search import main as tune_main

        return tune_main(argv[1:], prog="modelzoo tune")
    if argv[:1] == ["bench"]:  # the benchmark's own command line
        _import_modelzoo()
        from benchmarks.run import main as bench_main

        return bench_main(argv[1:], prog="modelzoo bench")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "list":  # the list reads the recorded table, without Keras
        _import_modelzoo()
    from modelzoo.validation import UserError

    try:
        return args.func(args)
    except UserError as err:  # anything else is a bug: its traceback is kept
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"modelzoo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("modelzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
