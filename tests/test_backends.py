"""The model suite on the other Keras backends, each in its own process (a process has one backend).

The TensorFlow run of the suite is the rest of this test session. JAX is in the test extra, so CI
runs its model suite always; PyTorch's runs where ``.[torch]`` is installed (PyPI's wheel brings
CUDA, about 4.5 GB, more than CI's install budget: README gives the command). Each backend runs
``test_all_models.py`` and ``test_text_models.py`` without the slow full-size builds: parameter
and MAC counts do not depend on the backend, and TensorFlow's run builds and counts every model.
"""

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT, installed, subprocess_env

SUITE = ["tests/modelzoo/test_all_models.py", "tests/modelzoo/test_text_models.py"]
# The only skips allowed: a language model's head is its tied embedding (no classifier to reset).
ALLOWED_SKIPS = 4


@pytest.mark.slow
@pytest.mark.parametrize("backend", [
    "jax",
    pytest.param("torch", marks=pytest.mark.skipif(not installed("torch"), reason='needs pip install ".[torch]" (see README)')),
])  # fmt: skip
def test_model_suite_passes_on_backend(backend):
    cmd = [sys.executable, "-m", "pytest", *SUITE, "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    env = subprocess_env(KERAS_BACKEND=backend)
    listed = subprocess.run([*cmd, "--collect-only"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    collected = sum(1 for line in listed.stdout.splitlines() if "::" in line)
    done = subprocess.run([*cmd, "--durations=10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    summary = done.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    skipped = int(m.group(1)) if (m := re.search(r"(\d+) skipped", summary)) else 0
    assert skipped <= ALLOWED_SKIPS and "failed" not in summary and "error" not in summary, summary
    assert collected > 150 and passed + skipped == collected, (collected, summary)  # every model's checks ran
