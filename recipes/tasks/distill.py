"""Knowledge distillation (Hinton et al. 2015) as a task of the run loop, with Keras's own
``keras.distillation.Distiller`` (``recipes.distill`` is its command). The loop trains the
distiller and checkpoints its student; the run's model is the student alone, with the zoo's
softmax output.

DeiT's variants (Touvron et al. 2021, section 5.1): ``distill_targets: hard`` trains on the
teacher's top class instead of its softened distribution, and ``distill_token`` gives a ViT
student a distillation token whose head learns from the teacher while the class token's head
learns from the labels; the run's model then predicts with the average of the two heads'
probabilities, as DeiT does.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

import modelzoo
from modelzoo.registry import get_entry
from modelzoo.validation import UserError
from recipes import loop, trainer
from recipes.data import pipeline
from recipes.data.preprocessor import Preprocessor, model_input_shape

# The seed splits the data. The student may train on fewer of the training examples
# (train_fraction, class_fraction: Hinton's smaller transfer set); validation and test stay put.
SAME_SPLIT = ("dataset", "data_path", "seed", "classes")


def logits_model(model, input_shape=None):
    """The model up to its classifier's logits (the zoo's output layer is ``predictions``); given
    another image ``input_shape``, the batch is first resized (bilinear) to the model's input."""
    logits = keras.Model(model.inputs, trainer.logits_tensor(model), name=f"{model.name}_logits")
    if input_shape is None or tuple(input_shape) == tuple(model.inputs[0].shape[1:]):
        return logits
    inputs = keras.Input(input_shape)
    height, width = model.inputs[0].shape[1:3]
    return keras.Model(inputs, logits(keras.layers.Resizing(height, width, interpolation="bilinear")(inputs)))


class HardLabels(keras.distillation.DistillationLoss):
    """DeiT's hard-label distillation: cross-entropy between the student's logits and the
    teacher's top class (Touvron et al. 2021, eq. 3's teacher term)."""

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        targets = ops.one_hot(ops.argmax(teacher_outputs, axis=-1), ops.shape(teacher_outputs)[-1])
        return ops.mean(keras.losses.categorical_crossentropy(targets, student_outputs, from_logits=True))


class TokenHead(keras.distillation.DistillationLoss):
    """A distillation loss applied to the second of two heads (DeiT's distillation token) only."""

    def __init__(self, loss):
        self.loss = loss

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return self.loss.compute_loss(teacher_outputs[1], student_outputs[1])


class TeacherOnly(keras.losses.Loss):
    """The label loss of the distillation token's head: none, it learns from the teacher alone."""

    def call(self, y_true, y_pred):
        return ops.zeros_like(y_pred[..., 0])


def distillation_loss(cfg, token: bool):
    """The teacher's loss: soft (Hinton's softened distribution) or hard (DeiT's top class), on
    the single head, or on the distillation token's head alone."""
    if cfg.distill_targets == "hard":
        loss = HardLabels()
    else:
        # An explicit KLDivergence instance: Keras 3.15 resolves the default "kl_divergence" string to the
        # bare function, which LogitsDistillation then applies to raw logits (students got worse, measured).
        loss = keras.distillation.LogitsDistillation(
            temperature=cfg.temperature, loss=keras.losses.KLDivergence()
        )
    return TokenHead(loss) if token else loss


def make_distiller(cfg, teacher_logits, student, token: bool):
    """Keras's Distiller for ``cfg`` (weights, targets, temperature). A token student's two heads
    are seen as a tuple, the structure the pipeline gives its labels in, and the teacher's logits
    are given twice, once per head (the losses say which head reads them)."""
    if token:
        teacher_logits = keras.Model(teacher_logits.inputs, (teacher_logits.outputs[0],) * 2, name="teacher")
        student = keras.Model(student.inputs, tuple(student.outputs), name=student.name)
    return keras.distillation.Distiller(
        teacher=teacher_logits,
        student=student,
        student_loss_weight=1 - cfg.distill_weight,
        distillation_losses=distillation_loss(cfg, token),
    )


def student_loss(token: bool):
    """The labels' loss, on the class head alone where there is a distillation token."""
    labels = keras.losses.CategoricalCrossentropy(from_logits=True)
    return (labels, TeacherOnly()) if token else labels  # a tuple, as the pipeline gives the labels


def head_accuracies(model, test, batch_size, options) -> dict:
    """Test accuracy of a distilled ViT's class head and distillation head, each alone."""
    batches = pipeline.eval_batches(test, batch_size=batch_size, **options)
    hits, total = np.zeros(2), 0
    for x, y in batches:
        labels = np.argmax(np.asarray(y), axis=-1)
        for i, probs in enumerate(model(x, training=False)):
            hits[i] += np.sum(np.argmax(np.asarray(probs), axis=-1) == labels)
        total += len(labels)
    return {
        "class_head_test_accuracy": float(hits[0] / total),
        "token_head_test_accuracy": float(hits[1] / total),
    }


def average_heads(model):
    """DeiT's prediction: the mean of the class and distillation heads' probabilities."""
    mean = keras.layers.Average(name="heads_average")(model.outputs)
    return keras.Model(model.input, mean, name=model.name)


class Distill(loop.Task):
    """Train ``cfg.model`` as a student of the finished run in ``teacher_run`` (``temperature``,
    ``distill_weight``). Both see the same batch, at the teacher's size unless ``image_size``
    says otherwise (then resized for the teacher, in the graph)."""

    recipe = "distill"

    def __init__(self, cfg, teacher_run):
        # before the teacher is loaded: a field distill does not take is the error
        cfg.validate(recipe=self.recipe)
        self.teacher_run = teacher_run
        self.teacher_cfg, self.teacher = trainer.load_run(teacher_run)
        for field in SAME_SPLIT:  # another split would test on the teacher's training images
            if getattr(cfg, field) != getattr(self.teacher_cfg, field):
                raise UserError(
                    f"the student's {field}={getattr(cfg, field)!r} differs from the teacher's "
                    f"{getattr(self.teacher_cfg, field)!r}; distillation needs the teacher's data split."
                )
        self.token = cfg.distill_token or bool(cfg.model_kwargs.get("distilled"))
        if self.token and "distilled" not in get_entry(cfg.model).keywords:
            raise UserError(
                f"distill_token needs a student with DeiT's distillation token (a vit_* or deit_* model); "
                f"{cfg.model!r} has none."
            )
        self.teacher_input = tuple(self.teacher.inputs[0].shape[1:])
        if cfg.image_size is None and len(self.teacher_input) == 3:
            cfg = dataclasses.replace(cfg, image_size=self.teacher_input[0])
        super().__init__(cfg)

    @property
    def title(self):
        return f"{self.cfg.model} distilled from {self.teacher_cfg.model}"

    def write_files(self, run_dir):
        Preprocessor.of(self.data, self.pre).save(run_dir)  # the student's, as any run's

    def prepare(self, runtime, run_dir):
        cfg = self.cfg
        self.data, self.pre = trainer.load_data(cfg)
        student_input = tuple(model_input_shape(self.data, self.pre))
        resizable = (
            len(student_input) == len(self.teacher_input) == 3 and student_input[-1] == self.teacher_input[-1]
        )
        if student_input != self.teacher_input and not resizable:
            raise UserError(
                f"the teacher takes inputs of shape {self.teacher_input}; {cfg.model!r} on {cfg.dataset!r} gets "
                f"{student_input}."
            )
        if self.teacher.outputs[0].shape[-1] != self.data.num_classes:
            raise UserError(
                f"the teacher predicts {self.teacher.outputs[0].shape[-1]} classes; {cfg.dataset!r} has "
                f"{self.data.num_classes}."
            )
        # the token's student has two heads, each given the labels (the second ignores them)
        self.options = trainer.batch_options(self.data, self.pre, 2 if self.token else 1)
        self.test_options = trainer.batch_options(self.data, self.pre, 1)
        return pipeline.steps_per_epoch(len(self.data.train), cfg.batch_size)

    def _student(self, **kwargs):
        shape = trainer.model_shape_kwargs(self.data, self.pre)
        token = {"distilled": True} if self.token else {}
        return modelzoo.create_model(
            self.cfg.model,
            num_classes=self.data.num_classes,
            **kwargs,
            **{**shape, **self.cfg.model_kwargs, **token},
        )

    def build(self, runtime, run_dir, steps):
        cfg = self.cfg
        with runtime.strategy.scope():
            self.teacher_logits = logits_model(self.teacher, model_input_shape(self.data, self.pre))
            self.student = self._student(classifier_activation=None)
            distiller = make_distiller(cfg, self.teacher_logits, self.student, self.token)
            distiller.compile(
                optimizer=trainer.make_optimizer(cfg, steps),
                loss=student_loss(self.token),
                metrics=[["accuracy"], []] if self.token else ["accuracy"],
            )
            distiller.optimizer.build(self.student.trainable_variables)
        return distiller

    def trained(self):
        return self.student

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
            **self.options,
        )

    def validation(self):
        return pipeline.eval_batches(self.data.val, batch_size=self.cfg.batch_size, **self.options)

    def report(self, runtime):
        with runtime.strategy.scope():  # the student alone, with the zoo's softmax output, is the run's model
            final = self._student()
            final.set_weights(self.student.get_weights())
            heads = {}
            if self.token:
                heads = head_accuracies(final, self.data.test, self.cfg.batch_size, self.test_options)
                final = average_heads(final)
            final.compile(loss="categorical_crossentropy", metrics=["accuracy"])
        test = pipeline.eval_batches(self.data.test, batch_size=self.cfg.batch_size, **self.test_options)
        results = final.evaluate(test, verbose=0, return_dict=True)
        # the teacher as the student saw it (resized to its input where the sizes differ)
        self.teacher_logits.compile(
            loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
        )
        teacher_acc = self.teacher_logits.evaluate(test, verbose=0, return_dict=True)["accuracy"]
        return final, {
            "teacher_run": str(self.teacher_run),
            "teacher_model": self.teacher_cfg.model,
            "teacher_test_accuracy": float(teacher_acc),
            "temperature": self.cfg.temperature,
            "distill_weight": self.cfg.distill_weight,
            "distill_targets": self.cfg.distill_targets,
            "test_accuracy": float(results["accuracy"]),
            **heads,
            "test": {k: float(v) for k, v in results.items()},
            "teacher_params": modelzoo.count_params(self.teacher)["params"],
            "class_names": self.data.class_names,
            "input_shape": list(model_input_shape(self.data, self.pre)),
        }

    def message(self, summary, run_dir):
        return (
            f"student {self.cfg.model}: test accuracy {summary['test_accuracy']:.4f} (teacher "
            f"{self.teacher_cfg.model}: "
            f"{summary['teacher_test_accuracy']:.4f}); run folder {run_dir}"
        )
