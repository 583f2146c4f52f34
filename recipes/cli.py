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


def run(prog: str, func, *args, **kwargs) -> int:
    """Call ``func``; a ``UserError`` (every user error in recipes, tuning and modelzoo is one)
    becomes ``<prog>: error: <first line>`` on stderr and status 2. Other exceptions (Keras's or
    TensorFlow's own ``ValueError`` included) propagate with their traceback."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the command prints its own errors
    import_quietly("modelzoo")
    from modelzoo.validation import UserError

    try:
        func(*args, **kwargs)
    except UserError as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"{prog.replace('python -m ', '')}: error: {message}", file=sys.stderr)
        return 2
    return 0
