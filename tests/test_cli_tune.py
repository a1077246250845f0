"""``shrinkage tune``: results.csv, the refit model, the table; bad input writes nothing."""

import numpy as np
import pandas as pd
import pytest

from shrinkage.cli import main
from shrinkage.estimators import load

FAST = ["--hidden", "6", "--epochs", "3", "--batch-size", "16", "--folds", "3", "--quiet"]


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=45),
            "b": rng.normal(scale=50, size=45),
            "color": rng.choice(["red", "blue"], size=45),
        }
    )
    frame["y"] = np.where(frame["a"] + (frame["color"] == "red") > 0.5, "yes", "no")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def run(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_tune_writes_results_and_model(table, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(table), "--target", "y", "--strengths", "0.001,0.1", "-o", str(out)]
    main(["tune", *argv, "--kinds", "l2,l1", "--placements", "all,output,0", *FAST])
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 3 * 2
    assert set(results["param_kind"]) == {"l2", "l1"}
    assert set(results["param_placement"].astype(str)) == {"all", "output", "0"}
    assert results["rank_test_score"].min() == 1
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["grid-chunk-00000.json"]
    model = load(out / "model")
    assert set(model.classes_) == {"yes", "no"}
    assert model.predict(pd.read_csv(table).drop(columns="y")).shape == (45,)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    # the report's title comes from the data file's name
    assert "<title>data.csv: predicting y</title>" in (out / "report.html").read_text("utf-8")


def test_tune_prints_the_top_table(table, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["tune", str(table), "--target", "y", "--strengths", "0.001,0.1", "-o", str(out)]
    main([*argv, *[a for a in FAST if a != "--quiet"], "--top", "1"])
    printed = capsys.readouterr().out
    assert "Top 1 of 2 configurations (accuracy)" in printed
    assert "Best: l2 strength=" in printed and str(out / "results.csv") in printed


BAD = [
    (["--target", "nope"], "column"),
    (["--target", "Y"], "column 'Y' is not in"),
    (["--target", "y", "--kinds", "l11"], "The '--kinds' entries must be among"),
    (["--target", "y", "--kinds", "l11"], "Got 'l11' instead. Did you mean 'l1'?"),
    (["--target", "y", "--placements", "hiden"], "Did you mean 'hidden'?"),
    (["--target", "y", "--strengths", "a,b"], "The '--strengths' option must be comma-separated"),
    (["--target", "y", "--hidden", "0,x"], "The '--hidden' option must be comma-separated"),
    (["--target", "y", "--folds", "1"], "The '--folds' option must be an integer >= 2."),
    (["--target", "y", "--max-memory", "10"], "The '--max-memory' option is too small"),
    (["--target", "y", "--lr", "-1"], "The '--lr' option must be a float"),
    (["--target", "y", "--hidden", "0"], "The '--hidden' option must be comma-separated"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(table, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code = run(["tune", str(table), "--strengths", "0.01", "-o", str(out), *FAST, *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_missing_file_is_refused(tmp_path, capsys):
    code = run(["tune", str(tmp_path / "none.csv"), "--target", "y", "-o", str(tmp_path / "o")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"Error: The data file {str(tmp_path / 'none.csv')!r} does not exist."
    )


def test_tune_passes_keras_settings_to_the_search_and_the_refit(table, tmp_path):
    out = tmp_path / "out"
    argv = [str(table), "--target", "y", "--strengths", "0.001,0.1", "-o", str(out), *FAST]
    flags = ["--no-standardize", "--weight-init", "he_uniform", "--lr-schedule", "cosine"]
    main(["tune", *argv, *flags])
    params = load(out / "model").get_params()
    assert (params["standardize"], params["init"], params["learning_rate_schedule"]) == (
        False,
        "he_uniform",
        "cosine",
    )
    plain = tmp_path / "plain"
    main(["tune", str(table), "--target", "y", "--strengths", "0.001,0.1", "-o", str(plain), *FAST])
    scores = pd.read_csv(out / "results.csv")["mean_test_score"].to_numpy()
    plain_scores = pd.read_csv(plain / "results.csv")["mean_test_score"].to_numpy()
    assert not np.allclose(scores, plain_scores)  # column b (scale 50) is left unscaled
