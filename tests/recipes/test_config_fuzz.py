"""Seeded fuzz of what a user hands the recipes as text: every config field, ``--set`` overrides
and config files. Each case is accepted or refused with ``UserError`` (one line naming the value;
the CLI exits 2); any other exception is a crash and fails the test with its cases."""

import dataclasses
import random

import pytest

from modelzoo.validation import UserError
from recipes import config as config_lib

SEED = 0
# values of every type a YAML file or a --set can give, and the edges of each
POOL = [None, -1, 0, 1, 2, 1.5, -2.5, 0.5, "x", "", "auto", "1e400", [], [1, 2], ["a"], [[1]], [True, 1.0]]
POOL += [{"a": 1}, {}, {"x": [1]}, True, False, float("nan"), float("inf"), -float("inf"), 10**12, 2**40]
FIELDS = [f for f in dataclasses.fields(config_lib.TrainConfig) if f.name != "model"]
PIECES = ["lr", "learning_rate", "batch_size", "epochs", "=", "==", "[", "]", "{", "}", ":", "1", "-", "x"]
PIECES += [",", " ", "'", '"', "null", "yes", "nan", "!!python/object:os.system", "&a", "*a", "\t", "%"]
# config files and what each must give: "ok" (a mapping of valid fields) or "clear" (a UserError)
FILES = [
    ("", "ok"),
    ("[1, 2]", "clear"),
    ("just text", "clear"),
    ("a: [1, 2", "clear"),
    ("epochs: 1\n  - x", "clear"),
    ("{unclosed", "clear"),
    ("epochs: !!python/name:os.system", "clear"),
    ("batch_size: &a 1\nepochs: *a", "ok"),
    ("- epochs: 1", "clear"),
    ("\t epochs: 1", "clear"),
    ("dataset: [digits]", "clear"),
    ("epochs: 2\nlearning_rate: .nan", "clear"),
]


def outcome(fn, *args):
    """'ok', 'clear' (a UserError) or the crash's exception type."""
    try:
        fn(*args)
        return "ok"
    except UserError:
        return "clear"
    except Exception as e:  # a crash: reported with its case
        return type(e).__name__


def check_config(values: dict):
    config_lib.from_dict({"model": "lenet5", "dataset": "digits", **values}).validate()


def check_override(text: str):
    key, value = config_lib.parse_override(text)
    check_config({key: value})


def cases(rng: random.Random):
    """(what, function, argument): every field with every pooled value, random combinations of
    three fields, random ``--set`` strings."""
    for f in FIELDS:
        for value in POOL:
            yield f"{f.name}={value!r}", check_config, {f.name: value}
    for _ in range(400):
        values = {f.name: rng.choice(POOL) for f in rng.sample(FIELDS, 3)}
        yield repr(values), check_config, values
    for _ in range(400):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
        yield f"--set {text!r}", check_override, text


def test_fuzzed_config_values_and_overrides_are_accepted_or_one_clear_error():
    results = [(what, outcome(fn, arg)) for what, fn, arg in cases(random.Random(SEED))]
    crashes = [(what, kind) for what, kind in results if kind not in ("ok", "clear")]
    assert len(results) >= 2_000 and not crashes, crashes[:20]
    assert sum(kind == "clear" for _, kind in results) > len(results) / 2  # most of the pool is bad


@pytest.mark.parametrize("text, expected", FILES)
def test_a_malformed_config_file_is_one_clear_error(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert outcome(lambda: check_config(config_lib.load_yaml(path))) == expected


def test_a_config_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"epochs: 1\n\xff\xfe\x00binary")
    with pytest.raises(UserError, match="not valid UTF-8 YAML"):
        config_lib.load_yaml(path)


def test_values_a_field_cannot_hold_are_refused_by_name():
    for f in dataclasses.fields(config_lib.TrainConfig):
        kinds = config_lib.union_types(f.type)
        if float in kinds:  # no field takes a number that is not finite
            for value in (float("nan"), float("inf")):
                with pytest.raises(UserError, match=f"config field {f.name}="):
                    check_config({f.name: value})
        if int in kinds and bool not in kinds:  # a YAML `yes` is no count
            with pytest.raises(UserError, match=f"config field {f.name}=True"):
                check_config({f.name: True})
    for field, value in [("step_epochs", ["a"]), ("languages", [1, 2]), ("classes", [[1]]), ("seed", -1)]:
        with pytest.raises(UserError, match=f"config field {field}="):
            check_config({field: value})
