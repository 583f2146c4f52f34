"""Masked-LM pretraining of a zoo BERT, as a task of the run loop (``recipes.pretrain`` is its
command and holds the corpora and BERT's masking rule)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import modelzoo
from modelzoo.validation import UserError
from recipes import data as data_lib
from recipes import loop, trainer
from recipes.pretrain import MASK_RATE, load_corpus, mask, sequences


class MaskedLM(loop.Task):
    """Pretrain a zoo BERT with masked LM; the report compares the held-out masked-token
    accuracy with the most frequent token's."""

    recipe = "pretrain"
    export = False

    def __init__(self, cfg):
        if modelzoo.get_entry(cfg.model).family != "bert":
            raise UserError(f"masked-LM pretraining needs a BERT model (bert, bert_tiny, ...), got {cfg.model!r}.")
        super().__init__(cfg)

    @property
    def title(self):
        return f"{self.cfg.model} masked LM"

    def prepare(self, runtime, run_dir):
        cfg = self.cfg
        texts = load_corpus(cfg.dataset, data_dir=cfg.data_dir, path=cfg.data_path)
        vocab_path = run_dir / "vocab.txt"
        if vocab_path.is_file() or cfg.vocabulary_file:  # a resumed run's own, or the one given
            self.vocabulary = data_lib.read_vocabulary(vocab_path if vocab_path.is_file() else cfg.vocabulary_file)
        else:
            self.vocabulary = data_lib.word_piece_vocabulary(texts, cfg.vocabulary_size)
        ids = sequences(texts, self.vocabulary, cfg.sequence_length)
        held = np.random.RandomState(cfg.seed).permutation(len(ids))
        n_val = max(1, len(ids) // 10)
        self.train_ids, self.val_ids = ids[held[n_val:]], ids[held[:n_val]]
        self.special = [self.vocabulary.index(t) for t in data_lib.SPECIAL_TOKENS]
        self.opts = dict(vocabulary_size=len(self.vocabulary), special=self.special, mask_id=self.vocabulary.index("[MASK]"),
                         max_predictions=max(1, int(round(cfg.sequence_length * MASK_RATE))))  # fmt: skip
        self.val_masked = mask(self.val_ids, rng=np.random.RandomState([cfg.seed, 10**6]), **self.opts)
        self.steps = data_lib.steps_per_epoch(len(self.train_ids), cfg.batch_size)
        return self.steps

    def write_files(self, run_dir):
        (run_dir / "vocab.txt").write_text("\n".join(self.vocabulary) + "\n")

    def build(self, runtime, run_dir, steps):
        cfg = self.cfg
        with runtime.strategy.scope():
            shape = {"vocabulary_size": len(self.vocabulary), "max_sequence_length": cfg.sequence_length}
            model = modelzoo.create_model(cfg.model, head="masked_lm", **{**cfg.model_kwargs, **shape})
            model.compile(optimizer=trainer.make_optimizer(cfg, steps), loss=keras.losses.SparseCategoricalCrossentropy(),
                          weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                          jit_compile=runtime.jit and not runtime.adapt)  # fmt: skip
            model.optimizer.build(model.trainable_variables)
        return model

    def _batches(self, masked):
        inputs, positions, targets, weights = masked
        x = {**data_lib.bert_inputs(tf.constant(inputs)), "mask_positions": tf.constant(positions)}
        return tf.data.Dataset.from_tensor_slices((x, targets, weights)).batch(self.cfg.batch_size, drop_remainder=True)

    def batches_from(self, step):  # every remaining batch, masks seeded by (seed, epoch)
        cfg, steps, parts = self.cfg, self.steps, []
        for epoch in range(step // steps, cfg.epochs):
            order = data_lib.epoch_order(len(self.train_ids), epoch, cfg.seed)
            rows = self.train_ids[order[: steps * cfg.batch_size]]
            ds = self._batches(mask(rows, rng=np.random.RandomState([cfg.seed, epoch, 1]), **self.opts))
            parts.append(ds.skip(step - epoch * steps) if epoch == step // steps else ds)
        ds = parts[0]
        for p in parts[1:]:
            ds = ds.concatenate(p)
        return ds.prefetch(tf.data.AUTOTUNE)

    def validation(self):
        return self._batches(self.val_masked)

    def before_fit(self, start):
        self.before = None if start else self.model.evaluate(self.validation(), verbose=0, return_dict=True)

    def report(self, runtime):
        after = self.model.evaluate(self.validation(), verbose=0, return_dict=True)
        _, _, targets, weights = self.val_masked
        counts = np.bincount(self.train_ids.ravel(), minlength=len(self.vocabulary))
        counts[self.special] = 0
        return self.model, {
            "sequences": {"train": len(self.train_ids), "held_out": len(self.val_ids)}, "vocabulary_size": len(self.vocabulary),
            "held_out_loss_before": self.before and float(self.before["loss"]), "held_out_loss": float(after["loss"]),
            "masked_token_accuracy": float(after["accuracy"]),
            "most_frequent_token_accuracy": float((targets == counts.argmax())[weights > 0].mean()),
        }  # fmt: skip

    def message(self, summary, run_dir):
        return (f"held-out masked-token accuracy {summary['masked_token_accuracy']:.4f} (most frequent token: "
                f"{summary['most_frequent_token_accuracy']:.4f}); run folder {run_dir}")  # fmt: skip
