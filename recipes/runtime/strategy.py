"""Distribution strategies by name, with TF Model Garden's names, checked against the hardware.

``auto`` picks a TPU (when an address is given or the TPU environment names one), then several
GPUs (``mirrored``), then one device. Asking for more than the machine has is an error, not a
silent single-device run.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from modelzoo.validation import UserError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu", "off")


class StrategyError(UserError):
    """A strategy that cannot run on this machine as asked."""


def make_strategy(name: str = "auto", *, num_gpus: int | None = None, devices=None, tpu: str | None = None):
    """A ``tf.distribute.Strategy`` for ``name``.

    ``num_gpus`` (mirrored) must not exceed the GPUs present; ``devices`` names them explicitly
    (e.g. two logical CPUs, ``["/cpu:0", "/cpu:1"]``, for testing). ``multi_worker_mirrored``
    needs ``TF_CONFIG``; ``tpu`` needs an address (or ``"local"``).
    """
    if name not in STRATEGIES:
        from modelzoo.validation import did_you_mean

        raise StrategyError(
            f"strategy must be one of {list(STRATEGIES)}, got {name!r}." + did_you_mean(name, STRATEGIES)
        )
    if name == "mirrored" and devices:
        _check_devices(devices)  # before anything starts the runtime: it may add logical CPUs
        return tf.distribute.MirroredStrategy(devices=list(devices))
    # Physical devices: listing them does not start the runtime (multi-worker needs it unstarted).
    gpus = [f"/gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]
    if name == "auto":
        if tpu or os.environ.get("TPU_NAME"):
            name = "tpu"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            # TensorFlow's default strategy: OneDeviceStrategy wraps each dataset iterator in a
            # multi-device one (80 ms each, a few an epoch); 15 epochs of the MLP on digits took
            # 13.8 s with it and 7.0 s without here, to the same weights
            name = "off"
    if name == "off":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        want = len(gpus) if num_gpus is None else num_gpus
        if want < 1 or want > len(gpus):
            raise StrategyError(
                f"strategy 'mirrored' with num_gpus={want} needs {want} GPU(s); this machine has {len(gpus)}. "
                "Use one_device, or name devices explicitly."
            )
        return tf.distribute.MirroredStrategy(devices=gpus[:want])
    if name == "multi_worker_mirrored":
        return _multi_worker()
    return _tpu(tpu or os.environ.get("TPU_NAME"))


def _multi_worker():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise StrategyError(
            "strategy 'multi_worker_mirrored' needs TF_CONFIG (cluster and task) in the environment."
        )
    try:
        json.loads(raw)["cluster"]
    except (ValueError, KeyError, TypeError):
        raise StrategyError("TF_CONFIG must be JSON with a 'cluster' and a 'task'.") from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise StrategyError(
            f"multi_worker_mirrored must be created before TensorFlow starts: {err}"
        ) from None


def _tpu(address):
    if not address:
        raise StrategyError(
            "strategy 'tpu' needs an address (tpu: grpc://HOST:8470, a TPU name, or 'local')."
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu="" if address == "local" else address
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as err:
        raise StrategyError(
            f"cannot reach TPU {address!r}: {(str(err).splitlines() or [type(err).__name__])[0]}; TensorFlow "
            f"{tf.__version__} has no TPU build (the last was tensorflow-tpu 2.19.1): on TPUs use --backend jax "
            "--distribution data_parallel."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _check_devices(devices):
    cpus = [
        int(d.rsplit(":", 1)[1]) for d in devices if d.lower().lstrip("/").startswith(("cpu:", "device:cpu:"))
    ]
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = len(tf.config.get_logical_device_configuration(cpu) or [None])
    if cpus and max(cpus) + 1 > configured:
        try:  # logical CPUs for testing replicas on one machine
            split_cpu(max(cpus) + 1)
        except RuntimeError:
            raise StrategyError(
                f"devices {list(devices)} need {max(cpus) + 1} logical CPUs, and TensorFlow has already started "
                "with fewer; name them before any TensorFlow work."
            ) from None
    present = {
        d.name.lower().replace("/job:localhost/replica:0/task:0/device:", "/")
        for d in tf.config.list_logical_devices()
    }
    for d in devices:
        key = d.lower().replace("device:", "")
        if not any(p.endswith(key.lstrip("/")) for p in present):
            raise StrategyError(f"device {d!r} is not on this machine; present: {sorted(present)}.")


def split_cpu(n: int) -> None:
    """Make ``n`` logical CPU devices (must run before TensorFlow initialises its devices)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def strategy_name(strategy) -> str:
    """The name (as in ``STRATEGIES``) of a strategy object: what ``auto`` picked, for the summary."""
    names = {
        "OneDeviceStrategy": "one_device",
        "MirroredStrategy": "mirrored",
        "CollectiveAllReduceStrategy": "multi_worker_mirrored",
        "MultiWorkerMirroredStrategy": "multi_worker_mirrored",
        "TPUStrategy": "tpu",
    }
    return names.get(type(strategy).__name__, "off")


def is_chief(strategy) -> bool:
    """True on the worker that writes the run folder (the only one outside multi-worker runs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    from recipes.runtime.private_tensorflow import in_multi_worker_mode

    if resolver is None or not in_multi_worker_mode(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )
