"""TensorBoard: write what regularization does to the weights to a ``SummaryWriter``.

::

    from torch.utils.tensorboard import SummaryWriter
    from shrinkage.integrations.tensorboard import log_plan, log_weights

    writer = SummaryWriter("runs/l1-proximal")
    reg = Regularizer(model, {"*": L1(1e-3)}, mode="proximal").attach(opt)
    log_plan(writer, reg)                        # the describe() table, in the Text tab
    for step in range(steps):
        ...                                      # your loop
        if step % 50 == 0:
            log_weights(writer, reg, step)       # penalty, per-layer norms and sparsity
    writer.close()

The scalars are those of :func:`~shrinkage.integrations.weight_stats`:
``shrinkage/penalty``, ``shrinkage/l2_norm/<name>`` and ``shrinkage/zero_fraction/<name>``,
so TensorBoard groups them in three sections with one curve per layer.
"""

from __future__ import annotations

from torch import nn

from shrinkage import Regularizer
from shrinkage.integrations._common import require, weight_stats

__all__ = ["log_weights", "log_plan"]

require("tensorboard", "tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def log_weights(
    writer: SummaryWriter,
    source: Regularizer | nn.Module,
    step: int,
    *,
    prefix: str = "shrinkage",
    histograms: bool = False,
) -> dict[str, float]:
    """Write the penalty and every weight's norm and sparsity as scalars at ``step``.

    For each weight ``W`` (a parameter with two or more dimensions, or one the plan
    penalizes): ``l2_norm = sqrt(sum w**2)`` and ``zero_fraction = #{w == 0} / #w``; for
    a regularizer also ``penalty = scale * sum Omega(w)``.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (anything with its
            ``add_scalar`` / ``add_histogram``).
        source: a :class:`~shrinkage.Regularizer` or a plain module (no penalty then).
        step: the global step to record.
        prefix: the first part of every tag.
        histograms: also write each of those weights' values as a histogram
            (``{prefix}/weights/<name>``): bigger event files, slower.

    Returns:
        The scalars written, ``{tag: value}``.

    Raises:
        ShrinkageError: ``source`` is neither a regularizer nor a module.
    """
    stats = weight_stats(source, prefix)
    for tag, value in stats.items():
        writer.add_scalar(tag, value, global_step=step)
    if histograms:
        model = source.model if isinstance(source, Regularizer) else source
        head = f"{prefix}/" if prefix else ""
        norm = f"{head}l2_norm/"
        logged = {key[len(norm) :] for key in stats if key.startswith(norm)}
        for name, param in model.named_parameters():
            if name in logged:
                values = param.detach().float().cpu()
                writer.add_histogram(f"{head}weights/{name}", values, global_step=step)
    return stats


def log_plan(
    writer: SummaryWriter, regularizer: Regularizer, *, tag: str = "shrinkage/plan"
) -> str:
    """Write the regularizer's :meth:`~shrinkage.Regularizer.describe` table as text.

    Args:
        writer: a ``SummaryWriter``.
        regularizer: the regularizer whose plan to show.
        tag: the text's tag (TensorBoard's Text tab).

    Returns:
        The Markdown table written (TensorBoard renders it as a table).
    """
    head, *body = regularizer.describe().rows

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    text = "\n".join([line(head), "|" + " --- |" * len(head), *map(line, body)])
    writer.add_text(tag, text)
    return text
