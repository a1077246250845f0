"""The README's Python examples run as written and print what they claim."""

import pathlib
import re

import pytest
from torch import nn

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
BEFORE, _, INTEGRATIONS = TEXT.partition("\n## Integrations\n")
INTEGRATIONS = INTEGRATIONS.split("\n## ")[0]
BLOCKS = re.findall(r"```python\n(.*?)```", BEFORE, re.S)
INTEGRATION_BLOCKS = re.findall(r"```python\n(.*?)```", INTEGRATIONS, re.S)


def test_readme_has_the_two_commands_and_python_examples():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert len(BLOCKS) == 5


def test_regularizer_example_runs(capsys):
    exec(compile(BLOCKS[0], "README-example-1", "exec"), {})
    out = capsys.readouterr().out
    assert "0.weight" in out and "L1" in out and "bias (excluded by default)" in out
    assert re.search(r"penalty now \d+\.\d{4}", out)


def test_estimator_and_search_example_runs(capsys):
    exec(compile(BLOCKS[1], "README-example-2", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "(64, 2)" and lines[1] == "(3, 64)"
    assert "'strength'" in lines[2] and "'placement'" in lines[2]


def test_any_model_weights_and_activations_example_runs(capsys):
    exec(compile(BLOCKS[2], "README-example-3", "exec"), {})
    out = capsys.readouterr().out
    assert "0.weight" in out and "L1(l1=0.001)" in out and "L2(l2=0.0001)" in out
    assert "{'1': (32, 8, 8, 8), '4': (32, 10)}" in out
    assert "ReLU" in out and "fraction_active" in out
    assert out.rstrip().endswith("(32, 8, 8, 8)")


def test_linear_estimator_example_reaches_the_lasso(capsys):
    exec(compile(BLOCKS[3], "README-example-4", "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["True", "True"]


def test_per_layer_search_example_runs(capsys):
    from shrinkage.estimators import parse_layer_penalties

    exec(compile(BLOCKS[4], "README-example-5", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1, 3, 9, 27]"
    assert lines[1].startswith("{0: ") and "2: " in lines[1]
    assert set(parse_layer_penalties(lines[2])) == {0, 1, 2}


def test_integration_examples_run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the TensorBoard snippet creates runs/l1
    lightning, skorch_block, tensorboard = INTEGRATION_BLOCKS
    pytest.importorskip("lightning")
    pytest.importorskip("skorch")
    pytest.importorskip("tensorboard")
    scope = {}
    exec(compile(lightning, "README-lightning", "exec"), scope)
    assert scope["callback"].mode == "loss" and scope["trainer"].max_epochs == 10
    scope = {"MLP": nn.Linear}
    exec(compile(skorch_block, "README-skorch", "exec"), scope)
    assert type(scope["net"]).__name__ == "RegularizedNetClassifier"
    scope = {}
    exec(compile(tensorboard, "README-tensorboard", "exec"), scope)
    scope["writer"].close()
    assert (tmp_path / "runs" / "l1").is_dir()
