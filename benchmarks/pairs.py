"""Zoo models against the references a user would otherwise pick (keras.applications,
keras-hub), one pair at a time: inference and training samples/s, interleaved."""

from __future__ import annotations

import time

from benchmarks.common import Settings, interleaved, peak_memory_mb, random_labels


class Subject:
    """One model under test on one fixed batch: a compiled inference function and a training step.

    ``flops`` is passed in for references the zoo's counter does not know (both sides of a pair
    count the same architecture, so the zoo model's count serves for both).
    """

    def __init__(
        self, label: str, model, x, y, settings: Settings, flops: int | None = None, from_logits: bool = False
    ):
        import keras
        import tensorflow as tf

        import modelzoo

        self.label, self.model, self.settings, self.x, self.y = label, model, settings, x, y
        self.batch_size = len(y)
        self.flops = modelzoo.count_flops(model)["flops"] if flops is None else flops
        self.params = model.count_params()
        loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=loss,
            metrics=[],
            jit_compile=settings.jit_compile,
        )
        # (metrics=[]: keras-hub's Task.compile would otherwise add its own accuracy metric)
        self._infer = tf.function(lambda x: model(x, training=False), jit_compile=settings.jit_compile)
        self.infer_step()  # compile both before timing
        self.train_step()

    def infer_step(self):
        _first(self._infer(self.x)).numpy()

    def train_step(self):
        self.model.train_on_batch(self.x, self.y)

    def describe_input(self) -> str:
        if isinstance(self.x, dict):
            return f"{self.x['token_ids'].shape[1]} tokens"
        return "x".join(str(d) for d in self.x.shape[1:])

    def time(self, kind: str) -> list[float]:
        """Seconds of each of ``settings.steps`` steps (each step ends with its result on the host)."""
        step = self.infer_step if kind == "infer" else self.train_step
        seconds = []
        for _ in range(self.settings.steps):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        return seconds


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _build_pair(name: str, settings: Settings):
    import numpy as np

    import modelzoo
    from modelzoo import pretrained

    if name.startswith("bert"):
        return _build_text_pair(name, settings)
    if name.startswith("vit"):
        return _build_vit_pair(name, settings)
    shape = (settings.image_size, settings.image_size, 3)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    y = random_labels(settings.batch_size, 1000)
    zoo = modelzoo.create_model(name, num_classes=1000, input_shape=shape)
    constructor = pretrained.reference_constructor(name)
    ref = constructor(weights=None, input_shape=shape, classes=1000)
    return Subject(name, zoo, x, y, settings), Subject(
        f"keras.applications.{constructor.func.__name__}", ref, x, y, settings
    )


def _build_vit_pair(name: str, settings: Settings):
    """A zoo ViT and keras-hub's ``ViTImageClassifier`` of the same size (``hub_vit``), fed the
    same batch."""
    import numpy as np

    import modelzoo

    shape = (settings.image_size, settings.image_size, 3)
    zoo = modelzoo.create_model(name, num_classes=1000, input_shape=shape, classifier_activation=None)
    x = np.random.default_rng(0).random((settings.batch_size, *shape), dtype="float32")
    y = random_labels(settings.batch_size, 1000)
    zoo_subject = Subject(name, zoo, x, y, settings, from_logits=True)
    ref_subject = Subject(
        "keras_hub.ViTImageClassifier",
        hub_vit(zoo),
        x,
        y,
        settings,
        flops=zoo_subject.flops,
        from_logits=True,
    )
    return zoo_subject, ref_subject


def hub_vit(zoo):
    """keras-hub's ``ViTImageClassifier`` on a ``ViTBackbone`` read off a zoo ViT: its input, patch,
    depth, heads, width and MLP width (class token, pre-norm blocks, logits on the class token)."""
    import keras_hub

    block = zoo.get_layer("block0_attn")
    backbone = keras_hub.models.ViTBackbone(
        image_shape=tuple(zoo.inputs[0].shape[1:]),
        patch_size=zoo.get_layer("patch_embed").kernel_size[0],
        num_layers=sum(layer.name.endswith("_attn") for layer in zoo.layers),
        num_heads=block.num_heads,
        hidden_dim=block.num_heads * block.key_dim,
        mlp_dim=zoo.get_layer("block0_mlp_fc1").units,
    )
    classes = zoo.get_layer("fc").units
    return keras_hub.models.ViTImageClassifier(backbone, num_classes=classes, preprocessor=None)


def _build_text_pair(name: str, settings: Settings):
    """The two ``text_models`` as subjects, fed the same random token batch."""
    zoo, ref, x = text_models(name, settings, settings.text_batch_size)
    y = random_labels(settings.text_batch_size, 2)
    zoo_subject = Subject(name, zoo, x, y, settings, from_logits=True)
    ref_subject = Subject(
        "keras_hub.BertTextClassifier", ref, x, y, settings, flops=zoo_subject.flops, from_logits=True
    )
    return zoo_subject, ref_subject


def text_models(name: str, settings: Settings, n: int):
    """A zoo BERT classifier and keras-hub's ``BertTextClassifier`` on a ``BertBackbone`` of the same
    size (both: pooled [CLS], dropout 0.1, 2-way logits), and a random token batch of ``n`` rows."""
    import keras_hub
    import numpy as np

    import modelzoo

    vocab, seq = 30522, settings.sequence_length
    zoo = modelzoo.create_model(
        name, num_classes=2, vocabulary_size=vocab, max_sequence_length=seq, classifier_activation=None
    )
    cfg = zoo.get_layer("transformer_layer_0")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab,
        num_layers=sum(layer.name.startswith("transformer_layer_") for layer in zoo.layers),
        num_heads=cfg.num_heads,
        hidden_dim=zoo.get_layer("pooled_dense").units,
        intermediate_dim=cfg.intermediate_dim,
        max_sequence_length=seq,
    )
    ref = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(5, vocab, (n, seq)).astype("int32"),
        "segment_ids": np.zeros((n, seq), "int32"),
        "padding_mask": np.ones((n, seq), "int32"),
    }
    return zoo, ref, x


def bench_pair(name: str, settings: Settings, peak: float, log=print) -> list[dict]:
    """Two rows (zoo, reference) for one pair, timed in interleaved rounds."""
    import keras

    keras.backend.clear_session()
    peak_memory_mb()
    zoo, ref = _build_pair(name, settings)
    memory = peak_memory_mb()  # both models built and compiled: their joint peak
    # each side's inference steps, then its training steps, in interleaved rounds
    rounds = interleaved(lambda s: {k: s.time(k) for k in ("infer", "train")}, (zoo, ref), settings.repeats)
    log(f"  {name}: {settings.repeats} rounds")
    rows = []
    for subject in (zoo, ref):
        infer = subject.batch_size / min(t for r in rounds[subject] for t in r["infer"])
        train = subject.batch_size / min(t for r in rounds[subject] for t in r["train"])
        rows.append(
            {
                "model": subject.label,
                "pair": name,
                "input": subject.describe_input(),
                "params": subject.params,
                "gflops_per_sample": subject.flops / 1e9,
                "infer_samples_per_s": infer,
                "train_samples_per_s": train,
                "infer_peak_share": subject.flops * infer / peak,
                "train_peak_share": 3 * subject.flops * train / peak,
                "peak_memory_mb_both": memory,
            }
        )
    for key in ("infer_samples_per_s", "train_samples_per_s"):
        ratio = rows[0][key] / rows[1][key]
        rows[0][key.replace("samples_per_s", "ratio")] = ratio
        rows[1][key.replace("samples_per_s", "ratio")] = 1.0
    return rows


PAIR_FORMAT = {
    "gflops_per_sample": ".3f",
    "infer_samples_per_s": ".2f",
    "train_samples_per_s": ".2f",
    "infer_ratio": ".2f",
    "train_ratio": ".2f",
    "infer_peak_share": ".0%",
    "train_peak_share": ".0%",
    "peak_memory_mb_both": ".0f",
}
