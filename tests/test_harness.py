"""The suite's own harness: a hanging test fails by timeout with its name, and no process a test
started outlives it (``tests/conftest.py``, ``tests.helpers.start``/``run``/``finish_all``)."""

import subprocess
import sys
import textwrap

import psutil

from tests.helpers import ROOT, describe_exit, finish_all, run, start, subprocess_env

CHILD_TESTS = """
import subprocess, sys, time

from tests.helpers import start

SLEEP = [sys.executable, "-c", "import time; time.sleep(1000)"]


def test_sleeps_forever(tmp_path):
    proc = start(SLEEP)  # started the harness's way: killed in teardown
    (tmp_path.parent / "started.pid").write_text(str(proc.pid))
    time.sleep(1000)


def test_leaves_a_stray_child(tmp_path):
    proc = subprocess.Popen(SLEEP)  # not through the harness: the check after each test names it
    (tmp_path.parent / "stray.pid").write_text(str(proc.pid))
"""


def test_a_hanging_test_fails_by_timeout_and_leaves_no_process(tmp_path):
    tests = tmp_path / "test_child.py"
    tests.write_text(textwrap.dedent(CHILD_TESTS))
    base = tmp_path / "base"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(tests),
        "-c",
        str(ROOT / "setup.cfg"),
        "--rootdir",
        str(ROOT),
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",
        "--timeout",
        "5",
        "--basetemp",
        str(base),
        "-q",
    ]
    done = run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "1 failed, 1 passed, 1 error" in out, out[-3000:]
    assert "test_sleeps_forever - Failed: Timeout (>5.0s) from pytest-timeout" in out, out[-3000:]
    assert "ERROR at teardown of test_leaves_a_stray_child" in out, out[-3000:]
    assert "1 child process(es) outlived the test (killed now)" in out and "time.sleep(1000)" in out, out[
        -3000:
    ]
    for name in ("started.pid", "stray.pid"):
        pid = int((base / name).read_text())
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, name


def test_a_dead_peer_fails_the_cluster_in_seconds_naming_the_exit():
    """One process of a pair aborts (as a JAX peer does when the other dies) while the other hangs:
    ``finish_all`` kills the hanging one after the grace period and names both exits."""
    hang = start([sys.executable, "-c", "import time; time.sleep(1000)"], stdout=subprocess.PIPE, text=True)
    abort = start([sys.executable, "-c", "import os; os.abort()"], stdout=subprocess.PIPE, text=True)
    try:
        finish_all([hang, abort], timeout=120, grace=2)
    except AssertionError as err:
        message = str(err)
    else:
        raise AssertionError("finish_all passed a cluster whose process aborted")
    assert "process 1: aborted (SIGABRT)" in message and "process 0: killed (SIGKILL)" in message, message
    assert hang.returncode == -9 and describe_exit(134).startswith(
        "aborted (SIGABRT): in a JAX multi-process run"
    )


def test_jax_processes_share_the_sessions_compilation_cache():
    import os

    from tests.helpers import JAX_CACHE

    cache = os.environ[JAX_CACHE]
    nonce = os.getpid() % 1000 + 2  # a program no earlier test compiled: the first process cannot hit
    program = textwrap.dedent(f"""
        import jax, jax.numpy as jnp
        x, hits = jnp.arange(7.0), []
        hit = lambda event, **_: hits.append(event.endswith("/compilation_cache/cache_hits"))
        jax.monitoring.register_event_listener(hit)
        print(float(jax.jit(lambda x: (x * {nonce} + 1).sum())(x)), any(hits))
    """)
    env = subprocess_env(JAX_PLATFORMS="cpu")
    outs = [
        run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120, check=True)
        for _ in range(2)
    ]
    assert [o.stdout.strip() for o in outs] == [
        f"{21.0 * nonce + 7} False",
        f"{21.0 * nonce + 7} True",
    ]  # compiled by the first, read by the second
    assert any(name.endswith("-cache") for name in os.listdir(cache)), os.listdir(cache)
    assert "JAX_COMPILATION_CACHE_DIR" not in subprocess_env(compile_cache=False)


def test_the_longest_first_files_exist():
    from tests.conftest import LONGEST_FIRST

    missing = [path for path in LONGEST_FIRST if not (ROOT / path).is_file()]
    assert not missing, f"tests/conftest.py LONGEST_FIRST names files that are gone: {missing}"
