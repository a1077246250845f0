"""The Keras over-fitting case study (issue #11): with Keras's settings, within 0.015 of the
published test accuracies at every strength; the bench script's smoke run.

The study is 35 networks (7 strengths x 5 seeds, 4000 epochs each), trained at once as one
stack: about 30 s on the 2-core CI machine.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from shrinkage.cli.demo import CASE_STUDY_STRENGTHS, KERAS_SETTINGS, PUBLISHED, case_study

BENCH = Path(__file__).resolve().parents[1] / "bench" / "moons_case_study.py"


def test_the_case_study_with_keras_settings_matches_the_published_table():
    torch.set_num_threads(1)
    accuracies = case_study(CASE_STUDY_STRENGTHS, range(5), **KERAS_SETTINGS)
    assert sorted(accuracies) == sorted(PUBLISHED)
    for strength, published in PUBLISHED.items():
        mean = sum(accuracies[strength]) / 5
        assert abs(mean - published) <= 0.015, (strength, accuracies[strength], published)
    # Over-fitting is visible: a moderate penalty beats none; too much underfits.
    assert max(accuracies[1e-3]) > max(accuracies[0.0]) > max(accuracies[0.1])


@pytest.mark.parametrize("bad", [{"init": "xavier"}])
def test_case_study_refuses_an_unknown_initialization(bad):
    from shrinkage.errors import ShrinkageError

    with pytest.raises(ShrinkageError, match="The 'init' parameter must be one of"):
        case_study((0.0,), (0,), 1, **bad)


def test_the_bench_script_smoke_run_prints_and_writes_both_settings(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("moons_case_study", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out_file = tmp_path / "moons.json"
    assert module.main(["--quick", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "keras: 14 networks in one stack" in out and "defaults: 14 networks" in out
    report = json.loads(out_file.read_text())
    assert set(report["results"]) == {"keras", "defaults"}
    assert len(report["results"]["keras"]["accuracies"]["0.001"]) == 2
