"""A training run described as data: a dataclass, loaded from YAML with ``safe_load``,
overridable field by field, validated before anything is built, and saved into the run folder."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import yaml

from modelzoo.validation import UserError, did_you_mean
from recipes.config_rules import (
    CHOICES,
    ITEMS,
    OPTIONAL,
    PARTS,
    RANGES,
    RECIPES,
    bad_value,
    base_type,
    check_items,
    range_text,
    union_types,
    within,
)

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclasses.dataclass
class TrainConfig:
    model: str = "lenet5"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None  # TFDS data directory
    data_service: str | None = (
        None  # "local" or "grpc://HOST:PORT,...": the training pipeline in tf.data service workers
    )
    data_service_workers: int = (
        1  # "local": this many workers, each building every n-th batch (the order stays exact)
    )
    data_path: str | None = None  # folder or CSV file
    label_column: str = "label"
    text_column: str | None = None  # csv: the column holding text (a text classification table)
    image_size: int | None = None  # None: the model's smallest legal input, at least the data's size
    augment: bool = True  # the paper's augmentation where it has one (random crop, flip if the labels allow)
    crop_padding: float = 0.125  # augmentation strength: random crops after padding each side by this share
    # "pad" (above), or the ImageNet papers' "random_resized" (Inception/ResNet) or "scale_jitter" (VGG)
    crop_mode: str = "pad"
    scale_range: list | None = (
        None  # random_resized: area share (default [0.08, 1]); scale_jitter: shorter side (default [256, 512])
    )
    eval_crop: float | None = (
        None  # evaluation: resize the shorter side to image_size / eval_crop, centre crop (0.875: 224 of 256)
    )
    normalize: str = (
        "none"  # "imagenet_mean" (AlexNet, VGG) or "imagenet_mean_std" (ResNet recipes), on [0, 1] images
    )
    streaming: bool | str = (
        "auto"  # image sets and pretraining corpora: stream the files (true), hold in memory (false), or by size
    )
    memory_budget_gb: float | None = None  # streaming "auto": the in-memory limit (None: a quarter of RAM)
    bad_images: str = (
        "stop"  # image folders: a file that does not decode stops the run (one line) or is skipped, counted
    )
    sequence_length: int = 128  # text: tokens per example (WordPiece, padded or cut)
    vocabulary_size: int = 8000  # text: size of the WordPiece vocabulary learned from the training split
    vocabulary_file: str | None = None  # text: a WordPiece vocab.txt to use instead (e.g. a published BERT's)
    languages: list | None = None  # translation: source and target (TFDS keys, CSV columns, file suffixes)
    beam_size: int = 4  # translation: beams when decoding the test split (1: greedy); the paper's 4
    length_penalty: float = 0.6  # translation: Wu et al. 2016's alpha for beam search; the paper's 0.6
    batch_size: int = 64  # global: split across replicas
    epochs: int = 10
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    adam_beta_1: float = 0.9  # Adam/AdamW: the first moment's decay (Keras's default)
    adam_beta_2: float = 0.999  # the second moment's (the Transformer paper's 0.98)
    adam_epsilon: float = 1e-7  # added to the second moment's root (Keras's; the Transformer's 1e-9)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_epochs: list = dataclasses.field(default_factory=list)  # step decay at these epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    loss: str = "crossentropy"  # or "focal" (Lin et al. 2017: down-weights easy examples)
    focal_gamma: float = 2.0  # focal loss: how strongly easy examples are down-weighted
    prune_sparsity: float = 0.0  # magnitude pruning of every kernel to this share of zeros (0: off)
    prune_begin_epoch: float = 0.0  # pruning starts here...
    prune_end_epoch: float | None = None  # ...and reaches its target here (None: at 3/4 of the epochs)
    class_fraction: dict | None = (
        None  # {class: share} of its training examples kept: a deliberately imbalanced split
    )
    train_fraction: float = (
        1.0  # keep this share of every class's training examples (a low-label regime; val/test untouched)
    )
    class_weight: str | list | None = (
        None  # "balanced" (n / (k * n_class), from the training labels) or one weight per class
    )
    l1: float = 0.0  # L1 penalty on every Dense/Conv kernel (added to the loss)
    l2: float = 0.0  # L2 penalty on every Dense/Conv kernel (coupled; weight_decay is the decoupled kind)
    input_noise: float = 0.0  # std of Gaussian noise added to the (scaled) inputs while training
    clipnorm: float | None = None
    divergence_factor: float | None = None  # stop when the loss passes this multiple of step 1's (None: off)
    mixed_precision: str = "auto"  # float32 on CPU, mixed_float16 on GPU, mixed_bfloat16 on TPU
    # None: XLA on GPU/TPU, not on CPU (slower there for small nets); "auto": the faster, measured
    # at the start of the run (recipes.compile_choice)
    jit_compile: bool | str | None = None
    # training steps a call of the compiled step (dividing an epoch's); "auto": measured (recipes.compile_choice)
    steps_per_execution: int | str = 1
    backend: str | None = (
        None  # tensorflow, jax or torch; None: the one Keras runs on (KERAS_BACKEND, default tensorflow)
    )
    strategy: str = "auto"
    num_gpus: int | None = None
    devices: list | None = None
    tpu: str | None = None
    # JAX keras.distribution: off, data_parallel, model_parallel (auto: data parallel on several GPUs/TPU cores)
    distribution: str = "auto"
    mesh: str | None = (
        None  # model_parallel: "BATCHxMODEL" devices (e.g. "2x4"); None: every device on the batch axis
    )
    early_stopping_patience: int | None = None
    # batch-norm statistics recomputed from this many training images before each validation, on
    # one device (recipes.precise_bn: pycls's 8,192); 0: Keras's moving averages as they are
    precise_bn_samples: int = 8192
    classes: list | None = (
        None  # keep only these classes (a new label set: digits 5-9, say), relabelled 0..k-1
    )
    freeze_epochs: int = 0  # fine-tuning: first train only the layers init_from did not provide...
    unfreeze_lr_scale: float = 0.1  # ...then every layer, at the learning rate times this
    temperature: float = (
        4.0  # distillation: the teacher's and student's logits are divided by this (Hinton et al. 2015)
    )
    distill_weight: float = 0.9  # distillation: weight of the teacher's loss; the labels get 1 minus it
    # distillation: "soft", the teacher's softened distribution (Hinton et al. 2015); "hard", its
    # top class under cross-entropy, temperature unused (Touvron et al. 2021)
    distill_targets: str = "soft"
    # distillation: the student gets DeiT's distillation token (a ViT built with distilled=True):
    # the labels train the class token's head, the teacher the token's head; it predicts with both
    distill_token: bool = False
    init_from: str | None = (
        None  # warm start: a run folder or .keras file; layers with equal names and shapes are copied
    )
    checkpoint_every: int = 20  # steps between checkpoints (and at every epoch end)
    # "gradients": per-layer gradient norms and update/weight ratios every diagnostics_every steps
    # (recipes.diagnostics), layers outside gradient_bounds (low, high) flagged
    diagnostics: str | None = None
    diagnostics_every: int = 50
    gradient_bounds: list = dataclasses.field(default_factory=lambda: [1e-6, 1e2])
    seed: int = 0
    run_dir: str | None = None  # default: runs/<model>_<dataset>
    verbose: int | None = None  # None: a progress bar on a terminal, a line per epoch otherwise

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir or Path("runs") / f"{self.model}_{self.dataset.replace('/', '_')}")

    def validate(self, recipe: str | None = None) -> TrainConfig:
        """Raise ``UserError`` naming the first bad field (or, given ``recipe``, the first field set
        that the recipe does not take); return self."""
        if recipe is not None:
            check_applies(self, recipe)
        self._check_types()
        self._check_choices_and_ranges()
        self._check_schedule_fields()
        self._check_augmentation_fields()
        if self.data_service not in (None, "local"):
            from recipes.data.service import service_targets

            service_targets(self.data_service)
        self._check_steps_per_execution()
        low, high = self.gradient_bounds
        if not 0 <= low < high:
            bad_value("gradient_bounds", self.gradient_bounds, "needs 0 <= low < high")
        if isinstance(self.class_weight, str) and self.class_weight != "balanced":
            bad_value(
                "class_weight", self.class_weight, "'balanced', a list of one weight per class, or null"
            )
        if isinstance(self.class_weight, list) and not all(
            isinstance(w, (int, float)) and w >= 0 for w in self.class_weight
        ):
            bad_value("class_weight", self.class_weight, "weights must be numbers >= 0")
        return self

    def _check_steps_per_execution(self) -> None:
        value = self.steps_per_execution
        if value != "auto" and (isinstance(value, str) or value < 1):
            bad_value("steps_per_execution", value, "an int >= 1 or 'auto'")

    def _check_choices_and_ranges(self) -> None:
        from recipes.runtime.strategy import STRATEGIES  # (imports TensorFlow: not at module level)

        for name, allowed in {**CHOICES, "strategy": STRATEGIES}.items():
            value = getattr(self, name)
            if value not in allowed and not (value is None and name in OPTIONAL):
                bad_value(
                    name, value, f"one of {list(allowed)}" + did_you_mean(str(value), map(str, allowed))
                )
        for name, bounds in RANGES.items():
            value = getattr(self, name)
            if value is not None and not within(value, *bounds):
                bad_value(name, value, range_text(*bounds) + (" or null" if name in OPTIONAL else ""))

    def _check_schedule_fields(self) -> None:
        """Fields that name epochs of the run: freezing, pruning, step decay."""
        if self.freeze_epochs < 0 or (self.freeze_epochs and self.freeze_epochs >= self.epochs):
            bad_value("freeze_epochs", self.freeze_epochs, f"must be in [0, epochs={self.epochs})")
        if self.freeze_epochs and not self.init_from:
            bad_value(
                "freeze_epochs",
                self.freeze_epochs,
                "freezing needs init_from (the layers it provides are the ones frozen)",
            )
        if self.prune_end_epoch is not None and self.prune_end_epoch < self.prune_begin_epoch:
            bad_value(
                "prune_end_epoch",
                self.prune_end_epoch,
                f"must not come before prune_begin_epoch={self.prune_begin_epoch}",
            )
        if self.schedule == "step" and not self.step_epochs:
            bad_value("step_epochs", self.step_epochs, "schedule 'step' needs the epochs at which to decay")

    def _check_augmentation_fields(self) -> None:
        """``scale_range``: its shape, and its meaning under the crop mode."""
        if self.scale_range is not None and not (
            isinstance(self.scale_range, list)
            and len(self.scale_range) == 2
            and all(isinstance(v, (int, float)) and v > 0 for v in self.scale_range)
            and self.scale_range[0] <= self.scale_range[1]
        ):
            bad_value("scale_range", self.scale_range, "[low, high] with 0 < low <= high, or null")
        if self.scale_range and self.crop_mode == "random_resized" and self.scale_range[1] > 1:
            bad_value("scale_range", self.scale_range, "with crop_mode random_resized, area shares in (0, 1]")
        if (
            self.scale_range
            and self.crop_mode == "scale_jitter"
            and not all(isinstance(v, int) for v in self.scale_range)
        ):
            bad_value(
                "scale_range",
                self.scale_range,
                "with crop_mode scale_jitter, whole pixels (the shorter side's range)",
            )

    def _check_types(self) -> None:
        """Each field holds its annotated type (an int where a float is due becomes a float)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = base_type(f.type)
            if value is None and "None" in str(f.type):
                continue
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            alternatives = union_types(f.type)
            if kind is not None and not any(_is_a(value, k) for k in alternatives):
                raise UserError(
                    f"config field {f.name}={value!r} is invalid: expected "
                    f"{' or '.join(k.__name__ for k in alternatives)}."
                )
            if isinstance(value, float) and not math.isfinite(value):
                bad_value(f.name, value, "must be a finite number")
            if isinstance(value, list) and f.name in ITEMS:
                check_items(f.name, value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_a(value, kind) -> bool:
    """``isinstance``, except that a bool is no int or float (YAML's ``yes`` is not a batch size)."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}

DEFAULTS = TrainConfig()


def recipe_fields(recipe: str) -> list[str]:
    """The config fields ``recipe`` takes, in the dataclass's order."""
    if recipe not in RECIPES:
        raise UserError(
            f"recipe must be one of {list(RECIPES)}, got {recipe!r}." + did_you_mean(recipe, RECIPES)
        )
    taken = {name for part in RECIPES[recipe] for name in PARTS[part]}
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name in taken]


def check_applies(cfg: TrainConfig, recipe: str) -> None:
    """A field ``recipe`` does not take must keep its default: setting it would change nothing."""
    taken = set(recipe_fields(recipe))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in taken and value != getattr(DEFAULTS, f.name):
            parts = ", ".join(RECIPES[recipe])
            raise UserError(
                f"{recipe} does not apply config field {f.name}={value!r} (it takes the {parts} fields); "
                f"leave it at {getattr(DEFAULTS, f.name)!r}."
            )


def from_dict(values: dict, source: str = "config") -> TrainConfig:
    unknown = sorted(set(values) - FIELDS)
    if unknown:
        raise UserError(
            f"{source}: unknown field {unknown[0]!r}."
            + did_you_mean(unknown[0], FIELDS)
            + f" Fields: {', '.join(sorted(FIELDS))}."
        )
    return TrainConfig(**values)


def load_yaml(path, what: str = "config file") -> dict:
    """A YAML mapping, read with ``safe_load``; a missing file or a non-mapping is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {str(path)!r} is not valid UTF-8 YAML: {_first_line(e)}") from None
    if not isinstance(values, dict):
        raise UserError(f"{what} {str(path)!r} must hold a mapping.")
    return values


def recipe_path(model: str, dataset: str) -> Path:
    return CONFIG_DIR / f"{model}_{dataset.replace('/', '_')}.yaml"


def parse_override(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as YAML (numbers, booleans, lists, null)."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like key=value.")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise UserError(f"override {text!r}: its value is not YAML ({_first_line(e)}).") from None


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def default_dataset(model: str) -> str:
    """The embedded data set for a model's task: digits for images and tables, stdlib_docs for
    text, numbers_de_en for translation."""
    import modelzoo

    try:
        task = modelzoo.get_entry(model).task
    except ValueError:
        return "digits"  # the unknown name is reported when the model is built
    return {"text_classification": "stdlib_docs", "translation": "numbers_de_en"}.get(task, "digits")


def resolve(model: str, *, config_file=None, overrides: dict | None = None) -> TrainConfig:
    """Defaults <- the recipe YAML (given, or ``configs/<model>_<dataset>.yaml`` if it exists) <- overrides."""
    overrides = dict(overrides or {})
    values: dict = {}
    dataset = overrides.get("dataset") or default_dataset(model)
    if not isinstance(dataset, str):  # the rest of the config is checked after the YAML is read
        raise UserError(f"dataset must be a data set's name, got {dataset!r}.")
    path = Path(config_file) if config_file else recipe_path(model, dataset)
    if config_file or path.is_file():
        values.update(load_yaml(path))
    values.setdefault("dataset", dataset)
    values.update(overrides)
    values["model"] = model
    return from_dict(values, source=str(path)).validate()


def save(config: TrainConfig, path, recipe: str | None = None) -> None:
    """The config as YAML; given ``recipe``, only the fields it takes (the rest are defaults)."""
    values = config.to_dict()
    if recipe is not None:
        values = {name: values[name] for name in recipe_fields(recipe)}
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))
