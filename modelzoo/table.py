"""The zoo's recorded table: each registered model's card and its counts at the default config.

Counting a model means building it (``vgg19`` has 144 million weights), and listing the whole zoo
that way took 65 s. Like timm's ``list_models``, listing reads what was recorded instead:
``table.json`` beside this module holds each model's family, task, paper, default input,
parameter counts, MACs, layer count and feature stages. ``modelzoo.model_info`` and ``modelzoo
list`` read it; this module imports no Keras until it counts. The model tests keep it true: the
card fields are compared with the registry in every run, the counts with a fresh build in the
slow run (``tests/modelzoo/test_all_models.py``).

Regenerate after adding or changing a model: ``python -m modelzoo.table`` (every model, about 3
minutes here), or ``python -m modelzoo.table NAME ...`` for those models only. README's model table
is rendered from the recorded table (``markdown``) and written between its two markers by ``python
-m modelzoo.table --readme``; a test checks that the two agree.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("table.json")
README = Path(__file__).parents[1] / "README.md"
README_MARKERS = ("<!-- model table: python -m modelzoo.table --readme -->", "<!-- end of model table -->")
CARD = ("family", "task", "paper", "year", "url", "reference", "default_input_shape")
COUNTS = (
    "params",
    "trainable_params",
    "non_trainable_params",
    "macs",
    "flops",
    "uncounted",
    "num_layers",
    "features",
)


@functools.cache
def load(path: str = str(PATH)) -> dict[str, dict[str, Any]]:
    """name -> recorded row (tuples restored: input shapes and feature-map shapes); {} without a file."""
    try:
        rows = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    for row in rows.values():
        if row["default_input_shape"] is not None:
            row["default_input_shape"] = tuple(row["default_input_shape"])
        for stage in row["features"]:
            stage["shape"] = tuple(stage["shape"])
    return rows


def card(name: str) -> dict[str, Any]:
    """The registry's card fields for ``name`` (what the table records besides the counts)."""
    from modelzoo.registry import get_entry

    entry = get_entry(name)
    return {key: getattr(entry, key) for key in CARD}


def count(name: str) -> dict[str, Any]:
    """Build ``name`` at its default config and count it (params, MACs, layers, feature stages)."""
    import keras

    from modelzoo.analysis import count_flops, count_params

    # Built in a stateless scope: the variables are made in one batch when it ends, not one by one
    # as each layer builds (8 full-size models built and counted in 11.3-11.7 s instead of
    # 12.7-15.5 s, alternating runs; the same counts).
    from modelzoo.registry import create_model, get_entry

    shape = get_entry(name).default_input_shape
    length = shape[0] if shape is not None and len(shape) == 1 else None  # a sequence model's
    with keras.StatelessScope():
        model = create_model(name)
        stats = {**count_params(model), **count_flops(model, length=length)}
        # Plain copies: the model's own entries are Keras-tracked, and keeping them would keep
        # every full-size model counted alive (19.6 GB after the test suite's builds).
        stats["features"] = [dict(f) for f in getattr(model, "feature_info", [])]
        stats["num_layers"] = len(model.layers)
        del model
    return stats


def row(name: str) -> dict[str, Any]:
    return {**card(name), **count(name)}


def write(path: Path = PATH, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Count every registered model and write the table (sorted, one model per line). ``only``
    recounts those models and any the table lacks, keeping the other rows as recorded."""
    from modelzoo.registry import list_models

    recorded = load(str(path)) if only is not None and Path(path).exists() else {}
    rows = {}
    for name in list_models():
        if name in recorded and name not in only:
            rows[name] = recorded[name]
            continue
        print(f"counting {name}", flush=True)
        rows[name] = row(name)
    lines = [f"  {json.dumps(name)}: {json.dumps(values)}" for name, values in rows.items()]
    Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")
    load.cache_clear()
    return rows


def markdown_table(headers: list[str], rows: list[list[str]], right=()) -> str:
    """A Markdown table of ready-made cells, the columns named in ``right`` right-aligned: the one
    table writer of README's model table, ``modelzoo list --format markdown`` and the benchmarks."""
    rule = "|" + "|".join("---:" if h in right else "---" for h in headers) + "|"
    body = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(["| " + " | ".join(headers) + " |", rule, *body])


def _markdown_cells(name: str, row: dict[str, Any]) -> list[str]:
    authors = row["paper"].split(",")[0]
    paper = f"[{authors} {row['year']}]({row['url']})" if row["url"] else f"{authors} {row['year']}"
    params = f"{row['trainable_params']:,} / {row['params']:,}"
    shape = "x".join(str(d) for d in row["default_input_shape"] or ())
    return [f"`{name}`", paper, params, f"{row['macs'] / 1e9:.4g}", shape, row["reference"]]


def markdown(rows: dict[str, dict[str, Any]] | None = None) -> str:
    """README's model table: one row per registered model, from the recorded counts."""
    rows = load() if rows is None else rows
    headers = ["model", "paper", "params (trainable / total)", "GMACs", "input", "count follows"]
    return markdown_table(headers, [_markdown_cells(name, row) for name, row in rows.items()])


def readme_table(text: str) -> str:
    """What stands between README's markers."""
    begin, end = README_MARKERS
    if begin not in text or end not in text:
        raise ValueError(f"README has no model table markers {begin!r} ... {end!r}.")
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def write_readme(path: Path = README) -> None:
    """Put ``markdown()`` between README's markers."""
    text = path.read_text()
    old = readme_table(text)
    path.write_text(text.replace(old, markdown(), 1))


if __name__ == "__main__":
    import sys

    if "--readme" in sys.argv[1:]:
        write_readme()
        print(f"wrote the model table in {README}")
    else:  # python -m modelzoo.table [NAME ...]: recount every model, or only those named
        write(only=sys.argv[1:] or None)
        print(f"wrote {PATH}")
