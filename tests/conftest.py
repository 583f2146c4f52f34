import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
from recipes.runtime.native import avoid_onednn_fault  # noqa: E402

avoid_onednn_fault()  # as the recipes' commands do, before any convolution (and for the children)

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

# The longest test files, longest first (seconds of test time in the suite under xdist,
# 2026-12-07, before that day's cuts where marked ~): xdist hands out whole files in collection
# order, so a long file collected last ran alone at the end. The rest keep their order.
LONGEST_FIRST = (
    "tests/recipes/test_distribution_runs.py",  # 348: keras.distribution runs, two JAX processes
    "tests/modelzoo/test_all_models.py",  # ~340 (489 training 36 representatives' steps)
    "tests/test_backends.py",  # ~220 (405 over 36 representatives), one test: the JAX model suite
    "tests/recipes/test_records.py",  # 143
    "tests/modelzoo/test_pretrained.py",  # 131
    "tests/tuning/test_search.py",  # 129
    "tests/recipes/test_pretrain.py",  # 122
    "tests/test_benchmarks.py",  # 117
    "tests/recipes/test_translate.py",  # ~115 (133)
    "tests/recipes/test_train.py",  # 110
    "tests/recipes/test_stream_memory.py",  # 104
    "tests/recipes/test_streaming.py",  # 97
    "tests/recipes/test_multi_worker.py",  # 96
    "tests/recipes/test_export.py",  # ~92 (65, and a BERT in every format)
    "tests/recipes/test_corpus.py",  # 89
    "tests/recipes/test_sharding.py",  # 89
    "tests/recipes/test_explain.py",  # 87
    "tests/tuning/test_distributed.py",  # 71
    "tests/recipes/test_text.py",  # 55
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest in order


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
