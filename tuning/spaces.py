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
from tuning.space_tables import (
    ARCHITECTURE,
    AUGMENTATION,
    INPUT_NOISE,
    OPTIMIZATION,
    REGULARIZATION,
    TRANSLATION,
)

TYPES = ("float", "int", "choice", "bool", "fixed")


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

        if not self.specs:
            raise UserError("the search space is empty: give at least one hyperparameter to tune.")
        accepted = builder_keywords(model)
        fields = set(fields or recipe_fields(model)) - {"model", "model_kwargs", "run_dir", "dataset"}
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
        if entry.train_crop:
            specs.update(copy.deepcopy(AUGMENTATION))
        if entry.task in ("image_classification", "tabular_classification"):  # not token ids
            specs.update(copy.deepcopy(INPUT_NOISE))
    if translating(model):
        changes = {k: v for k, v in TRANSLATION.items() if k in specs}  # in place: parents stay first
        specs.update(copy.deepcopy(changes))
        fields = recipe_fields(model)
        specs = {k: v for k, v in specs.items() if k.startswith("model.") or k in fields}
    return Space(specs).check(model)


def translating(model: str) -> bool:
    """Whether ``model`` trains through the translation recipe (its trials too)."""
    import modelzoo

    return modelzoo.get_entry(model).task == "translation"


def recipe_fields(model: str) -> set[str]:
    """The config fields a search over ``model`` may set: the translation recipe's for a
    translation model (no L1/L2 or class weights there); any field for a classifier."""
    from recipes import config as config_lib

    if translating(model):
        return set(config_lib.recipe_fields("translate"))
    return set(config_lib.FIELDS)


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
