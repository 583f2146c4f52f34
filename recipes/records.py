"""Write a folder of images or a TFDS split into sharded TFRecords: ``python -m recipes.records
SOURCE OUT [--shards N]`` (``modelzoo records``). SOURCE is an ImageNet-layout folder (one
sub-folder per class) or a TFDS name (every split it has; from ``--data-dir``).

The files hold ``tf.train.Example`` records in TF Model Garden's layout (``image/encoded``: the
original JPEG/PNG bytes, not re-encoded; ``image/class/label``: the class index, from 0), dealt
round robin in a seeded order so every shard mixes the classes, plus ``records.json`` (class
names and examples per file), which ``dataset: tfrecord`` reads instead of counting the records.
A folder's images are decoded once first: a file that does not decode stops the command with
its name, or with ``--bad-images skip`` is left out and listed in ``records.json``.
"""

from __future__ import annotations

import argparse
import sys

from recipes.cli import run
from recipes.data.writer import write_records


def main(argv=None, prog="python -m recipes.records") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Write an image folder or a TFDS image set as sharded TFRecords."
    )
    p.add_argument("source", help="an ImageNet-layout folder (one sub-folder per class) or a TFDS name")
    p.add_argument("out", help="folder for the TFRecord files and records.json")
    p.add_argument(
        "--shards", type=int, default=16, help="files per split (default 16; ImageNet: 1024 train)"
    )
    p.add_argument("--data-dir", help="TFDS data directory")
    p.add_argument("--seed", type=int, default=0, help="the order examples are dealt to the shards")
    p.add_argument(
        "--bad-images", choices=("stop", "skip"), default="stop", help="a folder's image that does not decode"
    )
    args = p.parse_args(argv)

    def go():
        index = write_records(
            args.source,
            args.out,
            shards=args.shards,
            data_dir=args.data_dir,
            seed=args.seed,
            bad_images=args.bad_images,
        )
        print(
            f"wrote {sum(index['counts'].values()):,} examples in {len(index['counts'])} files to {args.out}"
            + (f"; left out {len(index['skipped'])} that do not decode" if index["skipped"] else "")
        )

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
