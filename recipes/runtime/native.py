"""Native faults the recipes avoid, each with the narrowest switch that works (a runtime setting).

oneDNN's AVX-512 kernel for a convolution's weight gradient crashes the process (``double free or
corruption``, ``malloc(): corrupted top size``, or a segmentation fault) on this machine's AMD
EPYC (AVX-512 with VNNI and BF16), TensorFlow 2.21 and PyTorch alike: training ResNet-18 or -34 at
width 0.125 and 224 px reaches it, and so can a search over ``width_multiplier``. Reduced without
Keras to one 1x1, stride-2, 8 -> 16-channel convolution on a 56 x 56 channels-last batch
(``tests/repro/onednn_backward_weights.py``, kept for an upstream report). Every ISA level from
``AVX512_CORE`` up crashes; ``ONEDNN_MAX_CPU_ISA=AVX2_VNNI_2``, the highest below AVX-512, does not
(nor ``TF_ENABLE_ONEDNN_OPTS=0``, which turns TensorFlow's oneDNN off altogether; XLA and JAX do not
use the kernel). oneDNN reads the variable at its first primitive, so setting it before the first
convolution runs suffices, even after TensorFlow is imported. Its cost on the benchmark's models is
measured by ``python -m benchmarks.run --only isa`` (README).
"""

from __future__ import annotations

import os

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
BELOW_AVX512 = "AVX2_VNNI_2"


def avx512() -> bool:
    """Whether this CPU has AVX-512 (Linux's ``/proc/cpuinfo`` flags; False where unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


def avoid_onednn_fault() -> str | None:
    """Cap oneDNN below AVX-512 on a CPU that has it, unless the user set the cap; the value in
    force (None: none needed or the user's own)."""
    if ISA_VARIABLE in os.environ:
        return os.environ[ISA_VARIABLE]
    if not avx512():
        return None
    os.environ[ISA_VARIABLE] = BELOW_AVX512
    return BELOW_AVX512
