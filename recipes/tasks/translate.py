"""Translation, a task of the run loop: ``modelzoo train transformer`` (any zoo model whose task
is translation) on sentence pairs (``recipes.data.pairs``).

The recipe is the Transformer paper's (Vaswani et al. 2017, section 5): one SentencePiece vocabulary
learned from both sides of the training split (the paper's shared byte-pair vocabulary; its
pieces keep the spaces, so a translation detokenizes exactly), teacher forcing (the decoder reads
the target shifted right behind a start token and predicts it followed by an end token), label
smoothing (``label_smoothing``, the paper's 0.1) over the non-padding tokens, and the
inverse-square-root warmup schedule (``schedule: inverse_sqrt``). The test split is translated by
beam search (``beam_size``, ``length_penalty``; the paper's 4 and 0.6) and by greedy decoding,
and scored with sacreBLEU's BLEU and chrF. Like every task, a batch is a function of (seed, step),
so a killed run resumes exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import modelzoo
from modelzoo.validation import UserError
from recipes import loop, trainer
from recipes.data import base, pipeline, text
from recipes.data.pairs import load_pairs
from recipes.tasks import decode

PAD, START, END = text.PIECE_IDS["pad_id"], text.PIECE_IDS["bos_id"], text.PIECE_IDS["eos_id"]
VOCABULARY_FILE = "sentencepiece.model"


@keras.saving.register_keras_serializable(package="modelzoo_recipes")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy from token ids against targets smoothed by ``smoothing`` over the vocabulary
    (Szegedy et al. 2016, the Transformer's epsilon_ls), from probabilities, averaged over the
    tokens the sample weights keep (not the padding)."""

    def __init__(self, smoothing: float = 0.0, name="smoothed_crossentropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        logp = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-9, 1.0))
        picked = ops.take_along_axis(logp, ops.expand_dims(ops.cast(y_true, "int32"), -1), axis=-1)
        return -(1.0 - self.smoothing) * picked[..., 0] - self.smoothing * ops.mean(logp, axis=-1)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


class Translate(loop.Task):
    """Train a zoo translation model; the report translates the test split and scores it."""

    recipe = "translate"
    export = False

    def __init__(self, cfg, decode_test: bool = True):
        if modelzoo.get_entry(cfg.model).task != "translation":
            raise UserError(
                f"model {cfg.model!r} is not a translation model (transformer, lstm_seq2seq, ...)."
            )
        super().__init__(cfg)
        self.decode_test = decode_test  # False: the report scores the test split's tokens only

    @property
    def title(self):
        return f"{self.cfg.model} translating {self.cfg.dataset}"

    def prepare(self, runtime, run_dir):
        cfg = self.cfg
        self.pairs = load_pairs(
            cfg.dataset, path=cfg.data_path, languages=cfg.languages, data_dir=cfg.data_dir, seed=cfg.seed
        )
        self.replicas = runtime.replicas  # over several, decoding calls the model directly
        self.use_vocabulary(self._vocabulary(run_dir))
        self.rows = {split: self.encode(*getattr(self.pairs, split)) for split in ("train", "val", "test")}
        n = len(self.rows["train"][0])
        if n < cfg.batch_size:
            raise base.DataError(
                f"{cfg.dataset!r} holds {n} training pairs, fewer than one batch ({cfg.batch_size})."
            )
        return pipeline.steps_per_epoch(n, cfg.batch_size)

    def _vocabulary(self, run_dir: Path) -> bytes:
        """The run's own SentencePiece model (resuming), a given one, or one learned from both sides
        of the training split."""
        own, given = run_dir / VOCABULARY_FILE, self.cfg.vocabulary_file
        if own.is_file() or given:
            path = own if own.is_file() else Path(given)
            if not path.is_file():
                raise base.DataError(f"vocabulary file {str(path)!r} does not exist.")
            return path.read_bytes()
        sources, targets = self.pairs.train
        return text.sentence_piece_model(sources + targets, self.cfg.vocabulary_size)

    def use_vocabulary(self, proto: bytes):
        """The SentencePiece model ``proto``: its tokenizer, and the encoders of sources and targets."""
        import keras_hub

        self.proto, self.tokenizer = proto, text.sentence_piece(proto)
        length = self.cfg.sequence_length
        packers = (
            keras_hub.layers.StartEndPacker(length, end_value=END, pad_value=PAD),
            keras_hub.layers.StartEndPacker(length + 1, start_value=START, end_value=END, pad_value=PAD),
        )
        self._encoders = [text.traced_encoder(self.tokenizer, pack) for pack in packers]

    def encode(self, sources, targets=None):
        """Sources as ``[n, L]`` ids ending in the end token; targets as ``[n, L + 1]`` between a
        start and an end token (the decoder reads ``[:, :-1]`` and predicts ``[:, 1:]``)."""
        source_ids = self._encoders[0](sources)
        return source_ids if targets is None else (source_ids, self._encoders[1](targets))

    def write_files(self, run_dir):
        (run_dir / VOCABULARY_FILE).write_bytes(self.proto)

    def build(self, runtime, run_dir, steps):
        cfg = self.cfg
        size = {"vocabulary_size": self.tokenizer.vocabulary_size()}
        if "target_vocabulary_size" in modelzoo.get_entry(cfg.model).keywords:
            size["target_vocabulary_size"] = size["vocabulary_size"]  # one vocabulary, both sides
        with runtime.strategy.scope():
            model = modelzoo.create_model(cfg.model, **{**cfg.model_kwargs, **size})
            model.compile(
                optimizer=trainer.make_optimizer(cfg, steps),
                loss=SmoothedCrossentropy(cfg.label_smoothing),
                weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=runtime.jit and not runtime.adapt,
            )
            model.optimizer.build(model.trainable_variables)
        return model

    @property
    def input_names(self) -> list[str]:
        """The model's inputs (the recurrent model has no padding masks): the loop's model, built
        here or handed in (a tuning trial's)."""
        return [t.name for t in self.model.inputs]

    def inputs(self, source_ids, decoder_ids) -> dict:
        """The model's inputs (keras-hub's encoder-decoder names; a model takes those it has)."""
        given = {
            "encoder_token_ids": source_ids,
            "encoder_padding_mask": tf.cast(source_ids != PAD, "int32"),
            "decoder_token_ids": decoder_ids,
            "decoder_padding_mask": tf.cast(decoder_ids != PAD, "int32"),
        }
        return {name: given[name] for name in self.input_names}

    def _batch(self, source_ids, target_ids):
        """Teacher forcing: the target behind its start token in, the target and its end out."""
        labels = target_ids[:, 1:]
        return self.inputs(source_ids, target_ids[:, :-1]), labels, tf.cast(labels != PAD, "float32")

    def batches_from(self, step, replicas=None, shard=None):
        cfg = self.cfg
        sources, targets = (tf.constant(a) for a in self.rows["train"])
        indices, _ = pipeline.batch_rows(
            len(self.rows["train"][0]), cfg.batch_size, cfg.epochs, step, cfg.seed, replicas
        )
        if shard:
            indices = indices.shard(*shard)
        return indices.map(
            lambda i, step, first: self._batch(tf.gather(sources, i), tf.gather(targets, i)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).prefetch(tf.data.AUTOTUNE)

    def _split(self, split: str):
        ds = tf.data.Dataset.from_tensor_slices(self.rows[split]).batch(self.cfg.batch_size)
        return ds.map(self._batch)

    def validation(self):
        return self._split("val")

    def translate(self, sources: list[str], beam_size: int, alpha: float) -> list[str]:
        """``sources`` translated by the trained model: beam search (greedy at one beam), detokenized."""
        source_ids = self.encode(sources)
        batch = max(1, self.cfg.batch_size // beam_size)
        found = []
        for first in range(0, len(source_ids), batch):
            chunk = source_ids[first : first + batch]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])  # one shape
            ids = decode.beam_search(
                self._probabilities,
                padded,
                start=START,
                end=END,
                length=self.cfg.sequence_length,
                beam_size=beam_size,
                alpha=alpha,
            )[: len(chunk)]
            found.extend(decode.until_end(ids, END))
        return [str(t) for t in self.tokenizer.detokenize(found)]

    def _probabilities(self, source_ids, decoder_ids):
        inputs = {
            k: np.asarray(v)
            for k, v in self.inputs(tf.constant(source_ids), tf.constant(decoder_ids)).items()
        }
        if self.replicas > 1:  # tf.distribute's predict splits rows over replicas: one call
            return keras.ops.convert_to_numpy(self.model(inputs, training=False))
        return np.asarray(self.model.predict_on_batch(inputs))  # compiled once (eager JAX runs op by op)

    def report(self, runtime):
        cfg = self.cfg
        test = self.model.evaluate(self._split("test"), verbose=0, return_dict=True)
        scored = {"test_loss": float(test["loss"]), "test_token_accuracy": float(test["accuracy"])}
        if not self.decode_test:
            return self.model, scored
        sources, references = self.pairs.test
        results = {}
        for name, beams in (("greedy", 1), ("beam", cfg.beam_size)):
            if name == "beam" and beams == 1:  # one beam is the greedy search: not run twice
                results[name] = results["greedy"]
                continue
            began = time.monotonic()
            hypotheses = self.translate(sources, beams, cfg.length_penalty)
            results[name] = {
                **decode.scores(hypotheses, references),
                "seconds": round(time.monotonic() - began, 1),
            }
            results[name]["examples"] = [
                {"source": s, "reference": r, "translation": h}
                for s, r, h in list(zip(sources, references, hypotheses))[:3]
            ]
        return self.model, {
            "pairs": self.pairs.sizes(),
            "languages": list(self.pairs.languages),
            "vocabulary_size": self.tokenizer.vocabulary_size(),
            **scored,
            "test_bleu": results["beam"]["bleu"],
            "test_bleu_greedy": results["greedy"]["bleu"],
            "decoding": {"beam_size": cfg.beam_size, "length_penalty": cfg.length_penalty, **results},
        }

    def message(self, summary, run_dir):
        if "decoding" not in summary:
            return f"test token accuracy {summary['test_token_accuracy']:.4f}; run folder {run_dir}"
        beam = summary["decoding"]["beam"]
        return (
            f"test BLEU {summary['test_bleu']:.2f} with {summary['decoding']['beam_size']} beams "
            f"(greedy {summary['test_bleu_greedy']:.2f}), chrF {beam['chrf']:.2f}, "
            f"{beam['exact_match']:.1%} exact; run folder {run_dir}"
        )


def translator(run_dir) -> Translate:
    """A finished translation run, ready to ``translate``: its config, its SentencePiece model and
    its trained model, as the run decoded its test split."""
    run_dir = Path(run_dir)
    cfg, model = trainer.load_run(run_dir, compile=False)
    if not (run_dir / VOCABULARY_FILE).is_file():
        raise UserError(f"{str(run_dir)!r} is not a translation run folder (no {VOCABULARY_FILE}).")
    task = Translate(cfg)
    task.use_vocabulary((run_dir / VOCABULARY_FILE).read_bytes())
    task.model, task.replicas = model, 1
    return task


def build_model(cfg, runtime) -> keras.Model:
    """``cfg``'s model as its run builds it, after its vocabulary is learned and saved in the run
    folder (a run handed this model reads that vocabulary back): ``tuning`` builds trials here."""
    task, run_dir = Translate(cfg), cfg.resolved_run_dir()
    steps = task.prepare(runtime, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task.write_files(run_dir)
    return task.build(runtime, run_dir, steps)


def train(cfg, *, env=None, model=None, callbacks=(), decode_test: bool = True) -> dict:
    """Train a translation model to completion (resuming from its run folder); the summary.
    ``env`` (an entered Runtime) and ``model`` (from ``build_model``) as ``classify.train`` takes
    them; ``decode_test=False`` skips the test split's beam search (a tuning trial's report)."""
    return loop.run(Translate(cfg, decode_test), runtime=env, model=model, callbacks=callbacks)
