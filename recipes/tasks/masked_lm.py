"""Masked-LM pretraining of a zoo BERT, as a task of the run loop (``recipes.pretrain`` is its
command; ``recipes.data.corpus`` holds the corpora, in memory or streamed; BERT's masking rule,
``mask``, is here). Either way a training batch is a function of (seed, step):
its rows are an epoch's seeded order, and its masks are drawn in the graph from (seed, step)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import modelzoo
from modelzoo.validation import UserError
from recipes import loop, trainer
from recipes.data import base, pipeline, preprocess, records, text
from recipes.data import corpus as corpus_lib
from recipes.data.corpus import load_corpus, sequences

MASK_RATE, MASK_TOKEN_RATE, RANDOM_TOKEN_RATE = 0.15, 0.8, 0.1


class MaskedLM(loop.Task):
    """Pretrain a zoo BERT, or a relative with a masked-LM head (RoBERTa, DistilBERT, ALBERT, an
    ELECTRA generator), with masked LM; the report compares the held-out masked-token accuracy
    with the most frequent token's."""

    recipe = "pretrain"
    export = False
    stream: records.Records | None = None  # the training rows, when streamed
    source: corpus_lib.Source | None = None  # a file corpus (text_files, TFDS): its files

    def __init__(self, cfg):
        entry = modelzoo.get_entry(cfg.model)
        if "masked_lm" not in entry.heads:
            families = sorted(
                {e.family for e in map(modelzoo.get_entry, modelzoo.list_models()) if "masked_lm" in e.heads}
            )
            raise UserError(
                f"masked-LM pretraining needs a model with a masked-LM head (the {', '.join(families)} "
                f"families), got {cfg.model!r}."
            )
        self.input_names = entry.input_names
        super().__init__(cfg)

    @property
    def title(self):
        return f"{self.cfg.model} masked LM"

    def prepare(self, runtime, run_dir):
        cfg = self.cfg
        source = corpus_lib.corpus_source(cfg.dataset, data_dir=cfg.data_dir, path=cfg.data_path)
        self.data_medium = corpus_lib.corpus_medium(source, cfg.streaming, cfg.memory_budget_gb)
        texts = load_corpus(cfg.dataset) if source is None else None
        self.vocabulary = self._vocabulary(run_dir, texts, source)
        self.special = [self.vocabulary.index(t) for t in text.SPECIAL_TOKENS]
        self.opts = dict(
            vocabulary_size=len(self.vocabulary),
            special=self.special,
            mask_id=self.vocabulary.index("[MASK]"),
            max_predictions=max(1, int(round(cfg.sequence_length * MASK_RATE))),
        )
        if source is None:
            self._hold_sequences(texts)
        else:
            self._open_stream(source, run_dir, in_memory=self.data_medium["medium"] == "memory")
        return pipeline.steps_per_epoch(self.n_train, cfg.batch_size)

    def medium(self):
        return self.data_medium

    def _vocabulary(self, run_dir, texts, source) -> list[str]:
        """A resumed run's own vocabulary, or the one given, or one learned from the corpus (the
        file corpora's sample, in memory or streamed alike)."""
        cfg = self.cfg
        vocab_path = run_dir / "vocab.txt"
        if vocab_path.is_file() or cfg.vocabulary_file:
            return text.read_vocabulary(vocab_path if vocab_path.is_file() else cfg.vocabulary_file)
        return text.word_piece_vocabulary(texts or corpus_lib.vocabulary_sample(source), cfg.vocabulary_size)

    def _hold_sequences(self, texts):
        """``stdlib_corpus``: one token stream cut into rows, a seeded 10% held out."""
        cfg = self.cfg
        ids = sequences(texts, self.vocabulary, cfg.sequence_length)
        held = np.random.RandomState(cfg.seed).permutation(len(ids))
        n_val = max(1, len(ids) // 10)
        self.train_ids, self.val_ids = ids[held[n_val:]], ids[held[:n_val]]
        self.token_counts = np.bincount(self.train_ids.ravel(), minlength=len(self.vocabulary))
        self.n_train = len(self.train_ids)

    def _open_stream(self, source, run_dir, in_memory: bool = False):
        """The file corpus's rows as a stream, or, ``in_memory``, the same rows read into an
        array in the counting pass (a saved count is not reused then: the pass reads the rows)."""
        cfg = self.cfg
        rows = corpus_lib.row_reader(source, self.vocabulary, cfg.sequence_length)
        self.source = source
        saved = (
            None
            if in_memory
            else corpus_lib.load_count(run_dir, source, self.vocabulary, cfg.sequence_length)
        )
        self.counted = saved or corpus_lib.count(source, rows, len(self.vocabulary), keep_train=in_memory)
        budget = base.memory_budget(cfg.memory_budget_gb)
        self.stream = corpus_lib.records(
            source, rows, self.counted["train_rows"], budget, cfg.sequence_length
        )
        if sum(self.counted["train_rows"]) + sum(self.counted["held_rows"]) < 2:
            raise corpus_lib.too_short(corpus_lib.token_total(source, self.vocabulary), cfg.sequence_length)
        self.n_train, self.val_ids = len(self.stream), self.counted["held_out"]
        self.token_counts = np.asarray(self.counted["token_counts"])
        if self.n_train < 2 * cfg.batch_size or not len(self.val_ids):
            raise base.DataError(
                f"corpus {source.name!r} holds {self.n_train} training and {len(self.val_ids)} held-out "
                f"sequences of {cfg.sequence_length} tokens; pretraining needs two batches "
                f"({2 * cfg.batch_size}) and one held-out sequence."
            )
        if in_memory:  # the same rows, file after file, held in an array: no stream
            self.train_ids, self.stream = self.counted.pop("train"), None

    def files_split(self):
        return self.stream

    def write_files(self, run_dir):
        (run_dir / "vocab.txt").write_text("\n".join(self.vocabulary) + "\n")
        if self.source is not None:
            corpus_lib.save_count(
                run_dir, self.counted, self.source, self.vocabulary, self.cfg.sequence_length
            )

    def build(self, runtime, run_dir, steps):
        cfg = self.cfg
        with runtime.strategy.scope():
            shape = {"vocabulary_size": len(self.vocabulary), "max_sequence_length": cfg.sequence_length}
            model = modelzoo.create_model(cfg.model, head="masked_lm", **{**cfg.model_kwargs, **shape})
            model.compile(
                optimizer=trainer.make_optimizer(cfg, steps),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=runtime.jit and not runtime.adapt,
            )
            model.optimizer.build(model.trainable_variables)
        return model

    def _masked(self, ids, seed, rows=None):
        inputs, positions, targets, weights = mask(ids, seed, rows=rows, **self.opts)
        return {**text.bert_inputs(inputs, self.input_names), "mask_positions": positions}, targets, weights

    # every remaining batch; masks seeded by (seed, step)
    def batches_from(self, step, replicas=None, shard=None):
        cfg = self.cfg

        def finish(rows, step, first):
            return self._masked(
                rows, preprocess.example_seed(cfg.seed, step, 0), rows=(cfg.batch_size, first)
            )

        if self.stream is not None:
            return pipeline.stream_batches(
                self.stream,
                batch_size=cfg.batch_size,
                epochs=cfg.epochs,
                start_step=step,
                seed=cfg.seed,
                replicas=replicas,
                batch_shard=shard,
                prepare=None,
                finish=finish,
            )
        indices, _ = pipeline.batch_rows(self.n_train, cfg.batch_size, cfg.epochs, step, cfg.seed, replicas)
        if shard:
            indices = indices.shard(*shard)
        ids = tf.constant(self.train_ids)
        return indices.map(
            lambda i, step, first: finish(tf.gather(ids, i), step, first),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).prefetch(tf.data.AUTOTUNE)

    def validation(self):  # one fixed mask per held-out batch (seeded apart from every training step's)
        ds = tf.data.Dataset.from_tensor_slices(self.val_ids).batch(self.cfg.batch_size).enumerate()
        return ds.map(
            lambda k, rows: self._masked(rows, tf.stack([tf.cast(self.cfg.seed, tf.int64), -1 - k]))
        )

    def before_fit(self, start):
        self.before = None if start else self.model.evaluate(self.validation(), verbose=0, return_dict=True)

    def report(self, runtime):
        after = self.model.evaluate(self.validation(), verbose=0, return_dict=True)
        counts = self.token_counts.copy()
        counts[self.special] = 0
        hits = [(t.numpy() == counts.argmax())[w.numpy() > 0] for _, t, w in self.validation()]
        return self.model, {
            "sequences": {"train": self.n_train, "held_out": len(self.val_ids)},
            "vocabulary_size": len(self.vocabulary),
            "streamed": self.stream is not None,
            "held_out_loss_before": self.before and float(self.before["loss"]),
            "held_out_loss": float(after["loss"]),
            "masked_token_accuracy": float(after["accuracy"]),
            "most_frequent_token_accuracy": float(np.concatenate(hits).mean()),
        }

    def message(self, summary, run_dir):
        return (
            f"held-out masked-token accuracy {summary['masked_token_accuracy']:.4f} (most frequent token: "
            f"{summary['most_frequent_token_accuracy']:.4f}); run folder {run_dir}"
        )


def mask(
    ids, seed, *, vocabulary_size: int, special: list[int], mask_id: int, max_predictions: int, rows=None
):
    """BERT's masking of a batch of token-id rows (int32 ``[n, length]``), in the graph: inputs,
    positions, targets and weights. Drawn from the stateless ``seed`` (two integers) for a global
    batch of ``rows=(total, first)`` rows of which these are rows ``first`` on (default: the whole
    batch), so a row's mask does not depend on how the batch is split over replicas."""
    ids = tf.convert_to_tensor(ids, tf.int32)
    n, length = tf.shape(ids)[0], tf.shape(ids)[1]
    total, first = rows or (n, 0)
    first = tf.cast(first, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)

    def draw(i, width, **kw):  # the global batch's numbers, this slice's rows
        return tf.random.stateless_uniform([total, width], seeds[i], **kw)[first : first + n]

    is_special = tf.reduce_any(ids[..., None] == tf.constant(special, tf.int32), axis=-1)
    scores = tf.where(is_special, 2.0, draw(0, length))  # never chosen
    positions = tf.argsort(scores, axis=1, stable=True)[:, :max_predictions]
    wanted = tf.maximum(1.0, tf.round(tf.reduce_sum(tf.cast(~is_special, tf.float32), axis=1) * MASK_RATE))
    weights = tf.cast(
        tf.range(max_predictions, dtype=tf.float32)[None] < tf.minimum(wanted, max_predictions)[:, None],
        tf.float32,
    )
    targets = tf.gather(ids, positions, batch_dims=1)
    action = draw(1, max_predictions)
    random_tokens = draw(2, max_predictions, minval=len(special), maxval=vocabulary_size, dtype=tf.int32)
    replaced = tf.where(
        action < MASK_TOKEN_RATE,
        mask_id,
        tf.where(action < MASK_TOKEN_RATE + RANDOM_TOKEN_RATE, random_tokens, targets),
    )
    at = tf.stack([tf.repeat(tf.range(n)[:, None], max_predictions, axis=1), positions], axis=-1)
    inputs = tf.tensor_scatter_nd_update(ids, at, tf.where(weights > 0, replaced, targets))
    return inputs, positions, targets, weights
