"""The translation recipe: sentence pairs split by the data set and the seed, SentencePiece,
label smoothing, the inverse-square-root schedule, beam search with a length penalty, BLEU, and a
run that trains, translates, resumes after SIGKILL to the same bits."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from recipes import config as config_lib
from recipes import predict
from recipes.data import pairs as pairs_lib
from recipes.data.base import DataError
from recipes.tasks import decode, translate
from recipes.trainer import InverseSqrt, make_optimizer
from tests import helpers
from tests.helpers import ROOT, kill_mid_epoch, subprocess_env

TINY = {"num_layers": 1, "hidden_dim": 16, "num_heads": 2, "intermediate_dim": 32}


def test_the_embedded_numbers_split_by_number_and_seed():
    first = pairs_lib.load_pairs("numbers_de_en", seed=0)
    assert first.sizes() == {"train": 10_000, "val": 1_000, "test": 1_000} and first.languages == ("de", "en")
    assert not set(first.test[1]) & set(first.train[1])  # the test numbers are unseen
    assert "zweiundvierzig" in " ".join(first.train[0]) and "forty-two" in " ".join(first.train[1])
    again, other = (
        pairs_lib.load_pairs("numbers_de_en", seed=0),
        pairs_lib.load_pairs("numbers_de_en", seed=1),
    )
    assert again.test == first.test and other.test != first.test
    assert sorted(other.train[1] + other.val[1] + other.test[1]) == sorted(
        first.train[1] + first.val[1] + first.test[1]
    )


def test_csv_text_pairs_and_tfds_translation_sets(tmp_path):
    import tensorflow_datasets as tfds

    rows = [f"hallo {i},hello {i}" for i in range(30)]
    (tmp_path / "p.csv").write_text("de,en\n" + "\n".join(rows) + "\n")
    csv = pairs_lib.load_pairs("csv", path=str(tmp_path / "p.csv"), seed=0)
    assert csv.languages == ("de", "en") and csv.sizes() == {"train": 24, "val": 3, "test": 3}
    assert all(s.replace("hallo", "hello") == t for s, t in zip(*csv.train))
    flipped = pairs_lib.load_pairs("csv", path=str(tmp_path / "p.csv"), languages=["en", "de"], seed=0)
    assert flipped.test == (csv.test[1], csv.test[0])
    (tmp_path / "c.de").write_text("\n".join(f"hallo {i}" for i in range(30)))
    (tmp_path / "c.en").write_text("\n".join(f"hello {i}" for i in range(30)))
    files = pairs_lib.load_pairs("text_pairs", path=str(tmp_path / "c"), languages=["de", "en"], seed=0)
    assert files.test == csv.test  # the same pairs, the same seeded split
    with tfds.testing.mock_data(num_examples=12):
        ted = pairs_lib.load_pairs("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path / "tfds"))
        assert ted.languages == ("pt", "en") and ted.sizes() == {"train": 12, "val": 12, "test": 12}
        wmt = pairs_lib.load_pairs(
            "wmt14_translate/de-en", languages=["en", "de"], data_dir=str(tmp_path / "tfds")
        )
        assert wmt.languages == ("en", "de")
        with pytest.raises(DataError, match="has no language 'fr'; it has \\['de', 'en'\\]"):
            pairs_lib.load_pairs(
                "wmt14_translate/de-en", languages=["en", "fr"], data_dir=str(tmp_path / "tfds")
            )
    with pytest.raises(DataError, match="languages must be two names, source then target"):
        pairs_lib.load_pairs("csv", path=str(tmp_path / "p.csv"), languages=["de"])
    (tmp_path / "bad.de").write_text("hallo\n")
    (tmp_path / "bad.en").write_bytes(b"\xff\xfe")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        pairs_lib.load_pairs("text_pairs", path=str(tmp_path / "bad"), languages=["de", "en"])
    with pytest.raises(DataError, match="unknown translation set 'numbers_fr'"):
        pairs_lib.load_pairs("numbers_fr")


def test_label_smoothing_is_keras_and_ignores_padding():
    rng = np.random.default_rng(0)
    probs = keras.ops.softmax(rng.normal(size=(2, 5, 7)).astype("float32"))
    labels = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 0]])
    weights = (labels > 0).astype("float32")
    ours = float(translate.SmoothedCrossentropy(0.1)(labels, probs, sample_weight=weights))
    keep = weights.astype(bool)
    onehot = np.eye(7)[labels][keep]
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(onehot, np.asarray(probs)[keep])
    assert ours == pytest.approx(float(reference), rel=1e-5)


def test_the_inverse_square_root_schedule():
    schedule = InverseSqrt(1e-3, warmup=100)
    rate = [float(schedule(step)) for step in (0, 49, 99, 399, 9999)]  # optimizer steps 1, 50, 100, 400, 10k
    assert rate == pytest.approx([1e-5, 5e-4, 1e-3, 5e-4, 1e-4], rel=1e-5)
    assert InverseSqrt.from_config(schedule.get_config()).get_config() == {"peak": 1e-3, "warmup": 100}


def test_beam_search_finds_what_greedy_misses_and_the_length_penalty_weighs_length():
    """A toy model over tokens {pad, 1, start 2, end 3, 4}: greedy takes token 1 (0.6) whose only
    continuation is poor; the beam takes token 4 (0.4), which ends at once with certainty."""

    def probabilities(sources, prefixes):
        out = np.zeros((*prefixes.shape, 5))
        out[..., 3] = 1.0  # after anything else: end
        first = prefixes[:, 1] if prefixes.shape[1] > 1 else np.zeros(len(prefixes))
        out[:, 0] = [0.0, 0.6, 0.0, 0.0, 0.4]
        if prefixes.shape[1] > 1:
            out[first == 1, 1] = [0.0, 0.0, 0.0, 0.3, 0.7]  # after 1: end only at 0.3
            out[first == 1, 2:] = [0.0, 0.0, 0.0, 0.3, 0.7]
        return out

    sources = np.ones((1, 3), "int32")
    greedy = decode.beam_search(probabilities, sources, start=2, end=3, length=4, beam_size=1)
    beam = decode.beam_search(probabilities, sources, start=2, end=3, length=4, beam_size=3, alpha=0.0)
    assert decode.until_end(greedy, 3) == [[1, 4, 4, 4]] and decode.until_end(beam, 3) == [[4]]
    # 1, 4, 4, 4 (unfinished at the length limit) scores 0.6 x 0.7^3 = 0.21 against 4, end at 0.4:
    # only a length penalty, which favours longer hypotheses, prefers it
    longer = decode.beam_search(probabilities, sources, start=2, end=3, length=4, beam_size=3, alpha=3.0)
    assert decode.until_end(longer, 3) == [[1, 4, 4, 4]]
    assert decode.scores(["one two three four"], ["one two three four"])["bleu"] == 100.0


def _config(tmp_path, model="transformer", **extra):
    helpers.write_pairs_csv(tmp_path / "p.csv")
    kwargs = (
        TINY
        if model == "transformer"
        else {"embedding_dim": 8, "units": 16, "num_layers": 1, "attention": "luong"}
    )
    overrides = {
        "dataset": "csv",
        "data_path": str(tmp_path / "p.csv"),
        "run_dir": str(tmp_path / model),
        "epochs": 2,
        "batch_size": 8,
        "sequence_length": 8,
        "vocabulary_size": 60,
        "optimizer": "adam",
        "learning_rate": 0.005,
        "schedule": "inverse_sqrt",
        "warmup_epochs": 0.5,
        "label_smoothing": 0.1,
        "beam_size": 2,
        "model_kwargs": kwargs,
        **extra,
    }
    return config_lib.resolve(model, overrides=overrides)


@pytest.mark.parametrize("model", ["transformer", "lstm_seq2seq"])
def test_a_translation_model_trains_translates_and_is_scored(tmp_path, model):
    summary = translate.train(_config(tmp_path, model))
    assert summary["completed"] and summary["pairs"] == {"train": 64, "val": 8, "test": 8}
    assert 0 <= summary["test_bleu"] <= 100 and 0 <= summary["test_bleu_greedy"] <= 100
    beam = summary["decoding"]["beam"]
    assert beam["sacrebleu"].startswith("BLEU = ") and len(beam["examples"]) == 3
    assert all(set(e) == {"source", "reference", "translation"} for e in beam["examples"])
    run = tmp_path / model
    assert (run / "sentencepiece.model").is_file() and (run / "model.keras").is_file()
    saved = config_lib.load_yaml(run / "config.yaml")
    assert saved["beam_size"] == 2 and "class_weight" not in saved  # the translate recipe's fields
    assert translate.train(_config(tmp_path, model)) == summary  # a finished run is left as it is
    # the saved run translates as the run did: its vocabulary, model and beam search
    (tmp_path / "lines.txt").write_text(beam["examples"][0]["source"] + "\n\n")
    rows = predict.translate(run, [tmp_path / "lines.txt"], [beam["examples"][1]["source"]])
    assert [r["translation"] for r in rows] == [e["translation"] for e in beam["examples"][:2]]
    shutil.copytree(run, tmp_path / "copy")
    (tmp_path / "copy" / "sentencepiece.model").unlink()
    with pytest.raises(ValueError, match="is not a translation run folder"):
        translate.translator(tmp_path / "copy")


def test_the_papers_recipe_is_the_wmt14_default():
    cfg = config_lib.resolve("transformer_base", overrides={"dataset": "wmt14_translate/de-en"})
    assert (cfg.languages, cfg.vocabulary_size, cfg.schedule, cfg.label_smoothing) == (
        ["en", "de"],
        37000,
        "inverse_sqrt",
        0.1,
    )
    assert cfg.learning_rate == pytest.approx((512 * 4000) ** -0.5, rel=1e-3)
    assert int(cfg.warmup_epochs * (4_508_785 // cfg.batch_size)) == 4000 and (
        cfg.beam_size,
        cfg.length_penalty,
    ) == (4, 0.6)
    adam = make_optimizer(cfg, steps_per_epoch=100)  # section 5.3's Adam
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.98, 1e-9)
    assert config_lib.resolve("transformer").dataset == "numbers_de_en"  # the embedded default
    with pytest.raises(ValueError, match=r"adam_beta_2=1.0 is invalid: must be in \[0, 1\)"):
        config_lib.resolve("transformer", overrides={"adam_beta_2": 1.0})


def test_translation_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="model 'lenet5' is not a translation model"):
        translate.Translate(config_lib.resolve("lenet5", overrides={"run_dir": str(tmp_path)}))
    with pytest.raises(ValueError, match="translate does not apply config field class_weight"):
        translate.train(_config(tmp_path, class_weight="balanced"))
    with pytest.raises(ValueError, match="config field beam_size=0 is invalid"):
        _config(tmp_path, beam_size=0)


def _cmd(run, extra=()):
    return [
        sys.executable,
        "-m",
        "recipes.train",
        "transformer",
        "--run-dir",
        str(run),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--set",
        "sequence_length=16",
        "--set",
        "beam_size=1",
        "--set",
        "model_kwargs=" + json.dumps(TINY),
        "--set",
        "checkpoint_every=50",
        *extra,
    ]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_unbroken_weights(tmp_path):
    """The embedded numbers (10,000 training pairs, 312 steps an epoch at batch 32)."""
    env = subprocess_env()
    helpers.run(_cmd(tmp_path / "reference"), env=env, check=True, timeout=900, cwd=ROOT)
    run = tmp_path / "killed"
    proc = helpers.start(_cmd(run), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = kill_mid_epoch(proc, run, 312)
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed mid-epoch"
    out = helpers.run(
        _cmd(run), env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=True
    ).stdout
    assert "resuming" in out and "test BLEU" in out
    ours, reference = (json.loads((d / "summary.json").read_text()) for d in (run, tmp_path / "reference"))
    assert (
        ours["weights_sha256"] == reference["weights_sha256"] and ours["test_bleu"] == reference["test_bleu"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", [("--backend", "jax"), ("--strategy", "mirrored")])
def test_the_transformer_trains_under_jax_and_mirrored_over_two_cpus(tmp_path, how):
    cfg = _config(tmp_path)  # writes the CSV
    extra = ["--set", "devices=['/cpu:0', '/cpu:1']"] if how[1] == "mirrored" else []
    cmd = [
        *_cmd(tmp_path / "run", extra=[*how, *extra]),
        "--dataset",
        "csv",
        "--data-path",
        cfg.data_path,
        "--set",
        "vocabulary_size=60",
        "--batch-size",
        "8",
    ]
    helpers.run(cmd, env=subprocess_env(), check=True, timeout=600, cwd=ROOT)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["completed"] and summary["steps"] == 2 * 8
    if how[1] == "jax":
        assert summary["backend"] == "jax"
    else:
        assert summary["strategy"] == "mirrored" and summary["replicas"] == 2
    assert 0 <= summary["test_bleu"] <= 100 and summary["decoding"]["greedy"]["examples"]
