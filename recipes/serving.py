"""A SavedModel that a client calls with raw input: the run's preprocessing inside the graph.

``write(model, preprocessor, path)`` saves ``model`` with Keras's ``ExportArchive`` and three
endpoints (TensorFlow Serving and ``tf.saved_model.load`` see each as a signature):

- ``serving_default``: the raw input. Images: a uint8 batch ``[n, height, width, channels]`` of any
  size, resized or centre-cropped, channel-matched and normalised exactly as the run evaluated its
  test split (``recipes.data.preprocess``, the same TensorFlow code). Text: a batch of strings,
  tokenized with the run's own WordPiece vocabulary and framed as in training (keras-hub's
  tokenizer and packer, their tables saved with the model). Tables: float32 rows.
- ``serve_encoded`` (image runs): encoded image files (JPEG, PNG, BMP, GIF) as a string batch.
- ``serve_features``: the model's own inputs, as ``model.export`` would write them.

So a client needs TensorFlow and the folder, nothing from this project.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import tensorflow as tf

from recipes.data.preprocess import features, prepare
from recipes.data.preprocessor import Preprocessor
from recipes.data.text import bert_inputs, packer, word_piece


def write(model: keras.Model, preprocessor: Preprocessor | None, path) -> list[str]:
    """Save ``model`` at ``path`` with the raw-input endpoints (``serve_features`` alone without a
    preprocessor); their names."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    features_fn = functools.partial(model.__call__, training=False)
    archive.add_endpoint("serve_features", features_fn, input_signature=[feature_signature(model)])
    raw = raw_endpoints(model, preprocessor, archive) if preprocessor is not None else {}
    for name, (fn, spec) in raw.items():
        archive.add_endpoint(name, fn, input_signature=[spec])
    archive.write_out(str(path), verbose=False)
    return ["serve_features", *raw]


def feature_signature(model: keras.Model):
    """The model's inputs as TensorSpecs of any batch size (a dict for the BERT family)."""
    return keras.tree.map_structure(lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), model.input)


def raw_endpoints(model, preprocessor: Preprocessor, archive) -> dict:
    """name -> (function, input spec) of the raw-input endpoints for the run's kind of data."""
    kind = preprocessor.kind
    if kind == "image":
        pre = _sized(preprocessor)
        channels = preprocessor.input_shape[-1]

        def one(image):
            return features(prepare(image, pre, evaluation=True), pre)

        def images(batch):
            x = tf.map_fn(one, batch, fn_output_signature=tf.float32)
            return model(tf.ensure_shape(x, (None, *preprocessor.input_shape)), training=False)

        return {
            "serving_default": (images, tf.TensorSpec((None, None, None, channels), tf.uint8, name="images")),
            "serve_encoded": (images, tf.TensorSpec((None,), tf.string, name="encoded_images")),
        }
    if kind == "text":
        return {
            "serving_default": (_text_fn(model, preprocessor, archive), tf.TensorSpec((None,), tf.string))
        }
    pre = preprocessor.evaluation()

    def rows(x):
        return model(features(x, pre), training=False)

    return {"serving_default": (rows, tf.TensorSpec((None, *preprocessor.input_shape), tf.float32))}


def _sized(preprocessor: Preprocessor):
    """The evaluation preprocessing, resizing to the model's input where the run kept its data's
    size (``image_size`` unset): a raw image of any size becomes the model's input."""
    pre = preprocessor.evaluation()
    if pre.image_size is None:
        pre = dataclasses.replace(pre, image_size=tuple(preprocessor.input_shape[:2]))
    return dataclasses.replace(pre, channels=preprocessor.input_shape[-1])


def _text_fn(model, preprocessor: Preprocessor, archive):
    """Strings to the model's output through the run's vocabulary, as training tokenized them."""
    vocabulary = list(preprocessor.vocabulary)
    names = preprocessor.image.bert_inputs
    tokenizer = word_piece(vocabulary)
    pack = packer(vocabulary, preprocessor.input_shape[0], cls_sep=bool(names))
    tokenizer(tf.constant([""]))  # built, so that the archive can track it
    archive.track(tokenizer)  # its lookup table is saved with the model

    def texts(strings):
        ids = pack(tokenizer(strings))
        return model(bert_inputs(ids, names) if names else ids, training=False)

    return texts
