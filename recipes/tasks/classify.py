"""Classification as a task of the run loop: ``recipes.train``, ``recipes.finetune`` and each
tuning trial. Its batches are a seeded permutation per epoch, so a resumed run sees exactly the
batches it had left; fine-tuning freezes then unfreezes; the report is test accuracy and each
class's recall."""

from __future__ import annotations

import math

from recipes import config as config_lib
from recipes import loop
from recipes.data import pipeline
from recipes.data.preprocessor import Preprocessor, model_input_shape
from recipes.runtime.backend import Runtime
from recipes.trainer import (
    batch_options,
    build_model,
    compile_model,
    inherited_layers,
    init_source,
    load_data,
    per_class_recall,
)


class Classify(loop.Task):
    """Train a zoo classifier on labelled data (``recipes.train``, ``recipes.finetune``, and each
    tuning trial); ``prepared`` (the ``load_data`` pair) lets many trials share the loaded data."""

    recipe = "train"

    def __init__(self, cfg, prepared=None):
        super().__init__(cfg)
        self.prepared = prepared

    def prepare(self, runtime, run_dir):
        self.data, self.pre = self.prepared or load_data(self.cfg)
        return pipeline.steps_per_epoch(len(self.data.train), self.cfg.batch_size)

    def write_files(self, run_dir):
        Preprocessor.of(self.data, self.pre).save(run_dir)

    def build(self, runtime, run_dir, steps):
        return build_model(self.cfg, runtime, self.data, self.pre, run_dir)

    def _options(self, weighted=False) -> dict:
        return batch_options(
            self.data, self.pre, len(self.model.outputs), self.cfg.class_weight if weighted else None
        )

    def batches_from(self, step, replicas=None, shard=None):
        cfg = self.cfg
        return pipeline.train_batches(
            self.data.train,
            batch_size=cfg.batch_size,
            epochs=cfg.epochs,
            start_step=step,
            seed=cfg.seed,
            replicas=replicas,
            batch_shard=shard,
            **self._options(weighted=True),
        )

    def validation(self):
        return pipeline.eval_batches(self.data.val, batch_size=self.cfg.batch_size, **self._options())

    def statistics_batches(self, samples):
        train = self.data.train
        head = train if train.streamed else train.take(slice(0, samples))
        batches = pipeline.eval_batches(head, batch_size=self.cfg.batch_size, **self._options())
        return batches.take(math.ceil(samples / self.cfg.batch_size))

    def callbacks(self, steps):
        cfg = self.cfg
        if not cfg.prune_sparsity:
            return []
        from recipes import pruning

        end = cfg.prune_end_epoch if cfg.prune_end_epoch is not None else 0.75 * cfg.epochs
        return [
            pruning.MagnitudePruning(cfg.prune_sparsity, int(cfg.prune_begin_epoch * steps), int(end * steps))
        ]

    def phases(self, runtime):
        """Fine-tuning (``freeze_epochs``): the layers ``init_from`` did not provide alone, then
        every layer at a lower rate (one optimizer, whose schedule scales the rate)."""
        cfg, model = self.cfg, self.model
        if not cfg.freeze_epochs:
            return [(cfg.epochs, None)]
        frozen = {a.name for a, _ in inherited_layers(model, init_source(cfg), self.data.class_names)}

        def trainable(names):
            for layer in model.layers:
                layer.trainable = layer.name not in names
            compile_model(model, cfg, runtime, model.optimizer)  # the new trainable set takes effect

        return [(cfg.freeze_epochs, lambda: trainable(frozen)), (cfg.epochs, lambda: trainable(set()))]

    def report(self, runtime):
        data, model = self.data, self.model
        test_ds = pipeline.eval_batches(data.test, batch_size=self.cfg.batch_size, **self._options())
        results = model.evaluate(test_ds, verbose=0, return_dict=True)
        report = {
            "test": {k: float(v) for k, v in results.items()},
            "test_accuracy": float(
                results.get("accuracy", results.get("predictions_accuracy", float("nan")))
            ),
            "num_train": len(data.train),
            "num_test": len(data.test),
            "input_shape": list(model_input_shape(data, self.pre)),
            "class_names": data.class_names,
            "test_recall_per_class": per_class_recall(model, test_ds, data.class_names),
        }
        if data.skipped:
            report.update(skipped_images=len(data.skipped), skipped_files=data.skipped[:100])
        if self.cfg.prune_sparsity:
            from recipes import pruning

            report.update(
                sparsity=round(pruning.sparsity(model), 4),
                weights_gzip_bytes=pruning.weights_gzip_bytes(model),
            )
        return model, report

    def message(self, summary, run_dir):
        return f"test accuracy {summary['test_accuracy']:.4f} ({summary['num_test']} examples); run folder {run_dir}"


def train(
    cfg: config_lib.TrainConfig,
    *,
    env: Runtime | None = None,
    prepared=None,
    model=None,
    callbacks=(),
    export: bool = True,
) -> dict:
    """Train ``cfg`` to completion (resuming if its run folder has checkpoints); return the summary.

    ``env`` (a Runtime the caller has entered), ``prepared`` (the ``load_data`` pair), ``model``
    (from ``build_model``) and extra ``callbacks`` let a caller that runs many trials (``tuning``)
    share the loaded data and hand in the model it built. ``export=False`` skips the SavedModel.
    """
    return loop.run(Classify(cfg, prepared), runtime=env, model=model, callbacks=callbacks, export=export)
