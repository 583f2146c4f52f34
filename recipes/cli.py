"""What every recipes command shares: user errors print one line and exit with status 2; any
other exception is a bug, and keeps its traceback (status 1)."""

from __future__ import annotations

import importlib
import os
import sys


def import_quietly(module: str):
    """Import ``module`` (and so TensorFlow) with the C++ start-up chatter on stderr silenced, so
    that a command's error stays one line. Python exceptions still propagate."""
    if module in sys.modules:
        return sys.modules[module]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


BACKENDS = ("tensorflow", "jax", "torch")


def select_backend(argv) -> str | None:
    """Set ``KERAS_BACKEND`` from a command line's ``--backend NAME`` (or ``--set backend=NAME``,
    or a ``--config`` YAML's ``backend:``) before anything imports Keras, which reads it once.
    Returns the name asked for (None: ``KERAS_BACKEND`` or TensorFlow). An unknown name is left
    for the config's validation to report; a Keras already imported on another backend, for the
    run's (``recipes.runtime.backend.check_backend``)."""
    argv, wanted, config = list(argv), None, None
    for i, arg in enumerate(argv):
        value = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "--backend":
            wanted = value
        elif arg.startswith("--backend="):
            wanted = arg.split("=", 1)[1]
        elif arg == "--set" and value and value.replace(" ", "").startswith("backend="):
            wanted = value.split("=", 1)[1].strip()
        elif arg == "--config":
            config = value
    if wanted is None and config and os.path.isfile(config):
        import yaml

        try:
            wanted = (yaml.safe_load(open(config)) or {}).get("backend")
        except (yaml.YAMLError, AttributeError):
            wanted = None  # the config's own loading reports it
    if wanted in BACKENDS and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = wanted
    from recipes.runtime.native import avoid_onednn_fault

    avoid_onednn_fault()  # before any convolution runs (recipes/runtime/native.py says why)
    return wanted


def run(prog: str, func, *args, **kwargs) -> int:
    """Call ``func``; a ``UserError`` (every user error in recipes, tuning and modelzoo is one)
    becomes ``<prog>: error: <first line>`` on stderr and status 2. Other exceptions (Keras's or
    TensorFlow's own ``ValueError`` included) propagate with their traceback. A run's summary that
    says a signal stopped it (``recipes.preemption``) gives that run's status, 128 + the signal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the command prints its own errors
    import_quietly("modelzoo")
    from modelzoo.validation import UserError

    try:
        result = func(*args, **kwargs)
    except UserError as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"{prog.replace('python -m ', '')}: error: {message}", file=sys.stderr)
        return 2
    if isinstance(result, dict) and result.get("stopped_by"):  # a run stopped by a signal, resumable
        return int(result["exit_status"])
    return 0
