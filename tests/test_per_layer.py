"""Per-layer strengths chosen by cross-validation, with successive halving inside the stack."""

import math
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from shrinkage import L1, L2, ElasticNet
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import (
    MLPClassifier,
    format_layer_penalties,
    parse_layer_penalties,
)
from shrinkage.models import MLP
from shrinkage.search import SearchCV
from shrinkage.search._halving import (
    config_summary,
    rank_configs,
    rung_epochs,
    sample_layers,
)

EPOCHS = 9


def _data(n=60, seed=0):
    X, y = make_classification(n, 5, n_informative=3, n_redundant=0, random_state=seed)
    X[:, 0] = 50 * X[:, 0] + 3  # unscaled: per-fold standardization matters
    return X, y


def _estimator(**kw):
    params = dict(hidden_layer_sizes=(6, 5), epochs=EPOCHS, batch_size=8, learning_rate=0.02)
    params.update(kw)
    return MLPClassifier(**params)


def _search(**kw):
    params = dict(
        strengths=[1e-3, 0.1],
        placements=("all", "output"),
        per_layer=True,
        n_candidates=12,
        cv=3,
        random_state=0,
        refit=False,
        keep_grid=False,
    )
    params.update(kw)
    return SearchCV(params.pop("estimator", _estimator()), **params)


@pytest.mark.parametrize("optimizer, mode", [("adam", "gradient"), ("sgd", "proximal")])
def test_scores_in_the_halving_stack_equal_each_configuration_alone_up_to_its_rung(optimizer, mode):
    X, y = _data()
    estimator = _estimator(optimizer=optimizer, mode=mode, momentum=0.9)
    search = _search(estimator=estimator).fit(X, y)
    results = search.cv_results_
    assert search.rungs_ == [1, 3, EPOCHS]
    assert np.bincount(results["rung"]).tolist() == [8, 2, 2]  # 12 -> 4 -> 2
    for c, params in enumerate(results["params"]):
        for rung in range(results["rung"][c] + 1):
            alone = []
            for (train, test), seed in zip(search.folds_, search.seeds_):
                model = _estimator(
                    optimizer=optimizer,
                    mode=mode,
                    momentum=0.9,
                    epochs=search.rungs_[rung],
                    random_state=seed,
                    **params,
                ).fit(X[train], y[train])
                alone.append(model.score(X[test], y[test]))
            assert results[f"rung{rung}_test_score"][c] == pytest.approx(np.mean(alone)), (c, rung)
            if rung == results["rung"][c]:
                splits = [results[f"split{i}_test_score"][c] for i in range(3)]
                np.testing.assert_allclose(splits, alone)
        for rung in range(results["rung"][c] + 1, 3):
            assert math.isnan(results[f"rung{rung}_test_score"][c])


def test_survivors_are_the_best_of_each_rung_and_the_choice_is_among_the_last():
    X, y = _data()
    search = _search().fit(X, y)
    results = search.cv_results_
    for rung in range(2):
        reached = np.flatnonzero(results["rung"] >= rung)
        went_on = set(np.flatnonzero(results["rung"] > rung))
        scores = results[f"rung{rung}_test_score"][reached]
        assert len(went_on) == math.ceil(len(reached) / 3)
        worst_kept = min(results[f"rung{rung}_test_score"][list(went_on)])
        assert all(s <= worst_kept for c, s in zip(reached, scores) if c not in went_on)
    final = np.flatnonzero(results["rung"] == 2)
    assert search.best_index_ in final
    assert sorted(results["rank_test_score"][final]) == sorted(
        results["rank_test_score"][final]
    ) and max(results["rank_test_score"][final]) <= len(final)
    assert min(np.delete(results["rank_test_score"], final)) > len(final)
    assert set(results["rung_epochs"]) == {1, 3, EPOCHS}
    assert search.best_score_ == results["mean_test_score"][search.best_index_]


def test_grid_configurations_are_included_and_the_rest_sampled():
    X, y = _data()
    search = _search().fit(X, y)
    results = search.cv_results_
    assert list(results["stage"]) == ["grid"] * 4 + ["sampled"] * 8
    assert list(results["param_placement"][:4]) == ["all", "all", "output", "output"]
    np.testing.assert_array_equal(results["param_strength_layer0"][:4], [1e-3, 0.1, 0, 0])
    np.testing.assert_array_equal(results["param_strength_layer2"][:4], [1e-3, 0.1, 1e-3, 0.1])
    sampled = np.stack([results[f"param_strength_layer{i}"][4:] for i in range(3)])
    assert ((sampled == 0) | ((sampled >= 1e-3 * 0.995) & (sampled <= 0.1 * 1.005))).all()
    assert results["param_layer_penalties"][0] == "0=l2:0.001,1=l2:0.001,2=l2:0.001"
    assert results["param_layer_penalties"][2] == "0=none,1=none,2=l2:0.001"


def test_best_params_hold_layer_penalties_that_set_params_and_the_cli_take_back():
    X, y = _data()
    search = _search(refit=True).fit(X, y)
    best = search.best_params_
    assert set(best) == {"penalty", "strength", "placement", "layer_penalties"}
    assert best["penalty"] == "none" and best["placement"] == "all"
    layers = (
        search.cv_results_["param_strength_layer0"],
        search.cv_results_["param_strength_layer1"],
        search.cv_results_["param_strength_layer2"],
    )
    for i, penalty in best["layer_penalties"].items():
        strength = layers[i][search.best_index_]
        assert penalty == (L2(strength) if strength > 0 else None)
    # The refit is the estimator with these parameters, fitted alone.
    again = _estimator(random_state=search.refit_seed_).set_params(**best).fit(X, y)
    for name, tensor in again.model_.state_dict().items():
        torch.testing.assert_close(search.best_model_.state_dict()[name], tensor)
    # The CLI's text form reads back to the same penalties.
    text = search.cv_results_["param_layer_penalties"][search.best_index_]
    parsed = _estimator(layer_penalties=parse_layer_penalties(text))._resolve_params()
    assert parsed.overrides == best["layer_penalties"]


def test_chunked_halving_ranks_globally_and_matches_one_stack():
    X, y = _data()
    whole = _search().fit(X, y)
    per, shared = _search()._bytes(_search().prepare(X, y).data)
    chunked = _search(max_memory=shared + 5 * per).fit(X, y)
    assert whole.chunking_["n_chunks"] == 1 and chunked.chunking_["n_chunks"] == 8
    for key, value in whole.cv_results_.items():
        if key.endswith("_time") or value.dtype == object:
            continue
        np.testing.assert_allclose(value, chunked.cv_results_[key], atol=1e-6, err_msg=key)
    assert list(whole.cv_results_["param_layer_penalties"]) == list(
        chunked.cv_results_["param_layer_penalties"]
    )


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("chunks", [1, 8])
def test_resume_after_a_kill_between_rungs_gives_the_uninterrupted_results(chunks, tmp_path):
    X, y = _data()
    per, shared = _search()._bytes(_search().prepare(X, y).data)
    memory = "1GB" if chunks == 1 else shared + 5 * per
    expected = _search(max_memory=memory).fit(X, y).cv_results_

    def stop_in_the_last_rung(progress):
        if progress.stage == "rung 3/3":
            raise Interrupted

    first = _search(max_memory=memory, checkpoint_dir=tmp_path)
    with pytest.raises(Interrupted):
        first.fit(X, y, progress=stop_in_the_last_rung)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith("rung1-chunk") and n.endswith(".safetensors") for n in names)
    assert not any(n.startswith("rung0-chunk") and n.endswith(".safetensors") for n in names)
    assert any(n.startswith("rung0-chunk") and n.endswith(".json") for n in names)

    stages = []
    resumed = _search(max_memory=memory, checkpoint_dir=tmp_path, resume=True).fit(
        X, y, progress=lambda p: stages.append(p.stage)
    )
    assert set(stages) == {"rung 3/3"}  # rungs 1 and 2 were read back, not trained
    for key, value in expected.items():
        if key.endswith("_time"):
            continue
        if value.dtype == object:
            assert list(value) == list(resumed.cv_results_[key]), key
        else:
            np.testing.assert_allclose(value, resumed.cv_results_[key], atol=1e-6, err_msg=key)


class _TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 3, kernel_size=2)
        self.head = nn.Linear(12, 1)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.unsqueeze(1))).flatten(1))


def test_model_factory_path_halves_a_cnn_and_an_mlp_factory_matches_the_mlp_path():
    X, y = _data()
    cnn = _search(model_factory=_TinyCNN, refit=True).fit(X.astype(np.float32), y)
    assert np.bincount(cnn.cv_results_["rung"]).tolist() == [8, 2, 2]
    assert isinstance(cnn.best_model_, _TinyCNN)
    assert set(cnn.best_params_["layer_penalties"]) == {0, 1}
    fast = _search().fit(X, y)
    general = _search(model_factory=lambda: MLP(5, (6, 5), 1)).fit(X, y)
    for key in ("rung", "mean_test_score", "rung0_test_score", "weight_l2_layer1"):
        np.testing.assert_allclose(
            general.cv_results_[key], fast.cv_results_[key], atol=1e-5, err_msg=key
        )


def test_per_layer_search_without_halving_trains_every_configuration_to_the_end():
    X, y = _data()
    search = _search(halving=False, n_candidates=6).fit(X, y)
    assert search.rungs_ is None and "rung" not in search.cv_results_
    assert len(search.cv_results_["mean_test_score"]) == 6
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_halving_also_works_on_the_single_strength_grid():
    X, y = _data()
    search = _search(per_layer=False, halving=True, strengths=[1e-4, 1e-3, 1e-2, 0.1, 1.0]).fit(
        X, y
    )
    assert search.rungs_ == [1, 3, EPOCHS]  # 10 configurations: 10 -> 4 -> 2
    assert np.bincount(search.cv_results_["rung"]).tolist() == [6, 2, 2]
    assert set(search.best_params_) == {"penalty", "strength", "placement"}


def test_several_kinds_are_drawn_per_layer():
    X, y = _data()
    search = _search(kinds=("l2", "l1", "elastic_net"), l1_ratios=(0.3,), n_candidates=30)
    results = search.fit(X, y).cv_results_
    drawn = {k for i in range(3) for k in results[f"param_kind_layer{i}"][18:]}
    assert drawn == {"l2", "l1", "elastic_net"}
    assert "mixed" in set(results["param_kind"])
    mixed = next(i for i, k in enumerate(results["param_kind"]) if k == "mixed")
    for i, penalty in results["params"][mixed]["layer_penalties"].items():
        kind, strength = (
            results[f"param_kind_layer{i}"][mixed],
            results[f"param_strength_layer{i}"][mixed],
        )
        expected = {
            "l2": L2(strength),
            "l1": L1(strength),
            "elastic_net": ElasticNet(0.3 * strength, 0.7 * strength),
        }[kind]
        assert penalty == (expected if strength > 0 else None)


# --------------------------------------------------------------------------- the pieces


def test_sampling_is_low_discrepancy_reproducible_and_in_range():
    a = sample_layers(256, 4, ["l2"], 1e-6, 1.0, 0.25, "sobol", seed=3)
    b = sample_layers(256, 4, ["l2"], 1e-6, 1.0, 0.25, "sobol", seed=3)
    assert a == b and len(a) == 256 and all(len(c) == 4 for c in a)
    strengths = np.array([[s for _, s in c] for c in a])
    zero = strengths == 0
    assert abs(zero.mean() - 0.25) < 0.01  # Sobol: close to p, not just on average
    logs = np.log10(strengths[~zero])
    assert logs.min() >= -6.01 and logs.max() <= 0.01
    # Stratified: each of the 6 decades holds about a sixth of the nonzero strengths.
    counts = np.histogram(logs, bins=6, range=(-6, 0))[0]
    assert counts.min() > 0.8 * counts.mean()
    lhs = sample_layers(40, 3, ["l2", "l1"], 1e-4, 1e-1, 0.0, "lhs", seed=0)
    assert {k for c in lhs for k, _ in c} == {"l2", "l1"}
    assert all(s > 0 for c in lhs for _, s in c)


@pytest.mark.parametrize(
    "n, epochs, factor, low, expected",
    [
        (243, 100, 3, None, [1, 4, 11, 33, 100]),
        (243, 100, 3, 10, [11, 33, 100]),
        (12, 9, 3, None, [1, 3, 9]),
        (1, 50, 3, None, [50]),
        (100, 64, 2, 8, [8, 16, 32, 64]),
        (5, 3, 3, None, [1, 3]),
    ],
)
def test_rung_epochs(n, epochs, factor, low, expected):
    assert rung_epochs(n, epochs, factor, low) == expected


def test_rank_configs_breaks_score_ties_by_validation_loss_and_puts_diverged_last():
    rows = [
        {"config": 0, "test_score": 0.9, "test_loss_score": -0.5},
        {"config": 1, "test_score": 0.9, "test_loss_score": -0.3},
        {"config": 2, "test_score": float("nan"), "test_loss_score": float("nan")},
        {"config": 3, "test_score": 0.8, "test_loss_score": -0.1},
        {"config": 3, "test_score": 0.9, "test_loss_score": -0.2},
    ]
    assert rank_configs(rows, [0, 1, 2, 3]) == [1, 0, 3, 2]  # 3: mean 0.85


def test_config_summary_describes_a_per_layer_configuration():
    layers = (("l2", 0.1), ("l2", 0.0), ("l1", 0.1))
    kind, ratio, placement, strength, same = config_summary(layers, 0.5)
    assert (kind, placement, same) == ("mixed", (0, 2), layers)
    assert math.isnan(ratio) and math.isnan(strength)
    assert config_summary((("l2", 0.0),) * 2, 0.5)[:3:2] == ("none", "none")
    assert config_summary((("elastic_net", 0.2),) * 2, 0.3)[:4] == ("elastic_net", 0.3, "all", 0.2)


def test_layer_penalties_text_round_trips():
    layers = [("l2", 0.0003), ("l2", 0.0), ("elastic_net", 10.0**-5)]
    text = format_layer_penalties(layers)
    assert text == "0=l2:0.0003,1=none,2=elastic_net:1e-05"
    assert parse_layer_penalties(text) == {0: ("l2", 0.0003), 1: None, 2: ("elastic_net", 1e-5)}


BAD = [
    (
        dict(n_candidates=3),
        "The 'n_candidates' parameter must be at least the 4 single-λ grid configurations a "
        "per-layer search always includes. Got 3 instead.",
    ),
    (
        dict(zero_probability=1.0),
        "The 'zero_probability' parameter must be a float in the range [0, 1). Got 1.0 instead.",
    ),
    (
        dict(sampler="random"),
        "The 'sampler' parameter must be one of 'sobol', 'lhs'. Got 'random' instead.",
    ),
    (
        dict(refine=True),
        "The 'refine' parameter must be False with per_layer=True (it needs one strength per "
        "configuration trained to the full budget). Got True instead.",
    ),
    (
        dict(per_layer=False, halving=True, one_standard_error=True),
        "The 'one_standard_error' parameter must be False with halving=True (it needs one "
        "strength per configuration trained to the full budget). Got True instead.",
    ),
    (
        dict(halving_factor=1),
        "The 'halving_factor' parameter must be an integer >= 2. Got 1 instead.",
    ),
    (dict(min_epochs=0), "The 'min_epochs' parameter must be an integer >= 1. Got 0 instead."),
    (
        dict(strengths=[0.0]),
        "A per-layer search draws strengths between the smallest and the largest positive "
        "'strengths'; got [0.0].",
    ),
]


@pytest.mark.parametrize("params, message", BAD)
def test_bad_parameters_raise_one_line(params, message):
    X, y = _data()
    with pytest.raises(ShrinkageError) as info:
        _search(**params).fit(X, y)
    assert str(info.value) == message


# --------------------------------------------------------------------------- CLI and report


@pytest.fixture
def table(tmp_path):
    X, y = _data(90, seed=2)
    import pandas as pd

    frame = pd.DataFrame(X, columns=list("abcde")).assign(y=np.where(y == 1, "yes", "no"))
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


TUNE = ["--hidden", "6,5", "--epochs", "9", "--batch-size", "8", "--folds", "3"]
TUNE += ["--strengths", "0.001,0.1", "--placements", "all,output", "--threads", "1"]


def _cli(args, capsys):
    from shrinkage.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit:
        code = exit.code
    return (code, *capsys.readouterr())


def test_tune_per_layer_end_to_end_writes_results_model_and_report(table, tmp_path, capsys):
    import pandas as pd

    from shrinkage.estimators import load

    out = tmp_path / "tuned"
    (out / "model").mkdir(parents=True)  # an output path that already holds a model
    code, stdout, err = _cli(
        ["tune", table, "--target", "y", *TUNE, "--per-layer", "--candidates", 12, "-o", out],
        capsys,
    )
    assert code == 0, err
    assert "successive halving (eta 3) at epochs 3, 9" in err  # laid out for the 8 drawn
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 12 and set(results["status"]) == {"ok"}
    assert results["rung"].value_counts().sort_index().tolist() == [5, 7]  # 4 grid kept
    best = results.loc[results["rank_test_score"] == 1, "param_layer_penalties"]
    text = re.search(r"--layer-penalties (\S+);", stdout.replace("\n", "")).group(1)
    assert text in set(best)  # the chosen one (ties: the larger total strength)
    model = load(out / "model")
    assert model.penalty == "none" and set(model.layer_penalties) == {0, 1, 2}
    html = (out / "report.html").read_text()
    assert "Per-layer strengths and successive halving" in html
    assert 'aria-label="per-layer strengths"' in html
    assert 'aria-label="successive halving rungs"' in html
    assert "<h3>Rungs</h3>" in html and "per-layer penalties" in html
    assert 'aria-label="validation curve"' not in html  # its x axis is one strength
    assert sorted(p.name for p in (out / "chunks").iterdir()) == [
        "rung0-chunk-00000.json",
        "rung1-chunk-00000.json",
    ]
    # The printed penalties fit the same model by hand.
    code, _, err = _cli(
        ["fit", table, "--target", "y", "--hidden", "6,5", "--epochs", "9", "--batch-size", "8"]
        + ["--layer-penalties", text, "-q", "-o", tmp_path / "by_hand"],
        capsys,
    )
    assert code == 0, err
    by_hand = load(tmp_path / "by_hand")
    assert by_hand.penalty == "none"
    assert _estimator(layer_penalties=by_hand.layer_penalties)._resolve_params().overrides == (
        model._resolve_params().overrides
    )
    # The report rebuilt from the directory shows the same sections.
    code, _, err = _cli(["report", out], capsys)
    assert code == 0, err
    assert "Per-layer strengths and successive halving" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--per-layer", "--candidates", 2], "The '--candidates' option must be at least the 4"),
        (["--per-layer", "--zero-probability", 1.5], "The '--zero-probability' option must be"),
        (["--halving-factor", 1, "--per-layer"], "The '--halving-factor' option must be"),
        (["--per-layer", "--refine"], "The '--refine' option must be False with per_layer=True"),
    ],
)
def test_tune_per_layer_bad_options_exit_2_and_write_nothing(
    table, tmp_path, capsys, args, message
):
    out = tmp_path / "tuned"
    code, _, err = _cli(["tune", table, "--target", "y", *TUNE, *args, "-o", out], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_fit_refuses_bad_layer_penalties_in_one_line(table, tmp_path, capsys):
    code, _, err = _cli(
        ["fit", table, "--target", "y", "--layer-penalties", "0=l2", "-o", tmp_path / "m"], capsys
    )
    assert code == 2
    assert err.strip() == (
        "Error: The '--layer-penalties' entries must be INDEX=none, INDEX=NAME:STRENGTH or "
        "INDEX=STRENGTH (e.g. 0=l2:3e-4,1=none). Got '0=l2' in '0=l2'."
    )
    assert not (tmp_path / "m").exists()


def test_rung_table_and_layer_strength_table_read_the_results():
    from shrinkage.analysis import (
        layer_strength_table,
        plot_layer_strengths,
        plot_rungs,
        rung_table,
    )

    X, y = _data()
    search = _search().fit(X, y)
    rungs = rung_table(search)
    assert rungs[["epochs", "trained", "kept"]].values.tolist() == [
        [1, 12, 4],
        [3, 4, 2],
        [9, 2, 2],
    ]
    top = layer_strength_table(search, top=5)
    assert len(top) == 2  # only the configurations trained to the end are ranked
    assert top["row"].iloc[0] == search.best_index_
    assert list(top.columns) == ["row", "mean_test_score", "layer0", "layer1", "layer2"]
    ax = plot_layer_strengths(search)
    assert ax.get_yscale() == "log" and ax.get_yticklabels()[0].get_text() == "none"
    assert len(ax.lines) >= 2
    ax = plot_rungs(search)
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "1 epochs\n12 → 4"
    with pytest.raises(ShrinkageError, match="no param_strength_layer"):
        layer_strength_table(_search(per_layer=False, halving=False).fit(X, y))


def test_keep_grid_trains_the_grid_to_the_end_so_the_search_never_does_worse_than_it():
    X, y = _data()
    kept = _search(keep_grid=True, n_candidates=17).fit(X, y)
    results = kept.cv_results_
    grid = np.flatnonzero(results["stage"] == "grid")
    assert kept.rungs_ == [1, 3, EPOCHS]  # laid out for the 13 drawn: 13 -> 5 -> 2
    assert (results["rung"][grid] == 2).all()
    drawn = np.flatnonzero(results["stage"] == "sampled")
    assert np.bincount(results["rung"][drawn]).tolist() == [8, 3, 2]
    # The grid configurations' scores are those of the plain grid search (same folds, seeds).
    plain = SearchCV(
        _estimator(),
        strengths=[1e-3, 0.1],
        placements=("all", "output"),
        cv=3,
        random_state=0,
        refit=False,
    ).fit(X, y)
    np.testing.assert_allclose(
        results["mean_test_score"][grid], plain.cv_results_["mean_test_score"], atol=1e-12
    )
    assert kept.best_score_ >= plain.best_score_


def test_results_written_as_the_search_goes_mark_the_configurations_still_training():
    X, y = _data()
    tables = []
    search = _search().fit(X, y, on_chunk=tables.append)
    assert len(tables) == 3  # one chunk per rung
    after_first = tables[0]
    assert list(after_first["status"]).count("pending") == 12  # all of rung 0, still in
    after_second = tables[1]
    pending = set(np.flatnonzero(after_second["status"] == "pending"))
    assert pending == set(np.flatnonzero(search.cv_results_["rung"] >= 1))
    assert set(tables[2]["status"]) == {"ok"}
