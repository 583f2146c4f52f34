"""What ``recipes/runtime/native.py``'s oneDNN cap costs: each model's inference and training
samples/s with oneDNN's full instruction set (AVX-512 here) and capped below it, each in a fresh
process (oneDNN fixes its ISA at its first primitive), the two settings alternating process by
process over the rounds; the best step of each side is kept."""

from __future__ import annotations

from benchmarks.common import Settings, in_fresh_process

ISA_FORMAT = {"full_infer": ".1f", "capped_infer": ".1f", "infer_ratio": ".3f", "full_train": ".1f"}
ISA_FORMAT.update({"capped_train": ".1f", "train_ratio": ".3f"})
SETTINGS = {"full": "DEFAULT", "capped": None}  # None: recipes/runtime/native.py's value


def probe(name: str, mode: str) -> dict:
    """Best inference and training samples/s of ``name`` at ``mode``'s sizes, in this process."""
    import numpy as np

    import modelzoo
    from benchmarks.common import random_labels, settings_for
    from benchmarks.pairs import Subject

    settings = settings_for(mode, "cpu")
    shape = (32, 32, 1) if name == "lenet5" else (settings.image_size, settings.image_size, 3)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    subject = Subject(
        name,
        modelzoo.create_model(name, num_classes=10, input_shape=shape),
        x,
        random_labels(len(x), 10),
        settings,
    )
    best = {
        kind: min(min(subject.time(kind)) for _ in range(settings.repeats)) for kind in ("infer", "train")
    }
    return {kind: len(x) / seconds for kind, seconds in best.items()}


def bench_isa(settings: Settings, mode: str, log=print) -> list[dict]:
    from recipes.runtime import native

    if not native.avx512():
        log("isa: this CPU has no AVX-512; nothing to cap")
        return []
    rows = []
    for name in settings.isa_models:
        best = {side: {"infer": 0.0, "train": 0.0} for side in SETTINGS}
        for r in range(settings.isa_rounds):
            for side in SETTINGS if r % 2 == 0 else tuple(SETTINGS)[::-1]:
                value = SETTINGS[side] or native.BELOW_AVX512
                rates = in_fresh_process(probe, (name, mode), **{native.ISA_VARIABLE: value})
                best[side] = {k: max(best[side][k], rates[k]) for k in rates}
        row = {"model": name, "capped_to": native.BELOW_AVX512}
        for kind in ("infer", "train"):
            row.update({f"full_{kind}": best["full"][kind], f"capped_{kind}": best["capped"][kind]})
            row[f"{kind}_ratio"] = best["capped"][kind] / best["full"][kind]
        log(f"isa {name}: capped/full inference {row['infer_ratio']:.3f}, training {row['train_ratio']:.3f}")
        rows.append(row)
    return rows
