"""The model registry: name -> builder, paper metadata, wildcard listing and did-you-mean.

A family file registers each builder with the ``register_model`` decorator (or ``make_variant``
for a preset of a generic builder), so a new model touches only its family file and its tests.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from modelzoo.validation import UserError, check_fits_memory, did_you_mean

TASKS = (
    "image_classification",
    "text_classification",
    "masked_lm",
    "causal_lm",
    "translation",
    "tabular_classification",
)


# ImageNet's per-channel statistics on [0, 1] RGB images, as torchvision and timm normalise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UnknownModelError(UserError):
    """Raised for a model name that is not registered; the message suggests the closest names."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model without building it."""

    name: str
    builder: Callable
    family: str
    task: str
    paper: str
    year: int
    url: str
    reference: str
    default_input_shape: tuple | None
    min_input_size: int | None
    tiny_config: dict = dataclasses.field(default_factory=dict)

    @property
    def default_config(self) -> dict[str, Any]:
        return {
            k: p.default
            for k, p in inspect.signature(self.builder).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    @property
    def layout(self) -> dict[str, tuple]:
        """The family's model-parallel layout for ``keras.distribution``: variable path regex ->
        mesh axis (``"model"`` or None) per dimension; empty when the family is data parallel only."""
        return dict(getattr(_family_module(self.family), "LAYOUT", {}))

    @property
    def train_crop(self) -> bool:
        """Whether the family's paper trains with random crops (and flips where the labels allow):
        the recipes' augmentation for it. A family records it (``TRAIN_CROP``), not the recipes."""
        return bool(getattr(_family_module(self.family), "TRAIN_CROP", False))

    @property
    def mean_std(self) -> tuple:
        """The per-channel (mean, std) on [0, 1] RGB images that the family's ImageNet recipe
        normalises with (``MEAN_STD``; either may be None); (None, None) where it records none.
        The recipes apply it with ``normalize: family``."""
        return tuple(getattr(_family_module(self.family), "MEAN_STD", (None, None)))

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads the family's builder takes (``head=``; ``HEADS``), empty where it has one."""
        return tuple(getattr(_family_module(self.family), "HEADS", ()))

    @property
    def input_names(self) -> tuple[str, ...]:
        """The named inputs of a family of token models (``INPUTS``: keras-hub's ``token_ids``,
        ``segment_ids``, ``padding_mask``), which the recipes build from token ids; empty where
        the model takes one tensor."""
        return tuple(getattr(_family_module(self.family), "INPUTS", ()))

    @property
    def layout_note(self) -> str:
        return getattr(
            _family_module(self.family), "LAYOUT_NOTE", "data parallel only: no model-parallel layout"
        )

    @property
    def keywords(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelEntry] = {}


def _family_module(family: str):
    import importlib

    return importlib.import_module(f"modelzoo.models.{family}")


def register_model(
    fn: Callable | None = None,
    *,
    paper: str,
    year: int,
    url: str = "",
    reference: str = "",
    task: str = "image_classification",
    family: str | None = None,
    default_input_shape: tuple | None = None,
    min_input_size: int | None = None,
    name: str | None = None,
    tiny_config: dict | None = None,
):
    """Decorator: register ``fn`` under its ``__name__`` (or ``name``).

    ``reference`` says which published implementation the pinned parameter count follows.
    ``min_input_size`` is the smallest height/width the network's strides allow.
    ``tiny_config`` holds overrides that shrink the model's widths for fast smoke tests and
    benchmarks' tiny mode (like timm's test sizes); the architecture's shape stays the same.
    """

    def deco(builder: Callable) -> Callable:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise UserError(f"model {key!r} is already registered (by {_REGISTRY[key].builder.__module__}).")
        if task not in TASKS:
            raise UserError(f"task must be one of {list(TASKS)}, got {task!r}.")
        fam = family or builder.__module__.rsplit(".", 1)[-1]
        shape = default_input_shape
        if shape is None:
            shape = inspect.signature(builder).parameters.get("input_shape")
            shape = None if shape is None else shape.default
        _REGISTRY[key] = ModelEntry(
            name=key,
            builder=builder,
            family=fam,
            task=task,
            paper=paper,
            year=year,
            url=url,
            reference=reference,
            default_input_shape=tuple(shape) if shape is not None else None,
            min_input_size=min_input_size,
            tiny_config=dict(tiny_config or {}),
        )
        return builder

    return deco(fn) if fn is not None else deco


def make_variant(base: Callable, name: str, doc: str, *, defaults: dict | None = None, **fixed) -> Callable:
    """A named preset of a generic builder (``vgg16 = make_variant(vgg, "vgg16", ..., depth=16)``).

    The preset's signature is the base signature without the ``fixed`` arguments, so
    ``create_model`` validates keywords against it, and passing a fixed one is an error.
    ``defaults`` changes the defaults of arguments the caller may still choose (EfficientNet-B7's
    600x600 input and 0.5 dropout), so the registry reads them from the preset's signature.
    """
    sig = inspect.signature(base)
    defaults = dict(defaults or {})
    unknown = (set(fixed) | set(defaults)) - set(sig.parameters)
    if unknown:
        raise TypeError(f"{base.__name__} has no parameter(s) {sorted(unknown)}.")
    params = [
        p.replace(default=defaults[p.name]) if p.name in defaults else p
        for p in sig.parameters.values()
        if p.name not in fixed
    ]
    preset = sig.replace(parameters=params)

    def builder(*args, **kwargs):
        clash = sorted(set(fixed) & set(kwargs))
        if clash:
            raise UserError(
                f"{name} fixes {', '.join(f'{k}={fixed[k]!r}' for k in clash)}; "
                f"call {base.__name__}(...) to choose {', '.join(clash)} yourself."
            )
        bound = preset.bind(*args, **kwargs)
        bound.apply_defaults()
        return base(**bound.arguments, **fixed)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    builder.__signature__ = preset
    builder.__module__ = base.__module__
    return builder


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name raises ``UnknownModelError`` with suggestions."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise UnknownModelError(f"model name must be a string, got {name!r}.")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}."
            + did_you_mean(name, _REGISTRY)
            + " Use modelzoo.list_models() to see every registered name."
        ) from None


def create_model(name: str, /, weights=None, **overrides):
    """Build the registered model ``name``; keyword overrides are checked against its builder.

    ``weights``: None (fresh), ``"imagenet"`` (keras.applications' weights, converted; see
    ``modelzoo.pretrained``), a keras-hub preset for BERT and GPT (a preset name, handle or
    directory) or a ``.weights.h5`` / ``.keras`` file.
    """
    entry = get_entry(name)
    allowed = entry.keywords
    for key in overrides:
        if key not in allowed:
            raise UserError(
                f"{name} got an unknown keyword {key!r}."
                + did_you_mean(key, allowed)
                + f" Allowed: {', '.join(allowed)}."
            )
    from modelzoo import private_keras  # here: the registry and listing import no Keras

    model = private_keras.build_deferred(
        lambda: entry.builder(**overrides), lambda built: check_fits_memory(name, overrides, built)
    )
    if weights is not None:
        from modelzoo import pretrained

        model = pretrained.load(model, name, weights)
    return model


def list_models(
    pattern: str | Iterable[str] | None = None,
    *,
    family: str | None = None,
    task: str | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """Registered names, sorted; ``pattern`` and ``exclude`` take shell wildcards (``"resnet*"``)."""
    _ensure_loaded()
    kinds = {name: (entry.family, entry.task) for name, entry in _REGISTRY.items()}
    return select(kinds, pattern, family=family, task=task, exclude=exclude)


def select(
    kinds: dict[str, tuple[str, str]],
    pattern: str | Iterable[str] | None = None,
    *,
    family: str | None = None,
    task: str | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """The names of ``kinds`` (name -> (family, task)) that ``list_models``' filters keep, sorted:
    the one filter for the live registry and for the recorded table (``modelzoo list``)."""
    names = sorted(kinds)
    if family is not None:
        families = sorted({f for f, _ in kinds.values()})
        if family not in families:
            raise UserError(
                f"unknown family {family!r}; families: {families}." + did_you_mean(family, families)
            )
        names = [n for n in names if kinds[n][0] == family]
    if task is not None:
        if task not in TASKS:
            raise UserError(f"unknown task {task!r}; tasks: {list(TASKS)}.")
        names = [n for n in names if kinds[n][1] == task]
    if pattern is not None:
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if exclude is not None:
        excludes = [exclude] if isinstance(exclude, str) else list(exclude)
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in excludes)]
    return names


def list_families() -> list[str]:
    _ensure_loaded()
    return sorted({e.family for e in _REGISTRY.values()})


@functools.cache
def _counted(name: str) -> dict[str, Any]:
    from modelzoo import table

    return table.count(name)


def model_info(name: str, *, stats: bool = True, recount: bool = False) -> dict[str, Any]:
    """The model's card: paper, year, default input, and its params and FLOPs.

    ``macs`` are multiply-accumulates of the default config at its default input, for one sample;
    ``flops`` = 2 x ``macs``. The counts come from the recorded table (``modelzoo.table``, kept
    true by the model tests); a model the table lacks (registered by a user), or ``recount=True``,
    is built and counted once per process. ``stats=False`` leaves the counts out.
    """
    from modelzoo import table

    entry = get_entry(name)
    info = {
        "name": entry.name,
        "family": entry.family,
        "task": entry.task,
        "paper": entry.paper,
        "year": entry.year,
        "url": entry.url,
        "reference": entry.reference,
        "default_input_shape": entry.default_input_shape,
        "min_input_size": entry.min_input_size,
        "default_config": entry.default_config,
        "tiny_config": dict(entry.tiny_config),
        "layout": entry.layout_note,
        "train_crop": entry.train_crop,
        "mean": entry.mean_std[0],
        "std": entry.mean_std[1],
    }
    if stats:
        recorded = None if recount else table.load().get(name)
        counts = _counted(name) if recorded is None else recorded
        info.update({key: copy.deepcopy(counts[key]) for key in table.COUNTS})
    return info


def _ensure_loaded() -> None:
    # Family modules register themselves on import; importing the package imports them all.
    import modelzoo.models  # noqa: F401
