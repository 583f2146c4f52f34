"""One preprocessor per run: written into the run folder once, read back by every tool that
feeds the model (evaluate, predict, explain, quantize through ``RunFolder``), never rebuilt from
a config that may have changed since (issue 31)."""

import json

import numpy as np
import pytest

from recipes import config as config_lib
from recipes import trainer
from recipes.data import preprocess
from recipes.data.preprocessor import Preprocessor
from recipes.evaluate import evaluate
from recipes.predict import predict
from recipes.run_folder import RunFolder
from recipes.tasks.classify import train
from tests.helpers import normalising_folder_config


def test_every_tool_reads_the_preprocessor_the_run_saved(tmp_path):
    cfg = normalising_folder_config(tmp_path)
    summary = train(cfg)
    run = tmp_path / "run"
    saved = Preprocessor.load(run)
    data, pre = trainer.load_data(cfg)
    assert saved == Preprocessor.of(data, pre)
    assert saved.image.mean == preprocess.NORMALIZE["imagenet_mean_std"][0] and saved.image.eval_crop == 0.875
    assert saved.class_names == tuple(summary["class_names"]) and saved.input_shape == (32, 32, 3)
    first = data.test.x[0]
    before = predict(run, [first], top=3)
    assert evaluate(run)["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    # a config edited after the run no longer decides how the tools prepare its inputs
    original = (run / "config.yaml").read_text()
    edited = original.replace("normalize: imagenet_mean_std", "normalize: none").replace(
        "eval_crop: 0.875", "eval_crop: null"
    )
    assert edited != original
    (run / "config.yaml").write_text(edited)
    assert predict(run, [first], top=3) == before
    assert evaluate(run)["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    folder_run = RunFolder(run)
    x = folder_run.preprocessor.file(first)
    model_probs = np.asarray(folder_run.model(x[None], training=False))[0]
    assert before[0]["top"][0]["probability"] == pytest.approx(float(model_probs.max()), abs=1e-4)
    # a run folder from before the preprocessor was saved falls back to its config's
    (run / "preprocessor.json").unlink()
    assert RunFolder(run).preprocessor.image.mean is None


def test_a_text_run_saves_its_vocabulary_with_its_preprocessor(tmp_path):
    overrides = {
        "epochs": 1,
        "batch_size": 32,
        "sequence_length": 16,
        "vocabulary_size": 200,
        "verbose": 0,
        "run_dir": str(tmp_path),
    }
    train(config_lib.resolve("textcnn", overrides=overrides))
    saved = Preprocessor.load(tmp_path)
    assert saved.kind == "text" and saved.input_shape == (16,) and saved.vocabulary[0] == "[PAD]"
    assert json.loads((tmp_path / "preprocessor.json").read_text())["kind"] == "text"
    ids = saved.texts(["Return the logger of the given name."])
    assert ids.shape == (1, 16) and ids.dtype == np.int32 and ids[0, 0] != 0


def test_a_bert_family_preprocessor_feeds_the_inputs_its_model_takes(tmp_path):
    vocabulary = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "name")
    for names in (("token_ids", "padding_mask"), ("token_ids", "segment_ids", "padding_mask")):
        Preprocessor("text", (8,), ("a", "b"), preprocess.Preprocess(bert_inputs=names), vocabulary).save(
            tmp_path
        )
        inputs = Preprocessor.load(tmp_path).texts(["the name"])
        assert tuple(inputs) == names and inputs["token_ids"][0, :4].tolist() == [
            2,
            5,
            6,
            3,
        ]  # [CLS] .. [SEP]
    # a run folder written when the field was a flag: BERT's three inputs
    fields = json.loads((tmp_path / "preprocessor.json").read_text())
    fields["image"]["bert_inputs"] = True
    (tmp_path / "preprocessor.json").write_text(json.dumps(fields))
    assert tuple(Preprocessor.load(tmp_path).texts(["the"])) == ("token_ids", "segment_ids", "padding_mask")
