"""Streaming keeps memory flat: 10,000 JPEGs of 48x48 in 100 class folders (276 MB decoded as float32,
twice a 0.125 GiB budget) train for 3 epochs with the process's peak resident memory after epoch 3
within 10% of its peak after epoch 1 (``peak_rss_gb`` in ``metrics.csv``), read as a folder, as
TFRecords, and as ``imagenet2012`` under ``tfds.testing.mock_data``. Each run is a subprocess, so
the memory measured is the run's alone."""

import json
import sys

import pandas as pd
import pytest

from recipes import records
from tests import helpers
from tests.helpers import ROOT, subprocess_env, write_image_folder

pytestmark = pytest.mark.slow

CLASSES, PER_CLASS, SIZE = 100, 100, 48
RUN = [
    "mlp",
    "--epochs",
    "3",
    "--batch-size",
    "256",
    "--set",
    "verbose=0",
    "--set",
    "memory_budget_gb=0.125",
    "--set",
    "checkpoint_every=20",
    "--set",
    f"image_size={SIZE}",
]

# imagenet2012 mocked by TFDS, its splits served from the folder's JPEGs (TFDS's mock ignores the split slices).
MOCK = """
import sys
from pathlib import Path
import tensorflow as tf, tensorflow_datasets as tfds
from recipes.train import main

folder, argv = Path(sys.argv[1]), sys.argv[2:]
classes = sorted(p.name for p in folder.iterdir())
files = [(str(f), i) for i, c in enumerate(classes) for f in sorted((folder / c).glob("*.jpg"))]
validation, train = files[::10], [f for k, f in enumerate(files) if k % 10]

def split_of(self, split, decoders=None, read_config=None, shuffle_files=False):
    rows = validation if split == "validation" else train
    cut = len(rows) // 10
    rows = rows[:cut] if split == "train[:10%]" else rows[cut:] if split == "train[10%:]" else rows
    paths, labels = zip(*rows)
    ds = tf.data.Dataset.from_tensor_slices((list(paths), tf.constant(labels, tf.int64)))
    return ds.map(lambda p, y: {"image": tf.io.read_file(p), "label": y})

with tfds.testing.mock_data(as_dataset_fn=split_of):
    sys.exit(main(argv))
"""


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    return write_image_folder(
        tmp_path_factory.mktemp("memory") / "imgs", classes=CLASSES, per_class=PER_CLASS, size=SIZE
    )


def _train(cmd, run_dir) -> pd.DataFrame:
    out = helpers.run(
        cmd + ["--run-dir", str(run_dir)],
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    frame = pd.read_csv(run_dir / "metrics.csv")
    print(
        run_dir.name,
        "peak RSS GiB per epoch",
        frame["peak_rss_gb"].round(3).tolist(),
        "RSS",
        frame["rss_gb"].round(3).tolist(),
    )
    assert len(frame) == 3 and json.loads((run_dir / "summary.json").read_text())["completed"]
    return frame


def _flat(frame):
    assert frame["peak_rss_gb"].iloc[2] <= 1.10 * frame["peak_rss_gb"].iloc[0], frame
    assert frame["rss_gb"].iloc[2] <= 1.10 * frame["rss_gb"].iloc[0], frame


def test_a_streamed_folder_trains_with_flat_memory(big_folder, tmp_path):
    frame = _train(
        [
            sys.executable,
            "-m",
            "recipes.train",
            *RUN,
            "--set",
            "dataset=folder",
            "--set",
            f"data_path={big_folder}",
        ],
        tmp_path / "folder",
    )
    assert json.loads((tmp_path / "folder" / "summary.json").read_text())["num_train"] == 7_200
    _flat(frame)


def test_the_same_set_as_tfrecords_trains_with_flat_memory(big_folder, tmp_path):
    assert records.main([str(big_folder), str(tmp_path / "tf"), "--shards", "32"]) == 0
    cmd = [
        sys.executable,
        "-m",
        "recipes.train",
        *RUN,
        "--set",
        "dataset=tfrecord",
        "--set",
        f"data_path={tmp_path / 'tf'}",
    ]
    _flat(_train(cmd, tmp_path / "records"))


def test_the_same_set_as_mocked_imagenet2012_trains_with_flat_memory(big_folder, tmp_path):
    cmd = [
        sys.executable,
        "-c",
        MOCK,
        str(big_folder),
        *RUN,
        "--set",
        "dataset=imagenet2012",
        "--set",
        "streaming=true",
        "--set",
        f"data_dir={tmp_path / 'tfds'}",
    ]
    frame = _train(cmd, tmp_path / "imagenet")
    summary = json.loads((tmp_path / "imagenet" / "summary.json").read_text())
    assert (
        summary["num_train"] == 8_100 and summary["num_test"] == 1_000 and len(summary["class_names"]) == 1000
    )
    _flat(frame)
