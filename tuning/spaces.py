"""Search spaces as data: which hyperparameters a search varies, over what range, and why.

A space maps each hyperparameter's *target* to a spec. The target is a recipe config field
(``learning_rate``, ``l2``, ``batch_size``...) or ``model.<keyword>`` for a keyword of the model's
builder (``model.dropout_rate``, ``model.width_multiplier``...), so every trial is an ordinary
:class:`recipes.config.TrainConfig` and the best one is a recipe YAML that ``recipes.train`` runs
unchanged. A spec is a small mapping::

    learning_rate: {type: float, min: 1.0e-4, max: 0.3, sampling: log}
    momentum: {type: float, min: 0.0, max: 0.95, when: {optimizer: [sgd]}}   # conditional
    model.hidden_units: {type: choice, values: [[256], [512, 512], [1024, 1024, 1024]]}
    augment: {type: bool}
    epochs: {type: fixed, value: 5}

``type`` is ``float`` / ``int`` (``min``, ``max``, optional ``step`` and ``sampling``: linear or
log), ``choice`` (``values``: numbers, strings, booleans or lists, lists being kept as JSON for
KerasTuner), ``bool`` or ``fixed``. ``when`` makes a parameter active only for some values of
another one (KerasTuner's conditional scopes). ``default`` is where Bayesian search and the first
grid point start.

:func:`default_space` gives each family's default: the optimizer, its learning rate and schedule,
the batch size; the architecture knobs that the family's builder exposes; and regularization.
Users narrow or extend it from YAML (:func:`load_space`) or keyword arguments
(:meth:`Space.narrow`, :meth:`Space.update`).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json

import yaml

from modelzoo.validation import UserError

TYPES = ("float", "int", "choice", "bool", "fixed")


def _f(lo, hi, sampling="linear", step=None, default=None, why="", **kw):
    spec = {"type": "float", "min": lo, "max": hi, "sampling": sampling, "why": why, **kw}
    if step is not None:
        spec["step"] = step
    if default is not None:
        spec["default"] = default
    return spec


def _i(lo, hi, step=1, default=None, why="", **kw):
    spec = {"type": "int", "min": lo, "max": hi, "step": step, "why": why, **kw}
    if default is not None:
        spec["default"] = default
    return spec


def _c(values, default=None, why="", **kw):
    spec = {"type": "choice", "values": list(values), "why": why, **kw}
    if default is not None:
        spec["default"] = default
    return spec


# What every family shares: how it is optimized.
OPTIMIZATION = {
    "optimizer": _c(
        ["sgd", "adam", "adamw"],
        default="sgd",
        why="SGD with momentum is the papers' choice; Adam(W) is less sensitive to the learning rate.",
    ),
    "learning_rate": _f(
        1e-4,
        0.3,
        "log",
        default=0.01,
        why="The most important knob of all; it spans orders of magnitude, so it is searched on a log scale.",
    ),
    "momentum": _f(
        0.0,
        0.95,
        step=0.05,
        default=0.9,
        when={"optimizer": ["sgd"]},
        why="Only SGD has it; 0.9 is the classic value, lower is steadier on small sets.",
    ),
    "schedule": _c(
        ["constant", "cosine"],
        default="constant",
        why="Cosine decay to zero usually ends at a better optimum than a constant rate.",
    ),
    "warmup_epochs": _f(
        0.0,
        2.0,
        step=0.5,
        default=0.0,
        when={"schedule": ["cosine"]},
        why="A short linear warm-up stabilises large rates and Adam's first steps.",
    ),
    "batch_size": _c(
        [32, 64, 128],
        default=64,
        why="Smaller batches add gradient noise (a regularizer) at more steps per epoch.",
    ),
}

# Regularization: each helps where a model has more capacity than its data.
REGULARIZATION = {
    "model.dropout_rate": _f(
        0.0,
        0.6,
        step=0.1,
        default=0.5,
        why=(
            "Dropout before the classifier (and inside, where the family has it): "
            "the standard remedy for co-adaptation."
        ),
    ),
    "l2": _f(
        1e-6,
        1e-2,
        "log",
        default=1e-5,
        why="A coupled L2 penalty on every kernel: smaller weights, smoother functions.",
    ),
    "l1": _f(
        1e-7,
        1e-3,
        "log",
        default=1e-7,
        why="An L1 penalty drives weights to zero: sparse, feature-selecting solutions.",
    ),
    "weight_decay": _f(
        1e-6,
        1e-2,
        "log",
        default=1e-4,
        why="Decoupled weight decay (Loshchilov & Hutter 2019), which is what AdamW needs instead of L2.",
    ),
    "label_smoothing": _f(
        0.0,
        0.2,
        step=0.05,
        default=0.0,
        why="Softened targets keep logits bounded and calibrate the output (Szegedy et al. 2016).",
    ),
    "early_stopping_patience": _c(
        [2, 4, 8],
        default=4,
        why="Stops a trial once validation loss stops improving: both a regularizer and a budget saver.",
    ),
}
AUGMENTATION = {
    "crop_padding": _f(
        0.0,
        0.25,
        step=0.0625,
        default=0.125,
        why="Random-crop strength: how far a crop may shift (0 turns it off); the papers use about 1/8.",
    ),
}
INPUT_NOISE = {
    "input_noise": _f(
        0.0,
        0.3,
        step=0.05,
        default=0.0,
        why="Gaussian noise on the inputs: training with noise is Tikhonov regularization (Bishop 1995).",
    ),
}

# Architecture knobs per family: only keywords the family's builder takes.
ARCHITECTURE = {
    "mlp": {
        "model.hidden_units": _c(
            [[256], [512, 512], [1024, 1024], [1024, 1024, 1024]],
            default=[1024, 1024],
            why="Depth and width of the hidden layers.",
        ),
        "model.batch_norm": {"type": "bool", "default": False, "why": "Batch norm after each hidden layer."},
    },
    "lenet": {},
    "alexnet": {
        "model.fc_units": _c([1024, 2048, 4096], default=4096, why="Width of the two fully connected layers.")
    },
    "zfnet": {
        "model.fc_units": _c([1024, 2048, 4096], default=4096, why="Width of the two fully connected layers.")
    },
    "vgg": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 1.0], default=1.0, why="Channels of every conv stage, scaled."
        ),
        "model.fc_units": _c([512, 1024, 4096], default=4096, why="Width of the fully connected layers."),
    },
    "nin": {},
    "googlenet": {},
    "resnet": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 1.0], default=1.0, why="Channels of every stage, scaled (wide ResNets go above 1)."
        )
    },
    "resnet_v2": {
        "model.width_multiplier": _c([0.25, 0.5, 1.0], default=1.0, why="Channels of every stage, scaled.")
    },
    "densenet": {"model.growth_rate": _c([12, 24, 32], default=32, why="Channels each dense layer adds.")},
    "inception_v3": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every convolution, scaled (the paper's 1.0)."
        ),
    },
    "regnet": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Every stage's width, scaled (group widths with it)."
        ),
    },
    "nasnet": {
        "model.cell_repeats": _c(
            [2, 4, 6], default=4, why="Depth: normal cells between reductions (Mobile's 4, Large's 6)."
        ),
        "model.penultimate_filters": _c(
            [480, 1056, 2016],
            default=1056,
            why="Width: the last cells' maps, 24x the first cells' (multiples of 96; Mobile's 1056).",
        ),
    },
    "inception_resnet_v2": {
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every convolution, scaled (the paper's 1.0)."
        ),
    },
    "xception": {
        "model.middle_blocks": _c(
            [4, 6, 8], default=8, why="Depth: the middle flow's repeated blocks (the paper's 8)."
        ),
        "model.width_multiplier": _c(
            [0.5, 0.75, 1.0], default=1.0, why="Maps of every separable convolution, scaled."
        ),
    },
    "mobilenet": {
        "model.width_multiplier": _c(
            [0.25, 0.5, 0.75, 1.0],
            default=1.0,
            why="Maps of every layer, scaled (the paper's Table 6 widths).",
        )
    },
    "mobilenet_v2": {
        "model.width_multiplier": _c(
            [0.35, 0.5, 0.75, 1.0, 1.4],
            default=1.0,
            why="Maps of every layer, scaled (the paper's Table 6 widths).",
        )
    },
    "mobilenet_v3": {
        "model.width_multiplier": _c(
            [0.75, 1.0], default=1.0, why="Maps of every layer, scaled (the widths with published weights)."
        ),
        "model.minimalistic": {
            "type": "bool",
            "default": False,
            "why": "3x3 kernels, ReLU, no squeeze-excite: the paper's model for mobile CPUs.",
        },
    },
    "convnext": {
        "model.drop_path_rate": _f(
            0.0,
            0.5,
            step=0.1,
            default=0.1,
            why="Stochastic depth at the last block (the paper: 0.1 for Tiny to 0.5 for Base and Large).",
        ),
        "model.layer_scale_init_value": _c(
            [1e-6, 1e-4, 0.1], default=1e-6, why="Layer scale's starting value (the paper: 1e-6)."
        ),
    },
    "vit": {
        "model.drop_path_rate": _f(
            0.0, 0.3, step=0.1, default=0.1, why="Stochastic depth at the last block (DeiT: 0.1)."
        ),
    },
    "efficientnet": {
        "model.drop_path_rate": _f(
            0.0,
            0.3,
            step=0.1,
            default=0.2,
            why="Stochastic depth: the last block's chance of skipping its branch (the paper: 0.2).",
        )
    },
    "efficientnet_v2": {
        "model.drop_path_rate": _f(
            0.0,
            0.3,
            step=0.1,
            default=0.2,
            why="Stochastic depth: the last block's chance of skipping its branch (the release: 0.2).",
        )
    },
    "textcnn": {
        "model.num_filters": _c(
            [50, 100, 200], default=100, why="Feature maps per filter width (Kim 2014: 100)."
        ),
        "model.embedding_dim": _c([64, 128, 300], default=128, why="Width of the word vectors."),
    },
    "rnn": {
        "model.units": _c([32, 64, 128], default=64, why="Width of each recurrent layer."),
        "model.num_layers": _i(1, 2, default=1, why="Stacked recurrent layers."),
        "model.bidirectional": {"type": "bool", "default": True, "why": "Read the text in both directions."},
    },
    "bert": {
        "model.num_layers": _i(1, 4, default=2, why="Encoder depth."),
        "model.hidden_dim": _c(
            [64, 128, 256], default=128, why="Width; each choice is divisible by every head count."
        ),
        "model.num_heads": _c([2, 4], default=2, why="Attention heads."),
        "model.intermediate_dim": _c(
            [256, 512, 1024], default=512, why="Feed-forward width (BERT: 4x hidden)."
        ),
    },
    "gpt": {},
}
NO_DROPOUT = ()  # every builder takes dropout_rate


@dataclasses.dataclass
class Space:
    """An ordered mapping of target -> spec, checked against one model."""

    specs: dict

    def __post_init__(self):
        self.specs = {k: _check_spec(k, v) for k, v in self.specs.items()}

    def narrow(self, only=None, drop=()) -> Space:
        """Keep only the targets in ``only`` (and the parents their conditions name), minus ``drop``."""
        unknown = sorted((set(only or ()) | set(drop)) - set(self.specs))
        if unknown:
            from modelzoo.validation import did_you_mean

            raise UserError(
                f"hyperparameter {unknown[0]!r} is not in the search space."
                + did_you_mean(unknown[0], self.specs)
                + f" It holds: {', '.join(self.specs)}."
            )
        keep = set(only) if only is not None else set(self.specs)
        for name in list(keep):
            keep |= set(self.specs[name].get("when", {}))
        specs = {k: v for k, v in self.specs.items() if k in keep and k not in drop}
        for name, spec in specs.items():  # a condition on a dropped parent is lifted
            if any(parent not in specs for parent in spec.get("when", {})):
                specs[name] = {k: v for k, v in spec.items() if k != "when"}
        return Space(specs)

    def update(self, specs: dict) -> Space:
        """Add or replace specs (a value of ``None`` removes the target)."""
        merged = copy.deepcopy(self.specs)
        for name, spec in specs.items():
            if spec is None:
                merged.pop(name, None)
            else:
                merged[name] = spec
        return Space(merged)

    def check(self, model: str, fields=None) -> Space:
        """Raise ``UserError`` before any trial if the space is empty or a target is neither a
        recipe config field nor a keyword that ``model``'s builder accepts."""
        import modelzoo
        from modelzoo.validation import did_you_mean
        from recipes.config import FIELDS

        if not self.specs:
            raise UserError("the search space is empty: give at least one hyperparameter to tune.")
        accepted = builder_keywords(model)
        fields = set(fields or FIELDS) - {"model", "model_kwargs", "run_dir", "dataset"}
        for name, spec in self.specs.items():
            if name.startswith("model."):
                key = name[len("model.") :]
                if key not in accepted:
                    raise UserError(
                        f"hyperparameter {name!r}: model {model!r} does not accept {key!r}."
                        + did_you_mean(key, accepted)
                        + f" Its builder takes: {', '.join(sorted(accepted))}."
                    )
            elif name not in fields:
                raise UserError(
                    f"hyperparameter {name!r} is neither a recipe config field nor model.<keyword>."
                    + did_you_mean(name, fields)
                )
            for parent in spec.get("when", {}):
                if parent not in self.specs or list(self.specs).index(parent) > list(self.specs).index(name):
                    raise UserError(
                        f"hyperparameter {name!r} depends on {parent!r}, which must come before it in the space."
                    )
        modelzoo.get_entry(model)
        return self

    def register(self, hp) -> dict:
        """Declare every parameter on KerasTuner's ``hp`` and return the active values as
        ``{target: value}`` (lists decoded), the way a trial's config is made."""
        values = {}
        for name, spec in self.specs.items():
            when = spec.get("when")
            if when:
                ((parent, allowed),) = when.items()
                with hp.conditional_scope(parent, list(allowed)):
                    value = _declare(hp, name, spec)
                if values.get(parent) not in allowed:
                    continue
            else:
                value = _declare(hp, name, spec)
            values[name] = decode(spec, value)
        return values

    def grid_size(self) -> int | None:
        """Points in the full grid (None if a continuous parameter has no step)."""
        size = 1
        for spec in self.specs.values():
            n = _grid_points(spec)
            if n is None:
                return None
            size *= n
        return size

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.specs, sort_keys=False)


def _grid_points(spec) -> int | None:
    kind = spec["type"]
    if kind == "choice":
        return len(spec["values"])
    if kind == "bool":
        return 2
    if kind == "fixed":
        return 1
    if spec.get("step") is None or spec.get("sampling") == "log":
        return (
            None
            if kind == "float" or spec.get("sampling") == "log"
            else int((spec["max"] - spec["min"]) // spec["step"]) + 1
        )
    return int(round((spec["max"] - spec["min"]) / spec["step"])) + 1


def _check_spec(name: str, spec) -> dict:
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise UserError(
            f"hyperparameter {name!r}: a spec is a mapping with type one of {list(TYPES)}, got {spec!r}."
        )
    kind = spec["type"]
    need = {
        "float": ("min", "max"),
        "int": ("min", "max"),
        "choice": ("values",),
        "bool": (),
        "fixed": ("value",),
    }[kind]
    missing = [k for k in need if k not in spec]
    if missing:
        raise UserError(f"hyperparameter {name!r} of type {kind} needs {missing}.")
    if kind in ("float", "int") and not spec["min"] < spec["max"]:
        raise UserError(f"hyperparameter {name!r}: min={spec['min']} must be below max={spec['max']}.")
    if kind in ("float", "int") and spec.get("sampling", "linear") == "log" and spec["min"] <= 0:
        raise UserError(f"hyperparameter {name!r}: log sampling needs min > 0, got {spec['min']}.")
    if kind == "choice" and not spec["values"]:
        raise UserError(f"hyperparameter {name!r}: choice needs at least one value.")
    when = spec.get("when")
    if when is not None and (not isinstance(when, dict) or len(when) != 1):
        raise UserError(
            f"hyperparameter {name!r}: 'when' is one parent and its values, e.g. {{optimizer: [sgd]}}."
        )
    return dict(spec)


def _encode(value):
    return json.dumps(value) if isinstance(value, list) else value


def decode(spec: dict, value):
    """A KerasTuner value back to the config's value (lists were kept as JSON strings)."""
    if (
        spec["type"] == "choice"
        and any(isinstance(v, list) for v in spec["values"])
        and isinstance(value, str)
    ):
        return json.loads(value)
    return value


def _declare(hp, name, spec):
    kind = spec["type"]
    if kind == "float":
        return hp.Float(
            name,
            spec["min"],
            spec["max"],
            step=spec.get("step"),
            sampling=spec.get("sampling", "linear"),
            default=spec.get("default"),
        )
    if kind == "int":
        return hp.Int(
            name,
            spec["min"],
            spec["max"],
            step=spec.get("step", 1),
            sampling=spec.get("sampling", "linear"),
            default=spec.get("default"),
        )
    if kind == "choice":
        values = [_encode(v) for v in spec["values"]]
        default = _encode(spec["default"]) if "default" in spec else None
        return hp.Choice(name, values, default=default)
    if kind == "bool":
        return hp.Boolean(name, default=bool(spec.get("default", False)))
    return hp.Fixed(name, _encode(spec["value"]))


def builder_keywords(model: str) -> set:
    """The keywords ``model``'s builder accepts (what ``model.<keyword>`` may name)."""
    import modelzoo

    entry = modelzoo.get_entry(model)
    fn = getattr(entry, "fn", None) or entry.builder
    return set(inspect.signature(fn).parameters) - {
        "num_classes",
        "input_shape",
        "name",
        "features_only",
        "out_indices",
        "include_top",
        "pooling",
        "classifier_activation",
        "vocabulary_size",
        "max_sequence_length",
        "head",
    }


def default_space(
    model: str, *, regularization: bool = True, optimization: bool = True, architecture: bool = True
) -> Space:
    """The default search space for ``model``: optimization, the family's architecture knobs,
    and regularization (augmentation strength for the families that crop; input noise for
    image and tabular models)."""
    import modelzoo

    entry = modelzoo.get_entry(model)
    specs = {}
    if optimization:
        specs.update(copy.deepcopy(OPTIMIZATION))
    if architecture:
        accepted = builder_keywords(model)
        specs.update(
            {
                k: copy.deepcopy(v)
                for k, v in ARCHITECTURE.get(entry.family, {}).items()
                if k[len("model.") :] in accepted
            }
        )
    if regularization:
        specs.update(copy.deepcopy(REGULARIZATION))
        from recipes.trainer import CROP_FAMILIES

        if entry.family in CROP_FAMILIES:
            specs.update(copy.deepcopy(AUGMENTATION))
        if entry.task != "text_classification":
            specs.update(copy.deepcopy(INPUT_NOISE))
    return Space(specs).check(model)


def load_space(path, model: str) -> Space:
    """A space from YAML: either a full mapping of specs, or edits of the model's default::

    base: default            # or: regularization, optimization, none
    only: [learning_rate, model.dropout_rate, l2]
    drop: [batch_size]
    set:
      learning_rate: {type: float, min: 0.001, max: 0.1, sampling: log}
    """
    from recipes.config import load_yaml

    values = load_yaml(path, what="search space file")
    if not set(values) & {"base", "only", "drop", "set"}:
        return Space(values).check(model)
    unknown = sorted(set(values) - {"base", "only", "drop", "set"})
    if unknown:
        raise UserError(
            f"search space file {str(path)!r}: unknown key {unknown[0]!r}; expected base, only, drop, set."
        )
    return edit_space(
        model,
        base=values.get("base", "default"),
        only=values.get("only"),
        drop=values.get("drop", ()),
        specs=values.get("set") or {},
    )


BASES = ("default", "regularization", "optimization", "architecture", "none")


def edit_space(model: str, *, base: str = "default", only=None, drop=(), specs=None) -> Space:
    """A default space (or part of one) narrowed to ``only``, without ``drop``, with ``specs`` set."""
    if base not in BASES:
        raise UserError(f"search space base must be one of {list(BASES)}, got {base!r}.")
    if base == "none":
        space = Space({})
    else:
        parts = {
            "optimization": base in ("default", "optimization"),
            "architecture": base in ("default", "architecture"),
            "regularization": base in ("default", "regularization"),
        }
        space = default_space(model, **parts)
    space = space.update(specs or {})
    if only is not None or drop:
        space = space.narrow(only=only if only is None else [o for o in only], drop=tuple(drop))
    return space.check(model)
