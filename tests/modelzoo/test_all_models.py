"""One set of checks for every registered model, so a model added later is covered unchanged.

Full-size models are only built and counted (``model_info``); everything that runs data through a
model uses the entry's ``tiny_config`` (narrower widths, same architecture) at its smallest legal
input, with 2 input channels to check that any channel count works.
"""

import math

import keras
import numpy as np
import pytest

import modelzoo
from modelzoo import table
from modelzoo.registry import get_entry
from tests.helpers import shapes_only

ALL = modelzoo.list_models()
# Presets whose every width is fixed and large: their tiny config can only shorten the vocabulary
# and the sequence. Data never runs through them here (their builder ``bert`` is covered at tiny
# widths, and their parameter counts are pinned in test_text_models.py).
FIXED_LARGE = (
    "bert_base",
    "bert_large",
    "gpt2_small",
    "transformer_base",
    "transformer_big",
    "roberta_base",
    "roberta_large",
    "distilbert_base",
    "albert_base",
    "albert_large",
    "electra_small",
    "electra_base",
)
RUN = [n for n in ALL if n not in FIXED_LARGE]


def representatives() -> list[str]:
    """What TensorFlow saves and cuts into features: each family's smallest model (by
    parameters at its default config) and each other block a family builds (``EXTRA_PATHS``). The
    variants left out differ from these only in depth, width or stage counts, which are the same
    ops in another number (their graphs and counts are checked, their forward pass run)."""
    smallest = {}
    for name in RUN:
        family, params = get_entry(name).family, table.load()[name]["params"]
        if family not in smallest or params < table.load()[smallest[family]]["params"]:
            smallest[family] = name
    return sorted({*smallest.values(), *EXTRA_PATHS})


# Blocks a family's smallest model lacks: ResNet's bottleneck (with ResNeXt's grouped 3x3 and
# squeeze-excite; deformable convolutions), VGG with batch norm, the LSTM cell.
EXTRA_PATHS = ("seresnext50_32x4d", "resnet50_dcn", "vgg11_bn", "lstm_classifier")
REPRESENTATIVES = representatives()
# What the other backends run (tests/test_backends.py): the fewest models that hold every layer
# kind of the zoo between them (``layer_kinds``), chosen greedily by their JAX suite time. What runs
# backend code is a layer's call, the same whichever model holds it; a family's wiring is the
# functional graph, which Keras builds the same on every backend and TensorFlow checks for every
# model. ``test_the_backend_set_holds_every_layer_kind`` fails, naming the kind, when a model brings
# a new one. The JAX suite's model checks took 281 s over the 36 representatives, 146 s over these.
BACKEND_SET = (
    "convnext_tiny",
    "deit_tiny_patch16_224",
    "distilbert",
    "efficientnet_v2_b0",
    "electra",
    "googlenet",
    "gpt_tiny",
    "gru_classifier",
    "lenet5",
    "lstm_seq2seq",
    "mobilenet_v3_small_075",
    "nasnet_mobile",
    "regnetx_002",
    "resnet50_dcn",
    "seresnext50_32x4d",
    "textcnn",
    "transformer",
)
ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
# The forward pass runs every model on TensorFlow, save/load each family's representative (a
# family's layers' configs are what a save writes). Training steps run the backend set on every
# backend: whether the loss falls is a question of gradients through each layer kind (what the
# set covers); the 36 representatives' steps took 257 s of TensorFlow's suite.
HERE = RUN if ON_TENSORFLOW else BACKEND_SET
SAVED = REPRESENTATIVES if ON_TENSORFLOW else BACKEND_SET
NUM_CLASSES = 3
_cache = {}
_outputs = {}  # on JAX, each representative's forward outputs on batch(name, 2)


@pytest.fixture(autouse=True, scope="module")
def _drop_models_at_the_end():
    """The tiny models are shared by this file's checks, then released for the files after it."""
    yield
    _cache.clear()
    _outputs.clear()


def is_text(name):
    return get_entry(name).task in ("text_classification", "causal_lm", "translation")


def is_lm(name):
    """A model that predicts a token at every position (a language model, a translator)."""
    return get_entry(name).task in ("causal_lm", "translation")


def small_shape(name):
    entry = get_entry(name)
    if entry.task == "tabular_classification":
        return (20,)
    if is_text(name):
        return (entry.tiny_config.get("max_sequence_length", 8),)  # any length: 8
    s = entry.min_input_size
    return (s, s, 2)


def build_small(name, **kwargs):
    entry = get_entry(name)
    config = {**({} if is_lm(name) else {"num_classes": NUM_CLASSES}), **entry.tiny_config, **kwargs}
    if not is_text(name):
        config["input_shape"] = small_shape(name)
    return modelzoo.create_model(name, **config)


def small_model(name, **kwargs):
    """The tiny model, built once and shared by the checks that only read it."""
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _cache:
        _cache[key] = build_small(name, **kwargs)
    return _cache[key]


def batch(name, n=4):
    rng = np.random.RandomState(0)
    y = np.arange(n) % NUM_CLASSES
    if is_text(name):  # token ids (0 is padding), and BERT's segment ids and padding mask
        length = small_shape(name)[0]
        ids = rng.randint(1, get_entry(name).tiny_config["vocabulary_size"], size=(n, length)).astype("int32")
        ids[:, length - 2 :] = 0
        inputs = small_model(name).input
        if get_entry(name).task == "translation":  # a source, and the target shifted right
            target = ids[:, ::-1] % get_entry(name).tiny_config.get("target_vocabulary_size", 10**9)
            given = {
                "encoder_token_ids": ids,
                "encoder_padding_mask": (ids > 0).astype("int32"),
                "decoder_token_ids": target,
                "decoder_padding_mask": (target > 0).astype("int32"),
            }
            return {key: given[key] for key in inputs}, np.roll(target, -1, axis=1)
        if is_lm(name):  # next-token targets
            return {"token_ids": ids, "padding_mask": (ids > 0).astype("int32")}, np.roll(ids, -1, axis=1)
        if isinstance(inputs, dict):
            return {
                "token_ids": ids,
                "segment_ids": np.zeros_like(ids),
                "padding_mask": (ids > 0).astype("int32"),
            }, y
        return ids, y
    # Each class its own brightness band: i.i.d. pixels alone average out through a deep net, the
    # samples' last maps nearly coincide and batch norm divides by their near-zero variance.
    x = (rng.rand(n, *small_shape(name)) + y.reshape(-1, *[1] * len(small_shape(name)))) / NUM_CLASSES
    return x.astype("float32"), y


def forward(model, x):
    """Inference outputs as numpy. On JAX one jitted call (``predict_on_batch``): eager JAX compiles
    every op of a deep net separately (densenet121's forward pass took 30 s that way)."""
    outputs = model.predict_on_batch(x) if keras.backend.backend() == "jax" else model(x, training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def test_registry_is_not_empty():
    assert len(ALL) >= 32


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_default_config_builds_and_is_counted(name):
    """The one full-size build of each model: its counts equal the recorded table's, which
    ``model_info`` and ``modelzoo list`` read (regenerate with ``python -m modelzoo.table``)."""
    with shapes_only():  # counted, never run: its weights need no values
        info = modelzoo.model_info(name, recount=True)
    assert info["params"] == info["trainable_params"] + info["non_trainable_params"] > 0
    assert info["macs"] > 0 and info["flops"] == 2 * info["macs"]
    assert info["uncounted"] == [], f"layers without a MAC rule: {info['uncounted']}"
    assert info["features"], "every model documents its feature stages"
    assert info["paper"] and info["year"] and info["reference"]
    recorded = table.load()[name]
    stale = {k: (recorded[k], info[k]) for k in table.COUNTS if recorded[k] != info[k]}
    assert not stale, (
        f"{name}: modelzoo/table.json is stale (recorded, counted): {stale}; run python -m modelzoo.table"
    )


def test_readme_model_table_is_rendered_from_the_recorded_table():
    """README's table is never typed by hand: ``python -m modelzoo.table --readme`` writes it."""
    written = table.readme_table(table.README.read_text())
    assert written == table.markdown(), "README's model table is stale: run python -m modelzoo.table --readme"
    assert written.count("\n| `") == len(ALL)


def test_recorded_table_lists_every_model_with_its_card():
    recorded = table.load()
    assert sorted(recorded) == ALL, "modelzoo/table.json is stale: run python -m modelzoo.table"
    for name in ALL:
        assert {k: recorded[name][k] for k in table.CARD} == table.card(name), name
        assert modelzoo.model_info(name)["params"] == recorded[name]["params"]


def forward_with_stage_maps(name, model, x):
    """The classifier's outputs and its documented stage maps from one forward pass, the maps read
    from its own graph, so the model is not built again; a model whose maps exist only in its
    ``features_only`` form (ViT's token grids) builds that.

    On JAX, where each forward pass is a compile, the maps are the graph's symbolic tensors: only
    their shapes are checked, and Keras infers those with ``jax.eval_shape`` of the same ops. The
    outputs are kept for the save/load check, which then compiles only the loaded model (3
    compiles a representative become 2)."""
    if keras.backend.backend() == "jax":
        _outputs[name] = forward(model, x)
        return _outputs[name], symbolic_stage_maps(name, model)
    present = {layer.name for layer in model.layers}
    if all(info["layer"] in present for info in model.feature_info):
        stages = [model.get_layer(info["layer"]).output for info in model.feature_info]
        y, *maps = forward(keras.Model(model.inputs, [model.output, *stages]), x)
        return y, maps
    maps = forward(small_model(name, features_only=True), x)
    return forward(model, x), maps if isinstance(maps, list) else [maps]


def symbolic_stage_maps(name, model):
    present = {layer.name for layer in model.layers}
    if all(info["layer"] in present for info in model.feature_info):
        return [model.get_layer(info["layer"]).output for info in model.feature_info]
    return small_model(name, features_only=True).outputs


def check_stage_maps(name, outs, stages):
    """Each map has its documented shape and channels; the nominal reductions never fall and bound
    the spatial size."""
    assert len(outs) == len(stages) > 0
    shape = small_shape(name)
    previous = 0
    for out, info in zip(outs, stages):
        # a documented None (a Transformer's any-length sequence) takes the batch's length
        assert len(out.shape) - 1 == len(info["shape"]), info
        assert all(d is None or d == n for d, n in zip(info["shape"], out.shape[1:])), info
        assert out.shape[-1] == info["channels"], info
        if info["reduction"] is not None:  # spatial stages: nominal stride bounds the map
            assert info["reduction"] >= previous
            previous = info["reduction"]
            assert 1 <= out.shape[1] <= math.ceil(shape[0] / info["reduction"])


@pytest.mark.parametrize("name", HERE)
def test_forward_pass_at_smallest_legal_input_gives_the_documented_stage_maps(name):
    model = small_model(name)
    x, _ = batch(name, 2)
    y, maps = forward_with_stage_maps(name, model, x)
    if is_lm(name):  # next-token probabilities at every position
        assert y.shape == (2, small_shape(name)[0], get_entry(name).tiny_config["vocabulary_size"])
    else:
        assert y.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)  # default softmax head
    assert np.isfinite(y).all()
    check_stage_maps(name, maps, model.feature_info)


def operations(layer, seen=None):
    """The layer and every operation inside it: a functional model's operations, and the layers a
    layer holds as attributes (a Transformer block's attention and dense layers), each once."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    inner = list(getattr(layer, "operations", None) or [])
    for value in vars(layer).values():
        values = value if isinstance(value, (list, tuple)) else [value]
        inner += [v for v in values if isinstance(v, keras.Operation)]
    for op in inner:
        yield from operations(op, seen)


def layer_kinds(model) -> set[str]:
    """What backend code a model runs: each operation's class, with the settings that choose
    another code path in a backend (``CODE_PATHS`` of a convolution or pooling; any activation)."""
    kinds = set()
    for op in operations(model):
        if type(op).__name__ in ("Functional", "Sequential"):
            continue
        config = op.get_config() if isinstance(op, keras.layers.Layer) else {}
        traits = [
            f"{key}={_trait(key, config[key])}" for key in CODE_PATHS if "strides" in config and key in config
        ]
        if "activation" in config:
            traits.append(
                f"activation={keras.activations.serialize(keras.activations.get(config['activation']))}"
            )
        kinds.add(
            f"{type(op).__module__}.{type(op).__qualname__}" + (f"[{', '.join(traits)}]" if traits else "")
        )
    return kinds


CODE_PATHS = ("groups", "dilation_rate", "depth_multiplier", "strides", "padding")


def _trait(key, value):
    if key == "padding":
        return value
    values = set(value) if isinstance(value, (list, tuple)) else {value}
    return "1" if values == {1} else ">1"


@pytest.mark.skipif(
    not ON_TENSORFLOW, reason="TensorFlow builds every model; the check is the set's, not a backend's"
)
def test_the_backend_set_holds_every_layer_kind():
    kinds = {name: layer_kinds(small_model(name)) for name in RUN}
    held = set().union(*(kinds[name] for name in BACKEND_SET))
    missing = {}
    for name in RUN:
        for kind in kinds[name] - held:
            missing.setdefault(kind, []).append(name)
    assert not missing, f"layer kinds no model of BACKEND_SET holds (add one of the models named): {missing}"


# Over 15 s a test on TensorFlow, whose steps are eager (the edit-test loop, -m "not slow", leaves
# them to the suite): grouped convolutions (keras-team/keras#20471), NASNet's and the deformable
# convolutions' depth. Not slow on the other backends, whose suite runs -m "not slow".
SLOW_STEPS = ("seresnext50_32x4d", "nasnet_mobile", "resnet50_dcn") if ON_TENSORFLOW else ()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_STEPS else n for n in BACKEND_SET]
)
def test_training_steps_lower_the_loss(name):
    # Eager steps on TensorFlow and PyTorch: tracing graph-mode fit for deep nets costs more than
    # the steps themselves (graph mode is covered by the recipes' tests); jitted on JAX, where eager
    # steps run op by op. One full batch per epoch: epoch k's loss is the training-mode loss before
    # update k, so the first and the last are the loss before and after 6 updates, on a
    # class-banded batch (on i.i.d. pixels the deep ResNets and DenseNets rose). Adam at 1e-3:
    # plain SGD at 0.01 left MobileNetV2-0.35's loss chaotic (0.88 -> 2.70 -> 1.24; gradient norm
    # 4,670 at init), and still so at 0.001 or clipped to a global norm of 1. 8 samples where the
    # model has batch norm, whose training-mode statistics over 4 samples of a 1x1 map made
    # Inception v3's loss jump under any step size (0.88 -> 1.29 after one step at Adam 1e-4);
    # 4 elsewhere (DeiT-Ti's loss rose at 8). So, every representative's loss fell for seeds 0-2
    # (worst ratios: LSTM 0.99, GRU 0.985, DeiT 0.956; Inception v3 0.705). Dropout and
    # stochastic depth off: the loss falls for the updates alone. Not kept: its compiled train
    # step is the largest.
    quiet = {k: 0.0 for k in ("dropout_rate", "drop_path_rate") if k in get_entry(name).keywords}
    model = build_small(name, **quiet)
    norm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    x, y = batch(name, 8 if norm else 4)
    loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=keras.backend.backend() != "jax"
    )
    losses = model.fit(x, y, epochs=7, batch_size=len(x), verbose=0).history["loss"]
    before, after = losses[0], losses[-1]
    assert np.isfinite(losses).all() and after < before, f"{name}: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", SAVED)
def test_keras_save_and_safe_load_give_identical_outputs(name, tmp_path):
    model = small_model(name)
    x, _ = batch(name, 2)  # the forward test's batch: on JAX its outputs are kept (_outputs)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = _outputs.pop(name) if name in _outputs else forward(model, x)
    np.testing.assert_array_equal(expected, forward(loaded, x))
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_features_return_the_documented_stage_maps(name):
    # features_only is one path for every model (blocks.assemble): each family's representative
    # builds it; every model's stage maps are checked in its forward pass above
    stages = small_model(name).feature_info
    feats = small_model(name, features_only=True)
    assert feats.feature_info == stages
    x, _ = batch(name, 2)
    outs = feats(x)
    check_stage_maps(name, outs if isinstance(outs, (list, tuple)) else [outs], stages)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_features_out_indices_pick_stages_in_the_order_asked(name):
    # blocks.assemble picks the stages for every model alike: each family's representative checks
    # it (each check builds the model again; EfficientNet-B7's 800 layers take seconds a build)
    stages = small_model(name).feature_info
    last = len(stages) - 1
    subset = small_model(name, features_only=True, out_indices=(-1, 0))
    assert [f["index"] for f in subset.feature_info] == [last, 0]
    with pytest.raises(ValueError, match="out_indices"):
        small_model(name, features_only=True, out_indices=(0, len(stages)))


@pytest.mark.parametrize("name", RUN)
def test_reset_classifier_keeps_every_other_weight(name):
    if is_lm(name):
        pytest.skip("a token model's head is its tied token embedding: there is no classifier to reset")
    model = small_model(name)
    new = modelzoo.reset_classifier(model, 5)
    x, _ = batch(name, 2)
    assert tuple(new(x).shape) == (2, 5)
    kept = {id(w) for w in model.weights}
    new_weights = [w for w in new.weights if id(w) not in kept]
    # Only the classifier's kernel and bias are new.
    assert len(new_weights) == 2, [w.path for w in new_weights]
    assert len(new.weights) == len(model.weights)
