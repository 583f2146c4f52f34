"""The ``modelzoo`` command: a table, a card, and one-line errors with a non-zero exit."""

import os
import sys
from pathlib import Path

import modelzoo_cli
from tests import helpers

ROOT = Path(__file__).resolve().parents[1]


def test_list_prints_a_table(capsys):
    assert modelzoo_cli.main(["list", "lenet*", "mlp"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["name", "family", "params", "GMACs", "GFLOPs", "input", "paper"]
    assert "60,850" in out and "LeCun 1998" in out and "Rumelhart 1986" in out


def test_list_markdown_and_no_stats(capsys):
    assert modelzoo_cli.main(["list", "vgg1?", "--no-stats", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| name | family |") and len(lines) == 2 + 4


def test_list_reads_the_recorded_table_and_builds_no_model():
    """``modelzoo list`` in a fresh process answers without Keras (so without building a model:
    nothing can be built without it) and prints every registered model."""
    code = (
        "import sys, modelzoo_cli\n"
        "status = modelzoo_cli.main(['list'])\n"
        "assert status == 0, status\n"
        "loaded = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
        "assert not loaded, f'modelzoo list imported {loaded}'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = helpers.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = [
        line.split()[0] for line in proc.stdout.splitlines()[2:] if line.strip() and not line.endswith(".")
    ]
    import modelzoo

    assert listed == modelzoo.list_models()
    assert f"{len(listed)} models." in proc.stdout


def test_info_prints_a_card(capsys):
    assert modelzoo_cli.main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "LeCun" in out and "60,850 total" in out and "GMACs" in out and "reduction=4" in out


def test_errors_are_one_line_and_exit_2(capsys):
    assert modelzoo_cli.main(["info", "alexnett"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'alexnett'" in err[0] and "'alexnet'" in err[0]
    assert modelzoo_cli.main(["list", "--family", "nope"]) == 2
    capsys.readouterr()
    assert modelzoo_cli.main(["list", "zzz*"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["modelzoo: error: no model matches zzz*; try `modelzoo list` with no pattern."]


def test_console_entry_point_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = helpers.run(
        [sys.executable, "-m", "modelzoo_cli", "info", "resnet-50"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert "Did you mean 'resnet50'" in proc.stderr and "Traceback" not in proc.stderr


def test_tune_dispatches_to_the_search_and_keeps_errors_one_line(capsys):
    assert modelzoo_cli.main(["tune", "mlp", "--tuner", "randm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("modelzoo tune: error: tuner must be one of")
        and "'random'" in err[0]
    )


def test_recipe_commands_dispatch_with_their_own_prog_names(capsys, tmp_path):
    for command in ("distill", "quantize", "explain", "export"):
        assert (
            modelzoo_cli.main([command, str(tmp_path / "no_run"), *(["mlp"] if command == "distill" else [])])
            == 2
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"modelzoo {command}: error: "), err
        assert "no_run" in err[0]


def test_user_errors_are_one_line_and_bugs_keep_their_traceback():
    from modelzoo.validation import UserError
    from recipes.cli import run

    def bad_value():
        raise UserError("config field epochs=0 is invalid: must be >= 1.")

    assert run("prog", bad_value) == 2
    # a ValueError that is not a user error (Keras's, TensorFlow's, ours by mistake) is a bug
    code = "import sys; from recipes.cli import run; sys.exit(run('prog', lambda: int('not a number')))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = helpers.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: invalid literal for int()" in proc.stderr
    assert "prog: error" not in proc.stderr


def test_recipe_modules_run_directly_keep_errors_one_line():
    """Run as ``python -m``, a recipe or search module imports Keras only inside ``recipes.cli.run``
    (TensorFlow's start-up chatter silenced), so the user error is the whole of stderr."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    for module, args in (
        ("recipes.distill", ["/no_run", "mlp"]),
        ("tuning.search", ["mlp", "--workers", "-1"]),
    ):
        proc = helpers.run(
            [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 2
        assert (
            proc.stderr.strip().splitlines() == [proc.stderr.strip()] and f"{module}: error: " in proc.stderr
        ), proc.stderr
