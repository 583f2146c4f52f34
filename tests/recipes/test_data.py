"""Data sets load through their real code; pipelines keep an exact, seeded order."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from recipes.data import base, pipeline, preprocess, sources, tfds_sets


def test_embedded_digits_split_is_stratified_and_seeded():
    d = sources.load("digits")
    assert d.kind == "image" and d.feature_shape == (8, 8, 1) and d.num_classes == 10
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert 0.0 <= d.train.x.min() and d.train.x.max() <= 1.0
    assert np.bincount(d.test.y).min() >= 30  # stratified: every digit in the test split
    again = sources.load("digits")
    np.testing.assert_array_equal(d.test.y, again.test.y)


def test_embedded_tabular_is_standardised_on_train_only():
    d = sources.load("breast_cancer")
    assert d.kind == "tabular" and d.feature_shape == (30,) and d.num_classes == 2
    np.testing.assert_allclose(d.train.x.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(d.test.x.mean(axis=0), 0, atol=1e-4)


def test_csv_and_its_errors(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.RandomState(0)
    rows = ["a,b,colour,label"] + [
        f"{rng.rand()},{rng.rand()},{'red' if i % 2 else 'blue'},{'yes' if i % 3 else 'no'}"
        for i in range(60)
    ]
    path.write_text("\n".join(rows))
    d = sources.load("csv", path=str(path))
    assert d.feature_shape == (4,) and d.class_names == ["no", "yes"]
    with pytest.raises(base.DataError, match="no label column 'target'.*columns"):
        sources.load("csv", path=str(path), label_column="target")
    with pytest.raises(base.DataError, match="does not exist"):
        sources.load("csv", path=str(tmp_path / "missing.csv"))


def test_folder_of_images_and_an_empty_one(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            img = tf.cast(tf.random.uniform((12, 12, 3), maxval=255, seed=i), tf.uint8)
            tf.io.write_file(str(tmp_path / "imgs" / c / f"{i}.png"), tf.io.encode_png(img))
    d = sources.load("folder", path=str(tmp_path / "imgs"))
    assert d.class_names == ["cat", "dog"] and d.feature_shape == (12, 12, 3)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(base.DataError, match="has no images"):
        sources.load("folder", path=str(tmp_path / "empty"))


def test_unknown_dataset_is_one_clear_error():
    with pytest.raises(base.DataError, match="unknown data set 'mnistt'.*Did you mean 'mnist'"):
        sources.load("mnistt")


@pytest.mark.parametrize("name", sorted(tfds_sets.TFDS))
def test_tfds_names_load_through_tfds_load(name, tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        d = sources.load(name, data_dir=str(tmp_path))
    assert len(d.train) > 0 and len(d.val) > 0 and len(d.test) > 0
    assert d.num_classes >= 2 and d.kind == tfds_sets.TFDS[name]["kind"]


def test_resumed_batches_are_the_tail_of_the_full_sequence():
    split = base.Split(np.random.RandomState(0).rand(50, 8, 8, 1).astype("float32"), np.arange(50) % 5)
    pre = preprocess.Preprocess(image_size=(10, 10), crop=True, flip=True)
    full = [x.numpy() for x, _ in pipeline.train_batches(split, batch_size=8, epochs=2, seed=3, pre=pre)]
    tail = [
        x.numpy()
        for x, _ in pipeline.train_batches(split, batch_size=8, epochs=2, seed=3, pre=pre, start_step=7)
    ]
    assert len(full) == 12 and len(tail) == 5
    for a, b in zip(full[7:], tail):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[6])  # epochs differ in order and augmentation


def test_images_of_varying_size_stay_encoded_and_are_decoded_in_the_pipeline(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        d = sources.load("imagenette", data_dir=str(tmp_path))
    assert d.feature_shape == (None, None, 3)
    assert isinstance(d.train.x[0], bytes)  # JPEG bytes, not a decoded float array
    pre = preprocess.Preprocess(image_size=(20, 20), channels=3, crop=True, flip=True)
    x, y = next(iter(pipeline.train_batches(d.train, batch_size=4, epochs=1, pre=pre, num_classes=10)))
    assert x.shape == (4, 20, 20, 3) and x.dtype == tf.float32 and y.shape == (4, 10)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    x, _ = next(iter(pipeline.eval_batches(d.test, batch_size=4, pre=pre)))
    assert x.shape == (4, 20, 20, 3)


def test_fixed_size_images_are_kept_as_uint8(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        d = sources.load("cifar10", data_dir=str(tmp_path))
    assert d.train.x.dtype == np.uint8 and d.feature_shape == (32, 32, 3)
    x, _ = next(iter(pipeline.eval_batches(d.test, batch_size=4)))
    assert x.dtype == tf.float32 and float(tf.reduce_max(x)) <= 1.0


def test_a_set_larger_than_half_the_memory_is_refused_in_memory():  # streaming: auto streams it instead
    with pytest.raises(
        base.DataError, match=r"'imagenet2012' is 9313226 GiB, more than half.*set streaming: auto"
    ):
        base.check_fits_in_memory("imagenet2012", 10**16)


def _numbered_cifar10(n_train=40, n_test=10):
    """``mock_data``'s ``as_dataset_fn`` for cifar10 that honours split slices (its own generator
    ignores them): example i of a split is an image whose first pixel is i (test: 200 + i), kept
    encoded where the reader asks (streaming) and decoded where it does not (in memory)."""
    sizes = {"train": n_train, "test": n_test}

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False, **kwargs):
        name, start, start_pct, stop, stop_pct = re.fullmatch(SLICE, split).groups()
        n = sizes[name]

        def index(value, percent, default):
            return default if not value else round(int(value) * n / 100) if percent else int(value)

        first = 200 if name == "test" else 0
        rows = [first + i for i in range(index(start, start_pct, 0), index(stop, stop_pct, n))]
        images = np.zeros((len(rows), 32, 32, 3), "uint8")
        images[:, 0, 0, 0] = rows
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.array(rows, "int64") % 10})
        if decoders:  # the streamed reader's SkipDecoding: PNG bytes, as TFDS stores them
            ds = ds.map(lambda ex: {"image": tf.io.encode_png(ex["image"]), "label": ex["label"]})
        return ds

    return as_dataset


SLICE = r"(\w+)(?:\[(\d*)(%?):(\d*)(%?)\])?"  # TFDS's split[start:stop], in examples or percent


def _identities(split) -> list[int]:
    if getattr(split, "streamed", False):
        pre = preprocess.Preprocess(image_size=(32, 32), channels=3)  # decoded, unscaled, in [0, 1]
        images = [x for x, _ in pipeline.eval_batches(split, batch_size=8, pre=pre)]
        return sorted(int(round(float(v) * 255)) for x in images for v in x[:, 0, 0, 0].numpy())
    return sorted(int(v) for v in split.x[:, 0, 0, 0])


def test_a_tfds_set_without_validation_splits_the_same_in_memory_and_streamed(tmp_path):
    # issue 31: the held-out examples depended on the medium (a seeded random sample in memory,
    # the first tenth of train when streamed); both now take TFDS's first tenth of train
    seen = {}
    with tfds.testing.mock_data(as_dataset_fn=_numbered_cifar10()):
        for streaming in (False, True):
            for seed in (0, 1):
                d = sources.load("cifar10", data_dir=str(tmp_path), streaming=streaming, seed=seed)
                seen[streaming, seed] = [_identities(s) for s in (d.train, d.val, d.test)]
    assert len(set(map(str, seen.values()))) == 1, seen
    train, val, test = seen[True, 0]
    assert val == list(range(4)) and train == list(range(4, 40)) and test == list(range(200, 210))
