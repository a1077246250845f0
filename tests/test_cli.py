"""The ``shrinkage`` command: fit, predict, inspect, demo, and every bad input a user can make.

Commands run through ``shrinkage.cli.main`` itself (the console-script entry point), so the
exit codes and the one-line errors are the ones a user sees; one test runs it in a
subprocess as well.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shrinkage._io import atomic_write
from shrinkage._progress import ProgressBoard
from shrinkage.cli import main as cli_main
from shrinkage.cli.demo import (
    DemoConfig,
    baseline_configs,
    convention_lines,
    demo_rows,
)
from shrinkage.estimators import load
from shrinkage.penalties import L2, from_course, from_torch_weight_decay


def run(args, capsys):
    try:
        cli_main([str(a) for a in args])
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def _tree(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
    )


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.choice(["x", "y"], size=n),
            "c": rng.normal(size=n),
        }
    )
    frame["y"] = np.where(frame["a"] + (frame["b"] == "x") > 0.5, "yes", "no")
    frame.to_csv("train.csv", index=False)
    frame.drop(columns="y").assign(price=3 * frame["a"] + frame["c"]).to_csv(
        "houses.csv", index=False
    )
    files = {
        "empty.csv": "",
        "header_only.csv": "a,y\n",
        "nan_target.csv": "a,y\n1,0\n2,\n3,1\n",
        "inf_target.csv": "a,y\n1,0.5\n2,inf\n3,1.5\n",
        "text_target.csv": "a,y\n1,cat\n2,dog\n3,cat\n",
        "one_class.csv": "a,y\n1,a\n2,a\n3,a\n",
        "duplicate.csv": "a,a,y\n1,2,0\n2,3,1\n",
        "nan_feature.csv": "a,b,y\n1,,0\n2,3,1\n4,5,0\n5,6,1\n",
        "one_row.csv": "a,y\n1,0.5\n",
    }
    for name, text in files.items():
        with open(name, "w") as handle:
            handle.write(text)
    return tmp_path


_FIT = ["fit", "--epochs", "3", "-o", "out"]

# Every bad input of the issue, through the command line: (arguments, the one line on stderr).
_BAD_INPUTS = [
    (["missing.csv", "--target", "y"], "The data file 'missing.csv' does not exist."),
    (["empty.csv", "--target", "y"], "The data file 'empty.csv' is empty (0 bytes)."),
    (
        ["header_only.csv", "--target", "y"],
        "The data file 'header_only.csv' has a header (a, y) but no data rows.",
    ),
    (
        ["train.csv", "--target", "price"],
        "The 'target' column 'price' is not in train.csv; columns are: a, b, c, y.",
    ),
    (
        ["nan_target.csv", "--target", "y"],
        "The 'target' column 'y' has a missing value in row 2 (got nan); drop the rows with no "
        "target or fill them in.",
    ),
    (
        ["inf_target.csv", "--target", "y"],
        "The 'target' column 'y' has an infinite value in row 2 (got inf).",
    ),
    (
        ["text_target.csv", "--target", "y", "--task", "regression"],
        "The 'target' column 'y' is not numeric (got 'cat' in row 1), so it cannot be a "
        "regression target; use task='classification' (CLI: --task classification).",
    ),
    (
        ["one_class.csv", "--target", "y"],
        "The 'target' column 'y' has a single class, 'a', in all 3 rows; classification needs "
        "at least 2 classes.",
    ),
    (
        ["one_row.csv", "--target", "y", "--early-stopping"],
        "early_stopping=True holds out validation_fraction=0.1 of the rows for validation, "
        "which leaves no training rows out of 1; add rows or turn early stopping off.",
    ),
    (
        ["duplicate.csv", "--target", "y"],
        "The data file 'duplicate.csv' has duplicate column names: 'a' is both column 1 and "
        "column 2.",
    ),
    (
        ["train.csv", "--target", "y", "--l2", "-1"],
        "The '--l2' option must be a finite float in the range [0, inf). Got -1.0 instead.",
    ),
    (
        ["train.csv", "--target", "y", "--l1", "nan"],
        "The '--l1' option must be a finite float in the range [0, inf). Got 'nan' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--penalty", "l2", "--strength", "inf"],
        "The '--strength' option must be a finite float in the range [0, inf). Got 'inf' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--l2", "abc"],
        "The '--l2' option must be a finite float in the range [0, inf). Got 'abc' instead.",
    ),
    (
        ["nan_feature.csv", "--target", "y"],
        "The feature column 'b' has a missing value in row 1 (got nan); pass impute=True (CLI: "
        "--impute) to fill missing values with the training median / most frequent value.",
    ),
    (["train.csv"], "Missing option '--target' / '-t'; see 'shrinkage fit --help'."),
    (
        ["train.csv", "--target", "y", "--l2", "0.1", "--l1", "0.1"],
        "Give only one of --l2 and --l1; for both at once (0.1·Σ|w| + 0.1·Σw²) use "
        "--penalty elastic_net --strength 0.2 --l1-ratio 0.5.",
    ),
    (
        ["train.csv", "--target", "y", "--l2", "0.1", "--penalty", "l1"],
        "Give only one of --l2, --l1 and --penalty; got --l2 and --penalty.",
    ),
    (
        ["train.csv", "--target", "Y"],
        "The 'target' column 'Y' is not in train.csv; columns are: a, b, c, y. Did you mean 'y'?",
    ),
    (
        ["train.csv", "--target", "y", "--hidden", "64,0"],
        "The '--hidden' option must be comma-separated integers >= 1 like 100,50, or none. "
        "Got '64,0' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--activation", "rleu"],
        "Invalid value for '--activation': 'rleu' is not one of 'relu', 'tanh', 'logistic', "
        "'sigmoid', 'gelu', 'identity'; see 'shrinkage fit --help'. Did you mean 'relu'?",
    ),
    (
        ["train.csv", "--target", "y", "--batch-size", "0"],
        "The '--batch-size' option must be an integer >= 1. Got 0 instead.",
    ),
    (
        ["train.csv", "--target", "y", "--seed", "-1"],
        "The '--seed' option must be an integer in [0, 4294967295], a numpy RandomState or "
        "None. Got -1 instead.",
    ),
    (
        ["train.csv", "--target", "y", "--l2", "0.1", "--strength", "0.1"],
        "--strength goes with --penalty; --l2 already sets the strength.",
    ),
    (
        ["train.csv", "--target", "y", "--hidden", "a,b"],
        "The '--hidden' option must be comma-separated integers >= 1 like 100,50, or none. "
        "Got 'a,b' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--placement", "middle"],
        "The '--placement' option must be all, hidden, output, comma-separated integers like "
        "0,2, or none. Got 'middle' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--placement", "hiden"],
        "The '--placement' option must be all, hidden, output, comma-separated integers like "
        "0,2, or none. Got 'hiden' instead. Did you mean 'hidden'?",
    ),
    (
        ["train.csv", "--target", "y", "--penalty", "l9"],
        "Invalid value for '--penalty': 'l9' is not one of 'l1', 'l2', 'elastic_net', "
        "'group_lasso', 'exp_abs', 'l2sp', 'none'; see 'shrinkage fit --help'.",
    ),
    (
        ["train.csv", "--target", "y", "--epochs", "x"],
        "The '--epochs' option must be an integer. Got 'x' instead.",
    ),
    (
        ["train.csv", "--target", "y", "--lr", "-0.1"],
        "The '--lr' option must be a float in the range (0, inf). Got -0.1 instead.",
    ),
    (
        ["train.csv", "--target", "y", "--init", "nowhere"],
        "The model directory 'nowhere' does not exist.",
    ),
]


@pytest.mark.parametrize("args, message", _BAD_INPUTS)
def test_fit_bad_input_is_one_line_exit_2_and_writes_nothing(workdir, capsys, args, message):
    before = _tree(workdir)
    code, out, err = run([*_FIT, *args], capsys)
    assert (code, out, err) == (2, "", f"Error: {message}\n")
    assert _tree(workdir) == before


def test_fit_refuses_an_output_that_is_not_a_model(workdir, capsys):
    os.mkdir("notes")
    with open("notes/keep.txt", "w") as handle:
        handle.write("mine")
    code, _, err = run(["fit", "train.csv", "--target", "y", "-o", "notes"], capsys)
    assert code == 2
    assert err == (
        "Error: The model directory 'notes' exists and is not a shrinkage model (it has no "
        "model.json but holds 'keep.txt'); refusing to write there. Choose a new or empty "
        "directory.\n"
    )
    assert os.listdir("notes") == ["keep.txt"]


def test_fit_predict_inspect(workdir, capsys):
    code, out, err = run(
        [
            "fit",
            "train.csv",
            "--target",
            "y",
            "--l2",
            "0.001",
            "--hidden",
            "8",
            "--epochs",
            "5",
            "--seed",
            "3",
            "-o",
            "model",
        ],
        capsys,
    )
    assert code == 0, err
    assert out.startswith(
        "Trained MLPClassifier (4 → 8 → 1, relu) on 60 rows × 3 columns, 5 epochs, in "
    )
    assert "Penalty (gradient mode): layers.0.weight L2(l2=0.001); layers.1.weight " in out
    assert re.search(r"Saved to model/ \(model\.json \+ weights-[0-9a-f]{16}\.safetensors\)\.", out)
    model = load("model")
    assert model.seed_ == 3 and model.get_params()["strength"] == 0.001

    code, out, err = run(["predict", "model", "train.csv", "-o", "predictions.csv"], capsys)
    assert code == 0, err
    frame = pd.read_csv("train.csv")
    predictions = pd.read_csv("predictions.csv")
    assert list(predictions.columns) == ["prediction", "proba_no", "proba_yes"]
    assert predictions["prediction"].tolist() == model.predict(frame[["a", "b", "c"]]).tolist()
    accuracy = float((predictions["prediction"] == frame["y"]).mean())
    assert (
        out == f"Wrote 60 predictions to predictions.csv. accuracy against column 'y': "
        f"{accuracy:.4f}.\n"
    )

    code, out, _ = run(["inspect", "model", "--json"], capsys)
    report = json.loads(out)
    assert report["model"]["sizes"] == [4, 8, 1] and report["model"]["target"] == "y"
    assert [row["name"] for row in report["layers"]] == ["layers.0.weight", "layers.1.weight"]
    assert report["layers"][0]["penalty"] == "L2(l2=0.001)"
    code, out, _ = run(["inspect", "model"], capsys)
    assert code == 0
    for text in (
        "MLPClassifier (classification)",
        "layers.0.weight",
        "8×4",
        "L2(l2=0.001)",
        "dead units",
    ):
        assert text in out


def test_regression_linear_model_and_quiet(workdir, capsys):
    code, out, err = run(
        [
            "fit",
            "houses.csv",
            "--target",
            "price",
            "--hidden",
            "none",
            "--lr",
            "0.05",
            "--epochs",
            "40",
            "--early-stopping",
            "--quiet",
            "-o",
            "ridge",
        ],
        capsys,
    )
    assert (code, out, err) == (0, "", "")
    model = load("ridge")
    assert type(model).__name__ == "MLPRegressor" and model.model_.sizes == [4, 1]
    code, out, _ = run(["predict", "ridge", "houses.csv", "-o", "p.csv", "-q"], capsys)
    assert (code, out) == (0, "")
    assert pd.read_csv("p.csv").columns.tolist() == ["prediction"]


def test_summary_reads_as_english(workdir, capsys):
    code, out, err = run(
        ["fit", "train.csv", "--target", "y", "--epochs", "1", "--hidden", "4", "-o", "m/"], capsys
    )
    assert code == 0, err
    assert ", 1 epoch, in " in out and "Saved to m/ (model.json" in out
    code, out, _ = run(["inspect", "m"], capsys)
    assert code == 0 and "After 1 epoch: train accuracy" in out


def test_impute_accepts_missing_features(workdir, capsys):
    code, _, err = run(
        ["fit", "nan_feature.csv", "--target", "y", "--impute", "--epochs", "2", "-q", "-o", "m"],
        capsys,
    )
    assert code == 0, err
    assert load("m").preprocessor_.impute is True


def test_init_fine_tunes_a_saved_model(workdir, capsys):
    assert run([*_FIT, "train.csv", "--target", "y", "--hidden", "6", "-q"], capsys)[0] == 0
    start = load("out").layer_weights_
    code, _, err = run(
        [
            "fit",
            "train.csv",
            "--target",
            "y",
            "--init",
            "out",
            "--penalty",
            "l2sp",
            "--strength",
            "0.1",
            "--epochs",
            "2",
            "-q",
            "-o",
            "tuned",
        ],
        capsys,
    )
    assert code == 0, err
    tuned = load("tuned")
    assert [row["epoch"] for row in tuned.history_] == [1, 2, 3, 4, 5]
    assert tuned.model_.sizes == [4, 6, 1] and tuned.get_params()["penalty"] == "l2sp"
    assert tuned.get_params()["epochs"] == 2
    assert not np.array_equal(tuned.layer_weights_[0]["weight"], start[0]["weight"])
    code, out, _ = run(["inspect", "tuned", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and "reference=None" not in out
    assert {row["penalty"] for row in shown["model"]["plan"]} == {
        "L2SP(0.1) toward the initial weights"
    }
    assert {row["penalty"] for row in shown["layers"]} == {"L2SP(0.1) toward the initial weights"}
    code, _, err = run(
        ["fit", "train.csv", "--target", "y", "--init", "out", "--hidden", "3", "-o", "x"],
        capsys,
    )
    assert (code, err) == (
        2,
        "Error: --hidden cannot be combined with --init: the network comes from the model "
        "in 'out'.\n",
    )
    assert not os.path.exists("x")
    # the loaded model's inputs are standardized: other input units would be a silent mismatch
    for flag in (["--no-standardize"], ["--weight-init", "he_uniform"]):
        code, _, err = run(
            ["fit", "train.csv", "--target", "y", "--init", "out", *flag, "-o", "x"], capsys
        )
        assert code == 2 and "cannot be combined with --init" in err and err.count("\n") == 1
        assert flag[0].lstrip("-").split("-")[-1] in err and not os.path.exists("x")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["predict", "nowhere", "train.csv", "-o", "p.csv"],
            "The model directory 'nowhere' does not exist.",
        ),
        (
            ["predict", "model", "missing.csv", "-o", "p.csv"],
            "The data file 'missing.csv' does not exist.",
        ),
        (
            ["predict", "model", "one_class.csv", "-o", "p.csv"],
            "The data file 'one_class.csv' lacks the column(s) b, c that the model in 'model' "
            "was trained on.",
        ),
        (
            ["predict", "model", "train.csv", "-o", "nodir/p.csv"],
            "The '--output' folder '{cwd}/nodir' does not exist.",
        ),
        (
            ["predict", "model", "train.csv", "-o", "."],
            "The '--output' path '.' is a directory; give a file name.",
        ),
        (["inspect", "nowhere"], "The model directory 'nowhere' does not exist."),
        (
            ["predict", "results", "train.csv", "-o", "p.csv"],
            "'results' is not a shrinkage model directory: model.json is missing. "
            "Did you mean 'results/model/'?",
        ),
        (
            ["inspect", "train.csv"],
            "The model path 'train.csv' is a file; expected a model directory.",
        ),
    ],
)
def test_predict_and_inspect_bad_input(workdir, capsys, args, message):
    assert run([*_FIT, "train.csv", "--target", "y", "-q", "--hidden", "4"], capsys)[0] == 0
    os.rename("out", "model")
    os.makedirs("results/model")  # what `shrinkage tune` writes: the model one level down
    for name in os.listdir("model"):
        with open(f"model/{name}", "rb") as src, open(f"results/model/{name}", "wb") as dst:
            dst.write(src.read())
    before = _tree(workdir)
    code, out, err = run(args, capsys)
    assert (code, out, err) == (2, "", f"Error: {message.format(cwd=workdir)}\n")
    assert _tree(workdir) == before


def test_predictions_are_written_atomically(workdir, capsys, monkeypatch):
    assert run([*_FIT, "train.csv", "--target", "y", "-q", "--hidden", "4"], capsys)[0] == 0
    with open("p.csv", "w") as handle:
        handle.write("old\n")

    def half_then_fail(frame, handle):
        handle.write("prediction\nyes\n")
        raise OSError("disk full")

    monkeypatch.setattr(
        "shrinkage.cli.predict.write_csv",
        lambda frame, path: atomic_write(path, lambda h: half_then_fail(frame, h), text=True),
    )
    with pytest.raises(OSError, match="disk full"):
        cli_main(["predict", "out", "train.csv", "-o", "p.csv"])
    with open("p.csv") as handle:
        assert handle.read() == "old\n"
    assert [name for name in os.listdir(".") if name.startswith(".")] == []


@pytest.mark.parametrize("command", ["fit", "predict", "inspect", "demo"])
def test_help_has_an_example(capsys, command):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    assert "Example" in out and f"shrinkage {command}" in out


def test_real_entry_point_in_a_subprocess(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shrinkage.cli import main; main()",
            "fit",
            "missing.csv",
            "--target",
            "y",
            "-o",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "Error: The data file 'missing.csv' does not exist.\n"
    assert result.stdout == "" and os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- demo


def test_demo_command_prints_the_table(capsys, tmp_path):
    folder = tmp_path / "shrinkage-demo"  # not there yet, as on a fresh clone
    code, out, err = run(["demo", "--epochs", "15", "--quiet", "-o", str(folder)], capsys)
    assert code == 0 and err == ""
    report = folder / "report.html"
    assert report.is_file() and "<svg" in report.read_text(encoding="utf-8")
    assert "tuned by CV" in out and f"Report: {report}" in " ".join(out.split())
    for text in (
        "train acc",
        "test acc",
        "test log-loss",
        "ΣW² hidden",
        "unregularized",
        "L2 hidden layer",
        "L2(0.001), layer 0",
        "λ = 0.06",
        "is 0.002",
        "kernel_regularizer=l2(0.001)",
        "Wall time:",
        "15 epochs per network",
    ):
        assert text in out


def test_demo_writes_its_report_into_a_directory_it_creates(capsys, tmp_path):
    """A fresh machine has no shrinkage-demo/ yet (it crashed at the very end before)."""
    target = tmp_path / "new" / "shrinkage-demo"
    code, out, err = run(["demo", "--epochs", "3", "--quiet", "-o", str(target)], capsys)
    assert code == 0 and err == "" and (target / "report.html").is_file()
    afile = tmp_path / "a-file"
    afile.write_text("mine")
    code, out, err = run(["demo", "--epochs", "3", "--quiet", "-o", str(afile)], capsys)
    assert code == 2 and afile.read_text() == "mine" and "is a file" in err
    assert len(err.strip().splitlines()) == 1


def test_demo_rows_and_conventions():
    configs = [
        *baseline_configs(),
        DemoConfig("tuned", "L1(0.01), all", {"penalty": "l1", "strength": 0.01}),
    ]
    rows = demo_rows(configs, epochs=10)
    assert [row.name for row in rows] == ["unregularized", "L2 hidden layer", "tuned"]
    for row in rows:
        assert 0 <= row.train_accuracy <= 1 and 0 <= row.test_accuracy <= 1
        assert row.test_log_loss > 0 and row.seconds > 0
    # the regularized hidden layer is the smaller one
    assert rows[1].hidden_sq_norm < rows[0].hidden_sq_norm
    # the convention line's numbers are the library's conversions of L2(0.001)
    assert from_course(0.06, 30) == L2(0.001)
    assert from_torch_weight_decay(0.002) == L2(0.001)
    assert "λ = 0.06" in convention_lines()[1] and "0.002" in convention_lines()[1]


def test_progress_appears_only_after_the_delay_and_never_when_quiet():
    quiet = ProgressBoard("fit", display="off")
    with quiet:
        quiet.add("train", 10)
        quiet.epoch_callback("train")(1, {"total": 1.0})
    assert quiet._progress is None and quiet.phases["train"].completed == 1
    slow = ProgressBoard("fit", display="rich", delay=3600.0)
    with slow:
        slow.add("train", 10)
        slow.epoch_callback("train")(1, {"data_loss": 1.0})
        assert slow._progress is None
    shown = ProgressBoard("fit", display="rich", delay=0.0)
    with shown:
        shown.add("train", 10)
        shown.epoch_callback("train")(1, {"data_loss": 1.0})
        shown.epoch_callback("train")(2, {"data_loss": 0.5})
        assert shown._progress is not None
        task = shown.phases["train"].task
        assert shown._progress.tasks[task].completed == 2
        assert shown._progress.tasks[task].fields["status"] == "loss 0.5"
    assert shown._progress is None


# --------------------------------------------------------------------------- start-up

_HEAVY = ("torch", "numpy", "pandas", "sklearn", "matplotlib", "rich")


def test_help_and_version_import_nothing_heavy():
    # bench/cli_startup.py times these; here: what they import, in one fresh process.
    code = (
        "import sys\n"
        "from shrinkage.cli import main\n"
        "for args in (['--help'], ['--version'], ['fit', '--help'], ['tune', '--help'],\n"
        "             ['demo', '--help'], ['predict', '--help'], ['inspect', '--help'],\n"
        "             ['report', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('HEAVY', sorted(m for m in {_HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.splitlines()[-1] == "HEAVY []"
    assert "shrinkage, version " in result.stdout and "Usage: shrinkage tune" in result.stdout


def test_fit_says_what_it_does_before_loading_torch(workdir):
    # On a terminal (a pseudo-terminal here) the first line comes before torch is imported;
    # an import hook writes <torch> to the same terminal when that import starts.
    pty = pytest.importorskip("pty")
    import select

    code = (
        "import sys, importlib.abc\n"
        "class Watch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch':\n"
        "            sys.stderr.write('<torch>'); sys.stderr.flush()\n"
        "            sys.meta_path.remove(self)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from shrinkage.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["fit", "train.csv", "--target", "y", "--epochs", "1", "--hidden", "2", "-o", "m"]
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0
    text = seen.decode(errors="replace")
    assert "Reading train.csv" in text and "<torch>" in text
    assert text.index("Reading train.csv") < text.index("<torch>")
    assert "Reading train.csv …\r\x1b[K" in text  # erased before any other output
    assert out.startswith("Trained MLPClassifier")


def test_fit_keras_settings_reach_the_estimator(workdir, capsys):
    """--no-standardize, --weight-init and --lr-schedule are the estimator's standardize,
    init and learning_rate_schedule: the saved model has them, and it predicts what the
    same estimator fitted in Python predicts."""
    from shrinkage.estimators import MLPRegressor

    flags = ["--no-standardize", "--weight-init", "glorot_uniform", "--lr-schedule", "cosine"]
    argv = ["fit", "houses.csv", "--target", "price", "--hidden", "5", "--epochs", "4"]
    code, _, err = run([*argv, *flags, "-q", "-o", "keras"], capsys)
    assert (code, err) == (0, "")
    model = load("keras")
    params = model.get_params()
    assert (params["standardize"], params["init"], params["learning_rate_schedule"]) == (
        False,
        "glorot_uniform",
        "cosine",
    )
    frame = pd.read_csv("houses.csv")
    X, y = frame.drop(columns="price"), frame["price"].to_numpy()
    same = MLPRegressor(
        hidden_layer_sizes=(5,),
        epochs=4,
        penalty="l2",
        strength=1e-4,
        standardize=False,
        init="glorot_uniform",
        learning_rate_schedule="cosine",
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(model.predict(X), same.predict(X), rtol=1e-6, atol=1e-6)
    # the defaults are not those: standardized inputs and torch's initialization differ
    code, _, _ = run([*argv, "-q", "-o", "plain"], capsys)
    assert code == 0 and not np.allclose(load("plain").predict(X), model.predict(X))


def test_fit_refuses_an_unknown_weight_init(workdir, capsys):
    code, out, err = run(
        ["fit", "train.csv", "--target", "y", "--weight-init", "xavier", "-o", "m"], capsys
    )
    assert code == 2 and not os.path.exists("m")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--weight-init" in lines[0] and "xavier" in lines[0], err
