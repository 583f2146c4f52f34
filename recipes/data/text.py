"""Text: keras-hub's WordPiece tokenizer, built here and nowhere else, its vocabulary
(learned from a training split, or read from a file), and one way to pack [CLS] ... [SEP] rows;
and SentencePiece for translation, whose pieces keep the spaces, so a translation detokenizes to
the text a reader (and BLEU) expects.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from recipes.data.base import Data, DataError, Progress, Split

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] is id 0


def read_vocabulary(path) -> list[str]:
    """A WordPiece ``vocab.txt`` (one token per line, as BERT publishes it): ``[PAD]`` first, since
    id 0 pads, and the other special tokens anywhere (BERT's uncased vocabulary qualifies)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"vocabulary file {str(path)!r} does not exist.")
    vocabulary = path.read_text(encoding="utf-8").split("\n")
    while vocabulary and not vocabulary[-1]:
        vocabulary.pop()
    if not vocabulary or vocabulary[0] != "[PAD]":
        raise DataError(
            f"vocabulary file {str(path)!r} must start with [PAD] (id 0 pads); it starts with {vocabulary[:1]}."
        )
    missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise DataError(f"vocabulary file {str(path)!r} lacks the special tokens {missing}.")
    return vocabulary


def string_tensor(texts) -> tf.Tensor:
    """Texts as a tf.string tensor. (Through NumPy's ``astype(str)`` each would be padded to the
    longest: 100,000 lines with one of 100 KB took 24 GB.)"""
    return tf.constant([str(t) for t in texts], dtype=tf.string)


_LEARNED: dict[tuple, list[str]] = {}  # (texts' digest, size) -> the vocabulary learned from them


def word_piece_vocabulary(texts, vocabulary_size: int) -> list[str]:
    """A WordPiece vocabulary learned from ``texts`` (keras-hub), special tokens first. It takes
    a while on a large sample (about a minute for 16 MB on 2 cores), so it shows its progress:
    the texts read while keras-hub counts their words, then the time spent choosing the pieces.
    The same texts give the same pieces, so a process learns each once (4.5 s for stdlib_docs'
    training split here: a notebook's or the tests' later runs on one set skip it)."""
    digest = hashlib.sha256()
    for t in texts:
        digest.update(str(t).encode("utf-8") + b"\0")
    key = (digest.hexdigest(), vocabulary_size)
    if key not in _LEARNED:
        _LEARNED[key] = _learn_word_pieces(texts, vocabulary_size)
    return list(_LEARNED[key])


def _learn_word_pieces(texts, vocabulary_size: int) -> list[str]:
    import keras_hub

    strings = string_tensor(texts)
    total = int(strings.shape[0])
    with Progress(f"learning a WordPiece vocabulary of {vocabulary_size:,}", total, "texts read") as progress:
        ds, read = _counted(tf.data.Dataset.from_tensor_slices(strings), progress)
        choosing = f"choosing {vocabulary_size:,} word pieces"
        with progress.ticking(lambda: (read[0], choosing if read[0] >= total else "")):
            return keras_hub.tokenizers.compute_word_piece_vocabulary(
                ds, vocabulary_size, lowercase=True, reserved_tokens=list(SPECIAL_TOKENS)
            )


def _counted(ds: tf.data.Dataset, progress: Progress, every: int = 1024) -> tuple[tf.data.Dataset, list]:
    """``ds`` unchanged, telling ``progress`` how many elements have been read, ``every`` at a
    time; and the one-element list that holds that count."""
    read = [0]

    def tick(n):
        read[0] += int(n)
        progress.update(read[0])
        return n

    def counted(batch):
        n = tf.py_function(tick, [tf.shape(batch)[0]], tf.int32)
        with tf.control_dependencies([n]):
            return tf.identity(batch)

    return ds.batch(every).map(counted).unbatch(), read


# SentencePiece ids: 0 pads (as every text path here), then unknown, start and end of a sentence
PIECE_IDS = dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3)


def sentence_piece_model(texts, vocabulary_size: int) -> bytes:
    """A SentencePiece unigram model (Kudo 2018) learned from ``texts``, at most
    ``vocabulary_size`` pieces (fewer where the texts hold fewer), as serialized bytes. The
    sentencepiece trainer keras-hub's ``compute_sentence_piece_proto`` wraps, called directly
    because that wrapper cannot set the ids: here 0 must pad."""
    import io

    import sentencepiece as spm

    texts = [str(t) for t in texts]
    model = io.BytesIO()
    what = f"learning a SentencePiece vocabulary of at most {vocabulary_size:,}"
    with Progress(what, len(texts), "texts") as progress, progress.ticking(lambda: (0, "training")):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type="unigram",
            hard_vocab_limit=False,
            character_coverage=1.0,
            minloglevel=2,
            **PIECE_IDS,
        )
    return model.getvalue()


def sentence_piece(proto: bytes):
    """keras-hub's SentencePiece tokenizer on a learned model: int32 ids, ``detokenize`` back."""
    import keras_hub

    return keras_hub.tokenizers.SentencePieceTokenizer(proto=proto, dtype="int32")


def word_piece(vocabulary: list[str]):
    """keras-hub's WordPiece tokenizer on ``vocabulary``, lowercasing, int32 ids: the one every
    text path uses (classification, pretraining in memory and streamed, prediction)."""
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True, dtype="int32")


def packer(vocabulary: list[str], sequence_length: int, *, cls_sep: bool = True):
    """keras-hub's StartEndPacker: ``[CLS] tokens [SEP]`` (or the tokens alone) cut or padded
    with 0 to ``sequence_length``; the one way every text path frames its rows."""
    import keras_hub

    ids = {t: i for i, t in enumerate(vocabulary)}
    return keras_hub.layers.StartEndPacker(
        sequence_length,
        start_value=ids["[CLS]"] if cls_sep else None,
        end_value=ids["[SEP]"] if cls_sep else None,
        pad_value=0,
        return_padding_mask=False,
    )


def text_encoder(vocabulary: list[str], sequence_length: int, *, cls_sep: bool = False):
    """A function from texts to an int32 array of token ids (keras-hub WordPiece + StartEndPacker),
    the one used for training and for prediction alike."""
    return traced_encoder(word_piece(vocabulary), packer(vocabulary, sequence_length, cls_sep=cls_sep))


def traced_encoder(tokenizer, pack):
    """``pack(tokenizer(texts))`` as a function from texts to an int32 array, traced once.

    keras-hub's TensorFlow path, the one an exported model runs: called eagerly, keras-hub takes
    its pure-Python one (the same ids; 1.16 s against 0.44 s with the trace, on stdlib_docs' 1,018
    training texts; the embedded numbers' 25,000 translation rows 2.6 s against 0.05 s after the trace)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def ids(texts):
        return pack(tokenizer(texts))

    def encode(texts) -> np.ndarray:
        return np.asarray(ids(string_tensor(texts)), dtype="int32")

    return encode


def tokenize(data: Data, vocabulary: list[str], sequence_length: int, *, cls_sep: bool = False) -> Data:
    """Every split's texts as int32 token ids of length ``sequence_length`` (0 pads), with
    ``[CLS] ... [SEP]`` around them for BERT. Done once: a training step only gathers rows."""
    encode = text_encoder(vocabulary, sequence_length, cls_sep=cls_sep)
    return dataclasses.replace(
        data,
        train=Split(encode(data.train.x), data.train.y),
        val=Split(encode(data.val.x), data.val.y),
        test=Split(encode(data.test.x), data.test.y),
        vocabulary=list(vocabulary),
    )


BERT_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def bert_inputs(token_ids, names=BERT_INPUTS):
    """keras-hub's BERT-family inputs for single-segment text: segment 0 everywhere, padding where
    id 0; ``names`` are those the model takes (the registry's ``input_names``: RoBERTa's and
    DistilBERT's have no segments)."""
    inputs = {
        "token_ids": token_ids,
        "segment_ids": tf.zeros_like(token_ids),
        "padding_mask": tf.cast(tf.not_equal(token_ids, 0), "int32"),
    }
    return {name: inputs[name] for name in names}
