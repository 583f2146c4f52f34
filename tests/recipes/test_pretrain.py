"""Masked-LM pretraining: BERT's masking rule, a resumable pretraining run, and fine-tuning from it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from recipes import config as config_lib
from recipes.data.corpus import stdlib_corpus
from recipes.pretrain import pretrain
from recipes.tasks.masked_lm import MASK_RATE, mask
from tests import helpers
from tests.helpers import ROOT, kill_mid_epoch, subprocess_env

TINY = {"num_layers": 1, "hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64}

SPECIAL = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK]


def test_masking_follows_bert():
    rng = np.random.RandomState(0)
    ids = rng.randint(5, 1000, size=(4000, 40)).astype("int32")
    ids[:, 0], ids[:, -1], ids[:100, 30:] = 2, 3, 0  # [CLS], [SEP], some padding
    opts = dict(vocabulary_size=1000, special=SPECIAL, mask_id=4, max_predictions=6)
    inputs, positions, targets, weights = (t.numpy() for t in mask(ids, [1, 2], **opts))
    chosen = weights > 0
    rows = np.repeat(np.arange(len(ids))[:, None], 6, axis=1)
    assert not np.isin(ids[rows[chosen], positions[chosen]], SPECIAL).any()  # never a special token
    assert (chosen.sum(1)[100:] == round(38 * MASK_RATE)).all()  # 15% of the 38 real tokens
    np.testing.assert_array_equal(targets[chosen], ids[rows[chosen], positions[chosen]])
    new = inputs[rows[chosen], positions[chosen]]
    share_mask = (new == 4).mean()
    share_kept = (new == targets[chosen]).mean()
    assert abs(share_mask - 0.8) < 0.02 and abs(share_kept - 0.1) < 0.02  # 80% [MASK], 10% kept, 10% random
    untouched = np.ones_like(ids, bool)
    untouched[rows[chosen], positions[chosen]] = False
    np.testing.assert_array_equal(inputs[untouched], ids[untouched])
    # a replica's rows of the global batch get the masks they get in the whole batch; another seed, others
    part = [t.numpy() for t in mask(ids[1000:1500], [1, 2], rows=(4000, 1000), **opts)]
    for whole, piece in zip((inputs, positions, targets, weights), part):
        np.testing.assert_array_equal(whole[1000:1500], piece)
    assert (mask(ids, [1, 3], **opts)[1].numpy() != positions).any()


@pytest.mark.slow
def test_pretraining_lowers_held_out_loss_and_fine_tuning_starts_from_it(tmp_path):
    # RoBERTa (no segment inputs): BERT's own pretraining runs in the tests below
    cfg = config_lib.resolve(
        "roberta",
        overrides={
            "dataset": "stdlib_corpus",
            "epochs": 1,
            "batch_size": 64,
            "sequence_length": 32,
            "vocabulary_size": 400,
            "optimizer": "adam",
            "learning_rate": 0.003,
            "verbose": 0,
            "model_kwargs": TINY,
            "run_dir": str(tmp_path / "pre"),
        },
    )
    summary = pretrain(cfg)
    assert summary["completed"] and summary["held_out_loss"] < summary["held_out_loss_before"]
    assert (tmp_path / "pre" / "vocab.txt").is_file() and (tmp_path / "pre" / "model.keras").is_file()
    assert pretrain(cfg)["weights_sha256"] == summary["weights_sha256"]  # a finished run is not redone

    from recipes.finetune import main

    assert (
        main(
            [str(tmp_path / "pre"), "--epochs", "1", "--run-dir", str(tmp_path / "ft"), "--set", "verbose=0"]
        )
        == 0
    )
    tuned = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert tuned["completed"] and tuned["input_shape"] == [32]
    assert (tmp_path / "ft" / "config.yaml").read_text().count("init_from") == 1
    vocab = (tmp_path / "pre" / "vocab.txt").read_text()
    assert (tmp_path / "ft" / "vocab.txt").read_text() == vocab  # the pretraining vocabulary, not a new one


@pytest.mark.slow
def test_a_streamed_pretraining_killed_mid_epoch_resumes_to_the_unbroken_weights(tmp_path):
    corpus = tmp_path / "corpus"  # a text_files corpus of real prose, three files, streamed
    corpus.mkdir()
    docs = [t.replace("\n", " ")[:300] for t in stdlib_corpus()[:400]]  # 1,089 sequences: 34 steps an epoch
    for i in range(3):
        (corpus / f"part{i}.txt").write_text("\n".join(docs[i::3]))

    def cmd(run_dir):
        return [
            sys.executable,
            "-m",
            "recipes.pretrain",
            "bert",
            "--dataset",
            "text_files",
            "--data-path",
            str(corpus),
            "--set",
            "streaming=true",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--run-dir",
            str(run_dir),
            "--optimizer",
            "adam",
            "--learning-rate",
            "0.003",
            "--set",
            "sequence_length=32",
            "--set",
            "vocabulary_size=300",
            "--set",
            "checkpoint_every=2",
            "--set",
            "verbose=0",
            "--set",
            f"model_kwargs={json.dumps(TINY)}",
        ]

    env = subprocess_env()
    helpers.run(cmd(tmp_path / "unbroken"), env=env, cwd=ROOT, check=True, timeout=600)
    reference = json.loads((tmp_path / "unbroken" / "summary.json").read_text())
    steps_per_epoch = reference["steps"] // 2
    proc = helpers.start(
        cmd(tmp_path / "killed"), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    killed_at = kill_mid_epoch(proc, tmp_path / "killed", steps_per_epoch)
    first = proc.communicate()[0].decode()
    assert killed_at is not None, "pretraining finished before it could be killed mid-epoch"
    assert "training and" in first and "held-out sequences in 3 files" in first
    out = helpers.run(
        cmd(tmp_path / "killed"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
    ).stdout
    assert (
        f"resuming {tmp_path / 'killed'} at step" in out and "held-out sequences" not in out
    )  # the count is kept
    resumed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    # rows in a (seed, epoch) order, masks seeded by (seed, step), the rows before the step
    # skipped: the unbroken run's bits
    assert resumed["steps"] == reference["steps"] and resumed["weights_sha256"] == reference["weights_sha256"]
    assert resumed["held_out_loss"] == reference["held_out_loss"]


@pytest.mark.slow
def test_mixed_precision_pretraining_keeps_float32_predictions(tmp_path):
    import keras

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(stdlib_corpus()[:300]))
    cfg = config_lib.resolve(
        "bert",
        overrides={
            "dataset": "text_files",
            "data_path": str(corpus),
            "epochs": 1,
            "batch_size": 32,
            "sequence_length": 32,
            "vocabulary_size": 200,
            "mixed_precision": "mixed_float16",
            "optimizer": "adam",
            "learning_rate": 0.003,
            "verbose": 0,
            "model_kwargs": TINY,
            "run_dir": str(tmp_path / "run"),
        },
    )
    summary = pretrain(cfg)
    assert (
        summary["precision"] == "mixed_float16" and summary["held_out_loss"] < summary["held_out_loss_before"]
    )
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert model.get_layer("transformer_layer_0").dtype_policy.name == "mixed_float16"
    assert model.outputs[0].dtype == "float32" and keras.mixed_precision.dtype_policy().name == "float32"


def test_pretraining_a_model_without_a_masked_lm_head_is_one_clear_error():
    from recipes.tasks.masked_lm import MaskedLM

    with pytest.raises(
        ValueError, match=r"needs a model with a masked-LM head \(the albert, bert, distilbert"
    ):
        MaskedLM(config_lib.resolve("gpt_tiny", overrides={"dataset": "stdlib_corpus"}))
