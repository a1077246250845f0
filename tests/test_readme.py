"""The README's Python examples run as written and print what they claim."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_the_two_commands_and_python_examples():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert len(BLOCKS) == 2


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
