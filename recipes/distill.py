"""Knowledge distillation (Hinton et al. 2015) with Keras's own ``keras.distillation.Distiller``:
``python -m recipes.distill TEACHER_RUN STUDENT [--temperature 4] [--distill-weight 0.9] [--set ...]``
(both are config fields too, so a recipe YAML can hold them).

The teacher is a finished run folder (its model, frozen; its data set unless ``--dataset`` says
otherwise); the student is any zoo model, built at the teacher's input size unless ``image_size``
says otherwise (then the teacher sees each batch resized to its own input, in the graph). The student
learns from the labels (weight ``1 - distill_weight``) and from the teacher's logits softened by
``temperature`` (``keras.distillation.LogitsDistillation``, weight ``distill_weight``). Training
runs on the recipes' machinery (strategy, checkpoints and exact resume, run folder); the run's
``model.keras`` is the student alone, with the usual softmax output.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from recipes.cli import run

# The seed splits the data. The student may train on fewer of the training examples
# (train_fraction, class_fraction: Hinton's smaller transfer set); validation and test stay put.
SAME_SPLIT = ("dataset", "data_path", "seed", "classes")
# Training fields the distiller does not apply (its loss is the Distiller's own): refused unless at their defaults.
NOT_APPLIED = {"loss": "crossentropy", "class_weight": None, "label_smoothing": 0.0, "l1": 0.0, "l2": 0.0,
               "input_noise": 0.0, "prune_sparsity": 0.0, "init_from": None, "freeze_epochs": 0}  # fmt: skip


def _logits(model, input_shape=None):
    """The model up to its classifier's logits (the zoo's output layer is ``predictions``); given
    another image ``input_shape``, the batch is first resized (bilinear) to the model's input."""
    import keras

    from recipes.trainer import logits_tensor

    logits = keras.Model(model.inputs, logits_tensor(model), name=f"{model.name}_logits")
    if input_shape is None or tuple(input_shape) == tuple(model.inputs[0].shape[1:]):
        return logits
    inputs = keras.Input(input_shape)
    height, width = model.inputs[0].shape[1:3]
    return keras.Model(inputs, logits(keras.layers.Resizing(height, width, interpolation="bilinear")(inputs)))


def distill(cfg, teacher_run) -> dict:
    """Train ``cfg.model`` as a student of the run in ``teacher_run`` (``cfg.temperature``,
    ``cfg.distill_weight``); return the summary. Both models see the same batch, at the teacher's
    size unless ``cfg.image_size`` says otherwise (then resized for the teacher)."""
    from modelzoo.validation import UserError

    import keras

    import modelzoo
    from recipes import data as data_lib
    from recipes import trainer
    from recipes.strategy import strategy_name

    for field, default in NOT_APPLIED.items():
        if getattr(cfg, field) != default:
            raise UserError(f"distill does not apply config field {field}={getattr(cfg, field)!r} (the Distiller computes "
                             f"its own loss); leave it at {default!r}.")  # fmt: skip
    teacher_cfg, teacher = trainer.load_run(teacher_run)
    temperature, distill_weight = cfg.temperature, cfg.distill_weight
    for field in SAME_SPLIT:  # another split would test on the teacher's training images
        if getattr(cfg, field) != getattr(teacher_cfg, field):
            raise UserError(f"the student's {field}={getattr(cfg, field)!r} differs from the teacher's "
                             f"{getattr(teacher_cfg, field)!r}; distillation needs the teacher's data split.")  # fmt: skip
    teacher_input = tuple(teacher.inputs[0].shape[1:])
    if cfg.image_size is None and len(teacher_input) == 3:
        cfg = dataclasses.replace(cfg, image_size=teacher_input[0])
    run_dir, done = trainer.start_run(cfg)
    if done:
        return done
    env = trainer.RunEnvironment.create(cfg)
    data, pre = trainer.load_data(cfg)
    steps = data_lib.steps_per_epoch(len(data.train), cfg.batch_size)
    student_input = tuple(trainer.model_input_shape(data, pre))
    resizable = len(student_input) == len(teacher_input) == 3 and student_input[-1] == teacher_input[-1]
    if student_input != teacher_input and not resizable:
        raise UserError(f"the teacher takes inputs of shape {teacher_input}; {cfg.model!r} on {cfg.dataset!r} gets "
                         f"{student_input}.")  # fmt: skip
    if teacher.outputs[0].shape[-1] != data.num_classes:
        raise UserError(f"the teacher predicts {teacher.outputs[0].shape[-1]} classes; {cfg.dataset!r} has {data.num_classes}.")
    run_dir.mkdir(parents=True, exist_ok=True)
    if env.chief:
        from recipes import config as config_lib

        config_lib.save(cfg, run_dir / "config.yaml")
    shape = trainer.model_shape_kwargs(data, pre)
    with env.strategy.scope():
        teacher_logits = _logits(teacher, student_input)
        student = modelzoo.create_model(cfg.model, num_classes=data.num_classes, classifier_activation=None, **{**shape, **cfg.model_kwargs})
        distiller = keras.distillation.Distiller(
            teacher=teacher_logits, student=student, student_loss_weight=1 - distill_weight,
            # An explicit KLDivergence instance: Keras 3.15 resolves the default "kl_divergence" string to the
            # bare function, which LogitsDistillation then applies to raw logits (students got worse, measured).
            distillation_losses=keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence()),
        )  # fmt: skip
        distiller.compile(optimizer=trainer.make_optimizer(cfg, steps), loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])  # fmt: skip
        distiller.optimizer.build(student.trainable_variables)
        checkpoint = trainer.make_checkpoint(student, optimizer=distiller.optimizer)
    manager, start = env.restore(checkpoint, run_dir, distiller, steps)
    kw = trainer.batch_options(data, pre, 1)

    def batches_from(step):
        return data_lib.train_batches(data.train, batch_size=cfg.batch_size, epochs=cfg.epochs, start_step=step, seed=cfg.seed, **kw)

    val = data_lib.eval_batches(data.val, batch_size=cfg.batch_size, **kw)
    started = time.time()
    trainer.fit_resumable(distiller, cfg, batches_from, start, steps, val, env.callbacks(cfg, manager, run_dir))
    seconds = time.time() - started
    # the student alone, with the zoo's softmax output, is the run's model
    with env.strategy.scope():
        final = modelzoo.create_model(cfg.model, num_classes=data.num_classes, **{**shape, **cfg.model_kwargs})
        final.set_weights(student.get_weights())
        final.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    test = data_lib.eval_batches(data.test, batch_size=cfg.batch_size, **kw)
    results = final.evaluate(test, verbose=0, return_dict=True)
    # the teacher as the student saw it (resized to its input where the sizes differ)
    teacher_logits.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher_acc = teacher_logits.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    summary = {
        "model": cfg.model, "dataset": cfg.dataset, "completed": True, "teacher_run": str(teacher_run),
        "teacher_model": teacher_cfg.model, "teacher_test_accuracy": float(teacher_acc), "temperature": temperature,
        "distill_weight": distill_weight, "steps": int(distiller.optimizer.iterations.numpy()), "epochs": cfg.epochs,
        "train_seconds_this_process": round(seconds, 2), "test_accuracy": float(results["accuracy"]),
        "test": {k: float(v) for k, v in results.items()}, "params": modelzoo.count_params(final)["params"],
        "teacher_params": modelzoo.count_params(teacher)["params"], "class_names": data.class_names,
        "input_shape": list(trainer.model_input_shape(data, pre)), "precision": env.policy, "strategy": strategy_name(env.strategy),
        "weights_sha256": trainer.weights_digest(final),
    }  # fmt: skip
    env.finish(final, run_dir, summary, title=f"{cfg.model} distilled from {teacher_cfg.model}", export=True)
    print(f"student {cfg.model}: test accuracy {summary['test_accuracy']:.4f} (teacher {teacher_cfg.model}: "
          f"{summary['teacher_test_accuracy']:.4f}); run folder {run_dir}")  # fmt: skip
    return summary


def main(argv=None, prog="python -m recipes.distill") -> int:
    from recipes.train import FLAGS, build_parser

    parser = build_parser(prog)
    parser.description = "Distil a finished run (the teacher) into a zoo model (the student)."
    parser.add_argument("student", help="the student: a registered model name")
    parser._actions[1].help = "the teacher's run folder"
    parser.add_argument("--temperature", type=float, help="softens both models' logits (config field temperature, default 4)")
    parser.add_argument("--distill-weight", dest="distill_weight", type=float,
                        help="weight of the distillation loss; the labels get 1 minus it (default 0.9)")  # fmt: skip
    args = parser.parse_args(argv)

    def go():
        from modelzoo.validation import UserError
        from recipes import config as config_lib

        teacher = Path(args.model)
        if not (teacher / "config.yaml").is_file():
            raise UserError(f"{str(teacher)!r} is not a run folder (no config.yaml).")
        taught = config_lib.load_yaml(teacher / "config.yaml")
        overrides = {field: taught.get(field) for field in SAME_SPLIT if field in taught}
        overrides.update({k: getattr(args, k) for k in (*FLAGS, "temperature", "distill_weight") if getattr(args, k) is not None})
        overrides.update(dict(config_lib.parse_override(o) for o in args.overrides))
        overrides.setdefault("run_dir", str(teacher.parent / f"{args.student}_distilled_from_{teacher.name}"))
        distill(config_lib.resolve(args.student, config_file=args.config, overrides=overrides), teacher)

    return run(prog, go)


if __name__ == "__main__":
    sys.exit(main())
