"""Cross-validated search over penalty strength, kind and placement, every candidate at once.

:class:`SearchCV` builds the grid ``kind x l1_ratio x placement x strength`` (one
*configuration* per combination, one row of ``cv_results_``), crosses it with the folds
(one *candidate* per configuration and fold), and trains the candidates as stacked networks
on the batched engine (:mod:`shrinkage.search.engine`), as many at a time as ``max_memory``
allows. Each chunk of candidates goes through :func:`run_chunk`, a function of the data
and the candidates' specifications only, so a distributed backend can ship chunks
elsewhere; each finished chunk's rows can be written to disk (``checkpoint_dir``) so an
interrupted search keeps its work.

The package splits as scikit-learn's ``model_selection`` does: ``_cv.py`` holds
:class:`SearchCV` (orchestration: checks, folds, the grid, chunks, refine, refit),
``_candidates.py`` one chunk's work (:func:`run_chunk`: train a stack, score it) and the
per-fold preprocessing, ``_results.py`` the ``cv_results_`` table and the choice of the
best configuration, ``_checkpoint.py`` the chunk files and resume, ``_distributed.py``
the dask backend, ``_halving.py`` the per-layer configurations (sampled) and successive
halving inside the stack, and ``engine/`` the stacked networks themselves.

Per-layer search (``per_layer=True``): every configuration gives each penalizable weight
its own strength (0: not penalized); the single-λ grid's configurations are always among
them and the rest are drawn from a scrambled Sobol sequence. With ``halving=True`` all
candidates start as one stack and at each rung (``E / eta^k`` epochs) only the best
``ceil(n / eta)`` configurations, by fold-mean validation score, train on: the others
leave the stacked tensors (:meth:`~shrinkage.search.engine.StackTrainer.keep`), so later
epochs cost less. A configuration's rows at a rung equal that configuration trained alone
for the rung's epochs.

Seeds and common random numbers: ``random_state`` fixes the folds, one integer seed per
fold and the refit's seed. Every candidate of a fold uses its fold's seed, so all the
strengths, kinds and placements of a fold start from the same initial weights and see the
same minibatches in the same order; comparing two strengths then measures the strengths,
not the luck of the draw. Different folds have different seeds. A candidate equals the
estimator fitted alone on its training rows with ``random_state`` = its seed.

Inputs are preprocessed per fold, from that fold's training rows only
(:class:`~shrinkage.data.Preprocessor`: numeric columns standardized, categorical columns
one-hot encoded): validation rows never inform the scaling.
"""

from shrinkage._names import SCORINGS
from shrinkage.search._candidates import (
    CandidateSpec,
    ChunkResult,
    ChunkRun,
    Progress,
    SearchData,
    run_chunk,
)
from shrinkage.search._checkpoint import (
    chunk_path,
    is_checkpoint_file,
    read_chunk,
    run_chunks,
)
from shrinkage.search._cv import SearchCV
from shrinkage.search._distributed import connect
from shrinkage.search._grid import default_strengths
from shrinkage.search._halving import rung_epochs, sample_layers, strength_from_unit
from shrinkage.search._placement import placement_study
from shrinkage.search._results import mark_failures, partial_results
from shrinkage.search._setup import SearchSetup
from shrinkage.search.engine import chunk_layout, parse_memory

__all__ = [
    "SCORINGS",
    "CandidateSpec",
    "ChunkResult",
    "ChunkRun",
    "Progress",
    "SearchCV",
    "SearchData",
    "SearchSetup",
    "chunk_layout",
    "chunk_path",
    "is_checkpoint_file",
    "connect",
    "default_strengths",
    "mark_failures",
    "parse_memory",
    "partial_results",
    "placement_study",
    "read_chunk",
    "rung_epochs",
    "run_chunk",
    "run_chunks",
    "sample_layers",
    "strength_from_unit",
]
