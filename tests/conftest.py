import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


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
