"""The tf.data service: a run's training batches built by dispatchers and workers
in this process (``local``) or on other hosts (``python -m recipes.dataservice``)."""

from __future__ import annotations

import tensorflow as tf

from recipes.data.base import DataError

_SERVICE: list = []  # "local": this process's (dispatcher, worker) pairs, started once


def through_service(address: str | None, workers: int = 1):
    """``serve(make)``: the training batches ``make(shard)`` gives (``shard``: None, or (n, i) for
    every n-th batch from the i-th), produced by a tf.data service. ``"local"`` starts ``workers``
    dispatchers with one worker each in this process; ``"grpc://HOST:PORT,..."`` uses running ones
    (``python -m recipes.dataservice``, each a dispatcher with one worker; the data's files must be
    readable there). Dispatcher i's worker builds the pipeline of batches i, i + n, ... (sharded
    before anything is read or decoded) and the run reads them round robin; each job runs on one
    worker with ``ShardingPolicy.OFF``, so its elements arrive in order: a run through the service
    is the run without it, bit for bit (dynamic sharding would not be, and is not used). On 2
    cores it cannot be faster; it shows the mode runs and what it costs."""
    if address is None:
        return lambda make: make(None)
    service = tf.data.experimental.service
    if address == "local":
        while len(_SERVICE) < workers:
            dispatcher = service.DispatchServer()
            worker = service.WorkerServer(
                service.WorkerConfig(dispatcher_address=dispatcher.target.split("://", 1)[1])
            )
            _SERVICE.append((dispatcher, worker))
        targets = [d.target for d, _ in _SERVICE[:workers]]
    else:
        targets = service_targets(address)

    def distribute(ds, i):
        return ds.apply(service.distribute(processing_mode=service.ShardingPolicy.OFF, service=targets[i]))

    def serve(make):
        if len(targets) == 1:
            return distribute(make(None), 0)
        parts = [distribute(make((len(targets), i)), i) for i in range(len(targets))]
        return tf.data.Dataset.choose_from_datasets(parts, tf.data.Dataset.range(len(targets)).repeat())

    return serve


def service_targets(address: str) -> list[str]:
    """``"grpc://HOST:PORT,grpc://HOST:PORT"`` as a list; anything else is one line."""
    targets = [t.strip() for t in str(address).split(",") if t.strip()]
    if not targets or not all(t.startswith("grpc://") and t.rsplit(":", 1)[-1].isdigit() for t in targets):
        raise DataError(
            f"data_service={address!r}: give 'local' or dispatcher addresses 'grpc://HOST:PORT[,grpc://HOST:PORT...]' "
            "(python -m recipes.dataservice starts one)."
        )
    return targets
