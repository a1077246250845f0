"""What regularization did: it reads models and search results, and never trains.

* the over-fitting diagnosis from the train/validation gap (:func:`diagnose` and its
  feeders; ``_diagnosis.py``);
* per-layer weight statistics of any model (:func:`weight_table`: norms, sparsity, dead
  units, and each weight's penalty given a Regularizer; ``_weights.py``) and the weight
  matrices themselves (:func:`layer_weights`);
* the outputs of any model's submodules through removable forward hooks
  (:class:`ActivationRecorder`, :func:`activations`, :func:`activation_table`), and the
  MLP's sub-model ``input -> hidden layer`` (:func:`hidden_activations`,
  :func:`activation_summary`; ``_activations.py``);
* the reading of a search's ``cv_results_`` that the plots and the report share
  (:func:`as_results_frame`, :func:`best_index`, :func:`placement_table`; ``_results.py``);
* the figures (``plot_*``, matplotlib; ``_plots.py``), and those of a per-layer search
  with successive halving (``_per_layer.py``).
"""

from shrinkage.analysis._activations import (
    ActivationRecorder,
    activation_summary,
    activation_table,
    activations,
    hidden_activations,
    layer_weights,
)
from shrinkage.analysis._diagnosis import (
    BALANCED,
    BIAS_THRESHOLD,
    HIGH_BIAS,
    HIGH_VARIANCE,
    VARIANCE_THRESHOLD,
    Diagnosis,
    diagnose,
    diagnose_estimator,
    diagnose_history,
    diagnose_scores,
    diagnose_search,
)
from shrinkage.analysis._per_layer import (
    is_per_layer,
    layer_strength_table,
    plot_layer_strengths,
    plot_rungs,
    rung_table,
)
from shrinkage.analysis._plots import (
    plot_decision_boundary,
    plot_learning_curves,
    plot_placement_study,
    plot_regularization_path,
    plot_validation_curve,
    plot_weight_histograms,
)
from shrinkage.analysis._results import (
    as_results_frame,
    as_text,
    best_index,
    grid_edge,
    grid_rows,
    group_columns,
    layer_indices,
    one_standard_error_index,
    placement_table,
)
from shrinkage.analysis._weights import SMALL, weight_table

__all__ = [
    "BALANCED",
    "BIAS_THRESHOLD",
    "HIGH_BIAS",
    "HIGH_VARIANCE",
    "SMALL",
    "VARIANCE_THRESHOLD",
    "ActivationRecorder",
    "Diagnosis",
    "activation_summary",
    "activation_table",
    "activations",
    "as_results_frame",
    "as_text",
    "best_index",
    "diagnose",
    "diagnose_estimator",
    "diagnose_history",
    "diagnose_scores",
    "diagnose_search",
    "grid_edge",
    "grid_rows",
    "group_columns",
    "hidden_activations",
    "is_per_layer",
    "layer_indices",
    "layer_strength_table",
    "layer_weights",
    "one_standard_error_index",
    "placement_table",
    "rung_table",
    "plot_decision_boundary",
    "plot_layer_strengths",
    "plot_learning_curves",
    "plot_placement_study",
    "plot_regularization_path",
    "plot_rungs",
    "plot_validation_curve",
    "plot_weight_histograms",
    "weight_table",
]
