"""What a config field may hold: the choices of each enumerated field, the range of each number,
the fields that may be null, and the checks ``TrainConfig.validate`` runs with them, each
failure one line naming the field, the value and what is allowed; and which part of the config
each field belongs to, and which parts each recipe takes."""

from __future__ import annotations

from modelzoo.validation import UserError

OPTIMIZERS = ("sgd", "adam", "adamw")


SCHEDULES = ("constant", "step", "cosine", "inverse_sqrt")


PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


LOSSES = ("crossentropy", "focal")


BACKENDS = ("tensorflow", "jax", "torch")


CHOICES = {
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "loss": LOSSES,
    "mixed_precision": PRECISIONS,
    "backend": BACKENDS,
    "streaming": (True, False, "auto"),
    "bad_images": ("stop", "skip"),
    "distribution": ("auto", "off", "data_parallel", "model_parallel"),
    "crop_mode": ("pad", "random_resized", "scale_jitter"),
    "normalize": ("none", "imagenet_mean", "imagenet_mean_std", "family"),
    "distill_targets": ("soft", "hard"),
    "jit_compile": (True, False, "auto"),
    "diagnostics": ("gradients",),
}


# Numeric fields: (lowest, highest, lowest allowed, highest allowed); highest None: unbounded.
RANGES = {
    **{
        name: (0, None, False, None)
        for name in ("learning_rate", "unfreeze_lr_scale", "temperature", "clipnorm", "memory_budget_gb")
    },
    **{
        name: (1, None, True, None)
        for name in (
            "batch_size",
            "epochs",
            "checkpoint_every",
            "diagnostics_every",
            "early_stopping_patience",
            "image_size",
            "data_service_workers",
        )
    },
    **{
        name: (0, None, True, None)
        for name in (
            "momentum",
            "weight_decay",
            "warmup_epochs",
            "l1",
            "l2",
            "input_noise",
            "focal_gamma",
            "precise_bn_samples",
        )
    },
    "sequence_length": (4, None, True, None),
    "vocabulary_size": (16, None, True, None),
    "crop_padding": (0, 0.5, True, False),
    "label_smoothing": (0, 1, True, False),
    "beam_size": (1, 64, True, True),
    "adam_beta_1": (0, 1, True, False),
    "adam_beta_2": (0, 1, True, False),
    "adam_epsilon": (0, None, False, None),
    "divergence_factor": (1, None, False, None),
    "length_penalty": (0, 5, True, True),
    "prune_sparsity": (0, 1, True, False),
    "train_fraction": (0, 1, False, True),
    "distill_weight": (0, 1, True, True),
    "eval_crop": (0, 1, False, True),
    "step_gamma": (0, None, False, None),
    "prune_begin_epoch": (0, None, True, None),
    "prune_end_epoch": (0, None, True, None),
    "seed": (0, 2**32 - 1, True, True),  # NumPy's seed range
    "verbose": (0, 2, True, True),  # Keras's fit: silent, a progress bar, a line per epoch
    "num_gpus": (0, None, True, None),
}

# List fields: (the types each item may have, how many items: None for any number).
ITEMS = {
    "step_epochs": ((int,), None),
    "languages": ((str,), 2),
    "devices": ((str, int), None),
    "classes": ((str, int), None),
    "scale_range": ((int, float), 2),
    "gradient_bounds": ((int, float), 2),
}


OPTIONAL = (
    "backend",
    "clipnorm",
    "early_stopping_patience",
    "image_size",
    "memory_budget_gb",
    "data_service",
    "eval_crop",
    "mesh",
    "jit_compile",
    "divergence_factor",
    "diagnostics",
)  # null allowed


def bad_value(field, value, allowed):
    raise UserError(f"config field {field}={value!r} is invalid: {allowed}.")


def check_items(field, value) -> None:
    """A list field's items: of the allowed types (never a bool), and as many as it needs."""
    kinds, count = ITEMS[field]
    names = " or ".join(k.__name__ for k in kinds)
    if any(isinstance(v, bool) or not isinstance(v, kinds) for v in value):
        bad_value(field, value, f"each item must be a {names}")
    if count is not None and len(value) != count:
        bad_value(field, value, f"needs {count} items ({names})")


def within(value, low, high, low_in, high_in) -> bool:
    above = value >= low if low_in else value > low
    return above and (high is None or (value <= high if high_in else value < high))


def range_text(low, high, low_in, high_in) -> str:
    if high is None:
        return f"must be {'>=' if low_in else '>'} {low}"
    return f"must be in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def base_type(annotation: str):
    text = str(annotation)
    for name, kind in (
        ("bool", bool),
        ("int", int),
        ("float", float),
        ("str", str),
        ("dict", dict),
        ("list", list),
    ):
        if text.split("|")[0].strip() == name:
            return kind
    return None


def union_types(annotation: str) -> list:
    """Every type a ``a | b | None`` annotation names (None left out)."""
    names = {"bool": bool, "int": int, "float": float, "str": str, "dict": dict, "list": list}
    return [names[p.strip()] for p in str(annotation).split("|") if p.strip() in names]


# The config in parts: every field belongs to exactly one, and a recipe takes some of them.
PARTS = {
    "model": ("model", "model_kwargs"),
    "data": (
        "dataset",
        "data_dir",
        "data_path",
        "batch_size",
        "data_service",
        "data_service_workers",
        "streaming",
        "memory_budget_gb",
    ),
    "labels": ("label_column", "text_column", "classes", "class_fraction", "train_fraction"),
    "images": (
        "image_size",
        "augment",
        "crop_padding",
        "crop_mode",
        "scale_range",
        "eval_crop",
        "normalize",
        "bad_images",
    ),
    "text": ("sequence_length", "vocabulary_size", "vocabulary_file"),
    "optimization": (
        "epochs",
        "optimizer",
        "learning_rate",
        "momentum",
        "nesterov",
        "adam_beta_1",
        "adam_beta_2",
        "adam_epsilon",
        "weight_decay",
        "schedule",
        "warmup_epochs",
        "step_epochs",
        "step_gamma",
        "clipnorm",
        "divergence_factor",
        "early_stopping_patience",
        "precise_bn_samples",
    ),
    "runtime": (
        "backend",
        "mixed_precision",
        "jit_compile",
        "steps_per_execution",
        "strategy",
        "num_gpus",
        "devices",
        "tpu",
        "distribution",
        "mesh",
        "checkpoint_every",
        "diagnostics",
        "diagnostics_every",
        "gradient_bounds",
        "seed",
        "run_dir",
        "verbose",
    ),
    "smoothing": ("label_smoothing",),
    "translation": ("languages", "beam_size", "length_penalty"),
    "classification": (
        "loss",
        "focal_gamma",
        "class_weight",
        "l1",
        "l2",
        "input_noise",
        "prune_sparsity",
        "prune_begin_epoch",
        "prune_end_epoch",
        "init_from",
        "freeze_epochs",
        "unfreeze_lr_scale",
    ),
    "distillation": ("temperature", "distill_weight", "distill_targets", "distill_token"),
}
COMMON = ("model", "data", "optimization", "runtime")
RECIPES = {
    "train": (*COMMON, "labels", "images", "text", "smoothing", "classification"),  # finetune, tuning too
    "translate": (*COMMON, "text", "smoothing", "translation"),  # train, for a translation model
    "pretrain": (*COMMON, "text"),
    "distill": (*COMMON, "labels", "images", "text", "distillation"),  # the Distiller computes its own loss
}
