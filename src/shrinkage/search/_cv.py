"""SearchCV: orchestration of a cross-validated search (folds, grid, chunks, refine, refit).

Longer than the package's ~600-line habit: SearchCV's docstring, the reference of some
thirty parameters and attributes, is a third of it; what is decided before training is in
``_setup.py``, the grid in ``_grid.py``, one chunk's work in ``_candidates.py``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import nn

from shrinkage._validation import (
    check_bool,
    check_threads,
)
from shrinkage.errors import ShrinkageError
from shrinkage.search._candidates import (
    CandidateSpec,
    Progress,
    SearchData,
    run_chunk,
)
from shrinkage.search._checkpoint import run_chunks
from shrinkage.search._data import prepare_data
from shrinkage.search._halving import (
    run_halving,
)
from shrinkage.search._results import (
    aggregate,
    choose,
    halving_results,
    mark_failures,
    partial_results,
)
from shrinkage.search._setup import SearchSetup, build_setup, candidate_bytes, n_layers_of
from shrinkage.search.engine._stack import module_from_state


class SearchCV(BaseEstimator):
    """Cross-validated choice of penalty strength, kind and placement, on the batched engine.

    Every configuration ``(kind, l1_ratio, placement, strength)`` is trained on every fold;
    all these candidates train together as stacked networks (chunked to ``max_memory``), each
    exactly as the estimator would train alone on its fold's training rows with
    ``random_state`` = its fold's seed (see the module docstring for the seeds). Then the
    configuration with the best mean validation score is chosen (optionally by the
    one-standard-error rule, optionally refined on a finer grid) and refit on all rows.

    Args:
        estimator: an :class:`~shrinkage.estimators.MLPClassifier` or
            :class:`~shrinkage.estimators.MLPRegressor` whose architecture and training
            parameters every candidate uses (its ``penalty``/``strength``/``l1_ratio``/
            ``placement`` are replaced by the grid's); None: the default estimator of the
            task (detected from ``y``).
        strengths: the strength grid (Keras meaning); None: :func:`default_strengths`,
            ``1e-6 … 1`` with two values per decade (13 values).
        kinds: penalty kinds among ``"l2"``, ``"l1"``, ``"elastic_net"``.
        l1_ratios: elastic net's L1 shares (used by ``"elastic_net"`` only).
        placements: where the penalty goes: ``"all"``, ``"hidden"``, ``"output"`` or a tuple
            of layer indices, each a separate configuration.
        cv: folds: an int (``StratifiedKFold`` for classification, ``KFold`` for
            regression, shuffled with ``random_state``), a scikit-learn splitter, or an
            iterable of ``(train, test)`` index arrays.
        validation_fraction: instead of folds, one split holding out this share of the rows
            (stratified for classification).
        scoring: one of :data:`SCORINGS`; None: ``"accuracy"`` (classification) or ``"r2"``.
        one_standard_error: choose the largest strength whose mean score is within one
            standard error (``std_test_score / sqrt(n_splits)``) of the best.
        refine: after the grid, train a finer log grid around the best strength
            (``refine_points`` values spanning two thirds of a grid step each side,
            same kind/ratio/placement; when the best is the largest or smallest strength of
            the grid, two grid steps past that edge instead, the best included, so an
            optimum beyond the grid is found), each candidate warm-started from the best
            configuration's weights on its fold and trained ``refine_epochs`` more epochs
            (fresh optimizer state); the choice is then made among these. The grid
            candidates' final weights are kept in memory until the grid is done.
        refine_points: values of the refinement grid (odd numbers include the best itself).
        refine_epochs: epochs of the refinement; None: half the estimator's epochs.
        refit: fit the chosen configuration on all rows (``best_estimator_``).
        max_memory: memory budget of one chunk, bytes or a size string (``"2GB"``).
        random_state: an int (reproducible), a numpy RandomState or None.
        device: the torch device the stacks train on.
        n_threads: torch intra-op threads during ``fit`` (None: leave torch's setting).
        model_factory: ``() -> nn.Module`` to search over any architecture instead of the
            MLP (the estimator then only gives the training parameters; ``best_model_`` is
            the refit module, there is no ``best_estimator_``). Its candidates train as one
            fused network where every layer has a fused form (Linear, Conv1d/2d, LSTM, GRU,
            Embedding, norms, dropout, attention), else with ``torch.func``, else one after
            the other (``chunking_["path"]`` says which, and why). Its output must be
            ``(batch, n_classes)``, ``(batch, 1)`` for regression or a binary target, or
            ``(batch, 2)`` for a binary target. 2-D inputs are preprocessed per fold; others
            are used as given.
        checkpoint_dir: a directory where each finished chunk's rows are written
            (``grid-chunk-00000.json``, ``refine-chunk-00000.json``, atomically), or None.
        backend: ``"local"`` (the chunks one after the other, here) or ``"dask"`` (each
            chunk a task on a dask.distributed cluster: :mod:`shrinkage.search._distributed`;
            ``pip install shrinkage[distributed]``).
        client: the ``dask.distributed.Client`` of ``backend="dask"``.
        resume: read the chunks already finished in ``checkpoint_dir`` instead of training
            them again (see :mod:`shrinkage.search`); the results equal an uninterrupted run.
        verbose: 0 silent; 1 print the chunking and the best configuration, and show the
            progress: an overall bar with the time remaining over the phases ``grid``,
            ``refine`` and ``refit`` (rich bars in a terminal or Jupyter, a line every
            10 seconds otherwise; :class:`shrinkage._progress.ProgressBoard`).
        per_layer: search a strength *per layer* instead of one strength and a placement:
            ``n_candidates`` configurations, each giving every penalizable weight its own
            strength (0: leave that layer alone) and, with several ``kinds``, its own kind.
            They are the single-λ grid's configurations (``kinds x l1_ratios x placements
            x strengths``: always included) and ``n_candidates`` minus those drawn from a
            scrambled Sobol or Latin-hypercube sequence
            (:func:`~shrinkage.search._halving.sample_layers`): log-uniform over
            ``[min(strengths > 0), max(strengths)]``, exactly 0 with probability
            ``zero_probability``. Elastic-net layers use ``l1_ratios[0]``.
            ``best_params_`` then holds ``layer_penalties`` (see below).
        n_candidates: configurations of a per-layer search, at least the grid's; None: 243.
        zero_probability: the probability that a drawn layer strength is exactly 0, in
            ``[0, 1)``. The default 0.25 leaves about one layer in four unpenalized.
        sampler: ``"sobol"`` (scrambled) or ``"lhs"`` (Latin hypercube).
        halving: successive halving inside the stack: all candidates start together; at
            the rungs (``E / eta^k`` epochs, :func:`~shrinkage.search._halving.rung_epochs`)
            the configurations are ranked by fold-mean validation score (ties: validation
            loss) and only the best ``ceil(n / eta)`` train on, the others leave the stack
            (their rows leave the stacked tensors, so later epochs cost less). A rung waits
            for every chunk. The final choice is among the configurations of the last rung.
            None: on for ``per_layer``, off for the grid. Not with ``refine`` or
            ``one_standard_error``.
        halving_factor: ``eta``, an integer >= 2.
        min_epochs: the earliest rung; None: 1.
        keep_grid: in a per-layer search with halving, never drop the single-λ grid's
            configurations: they train to the full budget (halving ranks and drops only
            the drawn ones, and the rungs are laid out for those), so the search can never
            do worse than the grid on its own configurations. With the default grid (13
            strengths, placement "all") and ``n_candidates=243`` a 60-epoch search then
            spends about what the grid x 3 placements does.

    Attributes:
        cv_results_: a dict of numpy arrays, one entry per configuration (refinement rows
            after the grid rows); its columns are listed in :mod:`shrinkage.search._results`.
        best_index_: the chosen row of ``cv_results_``: the best mean validation score of
            the last stage (ties go to the larger strength, the simpler model).
        best_params_: ``cv_results_["params"][best_index_]``, keyed by the estimator's
            parameter names (``penalty``, ``strength``, ``placement``, and ``l1_ratio`` for
            elastic net): ``estimator.set_params(**best_params_)`` applies the choice. A
            per-layer search gives ``penalty="none"``, ``strength=0.0``,
            ``placement="all"`` and ``layer_penalties={0: L2(3e-4), 1: None, 2: L2(1e-2)}``
            (every layer's penalty; ``--layer-penalties 0=l2:0.0003,1=none,2=l2:0.01``
            on the command line: ``cv_results_["param_layer_penalties"]``).
        best_score_: its mean validation score.
        best_estimator_: the estimator refit on all rows with the chosen configuration
            (``best_params_``), or None (``refit=False`` or a ``model_factory``).
        best_model_: the refit network (``best_estimator_.model_`` or the factory's module).
        n_splits_: number of splits.
        seeds_: the seed of each fold; ``refit_seed_``: the refit's seed.
        chunking_: ``n_candidates``, ``n_chunks``, ``candidates_per_chunk``,
            ``bytes_per_chunk`` (estimated peak), ``max_memory``, and how the stacks train:
            ``path`` (``"mlp"``, ``"fused"``, ``"torch.func"`` or ``"loop"``) and
            ``path_reason`` (one line: what was fused, or why a faster path could not run).
        classes_: class labels (classification).
        refit_time_: seconds of the refit.
        rungs_: the successive-halving rungs' epochs (None without halving).

    Example:
        >>> from sklearn.datasets import make_moons
        >>> from shrinkage.estimators import MLPClassifier
        >>> X, y = make_moons(60, noise=0.3, random_state=0)
        >>> search = SearchCV(MLPClassifier((16,), epochs=20), strengths=[1e-4, 1e-2],
        ...                   placements=("all", "output"), cv=3, random_state=0).fit(X, y)
        >>> sorted(search.best_params_)
        ['penalty', 'placement', 'strength']
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        strengths: Sequence[float] | None = None,
        kinds: Sequence[str] = ("l2",),
        l1_ratios: Sequence[float] = (0.5,),
        placements: Sequence[str | Sequence[int]] = ("all",),
        cv: int | Any = 5,
        validation_fraction: float | None = None,
        scoring: str | None = None,
        one_standard_error: bool = False,
        refine: bool = False,
        refine_points: int = 5,
        refine_epochs: int | None = None,
        refit: bool = True,
        max_memory: int | str = "1GB",
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        n_threads: int | None = None,
        model_factory: Callable[[], nn.Module] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        backend: str = "local",
        client: Any = None,
        resume: bool = False,
        verbose: int = 0,
        per_layer: bool = False,
        n_candidates: int | None = None,
        zero_probability: float = 0.25,
        sampler: str = "sobol",
        halving: bool | None = None,
        halving_factor: int = 3,
        min_epochs: int | None = None,
        keep_grid: bool = True,
    ) -> None:
        self.estimator = estimator
        self.strengths = strengths
        self.kinds = kinds
        self.l1_ratios = l1_ratios
        self.placements = placements
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.one_standard_error = one_standard_error
        self.refine = refine
        self.refine_points = refine_points
        self.refine_epochs = refine_epochs
        self.refit = refit
        self.max_memory = max_memory
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.model_factory = model_factory
        self.checkpoint_dir = checkpoint_dir
        self.backend = backend
        self.client = client
        self.resume = resume
        self.verbose = verbose
        self.per_layer = per_layer
        self.n_candidates = n_candidates
        self.zero_probability = zero_probability
        self.sampler = sampler
        self.halving = halving
        self.halving_factor = halving_factor
        self.min_epochs = min_epochs
        self.keep_grid = keep_grid

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        progress: Callable[[Progress], None] | None = None,
        on_chunk: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> SearchCV:
        """Run the search on ``X``, ``y``; returns ``self``.

        Args:
            X: a 2-D array or DataFrame (or, with ``model_factory``, any ``(n, ...)`` array).
            y: the target, one value per row.
            progress: called after every epoch of every chunk with a :class:`Progress`
                (with the dask backend, once per chunk, when it finishes), once for each
                chunk a resumed search reads back (``reused=True``), and after every epoch
                of the refit (stage ``"refit"``). :meth:`phases` gives the steps of each
                stage beforehand.
            on_chunk: called after every finished chunk with the results so far, a dict
                like ``cv_results_`` whose unfinished configurations have status
                ``"pending"`` (e.g. to rewrite a results file as the search goes).

        Returns:
            ``self``.

        Raises:
            ShrinkageError: a bad parameter or bad data, one line naming it.
        """
        previous_threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(check_threads(self.n_threads))
        self._on_chunk = on_chunk
        try:
            return self._fit(X, y, progress)
        finally:
            torch.set_num_threads(previous_threads)

    def prepare(self, X: Any, y: Any) -> SearchSetup:
        """Validate everything, make the folds and seeds, preprocess, list the candidates.

        Nothing is trained: ``fit`` is ``prepare`` followed by :func:`run_chunk` on each
        chunk of ``setup.specs``; a distributed backend can ship those chunks instead.

        Args:
            X: as for :meth:`fit`.
            y: as for :meth:`fit`.

        Returns:
            The :class:`SearchSetup`.

        Raises:
            ShrinkageError: a bad parameter or bad data, one line naming it.
        """
        return build_setup(self, X, y)

    def phases(self, setup: SearchSetup) -> dict[str, int]:
        """The stages :meth:`fit` will run and their steps: epochs of one stack per chunk.

        ``grid``: chunks x epochs (with successive halving, ``rung j/K`` instead: the
        chunks of the configurations still in x the epochs from the previous rung);
        ``refine`` (with ``refine=True``): its chunks x ``refine_epochs``; ``refit`` (with
        ``refit=True``): epochs. A stack trains all its
        candidates in one pass, so an epoch of a chunk and an epoch of the refit cost about
        the same: these steps make an overall progress bar whose time remaining holds
        across stages.

        Args:
            setup: what :meth:`prepare` returned.

        Returns:
            ``{stage: steps}`` in the order the stages run.
        """
        settings = setup.data.settings
        per_chunk = setup.chunking["candidates_per_chunk"]
        out = {"grid": setup.chunking["n_chunks"] * settings.epochs}
        if setup.rungs is not None:
            # Successive halving: rung j trains what is still in from the previous rung's
            # epochs to its own; each rung keeps ceil(n / eta) of the ranked configurations.
            out = {}
            protected = len(setup.protected)
            ranked = len(setup.configs) - protected
            for j, epoch in enumerate(setup.rungs):
                candidates = (ranked + protected) * len(setup.data.folds)
                start = setup.rungs[j - 1] if j else 0
                out[f"rung {j + 1}/{len(setup.rungs)}"] = math.ceil(candidates / per_chunk) * (
                    epoch - start
                )
                ranked = max(1, math.ceil(ranked / setup.halving_factor))
        if self.refine and setup.rungs is None:
            n_refine = self.refine_points * len(setup.data.folds)
            epochs = self.refine_epochs or max(1, settings.epochs // 2)
            out["refine"] = math.ceil(n_refine / per_chunk) * epochs
        if self.refit:
            out["refit"] = settings.epochs
        return out

    def _fit(self, X: Any, y: Any, progress: Callable[[Progress], None] | None) -> SearchCV:
        setup = self.prepare(X, y)
        board = None
        if self.verbose:
            c = setup.chunking
            print(
                f"SearchCV: {len(setup.configs)} configurations x {len(setup.data.folds)} "
                f"folds = {c['n_candidates']} candidates in {c['n_chunks']} chunk(s) of "
                f"<= {c['candidates_per_chunk']} (~{c['bytes_per_chunk'] / 1e6:.1f} MB each)"
            )
            print(f"SearchCV: path {c['path']}: {c['path_reason']}")
            from shrinkage._progress import ProgressBoard

            board = ProgressBoard("SearchCV", stderr=False)
            for stage, steps in self.phases(setup).items():
                board.add(stage, steps)
            progress = _both(progress, board.search_callback())
        try:
            self._search(setup, progress)
        finally:
            if board is not None:
                board.close()
        if self.verbose:
            print(f"SearchCV: best {self.best_params_} with mean score {self.best_score_:.4f}")
        return self

    def _search(self, setup: SearchSetup, progress: Callable[[Progress], None] | None) -> None:
        data, configs, specs = setup.data, setup.configs, setup.specs
        n_folds, per_chunk = len(data.folds), setup.chunking["candidates_per_chunk"]
        checkpoint = None if self.checkpoint_dir is None else Path(self.checkpoint_dir)
        if setup.rungs is not None:
            results = self._halve(setup, per_chunk, progress, checkpoint)
            stage_rows = np.flatnonzero(results["rung"] == len(setup.rungs) - 1)
            best = choose(results, stage_rows, False)
        else:
            rows, states = self._run(
                setup, specs, per_chunk, "grid", progress, checkpoint, keep=self.refine
            )
            self._grid_rows = rows
            results = aggregate(configs, setup.stages, rows, n_folds, setup.n_layers)
            stage_rows = np.arange(len(configs))
            best = choose(results, stage_rows, self.one_standard_error)
        if self.refine and setup.rungs is None:
            refined = self._refine(setup, results, best, states, per_chunk, progress, checkpoint)
            if refined is not None:
                results, stage_rows = refined
                best = choose(results, stage_rows, self.one_standard_error)

        self.cv_results_ = mark_failures(results, data.settings.learning_rate)
        self.rungs_ = setup.rungs
        self.chunking_ = setup.chunking
        self.n_splits_ = n_folds
        self.folds_ = data.folds
        self.seeds_ = setup.seeds
        self.refit_seed_ = setup.refit_seed
        self.scoring_ = data.scoring
        self.best_index_ = int(best)
        self.best_params_ = dict(results["params"][best])
        self.best_score_ = float(results["mean_test_score"][best])
        if setup.classes is not None:
            self.classes_ = setup.classes
        self.best_estimator_ = None
        self.best_model_ = None
        self.refit_time_ = 0.0
        if self.refit:
            started = time.perf_counter()
            self._refit(setup, progress)
            self.refit_time_ = time.perf_counter() - started

    # ----------------------------------------------------------------- pieces

    def _n_layers(self, data: SearchData) -> int:
        return n_layers_of(data)

    def _bytes(self, data: SearchData) -> tuple[int, int]:
        return candidate_bytes(data)

    def _run(
        self,
        setup: SearchSetup,
        specs: list[CandidateSpec],
        per_chunk: int,
        stage: str,
        progress: Callable[[Progress], None] | None,
        checkpoint: Path | None,
        keep: bool,
    ) -> tuple[list[dict[str, Any]], dict[int, dict[str, np.ndarray]]]:
        chunks = [specs[i : i + per_chunk] for i in range(0, len(specs), per_chunk)]

        def report(c: int, epoch: int | None) -> None:
            if progress is not None:
                epochs = chunks[c][0].epochs
                progress(Progress(stage, c + 1, len(chunks), epoch or epochs, epochs))

        def reused(indices: list[int]) -> None:
            if progress is not None:
                for c in indices:
                    epochs = chunks[c][0].epochs
                    progress(Progress(stage, c + 1, len(chunks), epochs, epochs, reused=True))

        on_chunk = None
        if getattr(self, "_on_chunk", None) is not None:
            earlier = setup.specs if stage == "refine" else []
            before = self._grid_rows if stage == "refine" else []

            def on_chunk(done: list[dict[str, Any]]) -> None:
                self._on_chunk(partial_results(setup, [*earlier, *specs], [*before, *done]))

        check_bool(self.resume, "resume")
        if progress is not None and chunks:  # the stage starts now, before its first epoch
            progress(Progress(stage, 1, len(chunks), 0, chunks[0][0].epochs))
        return run_chunks(
            setup.data,
            chunks,
            stage=stage,
            keep_states=keep,
            checkpoint=checkpoint,
            fingerprint=setup.fingerprint,
            resume=bool(self.resume),
            backend=self.backend,
            client=self.client,
            n_threads=self.n_threads,
            progress=report,
            on_chunk=on_chunk,
            on_reused=reused,
        )

    def _halve(
        self,
        setup: SearchSetup,
        per_chunk: int,
        progress: Callable[[Progress], None] | None,
        checkpoint: Path | None,
    ) -> dict[str, np.ndarray]:
        """Successive halving over every configuration (:func:`run_halving`)."""
        rungs = setup.rungs
        assert rungs is not None
        n_folds, lr = len(setup.data.folds), setup.data.settings.learning_rate

        def table(rung_rows: list[list[dict[str, Any]]], running: bool) -> dict[str, np.ndarray]:
            return halving_results(
                setup.configs,
                setup.stages,
                rung_rows,
                rungs,
                n_folds,
                setup.n_layers,
                lr,
                running=running,
            )

        def report(rung: int, chunk: int, n_chunks: int, epoch: int | None) -> None:
            if progress is not None:
                stage = f"rung {rung + 1}/{len(rungs)}"
                start = rungs[rung - 1] if rung else 0
                progress(
                    Progress(
                        stage, chunk + 1, n_chunks, epoch or rungs[rung], rungs[rung], start=start
                    )
                )

        on_rung = None
        if getattr(self, "_on_chunk", None) is not None:

            def on_rung(rung_rows: list[list[dict[str, Any]]]) -> None:
                self._on_chunk(table(rung_rows, True))

        check_bool(self.resume, "resume")
        rung_rows = run_halving(
            setup.data,
            setup.specs,
            rungs,
            factor=setup.halving_factor,
            per_chunk=per_chunk,
            checkpoint=checkpoint,
            fingerprint=setup.fingerprint,
            resume=bool(self.resume),
            backend=self.backend,
            client=self.client,
            n_threads=self.n_threads,
            progress=report,
            on_rung=on_rung,
            protected=setup.protected,
        )
        return table(rung_rows, False)

    def _refine(
        self,
        setup: SearchSetup,
        results: dict[str, np.ndarray],
        best: int,
        states: dict[int, dict[str, np.ndarray]],
        per_chunk: int,
        progress: Callable[[Progress], None] | None,
        checkpoint: Path | None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        kind, ratio, placement, strength = setup.configs[best]
        if strength <= 0:
            return None  # no log grid around zero: the grid's choice stands
        grid = setup.grid_strengths
        positive = np.log10(grid[grid > 0])
        step = float(np.min(np.diff(positive))) if len(positive) > 1 else 1.0
        offsets = np.linspace(-2 * step / 3, 2 * step / 3, self.refine_points)
        if len(positive) > 1 and strength >= grid.max():
            # The best is the strongest tried: the optimum may lie beyond; look past the edge.
            offsets = np.linspace(0.0, 2 * step, self.refine_points)
        elif len(positive) > 1 and strength <= grid[grid > 0].min():
            offsets = np.linspace(-2 * step, 0.0, self.refine_points)
        values = strength * 10.0**offsets
        n_folds = len(setup.data.folds)
        start = len(setup.configs)
        epochs = self.refine_epochs
        if epochs is None:
            epochs = max(1, setup.data.settings.epochs // 2)
        new_configs = [(kind, ratio, placement, float(v)) for v in values]
        warm = {s.fold: states[s.index] for s in setup.specs if s.config == best}
        new_specs = [
            CandidateSpec(
                index=len(setup.specs) + i * n_folds + f,
                config=start + i,
                fold=f,
                seed=setup.seeds[f],
                kind=kind,
                strength=float(v),
                l1_ratio=0.5 if math.isnan(ratio) else ratio,
                placement=placement,
                epochs=epochs,
                stage="refine",
                init=warm[f],
            )
            for i, v in enumerate(values)
            for f in range(n_folds)
        ]
        rows, _ = self._run(setup, new_specs, per_chunk, "refine", progress, checkpoint, False)
        refined = aggregate(
            new_configs, ["refine"] * len(new_configs), rows, n_folds, setup.n_layers
        )
        merged = {key: np.concatenate([results[key], refined[key]]) for key in results}
        setup.configs = setup.configs + new_configs
        return merged, np.arange(start, start + len(new_configs))

    def _refit(self, setup: SearchSetup, progress: Callable[[Progress], None] | None) -> None:
        params, data, seed = self.best_params_, setup.data, setup.refit_seed
        epochs = data.settings.epochs

        def report(epoch: int, *row: Any) -> None:
            if progress is not None:
                progress(Progress("refit", 1, 1, epoch, epochs))

        report(0)
        if data.factory is None:
            from sklearn.base import clone

            chosen = {**params, "random_state": seed, "device": str(data.device)}
            model = clone(setup.estimator).set_params(**chosen)
            self.best_estimator_ = model.fit(setup.X, setup.y, progress=report)
            self.best_model_ = model.model_
            return
        all_rows = np.arange(data.n_rows)
        refit_data = prepare_data(
            setup.X,
            data.y.cpu().numpy(),
            [(all_rows, all_rows)],
            data.settings,
            data.hidden,
            data.activation,
            data.scoring,
            data.factory,
            False,
            data.device,
        )
        refit_data.path = data.path
        config = setup.configs[self.best_index_]
        spec = CandidateSpec(
            index=0,
            config=0,
            fold=0,
            seed=seed,
            kind=config[0],
            strength=config[3],
            l1_ratio=0.5 if math.isnan(config[1]) else config[1],
            placement=config[2],
            epochs=data.settings.epochs,
            layers=config[4] if len(config) > 4 else None,
        )
        result = run_chunk(refit_data, [spec], keep_states=True, progress=report)
        assert result.states is not None
        state = {n: torch.as_tensor(v) for n, v in result.states[0].items()}
        self.best_model_ = module_from_state(data.factory, state, data.device)

    # ----------------------------------------------------------------- results

    def results_frame(self) -> pd.DataFrame:
        """``cv_results_`` as a DataFrame, one row per configuration (without ``params``)."""
        if not hasattr(self, "cv_results_"):
            raise ShrinkageError("This SearchCV is not fitted yet; call fit(X, y) first.")
        return pd.DataFrame({k: v for k, v in self.cv_results_.items() if k != "params"})

    def predict(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict(X)``."""
        return self._fitted_estimator().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict_proba(X)`` (classification)."""
        return self._fitted_estimator().predict_proba(X)

    def score(self, X: Any, y: Any) -> float:
        """``best_estimator_.score(X, y)``: accuracy or R²."""
        return float(self._fitted_estimator().score(X, y))

    def _fitted_estimator(self) -> Any:
        estimator = getattr(self, "best_estimator_", None)
        if estimator is None:
            raise ShrinkageError(
                "This SearchCV has no best_estimator_: fit it with refit=True (and without a "
                "model_factory) first."
            )
        return estimator


def _both(
    first: Callable[[Progress], None] | None, second: Callable[[Progress], None]
) -> Callable[[Progress], None]:
    """One progress hook that calls the caller's (if any), then the board's."""

    def report(event: Progress) -> None:
        if first is not None:
            first(event)
        second(event)

    return report
