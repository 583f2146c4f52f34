"""The oneDNN fault (recipes/runtime/native.py): the reduced reproducer runs under the recipes'
switch; without it, on a CPU with AVX-512, it dies of a signal (so the switch is still needed)."""

import os
import sys

import pytest

from recipes.runtime import native
from tests import helpers
from tests.helpers import ROOT, subprocess_env

REPRO = str(ROOT / "tests" / "repro" / "onednn_backward_weights.py")


def _run(**env):
    base = {k: v for k, v in subprocess_env().items() if k != native.ISA_VARIABLE}
    return helpers.run(
        [sys.executable, REPRO, "32"], env={**base, **env}, timeout=300, capture_output=True, text=True
    )


def test_the_reduced_convolution_trains_under_the_recipes_switch(monkeypatch):
    monkeypatch.delenv(native.ISA_VARIABLE, raising=False)
    value = native.avoid_onednn_fault()
    assert value == (native.BELOW_AVX512 if native.avx512() else None)
    assert os.environ.get(native.ISA_VARIABLE) == value
    done = _run(**({native.ISA_VARIABLE: value} if value else {}))
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-500:]
    monkeypatch.setenv(native.ISA_VARIABLE, "AVX2")
    assert native.avoid_onednn_fault() == "AVX2"  # the user's own cap is kept


@pytest.mark.skipif(not native.avx512(), reason="the fault is in oneDNN's AVX-512 kernel")
def test_without_the_switch_the_reproducer_still_dies():
    crashed = _run()
    assert crashed.returncode != 0  # when this fails, upstream fixed it: the switch can go
