"""The model suite on the other Keras backends, each in its own process (a process has one backend).

The TensorFlow run of the suite is the rest of this test session. JAX is in the test extra, so CI
runs its model suite always; PyTorch's runs where ``.[torch]`` is installed (PyPI's wheel brings
CUDA, about 4.5 GB, more than CI's install budget: README gives the command). Each backend runs
``test_all_models.py`` and ``test_text_models.py`` without the slow full-size builds: parameter
and MAC counts do not depend on the backend, and TensorFlow's run builds and counts every model.

What each other backend must cover is what runs backend code, a layer's call: the forward pass,
training steps and a ``.keras`` round trip of ``BACKEND_SET`` (the fewest models that hold every
layer kind of the zoo between them, checked on TensorFlow), and the text-model tests. The forward
pass checks the stage maps too, read from the classifier's graph. Four checks are TensorFlow's
only: the set's coverage, which builds every model; the
``features_only`` models, their ``out_indices`` and ``reset_classifier`` read and rewire the
functional graph (layers, their connections and symbolic shapes), which Keras builds the same on
every backend; on JAX they ran each model op by op and took a third of its suite's time.
"""

import sys
from xml.etree import ElementTree

import pytest

from tests import helpers
from tests.helpers import ROOT, fast_compile_flags, installed, subprocess_env
from tests.modelzoo.test_all_models import BACKEND_SET

SUITE = [
    "tests/modelzoo/test_all_models.py",
    "tests/modelzoo/test_text_models.py",
    "tests/modelzoo/test_translation_models.py",
]
BACKEND_CHECKS = (
    "not test_features_return_the_documented_stage_maps "
    "and not test_features_out_indices_pick_stages_in_the_order_asked "
    "and not test_reset_classifier_keeps_every_other_weight "
    "and not test_the_backend_set_holds_every_layer_kind"
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a whole pytest run in a child process, each of its tests under the usual limit
@pytest.mark.parametrize(
    "backend",
    [
        "jax",
        pytest.param(
            "torch",
            marks=pytest.mark.skipif(
                not installed("torch"), reason='needs pip install ".[torch]" (see README)'
            ),
        ),
    ],
)
def test_model_suite_passes_on_backend(backend, tmp_path):
    report = tmp_path / "report.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *SUITE,
        "-m",
        "not slow",
        "-k",
        BACKEND_CHECKS,
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",
        f"--junitxml={report}",
        "--durations=10",
    ]
    # Compiling is most of JAX's time here, running little. One process: no cache to share.
    flags = fast_compile_flags(fusion_emitters=False)
    env = subprocess_env(KERAS_BACKEND=backend, XLA_FLAGS=flags, compile_cache=False)
    done = helpers.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    cases = list(ElementTree.parse(report).iter("testcase"))
    bad = [
        (case.get("name"), child.tag)
        for case in cases
        for child in case
        if child.tag in ("failure", "error", "skipped")
    ]
    assert not bad, (bad, tail)
    checked = {case.get("name").split("[")[-1].rstrip("]") for case in cases if "[" in case.get("name")}
    assert checked >= set(BACKEND_SET) and len(cases) > 3 * len(BACKEND_SET), (len(cases), tail)
