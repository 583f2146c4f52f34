"""Run by tests/recipes/test_sharding.py in a fresh process with 8 simulated JAX CPU devices:
``python -m tests.recipes.sharding_probe`` prints one JSON line per model and distribution: each
variable's sharding against the family's layout, the forward output and 3 SGD steps against the
same weights on one device, and the parameter bytes each device holds. bert_tiny and gpt_tiny's
shapes are built with 4 heads instead of 2 (``bert``/``gpt``), so a model axis of 4 splits them."""

import json
import re

import keras
import numpy as np

import modelzoo
from recipes.runtime import sharding

BATCH = 16
TINY = {  # dropout off (the distributed and the one-device step see the same function); 4 heads for a model axis of 4
    "bert_tiny": {
        "vocabulary_size": 64,
        "max_sequence_length": 16,
        "num_classes": 2,
        "dropout_rate": 0.0,
        "num_heads": 4,
        "num_layers": 2,
        "hidden_dim": 128,
        "intermediate_dim": 512,
    },
    "gpt_tiny": {
        "vocabulary_size": 64,
        "max_sequence_length": 16,
        "dropout_rate": 0.0,
        "num_heads": 4,
        "num_layers": 2,
        "hidden_dim": 128,
        "intermediate_dim": 512,
    },
    "vgg11": {
        "width_multiplier": 0.125,
        "fc_units": 32,
        "num_classes": 10,
        "input_shape": (32, 32, 3),
        "dropout_rate": 0.0,
    },
    "resnet18": {"width_multiplier": 0.125, "num_classes": 10, "input_shape": (32, 32, 3)},
}


def batch(name):
    rng = np.random.RandomState(0)
    if name == "bert_tiny":
        ids = rng.randint(5, 64, (BATCH, 16)).astype("int32")
        return {
            "token_ids": ids,
            "segment_ids": np.zeros_like(ids),
            "padding_mask": np.ones_like(ids),
        }, rng.randint(0, 2, BATCH)
    if name == "gpt_tiny":
        ids = rng.randint(1, 64, (BATCH, 17)).astype("int32")
        return {"token_ids": ids[:, :-1], "padding_mask": np.ones_like(ids[:, :-1])}, ids[:, 1:]
    return rng.rand(BATCH, 32, 32, 3).astype("float32"), rng.randint(0, 10, BATCH)


def trained(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    return [float(model.train_on_batch(x, y)) for _ in range(3)], model.get_weights()


def expected_axes(layout, path, ndim):
    hits = [axes for pattern, axes in layout.items() if re.fullmatch(pattern, path)]
    return list(hits[0]) if hits else [None] * ndim


BUILDER = {"bert_tiny": "bert", "gpt_tiny": "gpt"}
RUNS = (("model_parallel", "2x4"), ("data_parallel", None))


def main():
    for name in TINY:
        keras.distribution.set_distribution(None)
        x, y = batch(name)
        keras.utils.set_random_seed(0)
        ref = modelzoo.create_model(BUILDER.get(name, name), **TINY[name])
        start = ref.get_weights()
        ref_out = np.asarray(ref.predict_on_batch(x))  # one jitted call: eager JAX compiles op by op
        ref_losses, ref_final = trained(ref, x, y)
        for distribution, mesh in RUNS:
            dist = sharding.make(distribution, name, mesh=mesh, batch_size=BATCH)
            keras.distribution.set_distribution(dist)
            print(
                json.dumps(
                    {
                        "model": name,
                        "distribution": distribution,
                        **compare(name, dist, start, ref_out, ref_losses, ref_final),
                    }
                )
            )


def compare(name, dist, start, ref_out, ref_losses, ref_final) -> dict:
    x, y = batch(name)
    model = modelzoo.create_model(BUILDER.get(name, name), **TINY[name])
    model.set_weights(start)
    distribution = "model_parallel" if isinstance(dist, sharding.FittedModelParallel) else "data_parallel"
    layout = modelzoo.get_entry(name).layout if distribution == "model_parallel" else {}
    wrong, sharded, total, per_device = [], 0, 0, 0
    for v in model.weights:
        spec = list(v.value.sharding.spec) + [None] * (len(v.shape) - len(v.value.sharding.spec))
        want = expected_axes(layout, v.path, len(v.shape))
        if spec != want:
            wrong.append([v.path, spec, want])
        sharded += any(a is not None for a in spec)
        total += v.value.nbytes
        per_device += v.value.addressable_shards[0].data.nbytes
    out = np.asarray(model.predict_on_batch(x))
    losses, final = trained(model, x, y)
    return {
        "devices": len(keras.distribution.list_devices()),
        "variables": len(model.weights),
        "sharded": sharded,
        "wrong": wrong,
        "layout_adjusted": getattr(dist, "adjusted", {}),
        "forward_diff": float(np.abs(out - ref_out).max()),
        "losses": losses,
        "ref_losses": ref_losses,
        "weights_diff": max(float(np.abs(a - b).max()) for a, b in zip(final, ref_final)),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(final, start)),
        "device_bytes_share": per_device / total,
    }


def refusals() -> dict:
    """The one-line errors of ``sharding.make`` on 8 devices (and as if over two processes of 4), and
    a dimension the mesh does not divide."""
    out = {}
    for key, args in {
        "mesh": ("model_parallel", "3x3", 8),
        "batch": ("model_parallel", "4x2", 6),
        "dp_model_axis": ("data_parallel", "4x2", 8),
        "name": ("pipeline", None, 8),
    }.items():
        try:
            sharding.make(args[0], "bert_tiny", mesh=args[1], batch_size=args[2])
        except ValueError as err:
            out[key] = str(err)
    real, sharding.processes = sharding.processes, lambda: (2, 4)  # as two processes of 4 devices
    try:
        sharding.make("model_parallel", "bert_tiny", mesh="1x8", batch_size=8)
    except ValueError as err:
        out["model_axis_across_processes"] = str(err)
    finally:
        sharding.processes = real
    dist = sharding.make("model_parallel", "bert_tiny", mesh="2x4", batch_size=8)
    keras.distribution.set_distribution(dist)
    modelzoo.create_model(
        "bert_tiny", vocabulary_size=50, max_sequence_length=16
    )  # 2 heads, 50 tokens: over 4?
    out["adjusted"] = dist.adjusted
    return out


if __name__ == "__main__":
    main()
    print(json.dumps({"refusals": refusals()}))
