"""The report's figures: each drawn twice into pyplot-free Figures and inlined as SVG.

A figure is drawn in two layouts: *wide* (panels side by side, up to 10 inches) for a
desktop, and *narrow* (3.6 inches, panels stacked) for a phone; the page's CSS shows the
one that fits (``figure.plot .wide`` / ``.narrow``, switched at 760 CSS pixels). Text stays
text (``svg.fonttype = none``), sized in points: at 96 CSS pixels per inch a figure shown at
its natural width draws a 9-point label at 12 CSS pixels, so no plot text is smaller than
10 CSS pixels at 390 pixels wide (the browser tests measure it). Legends sit in a band
under the panels, outside the data. Dense layers (filled contours, thousands of points)
are rasterized inside the SVG.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shrinkage.analysis import (
    as_text,
    is_per_layer,
    layer_indices,
    layer_weights,
    placement_table,
)
from shrinkage.errors import ShrinkageError
from shrinkage.report._files import (
    ReportInputs,
    is_plane,
)
from shrinkage.report._markup import _e, _table

#: Font sizes in points (CSS pixels = points x 4/3 at a figure's natural width).
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "shrinkage-report",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "Liberation Sans"],
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "lines.linewidth": 1.6,
}
#: The narrow layout's width: 346 CSS pixels, what a 390-pixel phone leaves for it.
_NARROW_IN = 3.6
#: Raster resolution of the rasterized layers (contours, dense scatter plots).
_RASTER_DPI = 144
#: The legend band: inches per line of entries, and an inch per character of a label.
_LEGEND_LINE_IN = 0.21
_LEGEND_CHAR_IN = 0.068


@dataclass(frozen=True)
class _Shape:
    """A figure's geometry in inches, the same margins in both layouts.

    Attributes:
        panels: how many axes (side by side when wide, stacked when narrow).
        height: one panel's height, wide.
        narrow_height: one panel's height, narrow.
        left: room for the y tick labels and label, per panel.
        right: room right of each panel (a twin axis or a colour bar needs more).
        top: room for a panel's title.
        bottom: room for the x tick labels and label.
        width: the wide layout's width (default: 7.5 in for one panel, up to 10).
    """

    panels: int = 1
    height: float = 3.1
    narrow_height: float = 2.5
    left: float = 0.8
    right: float = 0.25
    top: float = 0.4
    bottom: float = 0.6
    width: float | None = None

    def boxes(self, narrow: bool) -> tuple[float, float, list[tuple[float, float, float, float]]]:
        """``(width, height, [(left, bottom, width, height) in inches per panel])``."""
        n = self.panels
        if narrow:
            width = _NARROW_IN
            panel_w = width - self.left - self.right
            step = self.narrow_height + self.top + self.bottom
            height = n * step
            boxes = [
                (self.left, height - (i + 1) * step + self.bottom, panel_w, self.narrow_height)
                for i in range(n)
            ]
            return width, height, boxes
        width = self.width or min(10.0, 7.5 if n == 1 else 4.4 * n)
        panel_w = width / n - self.left - self.right
        height = self.height + self.top + self.bottom
        boxes = [(i * width / n + self.left, self.bottom, panel_w, self.height) for i in range(n)]
        return width, height, boxes


def _legend_entries(fig: Any) -> tuple[list, list[str]]:
    """Every axes legend's handles and labels (each label once); the legends removed."""
    handles, labels = [], []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            label = text.get_text()
            if label and label not in labels:
                handles.append(handle)
                labels.append(label)
        legend.remove()
    return handles, labels


def _legend_band(fig: Any, width: float, height: float) -> float:
    """Move the legends to a band under the panels; the band's height in inches."""
    handles, labels = _legend_entries(fig)
    if not labels:
        return 0.0
    widest = max(len(label) for label in labels) * _LEGEND_CHAR_IN + 0.55
    columns = max(1, min(len(labels), int((width - 0.2) // widest)))
    rows = math.ceil(len(labels) / columns)
    band = rows * _LEGEND_LINE_IN + 0.12
    total = height + band
    fig.set_size_inches(width, total)
    for ax in fig.axes:  # every axes (twins and colour bars too) moves up by the band
        box = ax.get_position()
        ax.set_position(
            [box.x0, (box.y0 * height + band) / total, box.width, box.height * height / total]
        )
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.04 / total),
        ncol=columns,
        frameon=False,
        handlelength=2.4,
        columnspacing=1.2,
    )
    return band


_IDS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _svg(fig: Any, prefix: str, width: float, alt: str) -> str:
    """The figure as an inline ``<svg>``: no fixed size, ids made unique with ``prefix``."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", dpi=_RASTER_DPI, metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    text = _IDS.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)
    style = f'style="max-width: {round(width * 96)}px" role="img" aria-label="{_e(alt)}"'
    return re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', rf"<svg \1{style}", text, count=1)


def _draw(
    draw: Callable[[Any, list], Any], shape: _Shape, narrow: bool, prefix: str, alt: str
) -> str:
    from matplotlib.figure import Figure

    width, height, boxes = shape.boxes(narrow)
    fig = Figure(figsize=(width, height))
    axes = [fig.add_axes([x / width, y / height, w / width, h / height]) for x, y, w, h in boxes]
    draw(fig, axes)
    for ax in fig.axes:
        for collection in ax.collections:  # filled contours and dense scatters: one image
            if _dense(collection):
                collection.set_rasterized(True)
    _legend_band(fig, width, height)
    return _svg(fig, prefix, width, alt)


def _dense(collection: Any) -> bool:
    paths = collection.get_paths() if hasattr(collection, "get_paths") else []
    offsets = collection.get_offsets() if hasattr(collection, "get_offsets") else []
    if type(collection).__name__.endswith("ContourSet"):
        return bool(getattr(collection, "filled", False))
    return len(offsets) > 300 or sum(len(p.vertices) for p in paths) > 4000


def _figure_html(
    draw: Callable[[Any, list], Any],
    caption: str,
    alt: str,
    shape: _Shape = _Shape(),
) -> str:
    """A ``<figure>`` with the wide and the narrow drawing of ``draw(fig, axes)``.

    ``draw`` receives the Figure and one axes per panel; a :class:`ShrinkageError` it
    raises becomes a note in the figure's place.
    """
    import matplotlib

    slug = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-")
    try:
        with matplotlib.rc_context(_RC):
            wide = _draw(draw, shape, False, f"{slug}-w-", alt)
            narrow = _draw(draw, shape, True, f"{slug}-n-", alt)
    except ShrinkageError as err:
        return f'<p class="note">{_e(caption)}: not drawn ({_e(err)})</p>'
    return (
        f'<figure class="plot"><div class="wide">{wide}</div>'
        f'<div class="narrow">{narrow}</div><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _one_strength(frame: Any) -> bool:
    """Results whose configurations are one strength each, all trained to the end: the
    curves against λ apply (not per-layer strengths, not halving's unequal epochs)."""
    return "param_strength" in frame and "rung" not in frame and not is_per_layer(frame)


def _figures_html(inputs: ReportInputs) -> str:
    from shrinkage import analysis

    parts = []
    frame = inputs.results
    if frame is not None and _one_strength(frame):
        parts.append(
            _figure_html(
                lambda fig, axes: analysis.plot_validation_curve(
                    frame, axes[0], chosen=inputs.chosen_row()
                ),
                "Validation curve: mean train (dashed) and cross-validated (solid, ±1 std band) "
                "score against λ. Star: the chosen configuration; open circle: the strongest "
                "λ within one standard error of the best.",
                "validation curve",
            )
        )
        if layer_indices(frame):
            parts.append(
                _figure_html(
                    lambda fig, axes: analysis.plot_regularization_path(frame, axes[0]),
                    "Regularization path: each layer's weight L2 norm (and, for L1, its "
                    "fraction of zero weights) against λ, for the chosen kind and placement.",
                    "regularization path",
                    _Shape(right=0.75),
                )
            )
        if (
            "param_placement" in frame
            and as_text(frame["param_placement"]).nunique() > 1
            and layer_indices(frame)
        ):
            parts.append(
                _figure_html(
                    lambda fig, axes: analysis.plot_placement_study(
                        placement_table(frame), axes[0]
                    ),
                    "Placement: per-layer weight norms (one colour per layer) when the penalty "
                    "is on all layers, the hidden layers only, or the output layer only (one "
                    "line style and marker per placement). Penalizing only the output layer "
                    "lets the weight move into the hidden layer.",
                    "placement study",
                )
            )
    if inputs.estimator is not None:
        n_layers = len(layer_weights(inputs.estimator))
        parts.append(
            _figure_html(
                lambda fig, axes: analysis.plot_weight_histograms(
                    inputs.estimator, inputs.baseline, axes
                ),
                "Weights per layer: the chosen model (red outline)"
                + (" over the unregularized fit (grey)." if inputs.baseline is not None else "."),
                "weight histograms",
                _Shape(panels=n_layers, height=2.6, narrow_height=2.1, left=0.75, right=0.15),
            )
        )
        if getattr(inputs.estimator, "history_", None):
            parts.append(
                _figure_html(
                    lambda fig, axes: analysis.plot_learning_curves(inputs.estimator, axes),
                    "Learning curves of the refit model: the data loss and the penalty "
                    "λ·Ω(W) apart (left); train score, and validation score when the fit held "
                    "rows out (right).",
                    "learning curves",
                    _Shape(panels=2, height=2.8, narrow_height=2.3),
                )
            )
        if is_plane(inputs.X):
            pair = hasattr(inputs.baseline, "predict")
            models = [inputs.baseline, inputs.estimator] if pair else [inputs.estimator]
            names = ["unregularized", "chosen"] if pair else ["chosen"]

            def boundaries(fig: Any, axes: list) -> None:
                for axis, model, name in zip(axes, models, names):
                    analysis.plot_decision_boundary(model, inputs.X, inputs.y, axis)
                    axis.set_title(f"Decision boundary: {name}")

            parts.append(
                _figure_html(
                    boundaries,
                    (
                        "Decision boundaries of the unregularized and the chosen model on "
                        "the data rows: the penalty smooths the boundary."
                        if pair
                        else "Decision boundary of the chosen model on the data rows."
                    ),
                    "decision boundary",
                    _Shape(panels=len(models), height=3.2, narrow_height=2.6, right=0.65),
                )
            )
    return "".join(parts) or '<p class="note">Nothing to draw.</p>'


def _per_layer_html(inputs: ReportInputs) -> str:
    """The per-layer choice: the top configurations' strengths, and each rung's survivors.

    Empty unless the results come from a per-layer search or successive halving.
    """
    from shrinkage import analysis

    frame = inputs.results
    if frame is None:
        return ""
    per_layer, halving = is_per_layer(frame), "rung" in frame
    parts = []
    if per_layer:
        n_top = min(20, len(frame))
        parts.append(
            _figure_html(
                lambda fig, axes: analysis.plot_layer_strengths(frame, axes[0], top=n_top),
                f"The {n_top} best configurations by mean CV score"
                + (" among those trained to the end" if halving else "")
                + ": each line is one configuration, its strength on every layer (log axis; "
                "'none': that layer is not penalized), coloured by its CV score. Red: the "
                "chosen one.",
                "per-layer strengths",
                _Shape(height=3.4, narrow_height=3.0, left=0.95, right=0.3),
            )
        )
    if halving:
        parts.append(
            _figure_html(
                lambda fig, axes: analysis.plot_rungs(frame, axes[0]),
                "Successive halving: every configuration's fold-mean validation score at each "
                "rung it reached (grey: dropped there; blue: trained to the end; red: chosen). "
                "Below each rung: epochs, configurations trained → kept.",
                "successive halving rungs",
                _Shape(height=3.4, narrow_height=3.0, bottom=0.8),
            )
        )
        table = analysis.rung_table(frame)
        rows = [
            [int(r.rung), int(r.epochs), int(r.trained), int(r.kept), r.best, r.median]
            for r in table.itertuples()
        ]
        parts.append(
            "<h3>Rungs</h3>"
            + _table(rows, ("rung", "epochs", "trained", "kept", "best score", "median score"))
            + '<p class="note">At each rung the drawn configurations are ranked by fold-mean '
            "validation score (ties: validation loss); the best ⌈n / η⌉ train on, the "
            "others leave the stack; the single-λ grid's configurations are kept unless "
            "keep_grid=False. The choice is made among the last rung's.</p>"
        )
    return "".join(parts)
