"""Search spaces: every family's default is valid for its builder; narrowing, YAML and errors."""

import keras_tuner
import pytest

import modelzoo
from tuning import spaces


def _one_per_family():
    seen = {}
    for name in modelzoo.list_models():
        seen.setdefault(modelzoo.get_entry(name).family, name)
    return sorted(seen.values())


@pytest.mark.parametrize("model", _one_per_family())
def test_every_family_has_a_valid_default_space_with_reasons(model):
    space = spaces.default_space(model)
    accepted = spaces.builder_keywords(model)
    for name, spec in space.specs.items():
        assert spec.get("why"), name  # each parameter says why it is searched
        if name.startswith("model."):
            assert name[len("model.") :] in accepted
    hp = keras_tuner.HyperParameters()
    values = space.register(hp)
    assert set(values) <= set(space.specs) and "learning_rate" in values and "model.dropout_rate" in values
    tokens = modelzoo.get_entry(model).task not in ("image_classification", "tabular_classification")
    assert ("input_noise" in space.specs) != tokens  # no Gaussian noise on token ids (GPT had it)


def test_conditional_parameters_follow_their_parent():
    space = spaces.default_space("mlp").narrow(only=["momentum", "learning_rate"])
    assert list(space.specs) == ["optimizer", "learning_rate", "momentum"]  # the parent is kept, in order
    hp = keras_tuner.HyperParameters()
    hp.values["optimizer"] = "adam"
    hp.Choice("optimizer", ["sgd", "adam", "adamw"])
    values = space.register(hp)
    assert values["optimizer"] == "adam" and "momentum" not in values
    hp = keras_tuner.HyperParameters()
    hp.Choice("optimizer", ["sgd", "adam", "adamw"], default="sgd")
    assert "momentum" in space.register(hp)
    # dropping the parent lifts the condition
    assert "when" not in spaces.default_space("mlp").narrow(drop=["optimizer"]).specs["momentum"]


def test_list_valued_choices_round_trip_through_keras_tuner():
    space = spaces.default_space("mlp").narrow(only=["model.hidden_units"])
    hp = keras_tuner.HyperParameters()
    assert space.register(hp)["model.hidden_units"] == [1024, 1024]  # the default, decoded from JSON
    assert hp.values["model.hidden_units"] == "[1024, 1024]"


def test_yaml_edits_and_full_specs(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "base: regularization\nonly: [l2, model.dropout_rate]\nset:\n  l2: "
        "{type: float, min: 1.0e-5, max: 1.0e-2, sampling: log}\n"
    )
    space = spaces.load_space(path, "mlp")
    assert list(space.specs) == ["model.dropout_rate", "l2"] and space.specs["l2"]["min"] == 1e-5
    path.write_text(
        "learning_rate: {type: choice, values: [0.01, 0.1]}\nmodel.dropout_rate: {type: fixed, value: 0.3}\n"
    )
    space = spaces.load_space(path, "mlp")
    assert space.grid_size() == 2


@pytest.mark.parametrize(
    "specs, message",
    [
        ({}, "the search space is empty"),
        ({"model.depth": {"type": "int", "min": 1, "max": 3}}, "model 'mlp' does not accept 'depth'"),
        (
            {"learning_rat": {"type": "float", "min": 0.1, "max": 1}},
            "neither a recipe config field.*Did you mean 'learning_rate'",
        ),
        ({"l2": {"type": "float", "min": 0.0, "max": 1, "sampling": "log"}}, "log sampling needs min > 0"),
        ({"l2": {"type": "floaty", "min": 0.0, "max": 1}}, "type one of"),
        (
            {
                "momentum": {"type": "float", "min": 0, "max": 1, "when": {"optimizer": ["sgd"]}},
                "optimizer": {"type": "choice", "values": ["sgd"]},
            },
            "must come before it",
        ),
    ],
)
def test_bad_spaces_are_one_clear_error(specs, message):
    with pytest.raises(ValueError, match=message):
        spaces.Space(specs).check("mlp")


def test_grid_size_counts_points():
    space = spaces.Space(
        {
            "model.dropout_rate": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.25},
            "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
            "augment": {"type": "bool"},
        }
    )
    assert space.grid_size() == 3 * 2 * 2
    assert spaces.default_space("mlp").grid_size() is None  # log-scale learning rate: no finite grid
