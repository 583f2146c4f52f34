"""Which examples form train, validation and test is a function of the data set and the seed
only: never of the medium (in memory or streamed), nor of the memory budget (issue 31).

Each source is loaded with ``streaming`` true, false and auto, under memory budgets of 0.1 and
100 GB and of 1 KiB (which makes ``auto`` stream), and each split's examples are compared by
content: the same examples, wherever they are held."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from recipes import config as config_lib
from recipes.data import pipeline, preprocess, sources, writer
from recipes.tasks.masked_lm import MaskedLM
from tests.recipes.test_data import _identities, _numbered_cifar10

SETTINGS = [
    dict(streaming=True),
    dict(streaming=False),
    dict(streaming="auto", memory_budget_gb=0.1),
    dict(streaming="auto", memory_budget_gb=100),
    dict(streaming="auto", memory_budget_gb=2**-20),  # 1 KiB: auto streams
]


def _fingerprints(split, size: int) -> list[str]:
    """Each example's label and pixels (as uint8), hashed; sorted, so order does not count."""
    pre = preprocess.Preprocess(image_size=(size, size), channels=3)
    out = []
    for x, y in pipeline.eval_batches(split, batch_size=16, pre=pre):
        pixels = np.round(x.numpy() * 255).astype("uint8")
        for image, label in zip(pixels, y.numpy()):
            out.append(f"{int(label)}:{hashlib.sha256(image.tobytes()).hexdigest()}")
    return sorted(out)


def _splits(data, size) -> list[list[str]]:
    return [_fingerprints(s, size) for s in (data.train, data.val, data.test)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    return writer.write_synthetic_folder(root / "images", classes=3, per_class=20, size=16, fmt="png")


def test_a_folder_splits_the_same_in_memory_and_streamed(folder):
    seen, media = {}, set()
    for setting in SETTINGS:
        data = sources.load("folder", path=str(folder), seed=3, **setting)
        media.add(data.medium["medium"])
        seen[str(setting)] = _splits(data, 16)
    assert media == {"memory", "streamed"}  # both media were tried
    first = next(iter(seen.values()))
    assert [len(s) for s in first] == [43, 5, 12] and len(set(sum(first, []))) == 60
    assert all(s == first for s in seen.values())
    assert _splits(sources.load("folder", path=str(folder), seed=4), 16) != first  # the seed does move it


def test_tfrecords_split_the_same_under_any_budget(folder, tmp_path):
    writer.write_records(str(folder), tmp_path / "records", shards=10)
    seen = [
        _splits(sources.load("tfrecord", path=str(tmp_path / "records"), seed=3, **setting), 16)
        for setting in SETTINGS
        if setting["streaming"] is not False  # TFRecord files always stream (a one-line error otherwise)
    ]
    assert [len(s) for s in seen[0]] == [42, 6, 12] and all(s == seen[0] for s in seen)


def test_a_tfds_set_without_validation_splits_the_same_under_any_budget(tmp_path):
    seen = {}
    with tfds.testing.mock_data(as_dataset_fn=_numbered_cifar10()):
        for setting in SETTINGS:
            data = sources.load("cifar10", data_dir=str(tmp_path), seed=5, **setting)
            seen[str(setting), data.medium["medium"]] = [
                _identities(s) for s in (data.train, data.val, data.test)
            ]
    assert {medium for _, medium in seen} == {"memory", "streamed"}
    assert all(s == [list(range(4, 40)), list(range(4)), list(range(200, 210))] for s in seen.values())


def test_a_csv_table_splits_the_same_under_any_setting(tmp_path):
    rows = ["label,a,b"] + [f"{i % 3},{i},{i * i % 17}" for i in range(90)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    seen = []
    for setting in SETTINGS:
        data = sources.load("csv", path=str(tmp_path / "t.csv"), seed=2, **setting)
        seen.append(
            [sorted(map(tuple, np.round(s.x, 6).tolist())) for s in (data.train, data.val, data.test)]
        )
    assert [len(s) for s in seen[0]] == [64, 8, 18] and all(s == seen[0] for s in seen)


@pytest.mark.slow  # trains for over 10 s
def test_a_text_corpus_holds_out_the_same_rows_in_memory_and_streamed(tmp_path):
    """The rows (a file's token stream cut into [CLS] ... [SEP] rows) and which of them are held
    out (every 10th of each file) are the stream's; in memory they are only held in an array."""
    import pydoc_data.topics  # the language reference's topics: real prose that ships with Python

    texts = [t.replace("\n", " ") for t in sorted(pydoc_data.topics.topics.values())[:45]]
    (tmp_path / "corpus").mkdir()
    for i in range(3):
        (tmp_path / "corpus" / f"part{i}.txt").write_text("\n".join(texts[i::3]) + "\n")
    seen, vocabularies = {}, []
    for k, setting in enumerate(SETTINGS):
        overrides = dict(
            dataset="text_files", data_path=str(tmp_path / "corpus"), sequence_length=32, vocabulary_size=300
        )
        overrides.update(batch_size=8, run_dir=str(tmp_path / f"run{k}"), **setting)
        if k >= 2:  # learned in memory and streamed alike (below); the rest reuse it, to save time
            overrides["vocabulary_file"] = str(tmp_path / "run0" / "vocab.txt")
        task = MaskedLM(config_lib.resolve("bert", overrides=overrides))
        (tmp_path / f"run{k}").mkdir()
        task.prepare(None, tmp_path / f"run{k}")
        task.write_files(tmp_path / f"run{k}")
        vocabularies.append(task.vocabulary)
        rows = (
            task.train_ids
            if task.stream is None
            else np.stack(list(task.stream.in_order().as_numpy_iterator()))
        )
        seen[str(setting), task.medium()["medium"]] = (
            sorted(r.tobytes() for r in rows),
            sorted(r.tobytes() for r in task.val_ids),
        )
    assert {medium for _, medium in seen} == {"memory", "streamed"}
    assert vocabularies[0] == vocabularies[1]  # streamed and in memory learn the same vocabulary
    first = next(iter(seen.values()))
    assert 8 * len(first[1]) < len(first[0]) < 10 * len(first[1])  # every 10th row of each file held out
    assert all(s == first for s in seen.values())
