"""Text through the recipes: the embedded docstring set, a WordPiece vocabulary learned from its
training split, and TextCNN / BERT training into an ordinary run folder."""

import numpy as np
import pytest

from recipes import config as config_lib
from recipes.data import base, embedded, pipeline, sources, text
from recipes.predict import predict
from recipes.tasks.classify import train
from recipes.trainer import load_data, load_run


def test_stdlib_docs_is_real_labelled_text_that_ships_with_python():
    d = sources.load("stdlib_docs")
    assert d.kind == "text" and d.class_names == list(embedded.DOC_PACKAGES)
    assert len(d.train) + len(d.val) + len(d.test) > 1000
    assert np.bincount(d.test.y, minlength=6).min() >= 20
    assert all(isinstance(t, str) and len(t.split()) >= 5 for t in d.train.x[:50])


def test_word_piece_tokens_pad_with_zero_and_frame_bert_inputs():
    d = sources.load("stdlib_docs")
    vocab = text.word_piece_vocabulary(d.train.x, 500)
    assert vocab[:5] == list(text.SPECIAL_TOKENS) and len(vocab) <= 500
    plain = text.tokenize(d, vocab, 16)
    framed = text.tokenize(d, vocab, 16, cls_sep=True)
    assert plain.train.x.shape == (len(d.train), 16) and plain.train.x.dtype == np.int32
    assert (framed.train.x[:, 0] == vocab.index("[CLS]")).all()
    short = min(range(len(d.train)), key=lambda i: len(d.train.x[i]))
    row = framed.train.x[short]
    if (row == 0).any():  # padded: [SEP] right before the padding
        assert row[np.argmax(row == 0) - 1] == vocab.index("[SEP]")


@pytest.mark.parametrize("model", ["textcnn", pytest.param("bert_tiny", marks=pytest.mark.slow)])
def test_text_models_train_into_a_run_folder(model, tmp_path):
    overrides = {
        "epochs": 1,
        "batch_size": 32,
        "sequence_length": 32,
        "vocabulary_size": 400,
        "verbose": 0,
        "optimizer": "adam",
        "learning_rate": 0.002,
        "run_dir": str(tmp_path),
    }
    cfg = config_lib.resolve(model, overrides=overrides)
    assert cfg.dataset == "stdlib_docs"  # the text default
    summary = train(cfg)
    assert summary["completed"] and summary["test_accuracy"] > 1 / 6
    vocab = (tmp_path / "vocab.txt").read_text().split("\n")
    assert vocab[0] == "[PAD]"
    for name in ("model.keras", "metrics.csv", "summary.json", "config.yaml"):
        assert (tmp_path / name).is_file()
    # predict tokenizes a raw text exactly as training did: same probabilities as the test pipeline
    raw = sources.load("stdlib_docs", seed=cfg.seed)
    texts = list(raw.test.x[:3])
    (tmp_path / "doc.txt").write_text(texts[0])
    rows = predict(tmp_path, [tmp_path / "doc.txt"], top=6, texts=texts[1:])
    data, pre = load_data(cfg)
    _, model = load_run(tmp_path)
    batch = next(iter(pipeline.eval_batches(data.test, batch_size=3, pre=pre)))[0]
    expected = model.predict(batch, verbose=0)
    for row, probs in zip(rows, expected):
        got = {t["class"]: t["probability"] for t in row["top"]}
        assert got == {
            name: pytest.approx(float(p), abs=1e-4) for name, p in zip(summary["class_names"], probs)
        }


def test_a_text_model_on_image_data_is_one_clear_error(tmp_path):
    cfg = config_lib.resolve("textcnn", overrides={"dataset": "digits", "run_dir": str(tmp_path)})
    with pytest.raises(
        ValueError, match="dataset 'digits' holds image data; model 'textcnn' is for text_classification"
    ):
        train(cfg)
    for model, task in (("gpt_tiny", "causal lm"), ("transformer", "translation")):
        cfg = config_lib.resolve(model, overrides={"run_dir": str(tmp_path / model)})
        with pytest.raises(
            ValueError, match=f"model '{model}' is a {task} model; this recipe trains classifiers"
        ):
            train(cfg)


def test_csv_text_column_and_folders_of_text_files(tmp_path):
    rows = ["review,stars"] + [
        f'"{"great fun" if i % 2 else "dull and slow"} number {i}",{"good" if i % 2 else "bad"}'
        for i in range(40)
    ]
    (tmp_path / "r.csv").write_text("\n".join(rows))
    d = sources.load("csv", path=str(tmp_path / "r.csv"), label_column="stars", text_column="review")
    assert (
        d.kind == "text"
        and d.class_names == ["bad", "good"]
        and len(d.train) + len(d.val) + len(d.test) == 40
    )
    with pytest.raises(base.DataError, match="no text column 'text'"):
        sources.load("csv", path=str(tmp_path / "r.csv"), label_column="stars", text_column="text")
    for c in ("neg", "pos"):
        (tmp_path / "txt" / c).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "txt" / c / f"{i}.txt").write_text(f"{c} document {i}")
    d = sources.load("folder", path=str(tmp_path / "txt"))
    assert d.kind == "text" and d.class_names == ["neg", "pos"] and isinstance(d.train.x[0], str)


def test_pretraining_corpora_load_through_their_real_code(tmp_path):
    import tensorflow_datasets as tfds

    from recipes.data.corpus import load_corpus

    with tfds.testing.mock_data(num_examples=5):
        docs = load_corpus("wikipedia", data_dir=str(tmp_path))
    assert len(docs) == 5 and all(isinstance(t, str) for t in docs)
    (tmp_path / "a.txt").write_text("first paragraph\n\nsecond paragraph\n")
    assert load_corpus("text_files", path=str(tmp_path / "a.txt")) == ["first paragraph", "second paragraph"]
    with pytest.raises(base.DataError, match="pretraining corpus must be one of.*Did you mean 'wikipedia'"):
        load_corpus("wikipeda")


def test_empty_corpora_and_bad_vocabulary_files_are_one_clear_error(tmp_path):
    from recipes.data.corpus import load_corpus
    from recipes.pretrain import pretrain

    (tmp_path / "blank.txt").write_text("\n\n   \n")
    with pytest.raises(base.DataError, match="holds no text"):
        load_corpus("text_files", path=str(tmp_path / "blank.txt"))
    (tmp_path / "short.txt").write_text("only five words here today")
    cfg = config_lib.resolve(
        "bert_tiny",
        overrides={
            "dataset": "text_files",
            "data_path": str(tmp_path / "short.txt"),
            "sequence_length": 32,
            "run_dir": str(tmp_path / "p"),
        },
    )
    with pytest.raises(
        base.DataError,
        match=r"the corpus holds \d+ tokens; pretraining needs at least two sequences of 30",
    ):
        pretrain(cfg)

    with pytest.raises(base.DataError, match="vocabulary file '.*nope.txt' does not exist"):
        train(
            config_lib.resolve(
                "textcnn",
                overrides={"vocabulary_file": str(tmp_path / "nope.txt"), "run_dir": str(tmp_path / "t")},
            )
        )
    long = config_lib.resolve(
        "bert_tiny",
        overrides={
            "sequence_length": 64,
            "model_kwargs": {"max_sequence_length": 32},
            "run_dir": str(tmp_path / "l"),
        },
    )
    with pytest.raises(ValueError, match="max_sequence_length=32 differs from sequence_length=64"):
        train(long)
    (tmp_path / "v.txt").write_text("hello\n[PAD]\n")
    with pytest.raises(base.DataError, match=r"must start with \[PAD\]"):
        text.read_vocabulary(tmp_path / "v.txt")
    (tmp_path / "v.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(
        base.DataError, match=r"lacks the special tokens \['\[CLS\]', '\[SEP\]', '\[MASK\]'\]"
    ):
        text.read_vocabulary(tmp_path / "v.txt")


def test_a_vocabulary_file_in_bert_layout_is_used_as_given(tmp_path):
    # BERT's published layout: [PAD] first, [UNK]/[CLS]/[SEP]/[MASK] further on
    words = sorted(
        {w.lower().strip(".,:;()'\"") for t in embedded.stdlib_docstrings()[0][:200] for w in t.split()}
        - {""}
    )
    vocab = (
        ["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words[:500]
    )
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    overrides = {
        "vocabulary_file": str(tmp_path / "vocab.txt"),
        "epochs": 1,
        "sequence_length": 16,
        "verbose": 0,
        "run_dir": str(tmp_path / "run"),
    }
    summary = train(config_lib.resolve("textcnn", overrides=overrides))
    assert summary["completed"] and (tmp_path / "run" / "vocab.txt").read_text() == "\n".join(vocab) + "\n"


@pytest.mark.parametrize("name", ["imdb_reviews", "glue/sst2"])
def test_tfds_text_sets_train_through_the_recipe(name, tmp_path):
    import tensorflow_datasets as tfds

    overrides = {
        "dataset": name,
        "data_dir": str(tmp_path / "tfds"),
        "epochs": 1,
        "batch_size": 8,
        "sequence_length": 16,
        "vocabulary_size": 100,
        "verbose": 0,
        "run_dir": str(tmp_path / "run"),
    }
    with tfds.testing.mock_data(num_examples=40):
        summary = train(config_lib.resolve("lstm_classifier", overrides=overrides))
    assert summary["completed"] and summary["input_shape"] == [16] and len(summary["class_names"]) == 2
    assert (tmp_path / "run" / "vocab.txt").is_file() and (tmp_path / "run" / "model.keras").is_file()


def test_learning_a_vocabulary_shows_its_progress_and_learns_what_keras_hub_learns(monkeypatch, capsys):
    # issue 31: learning a vocabulary from the 16 MB sample was about a minute of silence
    import pydoc_data.topics

    import keras_hub
    import tensorflow as tf

    monkeypatch.setattr(base.Progress, "EVERY", 0.0)
    lines = [line for topic in pydoc_data.topics.topics.values() for line in topic.splitlines()]
    texts = [line for line in lines if line.strip()][:1500]
    vocabulary = text.word_piece_vocabulary(texts, 600)
    lines = capsys.readouterr().out.splitlines()
    n = len(texts)
    assert f"learning a WordPiece vocabulary of 600: 1,024/{n:,} texts read" in lines
    assert any(
        line.startswith(f"learning a WordPiece vocabulary of 600: {n:,}/{n:,} texts read") for line in lines
    )
    strings = tf.data.Dataset.from_tensor_slices(text.string_tensor(texts))
    expected = keras_hub.tokenizers.compute_word_piece_vocabulary(
        strings, 600, lowercase=True, reserved_tokens=list(text.SPECIAL_TOKENS)
    )
    assert vocabulary == expected
    # learned once a process: the same texts again give the same pieces without a second pass
    assert text.word_piece_vocabulary(list(texts), 600) == vocabulary and capsys.readouterr().out == ""
    assert text.word_piece_vocabulary(texts[:100], 600) != vocabulary  # other texts: learned anew
