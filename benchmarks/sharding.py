"""Parameter memory per device of model-parallel layouts (JAX, simulated devices)."""

from __future__ import annotations

from benchmarks.common import Settings, in_fresh_process


def shard_probe(model: str) -> dict:
    """In a fresh JAX process of N simulated devices (``bench_sharding`` runs it): build ``model``
    under model_parallel on a 1xN mesh (built, not trained) and measure, from the shards, the
    parameter bytes the fullest device holds."""
    import keras

    import modelzoo
    from recipes.runtime import sharding

    devices = len(keras.distribution.list_devices())
    dist = sharding.make("model_parallel", model, mesh=f"1x{devices}", batch_size=devices)
    keras.distribution.set_distribution(dist)
    built = modelzoo.create_model(model)
    total, per = 0, [0] * devices
    for v in built.weights:
        total += v.value.nbytes
        for shard in v.value.addressable_shards:
            per[shard.device.id] += shard.data.nbytes
    return {"params_mb": total / 2**20, "device_mb": max(per) / 2**20, "adjusted": sorted(dist.adjusted)}


def bench_sharding(settings: Settings, log=print) -> list[dict]:
    """Parameter memory per device of model-parallel layouts, beside data parallel's (100%)."""
    rows = []
    for model, devices in settings.sharded:
        probe = in_fresh_process(shard_probe, (model,), KERAS_BACKEND="jax", JAX_NUM_CPU_DEVICES=str(devices))
        rows.append(
            {
                "model": model,
                "layout": modelzoo_layout_note(model),
                "mesh": f"1x{devices}",
                "params_mb": probe["params_mb"],
                "device_mb": probe["device_mb"],
                "model_parallel_share": probe["device_mb"] / probe["params_mb"],
                "data_parallel_share": 1.0,
                "split_otherwise": len(probe["adjusted"]),
            }
        )
        log(f"  sharding {model}: done")
    return rows


def modelzoo_layout_note(model: str) -> str:
    import modelzoo

    return modelzoo.get_entry(model).layout_note.split(":")[0].split(" (")[0]


SHARD_FORMAT = {
    "params_mb": ".1f",
    "device_mb": ".1f",
    "model_parallel_share": ".1%",
    "data_parallel_share": ".0%",
}
