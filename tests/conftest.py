import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True)
def _kill_started_processes():
    """Whatever a test started through ``tests.helpers.start``/``run`` dies with the test, with
    every child of it; a process started any other way and still running fails the test that
    left it (named, then killed), so a stray process never outlives the test that made it."""
    from tests.helpers import kill_started

    yield
    kill_started()
    strays = _kill_strays()
    if strays:
        pytest.fail(
            f"{len(strays)} child process(es) outlived the test (killed now):\n  " + "\n  ".join(strays)
        )


def _kill_strays() -> list[str]:
    """Kill this process's running children (and theirs); their descriptions. Under pytest-xdist
    the controller's own children are its workers, which check theirs themselves."""
    import psutil

    me = psutil.Process()
    left = []
    for child in me.children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            if child.status() == psutil.STATUS_ZOMBIE or "sys.stdin.readline" in command:  # an xdist worker
                continue
            child.kill()
            left.append(f"pid {child.pid}: {command[:200]}")
        except psutil.Error:
            pass
    return left


@pytest.fixture(autouse=True, scope="module")
def _fresh_keras_per_module():
    """Each test file starts from a cleared Keras session, and what earlier files left alive is
    frozen out of the garbage collector's scans: late tests (the searches) ran 2-4x slower in the
    full suite than alone, each tracing paying for the heap that 400 earlier tests had built."""
    import gc

    yield
    keras.backend.clear_session()
    gc.collect()
    gc.freeze()


_OWN_JAX_CACHE = []


def pytest_configure(config):
    """The session's JAX compilation cache folder (``tests.helpers.subprocess_env``), made once by
    the process that starts the session; xdist's workers and child test runs inherit it."""
    from tests.helpers import JAX_CACHE

    if JAX_CACHE not in os.environ:
        os.environ[JAX_CACHE] = tempfile.mkdtemp(prefix="modelzoo-tests-jax-cache-")
        _OWN_JAX_CACHE.append(os.environ[JAX_CACHE])


def pytest_unconfigure(config):
    for path in _OWN_JAX_CACHE:
        shutil.rmtree(path, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    """The suite fails when a child process is still running at its end (each is named, then
    killed): the per-test check above does not see what a module's fixtures leave."""
    left = _kill_strays()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(
            f"{len(left)} child process(es) outlived the tests (killed now):\n  " + "\n  ".join(left),
            red=True,
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
