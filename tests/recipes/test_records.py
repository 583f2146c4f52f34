"""Splits streamed from record files (TFRecord shards, a prepared TFDS split's files): the order is a
function of (seed, epoch), resume skips exactly the batches seen, each input pipeline reads only its
own files (by element, with a warning, when there are too few files), and bad input is one line."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from recipes import config as config_lib
from recipes import records as records_cli
from recipes import trainer
from recipes.data import base, pipeline, preprocess, records, sources
from recipes.tasks import classify
from tests import helpers
from tests.helpers import write_image_folder

PRE = preprocess.Preprocess(image_size=(16, 16), channels=3, crop=True, flip=True)


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """A TFDS image set prepared here (no download): 90 train and 30 test images of 3 classes,
    class c bright in channel c, of two sizes (as ImageNet's vary)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # no checksums file to look for (TFDS would import importlib_resources to find one)

    def _info(self):
        features = {
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(num_classes=3),
        }
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(90, 0), "test": self._generate_examples(30, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.RandomState(seed)
        for i in range(n):
            side = 16 if i % 2 else 20
            img = rng.randint(0, 96, (side, side, 3)).astype("uint8")
            img[..., i % 3] += 150
            yield i, {"image": img, "label": i % 3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("records") / "imgs", classes=3, per_class=40)


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "tfrecords"
    assert records_cli.main([str(folder), str(out), "--shards", "8"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    TinyImages(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=4)
    )
    return data_dir


def _digest(encoded) -> str:
    return hashlib.sha256(encoded).hexdigest()


def _examples(ds) -> list[str]:
    return [_digest(x) for x, _ in tfds.as_numpy(ds)]


def _batches(split, **options):
    return [(x.numpy(), y.numpy()) for x, y in pipeline.train_batches(split, **options)]


def test_the_writer_deals_every_image_once_into_mixed_shards(folder, shards):
    index = json.loads((shards / "records.json").read_text())
    assert (
        sum(index["counts"].values()) == 120
        and len(index["counts"]) == 8
        and index["class_names"] == ["class_000", "class_001", "class_002"]
    )
    data = sources.load("tfrecord", path=str(shards))
    every = [*data.train.files, *data.val.files, *data.test.files]
    assert sorted(every) == sorted(
        str(shards / f) for f in index["counts"]
    )  # held out by file, each file once
    assert len(data.train) + len(data.val) + len(data.test) == 120
    originals = sorted(_digest(p.read_bytes()) for p in folder.rglob("*.jpg"))
    assert (
        sorted(
            _examples(data.train.in_order())
            + _examples(data.val.in_order())
            + _examples(data.test.in_order())
        )
        == originals
    )
    labels = [y for _, y in tfds.as_numpy(data.train.open_files(data.train.files[:1], None, None))]
    assert len(set(labels)) == 3  # a shard mixes the classes


def test_a_record_stream_is_a_function_of_seed_and_epoch_and_resumes_exactly(shards):
    train = sources.load("tfrecord", path=str(shards)).train
    options = dict(batch_size=8, epochs=3, seed=1, pre=PRE, num_classes=3)
    full, again = _batches(train, **options), _batches(train, **options)
    steps = pipeline.steps_per_epoch(len(train), 8)
    assert len(full) == 3 * steps
    for (a, ya), (b, yb) in zip(full, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    resumed = _batches(train, start_step=steps + 3, **options)
    assert len(resumed) == 2 * steps - 3
    for (a, ya), (b, yb) in zip(full[steps + 3 :], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    epochs = [_examples(train.epoch(e, 1)) for e in (0, 1)]
    assert epochs[0] != epochs[1] and sorted(epochs[0]) == sorted(epochs[1])  # a new order, the same examples
    other_seed = _batches(train, **{**options, "seed": 2})
    assert not np.array_equal(full[0][0], other_seed[0][0])


def test_each_pipeline_reads_its_own_files_every_epoch(shards):
    train = sources.load("tfrecord", path=str(shards)).train
    assert len(train.files) >= 2 and train.by_file(2)
    seen = {(p, e): _examples(train.epoch(e, 7, 2, p)) for p in (0, 1) for e in (0, 1)}
    assert not set(seen[0, 0]) & set(seen[1, 0])  # disjoint halves of the files
    assert sorted(seen[0, 0] + seen[1, 0]) == sorted(_examples(train.in_order()))
    assert all(
        sorted(seen[p, 0]) == sorted(seen[p, 1]) for p in (0, 1)
    )  # the same files each epoch, reshuffled
    assert len(seen[0, 0]) == train.share(2, 0) and len(seen[1, 0]) == train.share(2, 1)
    options = dict(batch_size=8, epochs=2, seed=1, pre=PRE, num_classes=3)
    parts = [_batches(train, replicas=(2, [p]), **options) for p in (0, 1)]
    assert (
        len(parts[0]) == len(parts[1]) == 2 * pipeline.steps_per_epoch(len(train), 8)
    )  # nominal epochs on both
    assert parts[0][0][0].shape == (4, 16, 16, 3)


def test_too_few_files_shard_by_element_and_say_so(tmp_path, folder):
    assert records_cli.main([str(folder), str(tmp_path / "one"), "--shards", "1"]) == 0
    (tmp_path / "one" / "train-00000-of-00001.tfrecord").rename(tmp_path / "one" / "train-a.tfrecord")
    for split in ("validation", "test"):  # a single train file: validation and test files of their own
        assert records_cli.main([str(folder), str(tmp_path / split), "--shards", "1"]) == 0
        (tmp_path / split / "train-00000-of-00001.tfrecord").rename(tmp_path / "one" / f"{split}-a.tfrecord")
    (tmp_path / "one" / "records.json").unlink()  # no index: the records are counted
    data = sources.load("tfrecord", path=str(tmp_path / "one"))
    assert len(data.train) == len(data.val) == len(data.test) == 120 and data.num_classes == 3
    train = data.train
    assert not train.by_file(2)
    halves = [_examples(train.epoch(0, 3, 2, p)) for p in (0, 1)]
    assert not set(halves[0]) & set(halves[1]) and len(halves[0]) + len(halves[1]) == 120
    with pytest.warns(UserWarning, match="1 file\\(s\\) for 2 input pipelines: each reads every file"):
        pipeline.train_batches(train, batch_size=8, epochs=1, pre=PRE, replicas=(2, [0]))


def test_a_run_trains_on_tfrecords_and_on_a_streamed_tfds_set(shards, tiny_tfds, tmp_path):
    common = {"epochs": 4, "batch_size": 8, "learning_rate": 0.02, "verbose": 0}
    cfg = config_lib.resolve(
        "lenet5",
        overrides={
            **common,
            "dataset": "tfrecord",
            "data_path": str(shards),
            "run_dir": str(tmp_path / "rec"),
        },
    )
    summary = classify.train(cfg)
    assert summary["test_accuracy"] > 0.8 and summary["num_train"] == len(
        sources.load("tfrecord", path=str(shards)).train
    )
    # TinyImages is 90 + 30 images: a 1 KiB budget makes "auto" stream it, through TFDS's reader.
    data = sources.load("tiny_images", data_dir=tiny_tfds, memory_budget_gb=2**-20)
    assert (
        data.train.streamed
        and data.train.counts == [13, 23, 23, 22]
        and len(data.val) == 9
        and len(data.test) == 30
    )
    cfg = config_lib.resolve(
        "lenet5",
        overrides={
            **common,
            "dataset": "tiny_images",
            "data_dir": tiny_tfds,
            "memory_budget_gb": 2**-20,
            "run_dir": str(tmp_path / "tfds"),
        },
    )
    summary = classify.train(cfg)
    assert summary["test_accuracy"] > 0.8 and summary["num_train"] == 81


def test_tfds_streams_shard_by_file_and_resume_exactly(tiny_tfds):
    train = sources.load("tiny_images", data_dir=tiny_tfds, streaming=True).train
    assert len(train.files) == 4 and train.by_file(2)
    halves = [_examples(train.epoch(0, 5, 2, p)) for p in (0, 1)]
    assert not set(halves[0]) & set(halves[1]) and sorted(halves[0] + halves[1]) == sorted(
        _examples(train.in_order())
    )
    assert [len(h) for h in halves] == [train.share(2, 0), train.share(2, 1)] == [13 + 23, 23 + 22]
    options = dict(batch_size=8, epochs=2, seed=5, pre=PRE, num_classes=3)
    full = _batches(train, **options)
    resumed = _batches(train, start_step=13, **options)
    assert len(full) == 20 and len(resumed) == 7
    for (a, ya), (b, yb) in zip(full[13:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)


def test_imagenet2012_streams_under_tfds_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        data = sources.load("imagenet2012", data_dir=str(tmp_path), streaming=True)
        assert data.num_classes == 1000 and data.class_names[0] == "n01440764" and data.train.streamed
        assert len(data.train) == 24 and data.encoded_shape == (None, None, 3)
        cfg = config_lib.resolve(
            "lenet5",
            overrides={
                "dataset": "imagenet2012",
                "data_dir": str(tmp_path),
                "streaming": True,
                "image_size": 32,
                "epochs": 1,
                "batch_size": 8,
                "verbose": 0,
                "run_dir": str(tmp_path / "run"),
            },
        )
        summary = classify.train(cfg)
    assert summary["completed"] and summary["steps"] == 3 and summary["input_shape"] == [32, 32, 3]


def test_bad_record_input_is_one_line(tmp_path, shards):
    with tf.io.TFRecordWriter(str(tmp_path / "train-0.tfrecord")) as w:  # image bytes, but no label feature
        feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))}
        w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    with pytest.raises(
        base.DataError,
        match="train-0.tfrecord' has no label feature \\(looked for 'image/class/label', "
        "'label'\\); its features: \\['image/encoded'\\]",
    ):
        sources.load("tfrecord", path=str(tmp_path))
    (tmp_path / "train-0.tfrecord").write_bytes(b"not a record file at all")
    with pytest.raises(base.DataError, match="is not a TFRecord file"):
        sources.load("tfrecord", path=str(tmp_path))
    with pytest.raises(base.DataError, match="has no TFRecord files named train"):
        sources.load("tfrecord", path=str(shards.parent))  # the folder above the shards
    with pytest.raises(base.DataError, match="'tfrecord' always streams"):
        sources.load("tfrecord", path=str(shards), streaming=False)
    with pytest.raises(
        base.DataError, match="class_weight 'balanced', classes and class_fraction need an in-memory set"
    ):
        trainer.load_data(
            config_lib.resolve(
                "lenet5",
                overrides={
                    "dataset": "tfrecord",
                    "data_path": str(shards),
                    "classes": ["class_000", "class_001"],
                },
            )
        )
    with pytest.raises(
        ValueError,
        match="images of varying size and model 'mlp' takes a flat \\(784,\\) vector.*set image_size",
    ):
        trainer.load_data(
            config_lib.resolve("mlp", overrides={"dataset": "tfrecord", "data_path": str(shards)})
        )


def test_imagenet_manual_dir_missing_archives_or_a_bad_archive_are_one_line_each(tmp_path, capsys):
    """The real ``imagenet2012`` builder (no mock), through ``modelzoo train``: an empty manual dir
    is one line naming both archives (exit 2); with both present but empty, the line is the
    archive's own error, not "lacks"."""
    from recipes.train import main

    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    run = [
        "resnet50",
        "--dataset",
        "imagenet2012",
        "--data-dir",
        str(tmp_path),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert main(run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'imagenet2012' is not prepared and its manual dir" in err[0], err
    assert "lacks ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in err[0], err
    (manual / "ILSVRC2012_img_val.tar").touch()
    assert main(run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "lacks ILSVRC2012_img_train.tar (see README: Preparing ImageNet)."
    ), err
    (manual / "ILSVRC2012_img_train.tar").touch()
    assert main(run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot prepare TFDS data set 'imagenet2012' from" in err[0], err
    assert "ReadError: empty file" in err[0] and "lacks" not in err[0], err


def test_a_corrupt_jpeg_stops_the_run_naming_it_or_is_skipped_and_counted(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "imgs", classes=3, per_class=12)
    (folder / "class_001" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    from recipes.train import main

    run = [
        "lenet5",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--set",
        "dataset=folder",
        "--set",
        f"data_path={folder}",
        "--set",
        "verbose=0",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert main([*run, "--set", "streaming=true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "1 image file(s) do not decode: '" in err[0] and "class_001/broken.jpg'" in err[0]
    ), err
    assert main([*run, "--set", "bad_images=skip"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["skipped_images"] == 1 and summary["skipped_files"][0].endswith("class_001/broken.jpg")
    assert summary["num_train"] + summary["num_test"] < 36
    out = tmp_path / "rec"
    assert records_cli.main([str(folder), str(out)]) == 2  # the writer has the same policy
    assert records_cli.main([str(folder), str(out), "--bad-images", "skip", "--shards", "3"]) == 0
    assert json.loads((out / "records.json").read_text())["skipped"][0].endswith("broken.jpg")
    written = sources.load("tfrecord", path=str(out))
    assert len(written.train) + len(written.val) + len(written.test) == 36


@pytest.fixture(scope="module")
def cluster_shards(tmp_path_factory):
    """300 images in 10 shards: 7 train files (210 examples), 1 validation, 2 test."""
    root = tmp_path_factory.mktemp("cluster")
    assert (
        records_cli.main(
            [
                str(write_image_folder(root / "imgs", classes=3, per_class=100)),
                str(root / "tf"),
                "--shards",
                "10",
            ]
        )
        == 0
    )
    return root / "tf"


@pytest.fixture(scope="module")
def two_worker_run(cluster_shards, tmp_path_factory):
    from tests.recipes.test_multi_worker import _finish, _launch

    run = tmp_path_factory.mktemp("cluster") / "two"
    return run, _finish(_launch(run, ["--set", "dataset=tfrecord", "--set", f"data_path={cluster_shards}"]))


@pytest.mark.slow
def test_two_workers_stream_their_own_files_and_follow_a_one_worker_run(
    cluster_shards, two_worker_run, tmp_path
):
    import re

    import pandas as pd

    from recipes import loop
    from recipes.tasks.classify import Classify
    from tests.recipes.test_multi_worker import BATCH, EPOCHS, _digests

    run, outputs = two_worker_run
    read = []
    for out in outputs:  # each worker says which files its input pipeline reads
        line = next(line for line in out.splitlines() if re.match(r"input pipeline \d of 2 reads", line))
        read.append(set(line.split(": ", 1)[1].split(", ")))
    train = sources.load("tfrecord", path=str(cluster_shards)).train
    assert not read[0] & read[1] and read[0] | read[1] == {f.rsplit("/", 1)[1] for f in train.files}
    chief, other = _digests(run)
    assert chief["replicas"] == 2 and chief["weights_sha256"] == other["weights_sha256"]

    class SameGlobalBatches(Classify):  # one worker, fed what the two workers' pipelines give, side by side
        def batches_from(self, step, replicas=None):
            halves = [super(SameGlobalBatches, self).batches_from(step, replicas=(2, [p])) for p in (0, 1)]
            return tf.data.Dataset.zip(*halves).map(
                lambda a, b: tuple(tf.concat([u, v], 0) for u, v in zip(a, b))
            )

    cfg = config_lib.resolve(
        "lenet5",
        overrides={
            "dataset": "tfrecord",
            "data_path": str(cluster_shards),
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "checkpoint_every": 3,
            "verbose": 0,
            "run_dir": str(tmp_path / "one"),
        },
    )
    assert loop.run(SameGlobalBatches(cfg))["replicas"] == 1
    two = pd.read_csv(run / "metrics.csv")["loss"].to_numpy()
    one = pd.read_csv(tmp_path / "one" / "metrics.csv")["loss"].to_numpy()
    print("two workers", two, "one worker", one)
    np.testing.assert_allclose(two, one, rtol=1e-4)


@pytest.mark.slow
def test_sigkill_mid_epoch_of_a_two_worker_stream_then_resume_matches_the_unbroken_run(
    cluster_shards, two_worker_run, tmp_path
):
    import signal
    import subprocess

    from tests.helpers import kill_mid_epoch
    from tests.recipes.test_multi_worker import _digests, _finish, _launch

    data = ["--set", "dataset=tfrecord", "--set", f"data_path={cluster_shards}"]
    run = tmp_path / "broken"
    procs = _launch(run, data)
    steps = json.loads((two_worker_run[0] / "summary.json").read_text())["steps_per_epoch"]
    assert kill_mid_epoch(procs[1], run, steps, watch=procs[0]) is not None, (
        "finished before a worker could be killed"
    )
    try:
        procs[0].wait(timeout=30)
    except subprocess.TimeoutExpired:
        procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate()
    outputs = _finish(_launch(run, data))
    assert "resuming" in outputs[0] and "resuming" in outputs[1]
    # Each pipeline reopens the epoch its next batch is in and skips the records it had read: the same bits.
    assert _digests(run)[0]["weights_sha256"] == _digests(two_worker_run[0])[0]["weights_sha256"]


@pytest.mark.slow
def test_a_run_through_a_local_tf_data_service_is_the_run_without_it(shards, tmp_path):
    from recipes.train import main

    run = [
        "lenet5",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--set",
        "dataset=tfrecord",
        "--set",
        f"data_path={shards}",
        "--set",
        "verbose=0",
        "--set",
        "checkpoint_every=4",
    ]

    def digest(name, *args):
        """Train ``run`` with ``args`` into ``tmp_path / name``; its weights' digest."""
        assert main([*run, *args, "--run-dir", str(tmp_path / name)]) == 0
        return json.loads((tmp_path / name / "summary.json").read_text())["weights_sha256"]

    plain = digest("plain")
    assert (
        digest("service", "--data-service", "local") == plain
    )  # one worker, ShardingPolicy.OFF: the same order
    # Two workers, each building every other batch, read round robin: still the same run.
    two_workers = ("--data-service", "local", "--set", "data_service_workers=2")
    assert digest("two", *two_workers) == plain
    folder = [
        "--set",
        "dataset=folder",
        "--set",
        f"data_path={write_image_folder(tmp_path / 'imgs', per_class=12)}",
    ]
    in_process = digest("f1", *folder)
    assert digest("f2", *folder, *two_workers) == in_process
    with pytest.raises(
        ValueError, match="data_service='x:1': give 'local' or dispatcher addresses 'grpc://HOST:PORT"
    ):
        config_lib.resolve("lenet5", overrides={"data_service": "x:1"}).validate()


@pytest.mark.slow
def test_a_run_through_two_service_processes_is_the_run_without_them(shards, tmp_path):
    import socket
    import subprocess
    import sys
    import time

    from recipes.train import main
    from tests.helpers import ROOT, free_ports, subprocess_env

    ports = free_ports(2)
    nodes = [
        helpers.start(
            [sys.executable, "-m", "recipes.dataservice", "--port", str(p), "--host", "127.0.0.1"],
            env=subprocess_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for p in ports
    ]
    try:
        deadline = time.time() + 120
        for port in ports:  # until each dispatcher listens
            while socket.socket().connect_ex(("127.0.0.1", port)) and time.time() < deadline:
                time.sleep(0.2)
        run = [
            "lenet5",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--set",
            "dataset=tfrecord",
            "--set",
            f"data_path={shards}",
            "--set",
            "verbose=0",
            "--set",
            "checkpoint_every=4",
        ]
        assert main([*run, "--run-dir", str(tmp_path / "plain")]) == 0
        address = ",".join(f"grpc://127.0.0.1:{p}" for p in ports)
        assert main([*run, "--data-service", address, "--run-dir", str(tmp_path / "remote")]) == 0
    finally:
        for node in nodes:
            node.kill()
    plain, remote = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("plain", "remote"))
    assert (
        remote["weights_sha256"] == plain["weights_sha256"]
    )  # each node built every other batch, read in turn


def test_streamed_evaluation_is_normalised_and_a_label_out_of_range_is_named(shards, tmp_path):
    data = sources.load("tfrecord", path=str(shards))
    mean, std = preprocess.NORMALIZE["imagenet_mean_std"]
    plain = next(iter(pipeline.eval_batches(data.test, batch_size=4, pre=PRE)))[0].numpy()
    normed = next(
        iter(pipeline.eval_batches(data.test, batch_size=4, pre=dataclasses.replace(PRE, mean=mean, std=std)))
    )[0].numpy()
    np.testing.assert_allclose(normed, (plain - mean) / std, atol=1e-5)
    out = tmp_path / "bad"
    out.mkdir()
    jpeg = tf.io.encode_jpeg(tf.zeros((8, 8, 3), tf.uint8)).numpy()  # a real image: only the label is wrong
    counts = records.write_shards(out, "train", ((jpeg, 7) for _ in range(3)), 3, 3)  # label 7 of 3 classes
    (out / "records.json").write_text(json.dumps({"class_names": ["a", "b", "c"], "counts": counts}))
    bad = sources.load("tfrecord", path=str(out))
    with pytest.raises(tf.errors.InvalidArgumentError, match="label is outside \\[0, num_classes\\)"):
        next(iter(pipeline.train_batches(bad.train, batch_size=1, epochs=1, pre=PRE, num_classes=3)))


def test_a_class_whose_every_image_is_corrupt_is_one_line(tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=2, per_class=3)
    (folder / "class_002").mkdir()
    (folder / "class_002" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(base.DataError, match="every image of class index\\(es\\) \\[2\\] fails to decode"):
        sources.load("folder", path=str(folder), bad_images="skip")
