"""Classification with the zoo's models: images, tables and text.

The parts that ``recipes.tasks.classify`` (what ``recipes.train``, ``recipes.finetune`` and every
tuning trial run through ``recipes.loop``) and the tools on a run folder share: the data
(``load_data``: class selection, imbalance, tokenization), the model (``build_model``: warm
start, regularizers, loss, optimizer and schedule), the pipeline options, and ``load_run``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras

import modelzoo
from modelzoo import private_keras
from modelzoo.validation import UserError
from recipes import checkpoint as ckpt_lib
from recipes import config as config_lib
from recipes.data import base, pipeline, preprocess, sources, text
from recipes.data.preprocessor import model_input_shape
from recipes.pruning import KERNEL_LAYERS
from recipes.runtime.backend import Runtime

CLASSIFIERS = ("image_classification", "text_classification", "tabular_classification")


def crop_families() -> list[str]:
    """The families whose papers train with random crops (each records ``TRAIN_CROP``)."""
    return sorted({e.family for e in map(modelzoo.get_entry, modelzoo.list_models()) if e.train_crop})


def preprocess_for(cfg, data: base.Data, entry) -> preprocess.Preprocess:
    """Resize to the model's input (the config's ``image_size`` or the smallest legal size that is
    not smaller than the data), keep the data's channels, and the family's augmentation."""
    if data.kind == "text":
        return preprocess.Preprocess(bert_inputs=entry.input_names)
    if data.kind != "image":
        return preprocess.Preprocess()
    h = data.feature_shape[0]
    if h is None:  # images of varying size: the model's own default input size
        default = entry.default_input_shape
        if cfg.image_size is None and default is not None and len(default) != 3:
            raise UserError(
                f"dataset {cfg.dataset!r} holds images of varying size and model {cfg.model!r} takes a flat "
                f"{default} vector, not an image size; set image_size (the side images are resized to)."
            )
        size = cfg.image_size or (default or (224,))[0]
    else:
        size = cfg.image_size or max(h, entry.min_input_size or 1)
    crop = cfg.augment and entry.train_crop and (cfg.crop_padding > 0 or cfg.crop_mode != "pad")
    channels = data.feature_shape[-1]
    mean, std = entry.mean_std if cfg.normalize == "family" else preprocess.NORMALIZE[cfg.normalize]
    if cfg.crop_mode != "pad" and cfg.augment and not crop:
        raise UserError(
            f"crop_mode={cfg.crop_mode!r} is the augmentation of the crop families ({', '.join(crop_families())}); "
            f"model {cfg.model!r} trains without crops."
        )
    return preprocess.Preprocess(
        image_size=(size, size),
        channels=channels,
        crop=crop,
        flip=crop and data.flip_ok,
        crop_padding=cfg.crop_padding,
        crop_mode=cfg.crop_mode,
        scale_range=tuple(cfg.scale_range) if cfg.scale_range else None,
        eval_crop=cfg.eval_crop,
        mean=mean if channels == 3 else None,
        std=std if channels == 3 else None,
    )


def source_data(cfg, **options) -> base.Data:
    """The config's data set as its source gives it, split by the seed (text untokenized)."""
    return sources.load(
        cfg.dataset,
        data_dir=cfg.data_dir,
        path=cfg.data_path,
        label_column=cfg.label_column,
        text_column=cfg.text_column,
        seed=cfg.seed,
        **options,
    )


def load_data(cfg) -> tuple[base.Data, preprocess.Preprocess]:
    """The run's data set and the preprocessing its model gets (shared by train and evaluate)."""
    entry = modelzoo.get_entry(cfg.model)
    if entry.task not in CLASSIFIERS:
        raise UserError(
            f"model {cfg.model!r} is a {entry.task.replace('_', ' ')} model; this recipe trains "
            f"classifiers ({', '.join(CLASSIFIERS)})."
        )
    data = source_data(
        cfg, streaming=cfg.streaming, memory_budget_gb=cfg.memory_budget_gb, bad_images=cfg.bad_images
    )
    if cfg.classes:
        data = select_classes(data, cfg.classes)
    if cfg.class_fraction or cfg.train_fraction < 1:
        fractions = (
            {str(name): cfg.train_fraction for name in data.class_names} if cfg.train_fraction < 1 else {}
        )
        fractions.update(
            {str(k): float(v) * cfg.train_fraction for k, v in (cfg.class_fraction or {}).items()}
        )
        data = imbalance(data, fractions, cfg.seed)
    if (data.kind == "text") != (entry.task == "text_classification"):
        raise UserError(
            f"dataset {cfg.dataset!r} holds {data.kind} data; model {cfg.model!r} is for {entry.task}."
        )
    given = cfg.model_kwargs.get("max_sequence_length")
    if data.kind == "text" and given is not None and given != cfg.sequence_length:
        raise UserError(
            f"model_kwargs max_sequence_length={given} differs from sequence_length={cfg.sequence_length}: "
            "the model takes exactly sequence_length tokens; set sequence_length instead."
        )
    if data.kind == "text":
        data = _tokenized(cfg, data, entry)
    return data, preprocess_for(cfg, data, entry)


def _tokenized(cfg, data: base.Data, entry) -> base.Data:
    """A text set as token ids, through a WordPiece vocabulary: the given file, the warm start's,
    or learned from the training split."""
    source = init_source(cfg)
    if cfg.vocabulary_file:
        vocabulary = text.read_vocabulary(cfg.vocabulary_file)
    elif source and (source.parent / "vocab.txt").is_file():
        vocabulary = text.read_vocabulary(source.parent / "vocab.txt")
    else:
        vocabulary = text.word_piece_vocabulary(data.train.x, cfg.vocabulary_size)
    if source and (source.parent / "config.yaml").is_file():
        length = config_lib.load_yaml(source.parent / "config.yaml").get("sequence_length")
        if length and length != cfg.sequence_length:
            raise UserError(
                f"sequence_length={cfg.sequence_length} differs from init_from's {length}; use {length}."
            )
    return text.tokenize(data, vocabulary, cfg.sequence_length, cls_sep=bool(entry.input_names))


def per_class_recall(model: keras.Model, batches, class_names) -> dict:
    """Each class's recall on ``batches`` (one-hot labelled): the share of its examples predicted
    as it. What class weights and focal loss are for, and what plain accuracy hides."""
    import numpy as np

    probs = model.predict(batches, verbose=0)  # Keras distributes it under any strategy
    probs = probs[0] if isinstance(probs, (list, tuple)) else probs
    labels = [y[0] if isinstance(y, (list, tuple)) else y for _, y in batches]
    true, pred = (
        np.argmax(np.concatenate([np.asarray(y) for y in labels]), -1),
        np.argmax(np.asarray(probs), -1),
    )
    hits, totals = np.zeros(len(class_names)), np.zeros(len(class_names))
    np.add.at(totals, true, 1)
    np.add.at(hits, true[pred == true], 1)
    return {str(n): (round(float(h / t), 4) if t else None) for n, h, t in zip(class_names, hits, totals)}


def select_classes(data: base.Data, classes: list) -> base.Data:
    """Only the examples of ``classes`` (by name), in every split, relabelled 0..k-1 in that order:
    a new label set, for fine-tuning or incremental learning."""
    import numpy as np

    names = [str(n) for n in data.class_names]
    unknown = [c for c in classes if str(c) not in names]
    if unknown or len(set(map(str, classes))) < 2:
        raise UserError(
            f"config field classes={classes!r} must name at least two of the classes {', '.join(names)}."
        )
    old = [names.index(str(c)) for c in classes]
    relabel = np.full(len(names), -1)
    relabel[old] = np.arange(len(old))

    def keep(split):
        y = np.asarray(split.y)
        rows = np.isin(y, old)
        return dataclasses.replace(split.take(rows), y=relabel[y[rows]])

    return dataclasses.replace(
        data,
        train=keep(data.train),
        val=keep(data.val),
        test=keep(data.test),
        num_classes=len(old),
        class_names=[data.class_names[i] for i in old],
    )


def imbalance(data: base.Data, fractions: dict, seed: int) -> base.Data:
    """Keep only ``fractions[c]`` of class ``c``'s training examples (seeded); validation and test
    are untouched, so recall on them measures what the imbalance cost."""
    import numpy as np

    names = [str(n) for n in data.class_names]
    keep = np.ones(len(data.train), bool)
    rng = np.random.RandomState(seed)
    for name, share in fractions.items():
        if str(name) not in names:
            raise UserError(
                f"config field class_fraction names class {name!r}; the classes are {', '.join(names)}."
            )
        if not 0 < float(share) <= 1:
            raise UserError(f"config field class_fraction[{name!r}]={share!r} must be in (0, 1].")
        rows = np.flatnonzero(np.asarray(data.train.y) == names.index(str(name)))
        dropped = rng.permutation(rows)[max(1, int(round(len(rows) * float(share)))) :]
        keep[dropped] = False
    return dataclasses.replace(data, train=data.train.take(keep))


def init_source(cfg) -> Path | None:
    """The ``.keras`` file a warm start reads (``init_from`` names it or its run folder)."""
    if not cfg.init_from:
        return None
    path = Path(cfg.init_from)
    path = path / "model.keras" if path.is_dir() else path
    if not path.is_file():
        raise UserError(
            f"init_from {cfg.init_from!r} is neither a .keras file nor a run folder with model.keras."
        )
    return path


def regularize(model: keras.Model, cfg) -> keras.Model:
    """The config's regularizers that the builders do not take: an L1/L2 penalty on every Dense,
    EinsumDense and Conv kernel (embeddings and norms excluded, as usual), and Gaussian noise on
    the inputs while training (a GaussianNoise layer in front; inactive at inference)."""
    if cfg.l1 or cfg.l2:
        penalty = keras.regularizers.L1L2(l1=cfg.l1, l2=cfg.l2)
        for layer in private_keras.all_layers(model):
            if isinstance(layer, KERNEL_LAYERS) and getattr(layer, "kernel", None) is not None:
                layer.kernel_regularizer = penalty  # saved with the layer's config
                layer.kernel.regularizer = penalty  # the built kernel's penalty (collected into the loss)
    if cfg.input_noise:
        if isinstance(model.input, dict) or "int" in str(model.inputs[0].dtype):
            raise UserError(
                f"config field input_noise={cfg.input_noise} applies to image and tabular inputs, not to "
                f"{cfg.model!r}'s token ids."
            )
        inputs = keras.Input(model.inputs[0].shape[1:], name=model.inputs[0].name)
        noisy = keras.layers.GaussianNoise(cfg.input_noise, seed=cfg.seed, name="input_noise")(inputs)
        model = keras.Model(inputs, model(noisy), name=model.name)
    return model


def inherited_layers(model: keras.Model, source: Path, class_names=None) -> list:
    """(layer, saved layer) pairs that a warm start from ``source`` copies: same name and weight
    shapes, except the classifier when the source run was trained on other classes (a new label
    set of the same size, digits 0-4 then 5-9, gets a fresh head). What ``freeze_epochs`` freezes."""
    from modelzoo.pretrained import matching_layers
    from modelzoo.surgery import classifier_layers

    pairs = matching_layers(model, keras.saving.load_model(source, safe_mode=True))
    summary = source.parent / "summary.json"
    if class_names is not None and summary.is_file():
        theirs = [str(c) for c in json.loads(summary.read_text()).get("class_names", [])]
        if theirs != [str(c) for c in class_names]:
            head = set(classifier_layers(model))
            pairs = [(a, b) for a, b in pairs if a.name not in head]
    return pairs


def warm_start(model: keras.Model, source: Path, class_names=None) -> list[str]:
    """Copy into ``model`` the layers ``inherited_layers`` finds (a pretrained backbone under a
    new head, say); return their names."""
    pairs = inherited_layers(model, source, class_names)
    if not pairs:
        raise UserError(
            f"init_from {str(source)!r} shares no layer (same name and shapes) with {model.name!r}."
        )
    from modelzoo.pretrained import copy_pairs

    return copy_pairs(pairs)


@keras.saving.register_keras_serializable(package="modelzoo_recipes")
class ScaledAfter(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate (or schedule) multiplied by ``scale`` from step ``boundary`` on: the lower
    rate of fine-tuning once the backbone is unfrozen, in one optimizer (so resume stays exact)."""

    def __init__(self, base, boundary: int, scale: float):
        self.base, self.boundary, self.scale = base, int(boundary), float(scale)

    def __call__(self, step):
        base = self.base(step) if callable(self.base) else keras.ops.convert_to_tensor(self.base, "float32")
        return keras.ops.where(keras.ops.greater_equal(step, self.boundary), base * self.scale, base)

    def get_config(self):
        base = keras.optimizers.schedules.serialize(self.base) if callable(self.base) else self.base
        return {"base": base, "boundary": self.boundary, "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        base = config["base"]
        base = keras.optimizers.schedules.deserialize(base) if isinstance(base, dict) else base
        return cls(base, config["boundary"], config["scale"])


@keras.saving.register_keras_serializable(package="modelzoo_recipes")
class InverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """The Transformer's schedule (Vaswani et al. 2017, section 5.3): linear warmup over
    ``warmup`` steps, then decay with the inverse square root of the step. ``peak`` is the rate at
    the end of warmup; the paper's d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) is this with
    peak (d_model * warmup)^-0.5 (7.0e-4 for the base model's 512 and 4,000 steps)."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = float(peak), max(1, int(warmup))

    def __call__(self, step):
        step = keras.ops.maximum(keras.ops.cast(step, "float32") + 1.0, 1.0)  # Keras counts from 0
        warm = self.warmup
        return self.peak * keras.ops.minimum(step / warm, keras.ops.sqrt(warm / step))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


def batch_options(data: base.Data, pre: preprocess.Preprocess, outputs: int, class_weight=None) -> dict:
    """Pipeline options: preprocessing and one-hot labels (repeated for each head of a multi-head
    model), for ``eval_batches`` and ``train_batches``; with ``class_weight`` (training only),
    per-example weights too."""
    label_fn = (lambda y: tuple([y] * outputs)) if outputs > 1 else None
    options = dict(pre=pre, num_classes=data.num_classes, label_fn=label_fn)
    if class_weight is not None:
        options["class_weights"] = class_weights(data, class_weight)
    return options


def class_weights(data: base.Data, spec):
    """One weight per class: ``"balanced"`` gives n / (k * n_c) from the training labels (rare
    classes count more), a list is taken as given; None: no weighting."""
    import numpy as np

    if spec is None:
        return None
    k = data.num_classes
    if spec == "balanced":
        counts = np.bincount(np.asarray(data.train.y, "int64"), minlength=k)
        return (len(data.train) / (k * np.maximum(counts, 1))).astype("float32")
    if len(spec) != k:
        raise UserError(
            f"config field class_weight has {len(spec)} weights; the data set has {k} classes "
            f"({', '.join(map(str, data.class_names))})."
        )
    return np.asarray(spec, "float32")


def model_shape_kwargs(data, pre) -> dict:
    """The builder keywords that fit the model to the data: input shape, or vocabulary and length."""
    if data.kind == "text":
        return {"vocabulary_size": len(data.vocabulary), "max_sequence_length": data.feature_shape[0]}
    return {"input_shape": model_input_shape(data, pre)}


def make_optimizer(cfg, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    lr = cfg.learning_rate
    if cfg.schedule == "step":
        boundaries = [int(e * steps_per_epoch) for e in cfg.step_epochs]
        values = [lr * cfg.step_gamma**i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    elif cfg.schedule == "cosine":
        warmup = int(cfg.warmup_epochs * steps_per_epoch)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr,
            max(1, total - warmup),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    elif cfg.schedule == "inverse_sqrt":
        schedule = InverseSqrt(lr, int(cfg.warmup_epochs * steps_per_epoch))
    else:
        schedule = lr
    if cfg.freeze_epochs:
        schedule = ScaledAfter(schedule, cfg.freeze_epochs * steps_per_epoch, cfg.unfreeze_lr_scale)
    common = dict(learning_rate=schedule, clipnorm=cfg.clipnorm)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(
            momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay or None, **common
        )
    moments = dict(beta_1=cfg.adam_beta_1, beta_2=cfg.adam_beta_2, epsilon=cfg.adam_epsilon)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(weight_decay=cfg.weight_decay or None, **moments, **common)
    return keras.optimizers.AdamW(weight_decay=cfg.weight_decay, **moments, **common)


def build_model(cfg, env: Runtime, data: base.Data, pre: preprocess.Preprocess, run_dir: Path) -> keras.Model:
    """The run's model: built under the strategy, warm-started (``init_from``, unless the run has
    checkpoints of its own), regularized, compiled. ``tuning`` builds its trials' models here too."""
    steps = pipeline.steps_per_epoch(len(data.train), cfg.batch_size)
    with env.strategy.scope():
        model = modelzoo.create_model(
            cfg.model, num_classes=data.num_classes, **{**model_shape_kwargs(data, pre), **cfg.model_kwargs}
        )
        if cfg.init_from and ckpt_lib.latest_step(run_dir / "checkpoints") is None:
            copied = warm_start(model, init_source(cfg), data.class_names)
            print(f"warm start from {cfg.init_from}: {len(copied)} layers copied")
        model = regularize(model, cfg)
        compile_model(model, cfg, env, make_optimizer(cfg, steps))
        model.optimizer.build(model.trainable_variables)
    return model


def compile_model(model: keras.Model, cfg, env: Runtime, optimizer) -> None:
    """The recipe's loss (cross-entropy or focal, label smoothing; GoogLeNet's auxiliary heads at
    0.3) and accuracy; called again, with the same optimizer, when fine-tuning unfreezes."""
    outputs = len(model.outputs)
    if cfg.loss == "focal":  # Lin et al. 2017
        loss = keras.losses.CategoricalFocalCrossentropy(
            gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing
        )
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    model.compile(
        optimizer=optimizer,
        loss=[loss] * outputs if outputs > 1 else loss,
        loss_weights=[1.0] + [0.3] * (outputs - 1) if outputs > 1 else None,  # GoogLeNet's auxiliary heads
        metrics=[["accuracy"]] + [[]] * (outputs - 1) if outputs > 1 else ["accuracy"],
        jit_compile=env.jit and not env.adapt,
    )


def load_run(run_dir, compile: bool = True) -> tuple[config_lib.TrainConfig, keras.Model]:
    """The resolved config and the trained model of a run folder (``safe_mode`` load;
    ``compile=False``: the weights alone, without the optimizer's state)."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.keras").is_file():
        raise UserError(f"{str(run_dir)!r} is not a finished run folder (no model.keras).")
    cfg = config_lib.from_dict(config_lib.load_yaml(run_dir / "config.yaml"))
    modelzoo.get_entry(cfg.model)  # imports the zoo's families: their layers deserialize
    return cfg, keras.saving.load_model(run_dir / "model.keras", safe_mode=True, compile=compile)


def logits_tensor(model: keras.Model):
    """The class scores before the softmax: a zoo classifier's ``predictions`` layer takes them."""
    try:
        return model.get_layer("predictions").input
    except ValueError:
        raise UserError(f"model {model.name!r} has no 'predictions' layer (not a zoo classifier).") from None
