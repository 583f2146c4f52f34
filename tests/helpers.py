"""Shared by the tests that run recipes in subprocesses and kill them."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from recipes.checkpoint import latest_step

ROOT = Path(__file__).resolve().parents[1]


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on 127.0.0.1 now (for a cluster of local processes)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


JAX_CACHE = "MODELZOO_TESTS_JAX_CACHE"  # the session's cache folder (tests/conftest.py makes it)


@contextlib.contextmanager
def shapes_only():
    """Models built inside hold weights of the right shapes and no values (a
    ``keras.StatelessScope`` that does not initialize them): for counting parameters of full-size
    models without allocating them. Keras keeps such variables in its session's list of ones to
    initialize at the next scope's end, so the session is cleared after: what was built inside
    is for counting, not running. The seven BERT relatives beside keras-hub's backbones, at full
    size: 20.1 s -> 2.0 s; every model's full-size count: 112 s -> 77 s (alone, one worker)."""
    import keras

    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        keras.backend.clear_session()


def fast_compile_flags(*, fusion_emitters: bool = True) -> str:
    """``XLA_FLAGS`` for a JAX process whose time is mostly compiling small programs. LLVM at -O0:
    densenet121's build, first train step and first predict 11.4, 28.8, 3.6 s -> 7.3, 20.0, 2.0 s;
    the sharding probe's 24 compiled steps 80 s -> 48 s of CPU here.

    ``fusion_emitters=False``: XLA:CPU's older loop emitters. A tiny model's build compiles one
    weight initializer per kernel shape (googlenet: 156 compiles, 9 of its 13 s), and the JAX model
    suite took 367 s -> 259 s (back to back, its 139 checks passing either way). Only for checks
    within one program: a sharded resnet18's training drifted 1.8e-3 from one device's under it."""
    flags = [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
    if not fusion_emitters:
        flags.append("--xla_cpu_use_fusion_emitters=false")
    return " ".join(flags).strip()


def subprocess_env(*, compile_cache: bool = True, **extra) -> dict:
    """The environment for a recipe subprocess: this checkout importable, TensorFlow quiet, and
    JAX's persistent compilation cache in the session's folder, so that a command run several
    times (unbroken, killed, resumed) compiles once: a model-parallel vgg11 run 25.4 s -> 17.0 s
    the second time here, with the same weights' digest."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if compile_cache and os.environ.get(JAX_CACHE):
        env.update(
            JAX_COMPILATION_CACHE_DIR=os.environ[JAX_CACHE],
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
            # a size limit turns on the cache's file lock: a cluster's processes compile at once
            JAX_COMPILATION_CACHE_MAX_SIZE=str(4 * 2**30),
        )
    return {**env, **extra}


# Every process a test starts, in a session (process group) of its own: the teardown of each test
# (tests/conftest.py) kills what is left of them with all their children.
_STARTED: list[subprocess.Popen] = []


def start(args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session, registered so that the test's teardown kills it and
    every process it started (``kill_started``), however the test ends."""
    proc = subprocess.Popen(args, start_new_session=True, **kwargs)
    _STARTED.append(proc)
    return proc


def run(args, *, timeout: float, check: bool = False, capture_output: bool = False, **kwargs):
    """``subprocess.run`` with a required ``timeout``, through ``start``: on a timeout, or when the
    test is interrupted (pytest-timeout), the whole process group is killed, not only its leader."""
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc = start(args, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        raise
    done = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (its children too, even after it has exited) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=30)
    except (ValueError, OSError, subprocess.TimeoutExpired):  # pipes already closed by the test
        proc.wait(timeout=30)


def kill_started() -> list[str]:
    """Kill every process group ``start`` made; the commands of those still running, for a report."""
    alive = [" ".join(map(str, p.args))[:200] for p in _STARTED if p.poll() is None]
    for proc in _STARTED:
        kill_group(proc)
    _STARTED.clear()
    return alive


EXIT_MEANINGS = {
    134: "aborted (SIGABRT): in a JAX multi-process run, a peer died or never started "
    "(coordination heartbeat or initialization timeout)",
    -signal.SIGKILL: "killed (SIGKILL)",
    -signal.SIGABRT: "aborted (SIGABRT)",
    -signal.SIGSEGV: "crashed (SIGSEGV)",
}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    return EXIT_MEANINGS.get(code, f"exit status {code}")


def finish_all(procs: list, *, timeout: float, grace: float = 30.0) -> list[str]:
    """Wait for the processes of one cluster and return their outputs. Once one fails the others
    get ``grace`` seconds (a peer that cannot go on may only hang) and are then killed, so a dead
    peer costs seconds, not the heartbeat's minutes; past ``timeout`` every one is killed. Any
    failure raises, naming each process's exit (134 read as a dead peer) and its output's tail."""
    outputs: list[str | None] = [None] * len(procs)
    deadline, failed_at = time.time() + timeout, None
    while None in outputs:
        for i, proc in enumerate(procs):
            if outputs[i] is None:
                try:
                    outputs[i] = proc.communicate(timeout=0.2)[0] or ""
                except subprocess.TimeoutExpired:
                    pass
        now = time.time()
        if failed_at is None and any(p.returncode not in (None, 0) for p in procs):
            failed_at = now
        if now > deadline or (failed_at is not None and now > failed_at + grace):
            for i, proc in enumerate(procs):
                if outputs[i] is None:
                    kill_group(proc)
                    outputs[i] = "(killed by finish_all)"
    if any(p.returncode for p in procs):
        report = [
            f"process {i}: {describe_exit(p.returncode)}\n{str(out)[-2000:]}"
            for i, (p, out) in enumerate(zip(procs, outputs))
        ]
        raise AssertionError("a process of the cluster failed:\n" + "\n".join(report))
    return [str(out) for out in outputs]


def sigterm_one(procs: list, run_dir: Path, other: str) -> int:
    """SIGTERM the second process of a cluster alone once training is under way (a step
    checkpoint exists): every process must stop after one same step, with its checkpoint, and exit
    143 (one that stopped alone would leave the others waiting in a collective); that step.
    ``other``: the second process's summary in ``workers/``."""
    deadline = time.time() + 300
    while (latest_step(run_dir / "checkpoints") or 0) < 3 and procs[0].poll() is None:
        assert time.time() < deadline, "no step checkpoint in 300 s"
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [143, 143], [out[-2000:] for out in outputs]
    chief = json.loads((run_dir / "summary.json").read_text())
    second = json.loads((run_dir / "workers" / f"{other}.json").read_text())
    assert chief["stopped_by"] == second["stopped_by"] == "SIGTERM" and not chief["completed"]
    step = chief["steps"]
    assert second["steps"] == step == latest_step(run_dir / "checkpoints"), (second, chief)
    assert all(f"stopped by SIGTERM at step {step}" in out for out in outputs)
    return step


def kill_mid_epoch(
    victim, run_dir: Path, steps_per_epoch: int, *, watch=None, timeout: float = 300, after: int = 0
) -> int | None:
    """SIGKILL ``victim`` once ``run_dir``'s latest checkpoint lies inside epoch 2 or later (past
    the first epoch and step ``after``, not on an epoch boundary); return that step, or None if
    ``watch`` (default: the victim) ended first or ``timeout`` passed."""
    watch = watch or victim
    deadline = time.time() + timeout
    while time.time() < deadline and watch.poll() is None:
        step = latest_step(Path(run_dir) / "checkpoints") or 0
        if step > max(steps_per_epoch, after) and step % steps_per_epoch:
            victim.send_signal(signal.SIGKILL)
            return step
        time.sleep(0.02)
    return None


def write_image_folder(
    root: Path, *, classes: int = 3, per_class: int = 20, size: int = 16, fmt: str = "jpeg"
) -> Path:
    """An ImageNet-layout folder whose classes are learnable (``recipes.records.write_synthetic_folder``)."""
    from recipes.data.writer import write_synthetic_folder

    return write_synthetic_folder(root, classes=classes, per_class=per_class, size=size, fmt=fmt)


def normalising_folder_config(tmp_path: Path):
    """A one-epoch LeNet-5 run on a generated image folder whose evaluation normalises and takes
    the centre crop; streamed, so its test split is the files, which name the images."""
    from recipes import config as config_lib

    folder = write_image_folder(tmp_path / "imgs", classes=3, per_class=10, size=20)
    overrides = {
        "dataset": "folder",
        "data_path": str(folder),
        "streaming": True,
        "normalize": "imagenet_mean_std",
        "eval_crop": 0.875,
        "epochs": 1,
        "batch_size": 8,
        "verbose": 0,
        "run_dir": str(tmp_path / "run"),
    }
    return config_lib.resolve("lenet5", overrides=overrides)


def write_pairs_csv(path: Path) -> Path:
    """80 German-English pairs ("eins a" / "a eins"): a translation set small enough to train in
    seconds, split by the recipe 64 / 8 / 8."""
    words = [f"{a} {b},{b} {a}" for a in ("eins", "zwei", "drei", "vier") for b in "abcdefghijklmnopqrst"]
    path.write_text("de,en\n" + "\n".join(words) + "\n")
    return path
