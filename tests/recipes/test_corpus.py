"""Streamed pretraining corpora (``recipes.data.corpus``): text files and a TFDS text set, tokenized in
the pipeline, held out per file, sharded by file, resumed exactly; and ``streaming: auto``."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from recipes import config as config_lib
from recipes.data import base
from recipes.data import corpus as corpus_lib
from recipes.data.corpus import stdlib_corpus
from recipes.pretrain import pretrain
from recipes.tasks.masked_lm import MaskedLM

TINY = {"num_layers": 1, "hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64}
COMMON = {
    "batch_size": 16,
    "sequence_length": 32,
    "vocabulary_size": 300,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "verbose": 0,
    "model_kwargs": TINY,
}


@pytest.fixture(scope="module")
def texts():
    return [t.replace("\n", " ") for t in stdlib_corpus()[:600]]


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory, texts):
    """Four .txt files of real prose, one document per line."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(4):
        (root / f"part{i}.txt").write_text("\n".join(texts[i::4]) + "\n")
    return root


class TinyCorpus(tfds.core.GeneratorBasedBuilder):
    """A TFDS text set prepared here (no download), shaped like ``wikipedia``: title and text."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # no checksums file to look for (as test_records' TinyImages)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"title": tfds.features.Text(), "text": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, text in enumerate(stdlib_corpus()[:300]):
            yield i, {"title": f"doc {i}", "text": text}


def _task(tmp_path, **overrides):
    cfg = config_lib.resolve(
        "bert", overrides={**COMMON, "epochs": 2, "run_dir": str(tmp_path / "run"), **overrides}
    )
    task = MaskedLM(cfg)
    return task, task.prepare(None, tmp_path / "run")


def _rows(ds):
    return [x["token_ids"].numpy() for x, _, _ in ds]


@pytest.mark.slow
def test_a_streamed_corpus_holds_out_per_file_and_resumes_exactly(text_folder, tmp_path):
    task, steps = _task(tmp_path, dataset="text_files", data_path=str(text_folder), streaming=True)
    stream, counted = task.stream, task.counted
    assert len(stream.files) == 4 and steps == len(stream) // 16
    in_order = [r for r in stream.in_order().as_numpy_iterator()]
    assert len(in_order) == len(stream) == sum(counted["train_rows"])
    for train, held in zip(counted["train_rows"], counted["held_rows"]):  # every 10th row of each file
        assert held == -(-(train + held) // 10)
    assert task.val_ids.shape == (sum(counted["held_rows"]), 32)  # fewer than HELD_OUT here: all of them
    cls, sep = task.vocabulary.index("[CLS]"), task.vocabulary.index("[SEP]")
    assert (
        (task.val_ids[:, 0] == cls).all()
        and (task.val_ids[:, -1] == sep).all()
        and (np.stack(in_order)[:, -1] == sep).all()
    )
    counts = np.bincount(np.stack(in_order).ravel(), minlength=len(task.vocabulary))
    assert counts.tolist() == counted["token_counts"]  # the baseline counts the training rows only
    # every batch from step s on is the run's: in the first epoch and mid-second
    whole = task.batches_from(0)
    x, targets, weights = next(iter(whole))
    assert set(x) == {
        "token_ids",
        "segment_ids",
        "padding_mask",
        "mask_positions",
    } and targets.shape == weights.shape == (16, 5)
    full = _rows(whole)
    assert len(full) == 2 * steps and not np.array_equal(full[0], full[steps])  # epoch 2 is in another order
    for s in (5, steps + 7):
        np.testing.assert_array_equal(np.stack(full[s:]), np.stack(_rows(task.batches_from(s))))
    # two input pipelines read disjoint files, and between them every training row once an epoch
    halves = [[r.tobytes() for r in stream.epoch(0, 0, 2, p).as_numpy_iterator()] for p in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(r.tobytes() for r in in_order)
    assert len(halves[0]) == counted["train_rows"][0] + counted["train_rows"][2]
    mine = [np.stack(_rows(task.batches_from(s, replicas=(2, [1])))) for s in (0, 9)]
    np.testing.assert_array_equal(mine[0][9:], mine[1])
    # the run folder keeps the count: a resumed run reads it instead of counting again
    (tmp_path / "run").mkdir()
    task.write_files(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "corpus.json").read_text())["train_rows"] == counted["train_rows"]
    again, _ = _task(tmp_path, dataset="text_files", data_path=str(text_folder), streaming=True)
    np.testing.assert_array_equal(again.val_ids, task.val_ids)


def test_fewer_files_than_pipelines_shard_by_element_with_a_warning(text_folder, tmp_path):
    task, _ = _task(tmp_path, dataset="text_files", data_path=str(text_folder / "part0.txt"), streaming=True)
    with pytest.warns(UserWarning, match="1 file\\(s\\) for 2 input pipelines: each reads every file"):
        task.batches_from(0, replicas=(2, [0]))


@pytest.mark.slow  # trains for over 10 s
def test_in_memory_corpora_resume_exactly_and_streaming_auto_chooses_by_size(text_folder, tmp_path):
    task, steps = _task(tmp_path, dataset="text_files", data_path=str(text_folder))
    assert task.stream is None and task.files_split() is None  # 300 KB of text: in memory
    full = _rows(task.batches_from(0))
    assert len(full) == 2 * steps
    np.testing.assert_array_equal(np.stack(full[steps + 3 :]), np.stack(_rows(task.batches_from(steps + 3))))
    # two tf.data service workers' shares (batches 0, 2, 4, ... and 1, 3, 5, ...) are the run's batches, masks too
    shares = [list(task.batches_from(0, shard=(2, i))) for i in (0, 1)]
    for k, (x, targets, _) in enumerate(task.batches_from(0)):
        theirs = shares[k % 2][k // 2]
        np.testing.assert_array_equal(x["token_ids"].numpy(), theirs[0]["token_ids"].numpy())
        np.testing.assert_array_equal(targets.numpy(), theirs[1].numpy())
    assert (
        corpus_lib.streamed_source("text_files", path=str(text_folder), memory_budget_gb=2**-20) is not None
    )
    assert (
        corpus_lib.streamed_source(
            "text_files", path=str(text_folder), streaming=False, memory_budget_gb=2**-20
        )
        is None
    )
    with pytest.raises(
        base.DataError, match="'stdlib_corpus' is built in memory; streaming: true is for text_files"
    ):
        corpus_lib.streamed_source("stdlib_corpus", streaming=True)
    with pytest.raises(
        base.DataError, match="pretraining corpus must be one of .* or a TFDS text set, got 'wikipeda'"
    ):
        corpus_lib.streamed_source("wikipeda", streaming=True)


@pytest.mark.slow
def test_a_tfds_text_set_streams_from_its_prepared_files(tmp_path):
    data_dir = str(tmp_path / "tfds")
    TinyCorpus(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=3)
    )
    source = corpus_lib.streamed_source("tiny_corpus", data_dir=data_dir, streaming=True)
    assert len(source.files) == 3 and all(
        f.endswith(tuple(f"-0000{i}-of-00003" for i in range(3))) for f in source.files
    )
    summary = pretrain(
        config_lib.resolve(
            "bert",
            overrides={
                **COMMON,
                "dataset": "tiny_corpus",
                "data_dir": data_dir,
                "streaming": True,
                "epochs": 1,
                "run_dir": str(tmp_path / "run"),
            },
        )
    )
    assert summary["streamed"] and summary["held_out_loss"] < summary["held_out_loss_before"]
    assert summary["steps"] == summary["sequences"]["train"] // 16 > 0
    assert (tmp_path / "run" / "corpus.json").is_file() and (tmp_path / "run" / "held_out.npy").is_file()
