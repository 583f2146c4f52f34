"""Seeded fuzz of every ``modelzoo`` command's flags and arguments: random flags with values of
every kind, model names, and run folders that are not run folders (missing, a file, empty, a
broken config, a checkpoint that is not one). Each case ends with status 0 or 2 (a user error:
one line, or argparse's usage line and its error); a Python exception escaping a command is a
crash, and the test fails listing the cases. Training, searching and benchmarking are replaced
by a stand-in once their configuration is checked, so an accepted case costs no run."""

import contextlib
import io
import random
import re

import pytest

import modelzoo_cli
from recipes import config as config_lib
from recipes import export, loop
from recipes.tasks import classify, translate

SEED = 0
COMMANDS = ("train", "pretrain", "finetune", "distill", "quantize", "export", "explain", "records")
COMMANDS += ("tune", "bench", "list", "info")
MODELS = ["mlp", "lenet5", "bert_tiny", "transformer_tiny", "nosuch", "", "-", "resnet-50", "../x", "*"]
VALUES = ["-1", "0", "1", "3", "2.5", "nan", "inf", "1e400", "x", "", "[1]", "{a: 1}", "a=b", "=", "digits"]
VALUES += ["mlp", "tensorflow", "jax", "torch", "int8", "onnx", "litert", "savedmodel", "yes", "null", "-"]
VALUES += ["epochs=2", "batch_size=x", "learning_rate=1e400", "model_kwargs={a: 1}", "dataset=[1]", "auto"]


class Accepted(Exception):
    """Raised by the stand-ins: the command checked its input and would now run."""


def stand_in(*args, **kwargs):
    raise Accepted


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """Paths a user might hand a command: a finished run, and folders that are not runs."""
    root = tmp_path_factory.mktemp("cli_fuzz")
    run = root / "run"
    overrides = {"epochs": 1, "verbose": 0, "run_dir": str(run), "model_kwargs": {"hidden_units": [8]}}
    classify.train(config_lib.resolve("mlp", overrides=overrides))
    (root / "file.txt").write_text("not a folder")
    (root / "empty").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "config.yaml").write_text("model: [unclosed")
    fake = root / "fake_checkpoint"
    (fake / "checkpoints").mkdir(parents=True)
    (fake / "config.yaml").write_text((run / "config.yaml").read_text())
    (fake / "checkpoints" / "ckpt-1.npz").write_bytes(b"not an npz")
    return [str(p) for p in (run, root / "missing", root / "file.txt", root / "empty", root / "broken", fake)]


def flags(command: str) -> list[str]:
    """Every option a command's ``--help`` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        modelzoo_cli.main([command, "--help"])
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.getvalue())) - {"--help"})


def positionals(command: str, rng: random.Random, places: list[str]) -> list[str]:
    if command in ("train", "pretrain", "tune", "info"):
        return [rng.choice(MODELS)]
    if command in ("finetune", "quantize", "export"):
        return [rng.choice(places)]
    if command == "distill":
        return [rng.choice(places), rng.choice(MODELS)]
    if command == "explain":
        return [rng.choice(places), *rng.sample(places, rng.randint(0, min(2, len(places))))]
    if command == "records":
        return [rng.choice([*places, "nosuch_set"]), rng.choice(places)]  # no TFDS name: it would download
    return rng.sample(MODELS, rng.randint(0, 2))  # list's patterns; bench has none


def cases(rng: random.Random, places: list[str], per_command: int = 60):
    for command in COMMANDS:
        options = flags(command)
        for option in options:  # every flag once with a bad value, at valid positionals
            yield [command, *positionals(command, rng, places[:1]), option, rng.choice(VALUES)]
        for _ in range(per_command):
            argv = [command, *positionals(command, rng, places)]
            for option in rng.sample(options, min(len(options), rng.randint(0, 3))):
                argv += [option] + ([rng.choice(VALUES + places)] if rng.random() < 0.85 else [])
            yield argv


def outcome(argv: list[str]) -> str:
    """'ok' (status 0 or checked and accepted), 'clear' (status 2), else what escaped."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = modelzoo_cli.main(list(argv))
    except Accepted:
        return "ok"
    except SystemExit as e:
        status = e.code
    except Exception as e:  # a crash
        return f"{type(e).__name__}: {str(e)[:200]}"
    if status == 2 and "error:" not in err.getvalue():
        return f"status 2 without an error line: {err.getvalue()[-200:]!r}"
    return {0: "ok", 2: "clear"}.get(status, f"status {status}")


def test_fuzzed_command_lines_end_in_success_or_one_clear_error(places, monkeypatch, tmp_path):
    import benchmarks.run
    import tuning.search

    monkeypatch.chdir(tmp_path)  # whatever a command writes by default lands here
    for target in (loop, classify, translate):
        monkeypatch.setattr(target, "run" if target is loop else "train", stand_in)
    for name in ("savedmodel", "litert", "onnx"):
        monkeypatch.setattr(export, name, stand_in)
    monkeypatch.setattr(tuning.search, "search", stand_in)
    monkeypatch.setattr(tuning.search, "launch", stand_in)
    monkeypatch.setattr(benchmarks.run, "run", stand_in)
    results = [(argv, outcome(argv)) for argv in cases(random.Random(SEED), places)]
    crashes = [(argv, kind) for argv, kind in results if kind not in ("ok", "clear")]
    assert not crashes, "\n".join(f"{argv}: {kind}" for argv, kind in crashes[:30])
    assert len(results) >= 800 and sum(kind == "clear" for _, kind in results) > len(results) / 2
