"""One run per run folder: a lock file while a run writes it (a loop feature).

The run's chief creates ``RUN_DIR/.lock`` atomically (``O_CREAT | O_EXCL``) with its process id,
host and start time, and removes it when the run ends, however it ends (the other workers of a
multi-worker run share the folder under their chief's lock). A second run into the folder meets
the lock and stops with one line naming the holder. A lock left by a process that is gone (killed
with SIGKILL, a crashed machine's on this host) is taken over with a warning; one from another
host cannot be checked from here, so the line says how to remove it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from modelzoo.validation import UserError

LOCK = ".lock"


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold ``run_dir``'s lock for the ``with`` block."""
    path = Path(run_dir) / LOCK
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    unreadable = 0
    while not _create(path, mine):
        holder = _read(path)
        if holder is None and unreadable < 40:  # being written, or removed, just now: look again
            unreadable += 1
            time.sleep(0.05)
            continue
        holder = holder or {"pid": -1, "host": mine["host"]}  # empty for 2 s: a writer that died
        if holder.get("host") != mine["host"]:
            raise UserError(
                f"run folder {str(run_dir)!r} is locked by process {holder.get('pid')} on host "
                f"{holder.get('host')!r}; if no run is writing it, delete {str(path)!r}."
            )
        if _alive(int(holder.get("pid", -1))):
            raise UserError(
                f"run folder {str(run_dir)!r} is in use by process {holder['pid']} (since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('started', 0)))}); wait "
                "for it to end, or give this run another --run-dir."
            )
        print(
            f"warning: taking over the lock of {str(run_dir)!r} from process {holder['pid']}, which is gone"
        )
        path.unlink(missing_ok=True)
    try:
        yield
    finally:
        if (_read(path) or {}).get("pid") == mine["pid"]:
            path.unlink(missing_ok=True)


def _create(path: Path, content: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(content, f)
    return True


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
