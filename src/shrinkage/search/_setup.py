"""What a search decides before it trains: :func:`build_setup` and :class:`SearchSetup`.

The parameters and the data are checked, the folds and seeds drawn from ``random_state``,
each fold preprocessed, the candidates listed (the grid's configurations crossed with the
folds, or the per-layer draws), the rungs of successive halving laid out and the chunks
sized to the memory budget. :class:`~shrinkage.search.SearchCV` then only runs stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shrinkage._names import (
    CLASSIFICATION,
    REGRESSION,
)
from shrinkage._validation import (
    SEED_HIGH,
    check_bool,
    check_choice,
    check_int,
    check_random_state,
    check_threads,
)
from shrinkage.errors import ShrinkageError, check_device
from shrinkage.models import placement_layers
from shrinkage.search._candidates import CandidateSpec, SearchData, stack_path
from shrinkage.search._checkpoint import fingerprint
from shrinkage.search._data import check_data, encode_target_values, prepare_data
from shrinkage.search._grid import check_scoring, make_folds, make_grid
from shrinkage.search._halving import (
    SAMPLERS,
    check_zero_probability,
    config_summary,
    grid_layers,
    rung_epochs,
    sample_layers,
)
from shrinkage.search.engine import (
    TrainSettings,
    chunk_layout,
    estimate_bytes,
    parse_memory,
)
from shrinkage.search.engine._fused import _probe_inputs
from shrinkage.search.engine._memory import saved_bytes


@dataclass
class SearchSetup:
    """What :meth:`SearchCV.prepare` decides before any training.

    Attributes:
        data: the preprocessed data and settings every chunk shares.
        specs: the candidates of the grid, configuration-major (``index = config *
            n_folds + fold``).
        configs: ``(kind, l1_ratio, placement, strength)`` per configuration (``l1_ratio``
            NaN unless elastic net).
        grid_strengths: the strength grid.
        chunking: ``n_candidates``, ``n_chunks``, ``candidates_per_chunk``,
            ``bytes_per_chunk``, ``max_memory``, ``path``, ``path_reason``.
        seeds: the seed of each fold.
        refit_seed: the refit's seed.
        n_layers: penalizable weights per network.
        estimator: the estimator whose parameters the candidates use.
        X: the validated input rows (for the refit).
        y: the target values (for the refit).
        classes: class labels, or None (regression).
        fingerprint: a digest of data, folds, seeds and grid (checks checkpoint files).
        stages: ``"grid"`` or ``"sampled"`` (a drawn per-layer configuration) per
            configuration.
        rungs: the successive-halving rungs' epochs, or None.
        halving_factor: ``eta`` of the halving.
        protected: configurations halving never drops (``keep_grid``).
    """

    data: SearchData
    specs: list[CandidateSpec]
    configs: list[tuple]
    grid_strengths: np.ndarray
    chunking: dict[str, Any]
    seeds: list[int]
    refit_seed: int
    n_layers: int
    estimator: Any
    X: Any
    y: np.ndarray
    classes: np.ndarray | None
    fingerprint: str
    stages: list[str] = field(default_factory=list)
    rungs: list[int] | None = None
    halving_factor: int = 3
    protected: frozenset[int] = frozenset()


def build_setup(search: Any, X: Any, y: Any) -> SearchSetup:
    """What a :class:`~shrinkage.search.SearchCV` decides before any training.

    Validates every parameter of ``search`` and the data, makes the folds and the seeds
    (from ``random_state``), preprocesses each fold, lists the candidates (the grid's, or
    the per-layer draws), lays out the rungs and sizes the chunks to ``max_memory``.

    Args:
        search: the SearchCV whose parameters decide.
        X: the rows.
        y: the target.

    Returns:
        The :class:`SearchSetup`.

    Raises:
        ShrinkageError: a bad parameter or bad data, one line naming it.
    """
    estimator, task = _estimator(search.estimator, y)
    params = estimator.get_params()
    _check_estimator_params(params)
    estimator._resolve_params()  # the estimator's own one-line messages
    grid = make_grid(search.strengths, search.kinds, search.l1_ratios, search.placements)
    scoring = check_scoring(search.scoring, task)
    memory = parse_memory(search.max_memory)
    check_bool(search.one_standard_error, "one_standard_error")
    check_bool(search.refine, "refine")
    check_bool(search.refit, "refit")
    check_int(search.refine_points, "refine_points", 2)
    if search.refine_epochs is not None:
        check_int(search.refine_epochs, "refine_epochs", 1)
    check_int(search.verbose, "verbose", 0)
    if search.n_threads is not None:
        check_threads(search.n_threads)
    device = check_device(search.device)
    per_layer = check_bool(search.per_layer, "per_layer")
    halving = per_layer if search.halving is None else check_bool(search.halving, "halving")
    factor = check_int(search.halving_factor, "halving_factor", 2)
    min_epochs = (
        None if search.min_epochs is None else check_int(search.min_epochs, "min_epochs", 1)
    )
    check_zero_probability(search.zero_probability)
    check_choice(search.sampler, "sampler", SAMPLERS)
    if search.n_candidates is not None:
        check_int(search.n_candidates, "n_candidates", 1)
    for name in ("refine", "one_standard_error"):
        if getattr(search, name) and (per_layer or halving):
            why = "per_layer" if per_layer else "halving"
            raise ShrinkageError(
                f"The '{name}' parameter must be False with {why}=True (it needs one "
                "strength per configuration trained to the full budget). Got True instead."
            )

    X_checked, y_values = check_data(X, y, search.model_factory is not None)
    codes, classes = encode_target_values(y_values, task)
    n_classes = None if classes is None else len(classes)
    rng = check_random_state(search.random_state)
    split_seed = int(rng.randint(SEED_HIGH))
    folds = make_folds(search.cv, search.validation_fraction, len(codes), codes, task, split_seed)
    seeds = [int(s) for s in rng.randint(0, SEED_HIGH, size=len(folds))]
    refit_seed = int(rng.randint(SEED_HIGH))

    settings = TrainSettings(
        task=task,
        n_classes=n_classes,
        optimizer=params["optimizer"],
        learning_rate=params["learning_rate"],
        momentum=params["momentum"],
        epochs=int(params["epochs"]),
        batch_size=int(params["batch_size"]),
        mode=params["mode"],
        learning_rate_schedule=params.get("learning_rate_schedule", "constant"),
    )
    data = prepare_data(
        X_checked,
        codes,
        folds,
        settings,
        tuple(params["hidden_layer_sizes"]),
        params["activation"],
        scoring,
        search.model_factory,
        bool(params.get("impute", False)),
        str(device),
        standardize=bool(params.get("standardize", True)),
        init=params.get("init", "torch"),
    )
    n_layers = n_layers_of(data)
    for placement in grid.placements:
        placement_layers(n_layers, placement)  # refuses bad indices before training

    configs: list[tuple] = [
        (kind, ratio, placement, float(strength))
        for kind in grid.kinds
        for ratio in (grid.l1_ratios if kind == "elastic_net" else (math.nan,))
        for placement in grid.placements
        for strength in grid.strengths
    ]
    stages = ["grid"] * len(configs)
    if per_layer:
        configs, stages = _per_layer_configs(search, configs, grid, n_layers, rng)
    specs = [
        CandidateSpec(
            index=c * len(folds) + f,
            config=c,
            fold=f,
            seed=seeds[f],
            kind=config[0],
            strength=config[3],
            l1_ratio=0.5 if math.isnan(config[1]) else config[1],
            placement=config[2],
            epochs=settings.epochs,
            stage=stages[c],
            layers=config[4] if len(config) > 4 else None,
        )
        for c, config in enumerate(configs)
        for f in range(len(folds))
    ]
    rungs = None
    protected = frozenset()
    if per_layer and check_bool(search.keep_grid, "keep_grid"):
        protected = frozenset(c for c, stage in enumerate(stages) if stage == "grid")
    if halving:
        ranked = len(configs) - len(protected)
        rungs = rung_epochs(ranked, settings.epochs, factor, min_epochs)
    measured = footprint(data)
    data.row_bytes = measured[1]
    per_candidate, shared = candidate_bytes(data, measured)
    n_chunks, per_chunk = chunk_layout(len(specs), per_candidate, shared, memory)
    if data.factory is None:
        path = ("mlp", "the library's MLP: batched matrix products, hand-written backward")
    else:
        path = (stack_path(data).name, stack_path(data).reason)
        most = stack_path(data).max_candidates
        if most is not None and per_chunk > most:
            n_chunks = math.ceil(len(specs) / most)
            per_chunk = math.ceil(len(specs) / n_chunks)
    chunking: dict[str, Any] = {
        "n_candidates": len(specs),
        "n_chunks": n_chunks,
        "candidates_per_chunk": per_chunk,
        "bytes_per_chunk": int(shared + per_chunk * per_candidate),
        "max_memory": memory,
        "path": path[0],
        "path_reason": path[1],
    }
    digest_of = configs
    if rungs is not None:
        digest_of = [*configs, ("rungs", tuple(rungs), factor, tuple(sorted(protected)))]
    return SearchSetup(
        data=data,
        specs=specs,
        configs=configs,
        grid_strengths=grid.strengths,
        chunking=chunking,
        seeds=seeds,
        refit_seed=refit_seed,
        n_layers=n_layers,
        estimator=estimator,
        X=X_checked,
        y=y_values,
        classes=classes,
        fingerprint=fingerprint(data, digest_of, seeds, X=X_checked, y=y_values),
        stages=stages,
        rungs=rungs,
        halving_factor=factor,
        protected=protected,
    )


def _per_layer_configs(
    search: Any, grid_configs: list[tuple], grid: Any, n_layers: int, rng: np.random.RandomState
) -> tuple[list[tuple], list[str]]:
    """The grid's configurations as per-layer ones, then the drawn ones."""
    configs = []
    for kind, ratio, placement, strength in grid_configs:
        layers = grid_layers(kind, strength, n_layers, placement_layers(n_layers, placement))
        configs.append((kind, ratio, placement, strength, layers))
    n = 243 if search.n_candidates is None else int(search.n_candidates)
    if n < len(configs):
        raise ShrinkageError(
            f"The 'n_candidates' parameter must be at least the {len(configs)} single-λ "
            f"grid configurations a per-layer search always includes. Got {n} instead."
        )
    positive = grid.strengths[grid.strengths > 0]
    if not len(positive):
        raise ShrinkageError(
            "A per-layer search draws strengths between the smallest and the largest "
            f"positive 'strengths'; got {grid.strengths.tolist()!r}."
        )
    ratio = grid.l1_ratios[0] if grid.l1_ratios else 0.5
    drawn = sample_layers(
        n - len(configs),
        n_layers,
        grid.kinds,
        float(positive.min()),
        float(positive.max()),
        float(search.zero_probability),
        search.sampler,
        int(rng.randint(SEED_HIGH)),
    )
    configs += [config_summary(layers, ratio) for layers in drawn]
    return configs, ["grid"] * (len(configs) - len(drawn)) + ["sampled"] * len(drawn)


def _estimator(estimator: Any, y: Any) -> tuple[Any, str]:
    """The estimator the candidates copy, and the task (detected when it is None)."""
    from shrinkage.estimators import MLPClassifier, MLPRegressor

    if estimator is None:
        from shrinkage.data import detect_task

        values = np.asarray(y)
        if values.ndim != 1:
            values = values.reshape(len(values), -1)[:, 0] if values.ndim else values
        task = detect_task(pd.Series(values))
        estimator = MLPClassifier() if task == CLASSIFICATION else MLPRegressor()
        return estimator, task
    if isinstance(estimator, MLPClassifier):
        return estimator, CLASSIFICATION
    if isinstance(estimator, MLPRegressor):
        return estimator, REGRESSION
    raise ShrinkageError(
        "The 'estimator' parameter must be an MLPClassifier, an MLPRegressor or None. "
        f"Got {estimator!r} instead."
    )


def _check_estimator_params(params: dict[str, Any]) -> None:
    """Refuse estimator parameters a stacked search cannot honour."""
    if params.get("early_stopping"):
        raise ShrinkageError(
            "The estimator's 'early_stopping' parameter must be False in a search: the "
            "folds already hold out validation rows. Got True instead."
        )
    if params.get("layer_penalties"):
        raise ShrinkageError(
            "The estimator's 'layer_penalties' parameter must be None in a search (the "
            f"grid sets the penalty of every layer). Got {params['layer_penalties']!r}."
        )
    for name in ("clip_grad_norm", "max_grad_norm", "gradient_clipping"):
        if params.get(name) is not None:
            # A norm over the stacked gradient would mix every candidate's gradients.
            raise ShrinkageError(
                f"The estimator's '{name}' parameter must be None in a search: "
                "global-norm clipping couples the stacked candidates. "
                f"Got {params[name]!r} instead."
            )


def n_layers_of(data: SearchData) -> int:
    """The penalizable weights of each candidate network (the ``L`` of the strengths)."""
    if data.factory is None:
        return len(data.hidden) + 1
    return stack_path(data).build(data.factory, [0], "cpu").n_layers


def footprint(data: SearchData) -> tuple[int, int]:
    """``(parameters of one candidate, bytes its forward pass keeps per row)``.

    On the factory paths both come from one probe stack of the path: what autograd saves
    for a minibatch, divided by its rows. On the MLP path: the layer sizes, and ``4 *
    sum(widths[1:])`` (each layer's output). The row bytes size the prediction blocks
    (:func:`~shrinkage.search.engine.predict_rows`) and the chunks (:func:`candidate_bytes`).
    """
    if data.factory is None:
        widths = data.sizes
        n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        return n_params, data.X.element_size() * sum(widths[1:])
    train_rows = max(len(tr) for tr, _ in data.folds)
    batch = max(1, min(data.settings.batch_size, train_rows))
    probe = stack_path(data).build(data.factory, [0, 1], data.device)
    saved = saved_bytes(probe, _probe_inputs(data.X, 2, batch))
    return probe.n_params, max(1, saved // (2 * batch))


def candidate_bytes(data: SearchData, measured: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(bytes per candidate, bytes every chunk shares)`` of a search on ``data``;
    ``measured``: its :func:`footprint`, when the caller has it."""
    train_rows = max(len(tr) for tr, _ in data.folds)
    n_params, row_bytes = footprint(data) if measured is None else measured
    activations = None
    if data.factory is None:
        widths = data.sizes
    else:
        # What autograd keeps for a minibatch, measured on a probe stack of the path.
        activations = row_bytes * max(1, min(data.settings.batch_size, train_rows))
        widths = [math.prod(data.X.shape[1:]), data.settings.n_outputs]
    per = estimate_bytes(
        n_params,
        widths,
        1,
        data.settings.batch_size,
        train_rows,
        autograd=data.factory is not None,
        activation_bytes=activations,
    )
    # Scoring keeps every candidate's outputs on all rows, and its masks.
    per += data.n_rows * (8 * data.settings.n_outputs + 2 + 32)
    shared = data.X.element_size() * data.X.numel() + 8 * data.y.numel() * len(data.folds)
    return per, shared
