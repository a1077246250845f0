"""shrinkage.report and ``shrinkage report``: one self-contained HTML file from a search, a
results directory or a single estimator; metadata round trip; atomic writes; errors."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import make_moons

from shrinkage import report as R
from shrinkage.analysis import best_index
from shrinkage.cli import _workflows as W
from shrinkage.cli import main
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier, save
from shrinkage.report import _html
from shrinkage.search import SearchCV

FIGURES = [
    "validation curve",
    "regularization path",
    "placement study",
    "weight histograms",
    "learning curves",
    "decision boundary",
]
SECTIONS = [
    "Chosen configuration",
    "Diagnosis",
    "Figures",
    "Data",
    "Search space",
    "The convention of λ",
    "The chosen model",
    "Best configurations by CV score",
]


class Page(HTMLParser):
    """Collects what a browser would fetch or run: tags, attributes, headings, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: list[str] = []
        self._in_h2 = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)

    def attrs(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A small search on two moons, saved as `shrinkage tune` would, with its report."""
    X, y = make_moons(60, noise=0.25, random_state=0)
    estimator = MLPClassifier((8,), epochs=20, batch_size=60, learning_rate=0.05)
    search = SearchCV(
        estimator,
        strengths=[1e-3, 1e-2, 1e-1, 1.0],
        placements=("all", "output"),
        cv=2,
        random_state=0,
    ).fit(X, y)
    out = tmp_path_factory.mktemp("tuned")
    search.results_frame().to_csv(out / "results.csv", index=False)
    save(search.best_estimator_, out / "model")
    data = R.describe_data(X, y, source="make_moons(60)", task="classification")
    path = W.write_tune_report(out, search, X, y, data=data, title="two moons")
    return {"search": search, "out": out, "path": path, "X": X, "y": y}


def plots(text: str) -> list[str]:
    """The figures of a report, in order: each drawn twice, wide and narrow (for phones)."""
    wide = re.findall(r'<div class="wide"><svg [^>]*aria-label="([^"]+)"', text)
    narrow = re.findall(r'<div class="narrow"><svg [^>]*aria-label="([^"]+)"', text)
    assert wide == narrow
    return wide


def check_self_contained(text: str) -> Page:
    page = Page(text)
    assert not page.attrs("script") and not page.attrs("link") and not page.attrs("iframe")
    assert not re.search(r"(?i)\b(src|href)\s*=\s*[\"']?(https?:|//)", text)
    assert not re.search(r"url\((?!#)", text)  # no CSS fetches: only links inside the SVGs
    hrefs = [a.get("xlink:href", a.get("href")) for t, a in page.tags if t in ("use", "image")]
    assert all(h.startswith(("#", "data:image/png;base64,")) for h in hrefs)
    ids = [a["id"] for t, a in page.tags if "id" in a]
    assert len(ids) == len(set(ids))  # the two drawings of a figure share no id
    for image in page.attrs("image"):  # rasterized layers inside the SVGs (filled contours,
        # which may be one colour when a model is unsure everywhere)
        data = image.get("xlink:href", image.get("href"))
        picture = Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1])))
        assert picture.format == "PNG" and min(picture.size) > 10
    metas = page.attrs("meta")
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    csp = [m["content"] for m in metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    for img in page.attrs("img"):
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        picture = Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix) :])))
        assert picture.format == "PNG"
        assert (picture.width, picture.height) == (int(img["width"]), int(img["height"]))
        assert np.asarray(picture.convert("L")).std() > 5  # not a blank canvas
    return page


def test_tune_report_is_one_self_contained_file(tuned):
    path = tuned["path"]
    assert path == tuned["out"] / "report.html"
    text = path.read_text(encoding="utf-8")
    page = check_self_contained(text)
    assert plots(text) == FIGURES
    assert page.headings == SECTIONS
    assert sorted(os.listdir(tuned["out"])) == [
        "baseline.safetensors",
        "chunks",
        "model",
        "report.html",
        "results.csv",
        "search.json",
    ] or sorted(os.listdir(tuned["out"])) == [
        "baseline.safetensors",
        "model",
        "report.html",
        "results.csv",
        "search.json",
    ]


def test_report_states_data_search_choice_and_convention(tuned):
    text = tuned["path"].read_text(encoding="utf-8")
    search = tuned["search"]
    best = search.best_params_
    assert "<title>two moons</title>" in text
    assert f'<div class="value">{best["placement"]}</div>' in text
    assert f'<div class="value">{best["strength"]:.4g}</div>' in text
    # data description and search space
    assert "<td>make_moons(60)</td>" in text and "<td>0: 30, 1: 30</td>" in text
    assert "<td>0.001, 0.01, 0.1, 1</td>" in text and "<td>all, output</td>" in text
    assert "<td>best mean CV score</td>" in text and "<td>accuracy</td>" in text
    # the convention, with the course's lambda for m = 60 rows: 2 * 60 * strength
    assert "J = mean loss + λ·Σw²" in text
    assert f">{2 * 60 * best['strength']:.4g} (m = 60)</td>" in text
    assert f">{2 * best['strength']:.4g}</td>" in text
    # the verdict reads the search: the edge of the grid first, then the chosen row's gap
    from shrinkage.analysis import diagnose_search, grid_edge

    badge = {"upper": "λ at the top of the grid", "lower": "λ at the bottom of the grid"}.get(
        grid_edge(search, search.best_index_), diagnose_search(search).verdict
    )
    assert f'">{badge}</span>' in text
    assert "1% train vs 11% validation error is high variance" in text


def test_metadata_round_trip(tuned):
    inputs = R.load_report_inputs(tuned["out"])
    search = tuned["search"]
    assert inputs.chosen_index == search.best_index_
    assert inputs.title == "two moons"
    assert inputs.data["rows"] == 60 and inputs.data["task"] == "classification"
    assert inputs.search_space["placements"] == ["all", "output"]
    assert inputs.search_space["scoring"] == "accuracy"
    np.testing.assert_allclose(inputs.X, tuned["X"], atol=1e-6)
    np.testing.assert_array_equal(inputs.y, tuned["y"])
    chosen = search.best_estimator_
    assert [w.shape for w in inputs.baseline.values()] == [
        w["weight"].shape for w in chosen.layer_weights_
    ]
    # the baseline is the unregularized twin: same seed, strength 0, so different weights
    assert not np.allclose(inputs.baseline["layers.1.weight"], chosen.layer_weights_[1]["weight"])
    assert [a["layer"] for a in inputs.activations] == [0]
    np.testing.assert_allclose(
        inputs.estimator.predict_proba(tuned["X"]), chosen.predict_proba(tuned["X"]), atol=1e-6
    )
    meta = json.loads((tuned["out"] / "search.json").read_text())
    assert (meta["format"], meta["version"]) == ("shrinkage.search-metadata", 1)


def test_fit_baseline_keeps_everything_but_the_strength(tuned):
    chosen = tuned["search"].best_estimator_
    twin = W.fit_baseline(chosen, tuned["X"], tuned["y"])
    assert twin.strength == 0.0
    params = {k: v for k, v in chosen.get_params().items() if k != "strength"}
    assert {k: v for k, v in twin.get_params().items() if k != "strength"} == params


def test_cli_rebuilds_the_report_from_the_directory(tuned, tmp_path, capsys):
    target = tmp_path / "again.html"
    main(["report", str(tuned["out"]), "-o", str(target), "--title", "rebuilt"])
    assert capsys.readouterr().out.strip() == str(target)
    text = target.read_text(encoding="utf-8")
    check_self_contained(text)
    assert plots(text) == FIGURES
    assert "<title>rebuilt</title>" in text
    original = tuned["path"].read_text(encoding="utf-8")
    card = re.compile(r'<div class="cards">.*?</section>', re.S)
    assert card.search(text)[0] == card.search(original)[0]  # same chosen configuration


def test_cli_default_output_and_errors(tuned, tmp_path, capsys, no_figures):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.csv").write_bytes((tuned["out"] / "results.csv").read_bytes())
    main(["report", str(copy)])
    assert capsys.readouterr().out.strip() == str(copy / "report.html")
    text = (copy / "report.html").read_text(encoding="utf-8")
    check_self_contained(text)
    # No model and no metadata: the search alone, with the best row as the choice.
    best = tuned["search"].cv_results_["param_strength"][best_index(tuned["search"])]
    assert f'<div class="value">{best:.4g}</div>' in text
    assert "The chosen model" not in text
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"Error: The results directory {str(tmp_path / 'missing')!r} does not exist.\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["report"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "Error: Missing argument 'RESULTS_DIR'; see 'shrinkage report --help'.\n"
    )


def test_single_estimator_report(tmp_path):
    X, y = make_moons(40, noise=0.2, random_state=1)
    est = MLPClassifier((6,), epochs=8, early_stopping=True, validation_fraction=0.25).fit(X, y)
    path = R.build_report(est, tmp_path / "one.html", X=X, y=y)
    text = path.read_text(encoding="utf-8")
    check_self_contained(text)
    assert plots(text) == ["weight histograms", "learning curves", "decision boundary"]
    assert "No search: a single fit." in text
    assert "refit model, last epoch (validation rows)" in text  # diagnosed from history_


@pytest.fixture
def no_figures(monkeypatch):
    """For tests of the text: drawing the figures is most of a report's time."""
    monkeypatch.setattr(_html, "_figures_html", lambda inputs: "")


def test_scoring_that_is_not_an_error_rate_is_not_diagnosed(tuned, tmp_path, no_figures):
    path = R.build_report(
        tuned["search"], tmp_path / "r.html", search_space={"scoring": "neg_log_loss"}
    )
    text = path.read_text(encoding="utf-8")
    assert (
        "The search scored with neg_log_loss, which is not an error rate or R²; the "
        "cross-validated scores are not diagnosed."
    ) in text


def test_title_and_values_are_escaped(tmp_path, no_figures):
    frame = pd.DataFrame(
        {"param_strength": [0.1], "param_kind": ["<b>l2</b>"], "mean_test_score": [0.9]}
    )
    path = R.build_report(None, tmp_path / "r.html", results=frame, title="<script>x</script>")
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert "&lt;b&gt;l2&lt;/b&gt;" in text and "<b>l2</b>" not in text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _dir_without_results(tmp_path: Path) -> str:
    (tmp_path / "empty").mkdir()
    return str(tmp_path / "empty")


def _bad_metadata(tmp_path: Path) -> str:
    folder = tmp_path / "bad"
    folder.mkdir()
    pd.DataFrame({"mean_test_score": [0.5]}).to_csv(folder / "results.csv", index=False)
    (folder / "search.json").write_text("{nope")
    return str(folder)


# (id, call given tmp_path, exact message; {tmp} is tmp_path)
BAD_INPUTS = [
    (
        "missing directory",
        lambda t: R.build_report(str(t / "nope")),
        "The results directory '{tmp}/nope' does not exist.",
    ),
    (
        "no results.csv",
        lambda t: R.build_report(_dir_without_results(t)),
        "The results directory '{tmp}/empty' has no results.csv; run 'shrinkage tune' to "
        "create it.",
    ),
    (
        "bad search.json",
        lambda t: R.build_report(_bad_metadata(t)),
        "The results file '{tmp}/bad/search.json' is not valid JSON (Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1)).",
    ),
    (
        "no path for an object",
        lambda t: R.build_report(MLPClassifier()),
        "The 'path' parameter is required unless 'source' is a directory.",
    ),
    (
        "nothing to report",
        lambda t: R.build_report(None, t / "r.html"),
        "There is nothing to report: give search results or an estimator.",
    ),
    (
        "unknown source",
        lambda t: R.build_report(3.5, t / "r.html"),
        "The 'source' parameter must be a results directory, a fitted search or a fitted "
        "estimator. Got float instead.",
    ),
]


@pytest.mark.parametrize(
    "call, message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_inputs(tmp_path, call, message):
    with pytest.raises(ShrinkageError) as err:
        call(tmp_path)
    assert str(err.value) == message.format(tmp=tmp_path)


def test_demo_report_compares_the_two_networks(tuned, tmp_path):
    X, y = tuned["X"], tuned["y"]
    X_train, y_train, X_test, y_test = X[:30], y[:30], X[30:], y[30:]
    shared = dict(hidden_layer_sizes=(8,), epochs=30, batch_size=30, random_state=0)
    free = MLPClassifier(penalty="none", **shared).fit(X_train, y_train)
    chosen = MLPClassifier(strength=0.01, placement="hidden", **shared).fit(X_train, y_train)
    path = W.write_demo_report(
        tmp_path / "demo.html",
        chosen,
        free,
        X_train,
        y_train,
        X_test,
        y_test,
    )
    text = path.read_text(encoding="utf-8")
    check_self_contained(text)
    assert plots(text) == FIGURES[3:]
    # two panels: the unregularized and the chosen boundary
    assert text.count(">Decision boundary: unregularized</text>") == 2  # wide and narrow
    assert text.count(">Decision boundary: chosen</text>") == 2
    assert ">unregularized: train vs test accuracy</td>" in text
    assert ">chosen: train vs test accuracy</td>" in text
    assert '<div class="value">hidden</div>' in text and '<div class="value">0.01</div>' in text
    assert "<td>30</td>" in text and "<td>test rows</td><td>30</td>" in text


def test_cards_describe_the_shown_model_when_it_is_not_the_searched_choice(tuned, no_figures):
    search = tuned["search"]
    own = MLPClassifier((4,), strength=0.5, placement="hidden", epochs=1)
    own.fit(tuned["X"], tuned["y"])
    inputs = R.ReportInputs(results=search.results_frame(), estimator=own)
    text = R.render_html(inputs)
    cards = text.split("</section>")[0]
    assert '<div class="value">hidden</div>' in cards and '<div class="value">0.5</div>' in cards
    assert "CV score" not in cards  # the search's score is not this model's
    best = search.best_params_
    assert (
        f">the search&#x27;s choice (l2 λ={best['strength']:.4g} on {best['placement']}), "
        "cross-validated</td>"
    ) in text
    inputs.estimator = search.best_estimator_
    cards = R.render_html(inputs).split("</section>")[0]
    assert "CV score" in cards


def test_tune_report_on_a_table_with_a_categorical_column(tmp_path, no_figures):
    X, y = make_moons(40, noise=0.2, random_state=2)
    frame = pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "color": ["red", "blue"] * 20})
    search = SearchCV(
        MLPClassifier((4,), epochs=5, batch_size=40),
        strengths=[0.01, 0.1],
        cv=2,
        random_state=0,
    ).fit(frame, y)
    path = W.write_tune_report(tmp_path, search, frame, pd.Series(y, name="label"))
    assert path.is_file()
    meta = json.loads((tmp_path / "search.json").read_text())
    assert "points" not in meta  # three columns, one of them text: no plane to draw
    assert meta["data"] == {
        "rows": 40,
        "features": 3,
        "feature_names": ["u", "v", "color"],
        "task": "classification",
        "classes": {"0": 20, "1": 20},
    }
    assert [row["units"] for row in meta["activations"]] == [4]


def _results(strengths, scores, train, placements=None):
    """A results table of one kind: scores per configuration, 2 folds."""
    n = len(strengths)
    return pd.DataFrame(
        {
            "param_kind": ["l2"] * n,
            "param_strength": strengths,
            "param_placement": placements or ["all"] * n,
            "mean_test_score": scores,
            "std_test_score": [0.01] * n,
            "mean_train_score": train,
            "mean_fit_time": [0.5] * n,
            "split0_test_score": scores,
            "split1_test_score": scores,
        }
    )


def _headline(text):
    return re.search(r'<span class="badge (\w+)">(.*?)</span> (.*?)</p>', text).groups()


@pytest.mark.parametrize(
    "scores, train, chosen, badge, words",
    [
        # the best λ inside the grid, train and CV close: keep it
        ([0.90, 0.95, 0.93], [0.97, 0.96, 0.94], 1, "balanced", "keep it"),
        # inside the grid with a large gap: the grid already tried more λ, so not "increase"
        ([0.80, 0.85, 0.83], [1.0, 1.0, 0.95], 1, "high variance", "not more λ"),
        # inside the grid with a high train error: weaker λ validated worse
        ([0.60, 0.70, 0.65], [0.72, 0.71, 0.66], 1, "high bias", "λ is not what holds"),
        # the best is the strongest tried: extend the grid up (the diabetes case)
        ([0.40, 0.45, 0.50], [0.50, 0.49, 0.52], 2, "λ at the top of the grid", "--grid-max 10"),
        ([0.90, 0.85, 0.80], [0.99, 0.90, 0.81], 0, "λ at the bottom of the grid", "--grid-min"),
    ],
)
def test_the_headline_comes_from_the_cross_validated_evidence(
    scores, train, chosen, badge, words, no_figures
):
    inputs = R.ReportInputs(results=_results([0.01, 0.1, 1.0], scores, train), chosen_index=chosen)
    text = R.render_html(inputs)
    css, shown, sentence = _headline(text)
    assert shown == badge and words in sentence
    assert "decrease λ" not in text.split("</section>")[1].split("Error = 1")[0] or (
        badge != "λ at the top of the grid"
    )
    assert "set baseline_error" not in text
    assert f'<div class="value">{badge}</div>' in text  # the card says the same


def test_the_demo_headline_follows_its_search_not_its_test_rows(no_figures):
    # The demo's tuned network: perfect on its 30 training rows, 5.7 points worse on the 70
    # test rows (high variance on its own), but the CV-chosen λ, balanced by cross-validation.
    from shrinkage.analysis import diagnose_scores

    results = _results([1e-3, 2e-3, 1e-2], [0.93, 0.967, 0.95], [1.0, 1.0, 0.98])
    inputs = R.ReportInputs(
        results=results,
        chosen_index=1,
        diagnoses=[("chosen: train vs test accuracy", diagnose_scores(1.0, 0.943))],
    )
    text = R.render_html(inputs)
    assert _headline(text)[1] == "balanced"
    assert ">keep λ (CV optimum)</td>" in text and ">high variance</td>" in text


def test_tables_speak_words_and_tied_rows_show_the_chosen_one_first(tuned, no_figures):
    # three configurations tie; the search chose the middle strength
    results = _results([0.01, 0.1, 1.0], [0.9, 0.9, 0.9], [0.95, 0.95, 0.95])
    text = R.render_html(R.ReportInputs(results=results, chosen_index=1))
    table = text.split("Best configurations by CV score")[1]
    headers = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table)
    assert headers == [
        "λ",
        "penalty",
        "placement",
        "CV score",
        "± std",
        "train score",
        "fit time (s)*",
        "",
    ]
    assert not [h for h in headers if "_" in h]
    strengths = re.findall(r'<td class="num" data-label="λ">(.*?)</td>', table)
    assert strengths == ["0.1", "1", "0.01"]  # chosen, then the larger strength
    assert '<span class="tag chosen">chosen</span>' in table.split("</tr>")[1]
    assert "shared out among the chunk's candidates" in table
    assert "training time" in text and "a stack&#x27;s time shared among its candidates" in text


def test_settings_that_matter_and_no_undiagnosable_history_line(tuned, no_figures):
    search = tuned["search"]
    inputs = R.load_report_inputs(tuned["out"])
    text = R.render_html(inputs)
    settings = text.split("Estimator settings")[1].split("</table>")[0]
    keys = re.findall(r"<tr><td>(.*?)</td>", settings)
    assert keys == [
        "hidden layers",
        "activation",
        "optimizer",
        "learning rate",
        "epochs",
        "batch size",
        "penalty applied as",
        "early stopping",
        "device",
        "seed",
    ]
    assert "<td>0 (the search&#x27;s random_state" in settings  # not the refit's derived seed
    assert str(search.refit_seed_) not in settings
    assert "learning history was not diagnosed" not in text  # the refit holds no rows out
    weights = text.split("Weights of the chosen model")[1].split("</table>")[0]
    assert re.findall(r"<th(?: [^>]*)?>(.*?)</th>", weights) == [
        "weight",
        "shape",
        "penalty",
        "penalty term",
        "L1 norm",
        "L2 norm",
        "max |w|",
        "zeros",
        "|w| &lt; 0.001",
        "dead units",
    ]


def test_the_baseline_of_a_per_layer_choice_has_no_penalty_anywhere(tuned):
    chosen = MLPClassifier(
        (8,), epochs=3, penalty="none", layer_penalties={0: ("l2", 0.1), 1: ("l1", 0.01)}
    ).fit(tuned["X"], tuned["y"])
    twin = W.fit_baseline(chosen, tuned["X"], tuned["y"])
    assert twin.get_params()["layer_penalties"] is None
    assert all(row["penalty"] == 0.0 for row in twin.history_)  # unregularized, every epoch
