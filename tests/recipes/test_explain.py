"""CAM and Grad-CAM: exact on the zoo's pooled heads, refused where they do not apply, PNGs from a run."""

import json

import keras
import numpy as np
import pytest

import modelzoo
from recipes import config as config_lib
from recipes import explain as ex
from recipes.tasks.classify import train

X = np.random.default_rng(0).random((3, 64, 64, 1)).astype("float32")


@pytest.fixture(scope="module")
def resnet():
    return modelzoo.create_model("resnet18", num_classes=5, input_shape=(64, 64, 1), width_multiplier=0.125)


def test_cam_is_the_classifier_applied_at_every_position(resnet):
    classes = np.array([0, 3, 4])
    maps, logits = ex.cam(resnet, X, classes)
    features = np.asarray(keras.Model(resnet.input, resnet.get_layer("avg_pool").input)(X))
    kernel = np.asarray(resnet.get_layer("fc").kernel)
    expected = np.einsum("nhwc,cn->nhw", features, kernel[:, classes])  # Zhou et al.: sum_k w_k^c f_k(x, y)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        maps.mean(axis=(1, 2)) + np.asarray(resnet.get_layer("fc").bias)[classes],
        logits[np.arange(3), classes],
        rtol=1e-4,
        atol=1e-5,
    )


def test_nin_cam_is_the_class_map_itself():
    nin = modelzoo.create_model("nin", num_classes=4, input_shape=(67, 67, 1))
    x = np.random.default_rng(1).random((2, 67, 67, 1)).astype("float32")
    maps, _ = ex.cam(nin, x, np.array([1, 2]))
    class_maps = np.asarray(keras.Model(nin.input, nin.get_layer("avg_pool").input)(x))
    np.testing.assert_allclose(maps, class_maps[np.arange(2), :, :, [1, 2]], rtol=1e-5, atol=1e-6)


def test_gradcam_on_the_pooled_map_is_relu_cam_over_its_positions(resnet):
    # Selvaraju et al. 2017, sec. 3.1: with global average pooling, Grad-CAM's weights are the classifier's / (h*w)
    classes = np.array([1, 1, 2])
    assert ex.default_gradcam_layer(resnet) == "conv5_block2_out"
    grad, _ = ex.gradcam(resnet, X, classes)
    cam, _ = ex.cam(resnet, X, classes)
    np.testing.assert_allclose(grad, np.maximum(cam, 0) / (cam.shape[1] * cam.shape[2]), rtol=1e-4, atol=1e-6)
    earlier, _ = ex.gradcam(resnet, X, classes, layer="conv4_block2_out")
    assert earlier.shape == (3, 4, 4) and np.all(earlier >= 0)


def test_gradcam_at_an_inner_layer_matches_the_gradient_of_the_part_after_it(resnet):
    import tensorflow as tf

    layer = resnet.get_layer("conv4_block2_out")
    maps = tf.convert_to_tensor(keras.Model(resnet.input, layer.output)(X))
    with tf.GradientTape() as tape:  # by hand: the part of the net after the layer, differentiated eagerly
        tape.watch(maps)
        score = tf.gather(ex._tail(resnet, layer.output)(maps), [0, 1, 2], axis=1, batch_dims=1)
    weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)
    expected = np.maximum(np.asarray(tf.reduce_sum(weights * maps, axis=-1)), 0)
    got, _ = ex.gradcam(resnet, X, [0, 1, 2], layer="conv4_block2_out")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    densenet = modelzoo.create_model("densenet121", num_classes=3, input_shape=(64, 64, 1))
    with pytest.raises(ValueError):  # later layers read this conv's maps through the concatenations: no tail
        ex._tail(densenet, densenet.get_layer("dense2_layer8_2_conv").output)
    inner, _ = ex.gradcam(densenet, X[:2], [0, 1], layer="dense2_layer8_2_conv")
    assert inner.shape == (2, 8, 8) and np.isfinite(inner).all()


def test_cam_and_gradcam_refuse_what_they_cannot_explain():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    x = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="predictions")(x))
    with pytest.raises(ValueError, match="not affine, so CAM does not apply"):
        ex.cam(model, np.random.default_rng(2).random((4, 16, 16, 1)).astype("float32"), np.zeros(4, int))
    lenet = modelzoo.create_model("lenet5", num_classes=10, input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="ends in global average pooling; 'lenet5' has none"):
        ex.cam(lenet, np.zeros((1, 32, 32, 1), "float32"), [0])
    assert ex.default_gradcam_layer(lenet) == "s4_act"
    maps, _ = ex.gradcam(lenet, np.ones((1, 32, 32, 1), "float32"), [3])
    assert maps.shape == (1, 5, 5)
    with pytest.raises(ValueError, match="no layer 's4_ac' in 'lenet5'. Did you mean 's4_act'"):
        ex.gradcam(lenet, np.zeros((1, 32, 32, 1), "float32"), [0], layer="s4_ac")
    with pytest.raises(ValueError, match="method 'lime' is unknown"):
        ex.heatmaps(lenet, np.zeros((1, 32, 32, 1)), "lime")


def test_peaks_are_counted_on_the_bright_pixels():
    image = np.zeros((2, 8, 8, 1), "float32")
    image[:, 2:4, 2:4] = 16.0  # ink
    heat = np.zeros((2, 8, 8))
    heat[0, 3, 3] = 1.0  # on the ink
    heat[1, 6, 6] = 1.0  # on the ground
    assert ex.peak_on(heat, ex.bright(image)) == [True, False]
    assert ex.bright(image).mean() == pytest.approx(4 / 64)


@pytest.mark.slow
def test_explain_writes_overlays_and_measures_a_trained_run(tmp_path, capsys):
    run = tmp_path / "resnet"
    train(
        config_lib.resolve(
            "resnet18",
            overrides={
                "epochs": 1,
                "classes": [0, 1, 2],
                "image_size": 64,
                "verbose": 0,
                "run_dir": str(run),
                "model_kwargs": {"width_multiplier": 0.125},
                "batch_size": 32,
            },
        )
    )
    digit = tmp_path / "digit.png"
    keras.utils.save_img(digit, np.kron(np.eye(8)[..., None] * 255, np.ones((8, 8, 1))), scale=False)
    assert ex.main([str(run), str(digit), "--test", "5"]) == 0
    printed = capsys.readouterr().out
    assert "cam: 6 PNGs" in printed and "gradcam: 6 PNGs" in printed and "peak on bright pixels in" in printed
    out = run / "explain"
    report = json.loads((out / "explain.json").read_text())
    assert report["images"] == 6 and set(report["methods"]) == {"cam", "gradcam"}
    for method in ("cam", "gradcam"):
        shares = report["methods"][method]
        assert (
            0 <= shares["peak_on_bright"] <= 1 and shares["peak_on_bright"] == shares["by_threshold"]["0.25"]
        )
        assert (
            shares["by_threshold"]["0.1"] >= shares["by_threshold"]["0.25"] >= shares["by_threshold"]["0.5"]
        )
        png = keras.utils.load_img(out / f"test_0000_{method}.png")
        assert png.size[0] > 100 and (out / f"digit_{method}.png").is_file()
    assert report["methods"]["gradcam"]["layer"] == "conv5_block2_out" and 0 < report["bright_share"] < 1
    mlp = tmp_path / "mlp"
    train(config_lib.resolve("mlp", overrides={"epochs": 1, "verbose": 0, "run_dir": str(mlp)}))
    assert ex.main([str(mlp), "--test", "2"]) == 2
    assert (
        "'mlp' has no feature map with more than one position: CAM and Grad-CAM need a conv net"
        in capsys.readouterr().err
    )
    assert ex.main([str(run)]) == 2
    assert "nothing to explain" in capsys.readouterr().err
    lenet = tmp_path / "lenet"
    train(config_lib.resolve("lenet5", overrides={"epochs": 1, "verbose": 0, "run_dir": str(lenet)}))
    assert ex.main([str(lenet), "--test", "2"]) == 0  # no pooled head: Grad-CAM only
    assert "gradcam: 2 PNGs" in capsys.readouterr().out and not list((lenet / "explain").glob("*_cam.png"))
    assert ex.main([str(lenet), "--test", "2", "--method", "cam"]) == 2
    assert "'lenet5' has none (use --method gradcam)" in capsys.readouterr().err


# Each family added for issue 16, at its test widths: Grad-CAM at its default layer, and CAM
# wherever the layers after its global average pooling are affine.
FAMILIES = (
    "mobilenet_025",
    "mobilenet_v2_035",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "convnext_tiny",
    "xception",
    "inception_v3",
    "inception_resnet_v2",
    "resnet50_v2",
    "seresnext50_32x4d",
    "regnetx_002",
    "nasnet_mobile",
)
NON_AFFINE_HEADS = ("mobilenet_v3_small", "convnext_tiny")  # a hidden layer; a layer norm


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_cam_and_gradcam_on_every_conv_family(name):
    model = modelzoo.create_model(
        name, num_classes=4, input_shape=(128, 128, 3), **modelzoo.get_entry(name).tiny_config
    )
    x = np.random.default_rng(2).random((2, 128, 128, 3)).astype("float32")
    classes = np.array([1, 3])
    grad, logits = ex.gradcam(model, x, classes)
    assert grad.ndim == 3 and grad.shape[0] == 2 and grad.shape[1] * grad.shape[2] > 1
    assert np.all(np.isfinite(grad)) and np.all(grad >= 0) and logits.shape == (2, 4)
    if name in NON_AFFINE_HEADS:  # CAM does not apply (its refusal: test_cam_and_gradcam_refuse_...)
        return
    cam, _ = ex.cam(model, x, classes)
    # the default layer is the pooled map: Grad-CAM is ReLU(CAM) over its positions (Selvaraju et al. sec. 3.1)
    np.testing.assert_allclose(grad, np.maximum(cam, 0) / (cam.shape[1] * cam.shape[2]), rtol=1e-3, atol=1e-6)


def test_vit_gradcam_is_its_last_blocks_patch_tokens_on_the_patch_grid():
    import tensorflow as tf

    from recipes.trainer import logits_tensor

    tiny = modelzoo.get_entry("vit_tiny_patch16_224").tiny_config
    vit = modelzoo.create_model("vit_tiny_patch16_224", num_classes=4, input_shape=(64, 48, 3), **tiny)
    x = np.random.default_rng(3).random((2, 64, 48, 3)).astype("float32")
    classes = np.array([0, 2])
    layer = ex.default_gradcam_layer(vit)
    assert ex.token_grid(vit) == (1, (4, 3)) and layer.endswith("_norm1")
    assert vit.get_layer(layer).output.shape[1] == 1 + 12
    grad, _ = ex.gradcam(vit, x, classes)
    # by hand: the class logit's gradient over the 12 patch tokens (the class token dropped),
    # averaged into one weight per channel, the weighted tokens summed, ReLU, laid out row by row
    both = keras.Model(vit.input, [vit.get_layer(layer).output, logits_tensor(vit)])
    with tf.GradientTape() as tape:
        tokens, logits = both(x, training=False)
        score = tf.gather(logits, classes, axis=1, batch_dims=1)
    grads = np.asarray(tape.gradient(score, tokens))[:, 1:]
    tokens = np.asarray(tokens)[:, 1:]
    expected = np.maximum(np.einsum("ntd,nd->nt", tokens, grads.mean(axis=1)), 0).reshape(2, 4, 3)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    assert grad.max() > 0


def test_an_image_file_is_prepared_as_the_same_test_image_is(tmp_path):
    # issue 31: explain read a user's image without the run's normalisation and centre crop, so
    # its heat map differed from the one --test gives for the same picture; predict gives the
    # class and probabilities the model gives that test example
    from recipes import trainer
    from recipes.data import preprocess
    from recipes.predict import predict
    from recipes.run_folder import RunFolder
    from tests.helpers import normalising_folder_config

    cfg = normalising_folder_config(tmp_path)
    train(cfg)
    data, _ = trainer.load_data(cfg)
    _, model = trainer.load_run(tmp_path / "run")
    first = data.test.x[0]
    rows = ex._rows(RunFolder(tmp_path / "run"), [first], test=1, batch_size=8)
    (_, from_file, _), (_, from_test, label) = rows
    assert label == int(data.test.y[0]) and abs(float(from_test.mean())) > 0.05  # normalised
    np.testing.assert_allclose(from_file, from_test, atol=1e-6)
    probs = np.asarray(model(from_test[None], training=False))[0]
    top = predict(tmp_path / "run", [first], top=1)[0]["top"][0]
    names = json.loads((tmp_path / "run" / "summary.json").read_text())["class_names"]
    assert top["class"] == names[int(np.argmax(probs))] and abs(top["probability"] - probs.max()) < 1e-4
    assert preprocess.NORMALIZE[cfg.normalize][0] is not None
