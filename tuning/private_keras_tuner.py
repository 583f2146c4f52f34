"""Every use of KerasTuner's private API in the project, in one place, each with why.

KerasTuner 1.4.8 has no public way to do these; ``tests/test_private_api.py`` fails when the
upstream behaviour changes (setup.cfg pins keras-tuner for the same reason).
"""

from __future__ import annotations


def grid_order_state(oracle) -> dict:
    """The grid search's order of trials, which ``GridSearchOracle.get_state`` leaves out
    (keras-team/keras-tuner#1055: a resumed grid search fails with KeyError). It lives in a
    private ``LinkedList`` and the oracle's ``_populate_next`` queue."""
    ids = oracle._ordered_ids
    return {
        "memory": list(ids._memory),
        "next": [[k, v] for k, v in ids._next_index.items()],
        "last": ids._last_index,
        "populate_next": list(oracle._populate_next),
    }


def set_grid_order_state(oracle, saved: dict) -> None:
    """Put back what :func:`grid_order_state` read, on a freshly loaded oracle."""
    from keras_tuner.src.tuners.gridsearch import LinkedList

    ids = LinkedList()
    ids._memory = list(saved["memory"])
    ids._data_to_index = {d: i for i, d in enumerate(ids._memory)}
    for k, v in saved["next"]:
        ids._next_index[k] = v
    ids._last_index = saved["last"]
    oracle._ordered_ids = ids
    oracle._populate_next = list(saved["populate_next"])


def is_distributed_worker() -> bool:
    """True in a worker of a distributed search (a chief oracle exists and this process is not
    it). KerasTuner reads its ``KERASTUNER_*`` variables only in ``keras_tuner.src.distribute``."""
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and not utils.is_chief_oracle()
