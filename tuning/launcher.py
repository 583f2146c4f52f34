"""The distributed search's launcher (``--workers N``): KerasTuner's chief and N workers on
127.0.0.1, each a ``python -m tuning.search`` process, supervised until the chief ends. A worker
that dies is restarted under its own ID; one that a signal ended is told which, so that a trial
that crashes its process is recorded as failed instead of crashing it again
(``tuning.tuners.fail_if_it_killed_its_worker``)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from tuning.tuners import DIED_OF, repair


def launch(argv: list[str], args, *, max_restarts: int = 3, log=print) -> int:
    """Run this same search (``argv``, parsed as ``args``) as KerasTuner's chief plus
    ``args.workers`` workers on 127.0.0.1.

    The chief serves the oracle; each worker runs trials under ``KERASTUNER_TUNER_ID=tunerN``. A
    worker that dies is restarted under its own ID (the chief hands it back its trial, which
    resumes from its checkpoints); only the launcher deletes the folder for ``--overwrite``; a
    global ``args.timeout`` ends a stalled search. Returns the chief's exit status.
    """
    import socket
    import subprocess

    project_dir = Path(args.results_dir) / (args.project or _default_project(args))
    if args.overwrite and project_dir.exists():
        shutil.rmtree(project_dir)
    repair(project_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inner = _strip_option([a for a in argv if a != "--overwrite"], "--workers")
    start = _tuner_starter(inner, project_dir, port)
    chief = start("chief")
    log(
        f"distributed search: chief and {args.workers} worker(s) on 127.0.0.1:{port}; logs in {project_dir / 'logs'}"
    )
    time.sleep(2)  # the oracle server listens before workers ask it for trials
    procs = {f"tuner{i}": start(f"tuner{i}") for i in range(args.workers)}
    (project_dir / "launcher.json").write_text(
        json.dumps({"port": port, "chief": chief.pid, "workers": {k: p.pid for k, p in procs.items()}})
    )
    restarts = _supervise(chief, procs, start, args.timeout, max_restarts, project_dir, log)
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    (project_dir / "launcher.json").write_text(
        json.dumps({"port": port, "restarts": restarts, "chief_status": chief.returncode})
    )
    lines = (project_dir / "logs" / "chief.log").read_text(errors="replace").splitlines()
    report = [i for i, line in enumerate(lines) if " trials (" in line and "completed); best trial" in line]
    for line in lines[report[-1] :] if report else []:
        log(line)
    return chief.returncode


def _tuner_starter(argv: list[str], project_dir: Path, port: int):
    """A function that starts the search's process for a tuner ID (``chief`` or ``tunerN``),
    logging to ``logs/<id>.log`` (appended: a restarted worker continues its log)."""
    import os
    import subprocess

    cmd = [sys.executable, "-m", "tuning.search", *argv]
    cmd += ["--project", project_dir.name, "--results-dir", str(project_dir.parent)]

    def start(tuner_id, died_of=None):
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(port),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        if died_of:  # the worker fails the trial that killed it (tuning.tuners.fail_if_it_killed_its_worker)
            env[DIED_OF] = died_of
        logs = project_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{tuner_id}.log", "a")
        extra = [] if tuner_id == "chief" else ["--no-retrain"]
        return subprocess.Popen(cmd + extra, env=env, stdout=out, stderr=subprocess.STDOUT)

    return start


def exit_text(code: int) -> str:
    """A process's exit status, with the signal's name where a signal ended it (-11: SIGSEGV,
    the native crash recipes/runtime/native.py avoids)."""
    name = _signal_name(code)
    return f"{code} ({name})" if name else str(code)


def _signal_name(code: int) -> str | None:
    """The signal that ended a process with exit status ``code``, or None."""
    import signal

    try:
        return signal.Signals(-code).name if code < 0 else None
    except ValueError:
        return None


def _supervise(chief, procs: dict, start, timeout: float, max_restarts: int, project_dir: Path, log) -> dict:
    """Until the chief exits: restart a worker that failed under its ID, at most ``max_restarts``
    times each; past ``timeout`` seconds or the restarts, kill them all (one line). The restart counts."""
    from modelzoo.validation import UserError

    restarts, deadline = {tid: 0 for tid in procs}, time.time() + timeout

    def give_up(message):
        for p in [chief, *procs.values()]:
            p.kill()
        raise UserError(message)

    while chief.poll() is None:
        if time.time() > deadline:
            give_up(f"distributed search timed out after {timeout:.0f} s; rerun the same command to resume.")
        for tid, proc in list(procs.items()):
            code = proc.poll()
            if code is None or code == 0:
                continue
            if restarts[tid] >= max_restarts:
                give_up(
                    f"worker {tid} failed {max_restarts + 1} times (see {project_dir / 'logs' / (tid + '.log')})."
                )
            restarts[tid] += 1
            log(
                f"worker {tid} exited with status {exit_text(code)}; restarting it under the same ID "
                f"({restarts[tid]}/{max_restarts})"
            )
            procs[tid] = start(tid, died_of=_signal_name(code))
        time.sleep(0.5)
    return restarts


def _strip_option(argv, name):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out


def _default_project(args) -> str:
    from recipes.config import default_dataset

    dataset = args.dataset or default_dataset(args.model)
    return f"{args.model}_{dataset.replace('/', '_')}_{args.tuner}"
