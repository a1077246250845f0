"""scikit-learn compatible MLP estimators with per-layer weight regularization.

:class:`MLPClassifier` and :class:`MLPRegressor` standardize numeric inputs (unless
``standardize=False``) and one-hot encode categorical ones (a
:class:`~shrinkage.data.Preprocessor` fitted on the training rows only: a penalty on the
weights treats all inputs alike only when they share one scale), build an
:class:`~shrinkage.models.MLP` (initialized as ``init`` says: torch's default, or Keras's
``glorot_uniform``), put one penalty on the placed layers through
:func:`~shrinkage.models.placement_plan` (with per-layer overrides) and train it with
:func:`~shrinkage.training.fit_model`.

The penalty has the Keras meaning: ``penalty="l2", strength=s`` adds ``s * sum(W**2)`` over
the regularized weight matrices to the *mean* data loss; biases are never penalized.
``hidden_layer_sizes=()`` gives a linear model, so ridge (``"l2"``), lasso (``"l1"``) and
elastic net come out of the same code::

    ridge = MLPRegressor(hidden_layer_sizes=(), penalty="l2", strength=s)
    # minimizes (1/n) ||y - Xw - b||^2 + s ||w||^2: sklearn Ridge(alpha=n * s) on the same X

and ``coef_`` / ``intercept_`` then hold the model in the units of the raw input columns.
In ``mode="proximal"`` the step is the one the optimizer took (Adam's per-coordinate
``lr / (sqrt(v_hat) + eps)``), so lasso and elastic net come out with exact zeros under the
default Adam too; ``learning_rate_schedule="cosine"`` with full batches
(``batch_size >= n_rows``) lets Adam settle on the solution to float precision.

The regression target is used as given (not standardized), as Keras and scikit-learn do.

Longer than the package's ~600-line habit: the two estimator classes' docstrings are the
public reference of every parameter and attribute; the checks (``_params.py``), the saved
form (``_config.py``) and the training loop (:mod:`shrinkage.training`) live elsewhere.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from shrinkage._names import (
    CLASSIFICATION,
    REGRESSION,
)
from shrinkage._progress import ProgressBoard
from shrinkage.data import Preprocessor, encode_labels
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import _persistence
from shrinkage.estimators._config import expected_tensors, from_config, to_config
from shrinkage.estimators._params import (
    Settings,
    draw_seed,
    resolve_params,
    unknown_parameter,
)
from shrinkage.models import MLP, generators, init_mlp_, placement_plan
from shrinkage.penalties import Penalty
from shrinkage.regularizer import Regularizer
from shrinkage.training import (
    fit_model,
    make_loss,
    make_optimizer,
    make_score,
    n_outputs,
    predict_outputs,
    target_tensor,
)

__all__ = ["MLPClassifier", "MLPRegressor"]


def _is_frame(X: object) -> bool:
    return isinstance(X, pd.DataFrame)


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if _is_frame(X) else X[rows]


# --------------------------------------------------------------------------- estimators


class _BaseMLP(BaseEstimator):
    """Shared implementation; see :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _task: ClassVar[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> _BaseMLP:
        # Python's own error for MLPClassifier(alpha=...) would not say what alpha is here.
        known = cls._get_param_names()
        for name in kwargs:
            if name not in known:
                raise unknown_parameter(cls.__name__, name, known)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The signature that help(), IDEs and scikit-learn's checks read is __init__'s, not
        # that of the keyword check in __new__.
        init = inspect.signature(cls.__init__)
        cls.__signature__ = init.replace(parameters=list(init.parameters.values())[1:])

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        penalty: str | Penalty | None = "l2",
        strength: float = 1e-4,
        l1_ratio: float = 0.5,
        placement: str | Sequence[int] = "all",
        layer_penalties: Mapping[int, Any] | None = None,
        mode: str = "gradient",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        epochs: int = 200,
        batch_size: int = 32,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        impute: bool = False,
        warm_start: bool = False,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
        standardize: bool = True,
        init: str = "torch",
        learning_rate_schedule: str = "constant",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.penalty = penalty
        self.strength = strength
        self.l1_ratio = l1_ratio
        self.placement = placement
        self.layer_penalties = layer_penalties
        self.mode = mode
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.impute = impute
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.standardize = standardize
        self.init = init
        self.learning_rate_schedule = learning_rate_schedule

    # ----------------------------------------------------------------- parameters

    def set_params(self, **params: Any) -> _BaseMLP:
        """scikit-learn's ``set_params``; an unknown name says what it is called here."""
        known = self._get_param_names()
        for name in params:
            if name not in known and "__" not in name:
                raise unknown_parameter(f"{type(self).__name__}.set_params", name, known)
        return super().set_params(**params)

    def _resolve_params(self) -> Settings:
        """Validate every parameter; the first bad one raises a one-line ShrinkageError."""
        return resolve_params(self.get_params(deep=False))

    def _draw_seed(self) -> int:
        """The integer seed of this fit: ``random_state`` itself when it is an int."""
        return draw_seed(self.random_state)

    # ----------------------------------------------------------------- data

    def _validate_X(self, X: Any, *, reset: bool, y: Any = "no_validation") -> Any:
        """Check X (and y) the scikit-learn way; DataFrames keep their column types."""
        allow_nan = bool(self.impute) if isinstance(self.impute, bool | np.bool_) else False
        finite: bool | str = "allow-nan" if allow_nan else True
        no_y = isinstance(y, str) and y == "no_validation"
        if _is_frame(X):
            if no_y:
                return validate_data(self, X, reset=reset, skip_check_array=True)
            X, y = validate_data(self, X, y, reset=reset, skip_check_array=True)
            y = column_or_1d(y, warn=True)
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
            check_consistent_length(X, y)
            return X, y
        categorical = not reset and bool(self.preprocessor_.categorical_columns_)
        dtype = None if categorical else (np.float64, np.float32)
        if no_y:
            return validate_data(self, X, reset=reset, dtype=dtype, ensure_all_finite=finite)
        return validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=dtype,
            ensure_all_finite=finite,
            y_numeric=self._task == REGRESSION,
        )

    @staticmethod
    def _preprocessor_input(preprocessor: Preprocessor, X: Any) -> Any:
        """Columns by name when the frame has the fitted names, else by position."""
        if _is_frame(X):
            names = preprocessor.feature_names_in_
            columns = {str(c) for c in X.columns}
            if not all(name in columns for name in names):
                return X.to_numpy()
        return X

    def _encode_y(self, y: np.ndarray, warm: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``(codes, classes)``: class codes and labels, or float values and None."""
        raise NotImplementedError  # abstract

    # ----------------------------------------------------------------- fitting

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        progress: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> _BaseMLP:
        """Train the network on ``X``, ``y``.

        Minimizes ``mean data loss + sum over regularized layers of penalty(W)`` (Keras
        meaning) with minibatches of ``batch_size`` rows for ``epochs`` epochs.

        Args:
            X: a 2-D array of numbers, or a DataFrame (categorical columns are one-hot
                encoded; numeric ones standardized with the training rows' statistics).
            y: the target, one value per row.
            progress: called after each epoch with ``(epoch, history row)``.

        Returns:
            ``self``.

        Raises:
            ShrinkageError: a bad parameter or bad data (one line naming it), or training
                that diverges.
        """
        settings = self._resolve_params()
        warm = settings.warm_start and hasattr(self, "model_")
        X, y = self._validate_X(X, reset=not warm, y=y)
        codes, classes = self._encode_y(y, warm)
        n_classes = None if classes is None else len(classes)
        task = self._task
        seed = self._draw_seed()
        n_rows = len(codes)

        train_rows, val_rows = np.arange(n_rows), np.arange(0)
        if settings.early_stopping:
            train_rows, val_rows = self._split(n_rows, codes, seed, settings.validation_fraction)
        if warm:
            preprocessor = self.preprocessor_
        else:
            preprocessor = Preprocessor(
                impute=settings.impute, standardize=settings.standardize
            ).fit(_take(X, train_rows))
        features = preprocessor.transform(self._preprocessor_input(preprocessor, X))

        init_generator, shuffle_generator = generators(seed)
        n_out = n_outputs(task, n_classes)
        if warm:
            model = self.model_
            wanted = [features.shape[1], *settings.hidden, n_out]
            if model.sizes != wanted or model.activation_name != settings.activation:
                raise ShrinkageError(
                    f"warm_start=True keeps the trained network, whose layer sizes are "
                    f"{model.sizes} ({model.activation_name}); the parameters and data now ask "
                    f"for {wanted} ({settings.activation}). Use warm_start=False to start over."
                )
        else:
            model = init_mlp_(
                MLP(features.shape[1], settings.hidden, n_out, settings.activation),
                init_generator,
                settings.init,
            )
        model = model.to(settings.device)

        plan = placement_plan(
            len(model.layers), settings.penalty, settings.placement, settings.overrides
        )
        # Built after the weights are in place: L2-SP measures from the weights of this moment.
        regularizer = Regularizer(model, plan, settings.mode)
        optimizer = make_optimizer(
            settings.optimizer, model.parameters(), settings.learning_rate, settings.momentum
        )

        def tensors(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            inputs = torch.from_numpy(features[rows]).to(settings.device)
            return inputs, target_tensor(codes[rows], task, n_classes, settings.device)

        X_train, y_train = tensors(train_rows)
        X_val, y_val = tensors(val_rows) if len(val_rows) else (None, None)
        context = None
        if isinstance(self.penalty, str):
            context = {"strength": float(self.strength), "learning_rate": settings.learning_rate}
        board = self._board(settings)
        try:
            history = fit_model(
                model,
                X_train,
                y_train,
                loss_fn=make_loss(task, n_classes),
                regularizer=regularizer,
                optimizer=optimizer,
                epochs=settings.epochs,
                batch_size=settings.batch_size,
                shuffle_generator=shuffle_generator,
                X_val=X_val,
                y_val=y_val,
                score_fn=make_score(task, n_classes),
                early_stopping=settings.early_stopping,
                patience=settings.patience,
                progress=self._progress(board, progress),
                context=context,
                learning_rate_schedule=settings.learning_rate_schedule,
            )
            if board is not None:
                board.finish("train")
        finally:
            regularizer.remove()
            if board is not None:
                board.close()

        # Set together at the end, so a fit that fails leaves the previous model consistent.
        if classes is not None:
            self.classes_ = classes
        self.preprocessor_ = preprocessor
        previous = self.history_ if warm else []
        offset = previous[-1]["epoch"] if previous else 0
        self.history_ = previous + [{**row, "epoch": row["epoch"] + offset} for row in history]
        self.n_iter_ = len(history)
        self.best_epoch_ = self._best_epoch(history, settings.early_stopping) + offset
        self.model_ = model
        self.plan_ = plan
        self.seed_ = seed
        self.layer_weights_ = self._layer_weights()
        return self

    @staticmethod
    def _split(
        n_rows: int, codes: np.ndarray, seed: int, fraction: float
    ) -> tuple[np.ndarray, np.ndarray]:
        n_val = math.ceil(fraction * n_rows)
        if n_rows - n_val < 1:
            raise ShrinkageError(
                f"early_stopping=True holds out validation_fraction={fraction!r} of the rows "
                f"for validation, which leaves no training rows out of {n_rows}; add rows or "
                "turn early stopping off."
            )
        rows = np.arange(n_rows)
        stratify = codes if codes.dtype.kind in "iu" else None
        try:
            train, val = train_test_split(
                rows, test_size=n_val, random_state=seed, stratify=stratify
            )
        except ValueError:  # a class too small to stratify: a plain random split
            train, val = train_test_split(rows, test_size=n_val, random_state=seed)
        return np.sort(train), np.sort(val)

    @staticmethod
    def _best_epoch(history: list[dict[str, Any]], early_stopping: bool) -> int:
        if not early_stopping:
            return history[-1]["epoch"]
        best = max(history, key=lambda row: (row["val_score"], -row["epoch"]))
        return best["epoch"]

    def _board(self, settings: Settings) -> ProgressBoard | None:
        """With ``verbose``: a bar of the epochs (rich in a terminal or Jupyter, else lines)."""
        if not settings.verbose:
            return None
        board = ProgressBoard(type(self).__name__, stderr=False)
        board.add("train", settings.epochs)
        return board

    @staticmethod
    def _progress(
        board: ProgressBoard | None, progress: Callable[[int, dict[str, Any]], None] | None
    ) -> Callable[[int, dict[str, Any]], None] | None:
        if board is None:
            return progress
        shown = board.epoch_callback("train")

        def report(epoch: int, row: dict[str, Any]) -> None:
            shown(epoch, row)
            if progress is not None:
                progress(epoch, row)

        return report

    def _layer_weights(self) -> list[dict[str, np.ndarray]]:
        return [
            {
                "weight": layer.weight.detach().cpu().numpy().copy(),
                "bias": layer.bias.detach().cpu().numpy().copy(),
            }
            for layer in self.model_.layers
        ]

    # ----------------------------------------------------------------- linear models

    def _linear(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` of a linear model in raw input units, float64, W ``(n_out, n_features)``.

        The network sees ``z = (x - mean) / scale`` on the numeric columns, so
        ``W z + b = (W / scale) x + (b - W @ (mean / scale))``; one-hot columns are 0/1 as
        they are.
        """
        check_is_fitted(self, "model_")
        if len(self.model_.layers) != 1:
            raise AttributeError(
                "coef_ and intercept_ exist for hidden_layer_sizes=() (a linear model) only; "
                f"this network has {len(self.model_.layers) - 1} hidden layer(s): see "
                "layer_weights_."
            )
        layer = self.model_.layers[0]
        W = layer.weight.detach().cpu().double().numpy()
        b = layer.bias.detach().cpu().double().numpy()
        mean, scale = self.preprocessor_.scaling()
        coef = W / scale
        return coef, b - coef @ mean

    @property
    def coef_(self) -> np.ndarray:
        """The weights of a linear model (``hidden_layer_sizes=()``) in raw input units.

        One column per preprocessed feature (``preprocessor_.feature_names_out_``: the
        numeric input columns, with the standardization undone, then one 0/1 column per
        category). Shaped as scikit-learn's: ``(n_features,)`` for the regressor,
        ``(1, n_features)`` for a binary and ``(n_classes, n_features)`` for a multiclass
        classifier (the logits' weights). Absent (``AttributeError``) for a network with
        hidden layers.
        """
        coef, _ = self._linear()
        return coef[0] if self._task == REGRESSION else coef

    @property
    def intercept_(self) -> np.ndarray | float:
        """The bias of a linear model in raw input units (see :attr:`coef_`): a float for the
        regressor, ``(1,)`` or ``(n_classes,)`` for a classifier."""
        _, intercept = self._linear()
        return float(intercept[0]) if self._task == REGRESSION else intercept

    # ----------------------------------------------------------------- using

    def _features(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        features = self.preprocessor_.transform(self._preprocessor_input(self.preprocessor_, X))
        device = next(self.model_.parameters()).device
        return torch.from_numpy(features).to(device)

    def _outputs(self, X: Any) -> torch.Tensor:
        features = self._features(X)  # checks fitted before model_ is touched
        return predict_outputs(self.model_, features)

    def transform_hidden(self, X: Any, layer: int = 0) -> np.ndarray:
        """The activations of hidden layer ``layer`` (0-based), after its activation function.

        This is the sub-model ``input -> preprocessing -> hidden layer layer``:
        ``act(W_layer · … act(W_0 · x + b_0) … + b_layer)``, one column per neuron.

        Args:
            X: rows, as for :meth:`predict`.
            layer: the hidden layer, in ``[0, len(hidden_layer_sizes))``.

        Returns:
            A float32 array of shape ``(n_rows, hidden_layer_sizes[layer])``.

        Raises:
            ShrinkageError: a layer index out of range.
        """
        features = self._features(X)
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise ShrinkageError(
                f"The 'layer' parameter must be an integer. Got {layer!r} instead."
            )
        self.model_.eval()
        with torch.no_grad():
            return self.model_.hidden(features, int(layer)).cpu().numpy()

    def save(self, directory: str | Path, *, overwrite: bool = True) -> Path:
        """Save the fitted model to ``directory`` (see :func:`shrinkage.estimators.save`).

        Args:
            directory: the model directory to create, or whose model to replace.
            overwrite: replace a model already there (False refuses it).

        Returns:
            The directory.
        """
        return _persistence.save(self, directory, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> _BaseMLP:
        """Load a model saved by :meth:`save`; it must be of this class.

        Args:
            directory: the model directory.
            device: where to put the network.

        Returns:
            The fitted estimator.

        Raises:
            ShrinkageError: a missing, tampered or incompatible model, or another class.
        """
        estimator = _persistence.load(directory, device=device)
        if not isinstance(estimator, cls):
            raise ShrinkageError(
                f"The model in '{directory}' is a {type(estimator).__name__}, not a {cls.__name__}."
            )
        return estimator

    # ----------------------------------------------------------------- saved form

    def _to_config(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The JSON content of ``model.json`` and the weights (:func:`._config.to_config`)."""
        return to_config(self)

    @classmethod
    def _expected_tensors(cls, config: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], str]:
        """The tensors a saved model's weights file must hold, by name, with their shapes."""
        return expected_tensors(cls, config)

    @classmethod
    def _from_config(
        cls, config: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device
    ) -> _BaseMLP:
        """The fitted estimator from a saved model (:func:`._config.from_config`)."""
        return from_config(cls, config, tensors, device)

    def _check_saved_outputs(self, classes: np.ndarray | None, n_out: int) -> None:
        """Refuse a saved output layer that does not fit the task (and classes)."""
        raise NotImplementedError  # abstract: each task checks its own output layer

    def describe_plan(self) -> str:
        """The resolved plan: which weight gets which penalty (see :meth:`Plan.describe`)."""
        check_is_fitted(self, "model_")
        return self.plan_.describe(self.model_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.impute is True
        return tags


@_persistence.register
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A regularized multilayer perceptron classifier (scikit-learn API).

    Binary problems use one logit and the binary cross-entropy; more classes use one logit
    per class and the cross-entropy. The penalty is added to the mean loss with the Keras
    meaning (``penalty="l2", strength=s``: ``+ s * sum(W**2)``).

    Args:
        hidden_layer_sizes: widths of the hidden layers; ``()`` gives logistic regression.
        activation: ``"relu"``, ``"tanh"``, ``"logistic"``, ``"gelu"`` or ``"identity"``.
        penalty: one of :data:`PENALTY_NAMES` or a :class:`~shrinkage.Penalty`.
        strength: the penalty strength (Keras meaning), ``>= 0``.
        l1_ratio: elastic net: ``l1 = strength * l1_ratio``, ``l2 = strength * (1 - l1_ratio)``.
        placement: the regularized layers: ``"all"``, ``"hidden"`` (all but the output layer),
            ``"output"`` or a list of layer indices (0 is the first Linear layer).
        layer_penalties: ``{layer index: spec}`` overriding the default on that layer; a spec
            is ``None`` (no penalty), a Penalty, a name, a strength, a ``(name, strength)``
            pair or ``{"penalty": name, "strength": s}``.
        mode: how the penalty is applied: ``"gradient"``, ``"loss"``, ``"decoupled"`` or
            ``"proximal"`` (exact zeros for L1 / group lasso).
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        learning_rate: the optimizer's step size.
        momentum: SGD momentum.
        epochs: passes over the training rows.
        batch_size: rows per minibatch (at least the row count: full batch).
        early_stopping: hold out ``validation_fraction`` of the rows (stratified) and stop
            when their accuracy has not improved for ``patience`` epochs; the best weights
            are kept.
        validation_fraction: the held-out share of rows, in ``(0, 0.5]``.
        patience: epochs without improvement before stopping.
        impute: fill missing feature values (training median / most frequent) instead of
            refusing them.
        warm_start: continue from the current weights (and preprocessing) on the next fit;
            with ``penalty="l2sp"`` the weights are pulled toward those at the start of the fit.
        random_state: an int seed (initialization, shuffling, validation split), a numpy
            RandomState, or None.
        device: the torch device to train on.
        verbose: show the training: a bar of the epochs with the loss and scores (rich in a
            terminal or Jupyter; elsewhere a line per tenth of the epochs or 10 seconds).
        standardize: scale numeric input columns to mean 0 and standard deviation 1 with
            the training rows' statistics (``False``: use them as they are, as Keras does).
        init: the initial weights: ``"torch"`` (``nn.Linear``'s default),
            ``"glorot_uniform"`` (Keras's ``Dense`` default: ``U(+-sqrt(6 / (fan_in +
            fan_out)))``, zero biases) or ``"he_uniform"`` (``U(+-sqrt(6 / fan_in))``, zero
            biases).
        learning_rate_schedule: ``"constant"``, or ``"cosine"``: the rate annealed to 0
            over ``epochs`` (:func:`shrinkage.training.learning_rate_at`), so that Adam
            settles on the minimizer instead of hovering around it.

    Attributes:
        classes_: the class labels, sorted.
        n_features_in_: the number of input columns.
        feature_names_in_: the input column names (DataFrame input with string names).
        model_: the trained :class:`~shrinkage.models.MLP`.
        plan_: the :class:`~shrinkage.Plan` that was applied.
        preprocessor_: the fitted :class:`~shrinkage.data.Preprocessor`.
        history_: one dict per epoch: ``epoch``, ``data_loss``, ``penalty``, ``total``,
            ``train_score``, ``val_loss``, ``val_score`` (accuracy). ``data_loss`` and
            ``train_score`` are measured on each batch before its step (as Keras reports
            them); the validation values after the epoch.
        layer_weights_: per layer, ``{"weight": (out, in) array, "bias": (out,) array}``;
            row ``j`` of ``weight`` holds the incoming weights of neuron ``j``.
        n_iter_: the epochs run in the last fit.
        best_epoch_: the epoch whose weights were kept.
        seed_: the integer seed used.
        coef_: ``hidden_layer_sizes=()`` only: the logits' weights in raw input units,
            ``(1, n_features)`` (binary) or ``(n_classes, n_features)``.
        intercept_: ``hidden_layer_sizes=()`` only: their biases.

    Example:
        >>> from sklearn.datasets import make_moons
        >>> X, y = make_moons(100, noise=0.2, random_state=1)
        >>> clf = MLPClassifier((32,), strength=1e-3, epochs=50, random_state=0).fit(X, y)
        >>> clf.predict_proba(X[:2]).shape
        (2, 2)
    """

    _task = CLASSIFICATION

    def _check_saved_outputs(self, classes: np.ndarray | None, n_out: int) -> None:
        if classes is None or len(classes) < 2:
            raise ShrinkageError("a classifier needs at least 2 'classes'")
        if n_out != (1 if len(classes) == 2 else len(classes)):
            raise ShrinkageError(f"{len(classes)} classes do not fit {n_out} outputs")

    def _encode_y(self, y: np.ndarray, warm: bool) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            check_classification_targets(y)
        except ValueError as err:
            if isinstance(err, ShrinkageError):
                raise
            # scikit-learn's words ("Unknown label type: continuous"), which check_estimator
            # looks for, in one line with what to do.
            text = " ".join(str(err).split()).rstrip(".")
            raise ShrinkageError(
                f"The 'y' parameter of MLPClassifier must hold class labels: {text}. Use "
                "MLPRegressor for a continuous target."
            ) from None
        return encode_labels(y, self.classes_ if warm else None, name="MLPClassifier")

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row.

        Args:
            X: rows, as for :meth:`fit`.

        Returns:
            The labels, shape ``(n_rows,)``.
        """
        outputs = self._outputs(X)
        if outputs.shape[1] == 1:
            codes = (outputs[:, 0] > 0).long()
        else:
            codes = outputs.argmax(dim=1)
        return self.classes_[codes.cpu().numpy()]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: ``sigmoid`` of the logit (binary) or ``softmax`` of the logits.

        Args:
            X: rows, as for :meth:`fit`.

        Returns:
            Shape ``(n_rows, n_classes)``, columns in the order of ``classes_``.
        """
        outputs = self._outputs(X).double()
        if outputs.shape[1] == 1:
            p = torch.sigmoid(outputs[:, 0]).cpu().numpy()
            return np.column_stack([1.0 - p, p])
        return torch.softmax(outputs, dim=1).cpu().numpy()

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``, computed stably from the logits.

        Args:
            X: rows, as for :meth:`fit`.

        Returns:
            Shape ``(n_rows, n_classes)``.
        """
        outputs = self._outputs(X).double()
        if outputs.shape[1] == 1:
            z = outputs[:, 0]
            pair = [torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)]
            return torch.stack(pair, dim=1).cpu().numpy()
        return torch.log_softmax(outputs, dim=1).cpu().numpy()


@_persistence.register
class MLPRegressor(RegressorMixin, _BaseMLP):
    """A regularized multilayer perceptron regressor (scikit-learn API).

    Minimizes ``mean((y - f(x))**2)`` (no 1/2) plus the penalty with the Keras meaning.
    With ``hidden_layer_sizes=()`` and ``penalty="l2"`` this is ridge regression on the
    standardized inputs: ``Ridge(alpha=n_rows * strength)``; with ``penalty="l1"`` it is
    ``Lasso(alpha=strength / 2)``, and with ``penalty="elastic_net"`` and ratio ``r``
    ``ElasticNet(alpha=strength * (1 + r) / 2, l1_ratio=2 r / (1 + r))``: use
    ``mode="proximal"`` for exact zeros, and full batches with
    ``learning_rate_schedule="cosine"`` to reach the solution to float precision under the
    default Adam. ``standardize=False`` gives the same problems on the raw columns.

    The parameters and attributes are those of :class:`MLPClassifier` (without
    ``classes_``; ``coef_`` is ``(n_features,)`` and ``intercept_`` a float); the scores
    in ``history_`` are R².

    Example:
        >>> from sklearn.datasets import make_regression
        >>> X, y = make_regression(80, 4, noise=1.0, random_state=0)
        >>> reg = MLPRegressor((), strength=1e-3, epochs=300, learning_rate=0.05,
        ...                    random_state=0).fit(X, y)
        >>> reg.score(X, y) > 0.99
        True
    """

    _task = REGRESSION

    def _check_saved_outputs(self, classes: np.ndarray | None, n_out: int) -> None:
        if n_out != 1:
            raise ShrinkageError(f"a regressor has 1 output, not {n_out}")

    def _encode_y(self, y: np.ndarray, warm: bool) -> tuple[np.ndarray, np.ndarray | None]:
        values = np.asarray(y, dtype=np.float64).reshape(-1)
        return values, None

    def predict(self, X: Any) -> np.ndarray:
        """The predicted value of each row.

        Args:
            X: rows, as for :meth:`fit`.

        Returns:
            Shape ``(n_rows,)``, float64.
        """
        return self._outputs(X)[:, 0].double().cpu().numpy()
