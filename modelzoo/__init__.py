"""modelzoo: paper-faithful Keras 3 models behind one registry.

    >>> import modelzoo
    >>> modelzoo.list_models("resnet*")
    >>> model = modelzoo.create_model("resnet50", num_classes=10)
    >>> from modelzoo import alexnet

Importing the package imports no Keras: the registry's functions are here at once, and a builder
(``modelzoo.alexnet``), a family's generic builder (``modelzoo.resnet``) or a submodule
(``modelzoo.blocks``) is imported on first use (PEP 562), so ``modelzoo list`` answers from the
recorded table (``modelzoo.table``) without TensorFlow's start-up.
"""

import importlib

from modelzoo.registry import (
    UnknownModelError,
    create_model,
    get_entry,
    list_families,
    list_models,
    model_info,
    register_model,
)

__version__ = "0.1.0"

_API = {
    "count_flops": "modelzoo.analysis",
    "count_params": "modelzoo.analysis",
    "reset_classifier": "modelzoo.surgery",
}
__all__ = [
    "UnknownModelError",
    "count_flops",
    "count_params",
    "create_model",
    "get_entry",
    "list_families",
    "list_models",
    "model_info",
    "register_model",
    "reset_classifier",
]  # the builders too, by name: modelzoo.resnet50, from modelzoo import vgg16
_SUBMODULES = (
    "analysis",
    "blocks",
    "models",
    "pretrained",
    "private_keras",
    "surgery",
    "table",
    "validation",
)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"modelzoo.{name}")
    if name.startswith("_"):
        raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")
    if name in list_models():
        return get_entry(name).builder
    if name in list_families():  # a family's generic builder: modelzoo.resnet(depth=...)
        family = importlib.import_module(f"modelzoo.models.{name}")
        if hasattr(family, name):
            return getattr(family, name)
    raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")


def _public() -> list[str]:
    families = [f for f in list_families() if hasattr(importlib.import_module(f"modelzoo.models.{f}"), f)]
    return sorted({*__all__, *list_models(), *families})


def __dir__() -> list[str]:
    return sorted({*globals(), *_public(), *_SUBMODULES})
