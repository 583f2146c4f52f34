"""Data: one module per source, the pipeline that turns a split into batches, and text.

- ``sources.load``: a data set by name (``embedded``, ``folder``, ``tables`` (CSV), ``tfds_sets``,
  ``records`` (TFRecord)); ``corpus``: unlabelled text for pretraining.
- ``base``: what every source returns (``Data``, ``Split``), the seeded split, the memory budget
  and the choice between holding a set in memory and streaming it.
- ``preprocess`` (per image: decode, crop, resize, channels, normalisation) and ``pipeline``
  (seeded epochs, replica shares, exact resume) turn a split into ``tf.data`` batches.
- ``text``: keras-hub's WordPiece tokenizer and the [CLS]/[SEP] packer, built in one place.
- ``writer``: folders and TFDS sets as TFRecord shards; ``service``: the tf.data service.
"""
