"""Argument checks shared by every builder.

Each check names the argument, the bad value and what is allowed, and raises ``UserError`` (a
``ValueError``): a zoo model is never built from a silently corrected argument.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Sequence

POOLING_CHOICES = (None, "avg", "max")
# The most layers or blocks a repeated-layer keyword may ask for: the graph is built before the
# weights' memory is checked (check_fits_memory), and ALBERT's shared layers need no memory at
# all, so num_layers=10**12 looped for ever instead of failing.
MAX_DEPTH = 1000


class UserError(ValueError):
    """A bad value given by the user (argument, config, data, runtime): the message names it and
    what is allowed. The command-line tools print these in one line and exit 2; any other
    exception is a bug and keeps its traceback. A ``ValueError``, so callers may catch either."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The registered names closest to ``name`` (for did-you-mean messages)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    key = str(name).lower().replace("-", "").replace(" ", "")
    hits = difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.5)
    # A prefix match ("resnet" -> resnet18 ...) is a better hint than nothing.
    if not hits:
        hits = [c for c in lowered if c.startswith(key[:4])][:n] if len(key) >= 4 else []
    return [lowered[h] for h in hits]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    hits = closest(name, choices)
    return f" Did you mean {', '.join(repr(h) for h in hits)}?" if hits else ""


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise UserError(f"{name} must be <= {maximum}, got {value}.")
    return value


def check_float(name: str, value, *, minimum: float, maximum: float, include_max: bool = False) -> float:
    """A real number in ``[minimum, maximum)`` (or ``[minimum, maximum]``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    upper_ok = value <= maximum if include_max else value < maximum
    if not (minimum <= value and upper_ok):
        bracket = "]" if include_max else ")"
        raise UserError(f"{name} must be in [{minimum}, {maximum}{bracket}, got {value}.")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be True or False, got {value!r}.")
    return value


def check_token_classes(num_classes, vocabulary: int, predicts: str) -> int:
    """A token model's classes are its vocabulary: ``num_classes`` None or equal to it.
    ``predicts`` says what, e.g. "a language model predicts its {} tokens"."""
    if num_classes not in (None, vocabulary):
        raise UserError(f"num_classes={num_classes!r}: {predicts.format(vocabulary)}; leave it None.")
    return vocabulary


def check_choice(name: str, value, choices: Sequence):
    if value not in choices:
        raise UserError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def check_activation(name: str, value) -> str | Callable | None:
    """``None`` (logits), a Keras activation name, or a callable."""
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise UserError(f"{name} must be None, an activation name or a callable, got {value!r}.")
    import keras  # here, so that the registry and listing import no Keras

    try:
        keras.activations.get(value)
    except ValueError:
        raise UserError(
            f"{name}={value!r} is not a Keras activation; use None for logits, or a name such as "
            f"'softmax', 'sigmoid', 'linear'." + did_you_mean(value, _activation_names())
        ) from None
    return value


def _activation_names() -> list[str]:
    import keras

    return [
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
    ]


def check_int_tuple(
    name: str, value, *, minimum: int = 1, maximum: int | None = None, length: int | None = None
) -> tuple[int, ...]:
    """A non-empty tuple/list of integers, each in ``[minimum, maximum]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise UserError(f"{name} must be a non-empty list of integers, got {value!r}.")
    if length is not None and len(value) != length:
        raise UserError(f"{name} must have {length} entries, got {len(value)}: {value!r}.")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum, maximum=maximum) for i, v in enumerate(value))


def check_image_shape(value, *, default: tuple[int, int, int], min_size: int) -> tuple[int, int, int]:
    """``(height, width, channels)`` channels-last, any channel count, each side >= ``min_size``."""
    if value is None:
        return tuple(default)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise UserError(
            f"input_shape must be (height, width, channels) in channels-last order, got {value!r}."
        )
    h, w, c = (check_int("input_shape", v, minimum=1) for v in value)
    if h < min_size or w < min_size:
        raise UserError(
            f"input_shape={tuple(value)!r} is too small for this network's strides: height and width "
            f"must be at least {min_size} (default {tuple(default)!r})."
        )
    return (h, w, c)


def check_out_indices(value, num_stages: int) -> tuple[int, ...]:
    """Stage indices for feature extraction; negatives count from the end; nothing is dropped."""
    if value is None:
        return tuple(range(num_stages))
    if isinstance(value, bool) or isinstance(value, numbers.Integral):
        value = (value,)
    indices = []
    for v in check_int_tuple("out_indices", value, minimum=-num_stages):
        if v >= num_stages:
            raise UserError(
                f"out_indices contains {v}, but this model has {num_stages} stages: "
                f"allowed indices are 0..{num_stages - 1} (or -{num_stages}..-1)."
            )
        indices.append(v % num_stages)
    if len(set(indices)) != len(indices):
        raise UserError(f"out_indices must not repeat a stage, got {value!r}.")
    return tuple(indices)


def available_memory() -> int | None:
    """Bytes this process may still allocate: Linux's MemAvailable, lowered to what a cgroup
    (container) limit leaves; None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_fits_memory(name: str, overrides: dict, model) -> None:
    """Refuse a model whose weights alone exceed the memory left, before they are allocated
    (``vgg16_bn(fc_units=1000000)`` asks for 25 billion weights, 100 GB)."""
    free = available_memory()
    if free is None:
        return
    size = sum(math.prod(w.shape) * _itemsize(w.dtype) for w in model.weights)
    if size <= free:
        return
    count = sum(math.prod(w.shape) for w in model.weights)
    given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    raise UserError(
        f"{name}({given}) has {count:,} weights, {size / 2**30:.1f} GiB, more than the "
        f"{free / 2**30:.1f} GiB of memory left on this machine (training with Adam needs about 4x the "
        "weights): lower its widths or depths."
    )


def _itemsize(dtype) -> int:
    import numpy as np

    return 2 if str(dtype) == "bfloat16" else np.dtype(str(dtype)).itemsize
