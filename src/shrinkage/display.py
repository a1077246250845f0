"""Tables that print as plain text and display as tables in notebooks.

:meth:`Plan.describe` and :meth:`Regularizer.describe` return a :class:`Table`: a ``str``
(so ``print``, ``==``, ``in`` and ``splitlines`` behave exactly as with plain text) that
also has ``_repr_html_`` for Jupyter and ``__rich__`` for ``rich.print``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["Table"]


def _text(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


class Table(str):
    """Rows of text cells, the first being the header, that is also their aligned text.

    Columns are left-aligned and separated by two spaces; trailing spaces are dropped.

    Args:
        rows: the header row, then the body rows; every row has the same number of cells.

    Example:
        >>> table = Table([("name", "value"), ("a", "1")])
        >>> print(table)
        name  value
        a     1
        >>> table.rows[1]
        ('a', '1')
        >>> ">name</th>" in table._repr_html_()
        True
    """

    rows: tuple[tuple[str, ...], ...]

    def __new__(cls, rows: Sequence[Sequence[str]]) -> Table:
        rows = tuple(tuple(str(cell) for cell in row) for row in rows)
        self = super().__new__(cls, _text(rows) if rows else "")
        self.rows = rows
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # str's pickling would call Table(text); rebuild from the rows instead.
        return (type(self), (self.rows,))

    def _repr_html_(self) -> str:
        """The table as HTML (Jupyter calls this to display it)."""
        if not self.rows:
            return "<table></table>"
        head, *body = self.rows
        cell = 'style="text-align:left; font-family:monospace; padding:2px 1.5em 2px 0"'
        lines = ['<table class="shrinkage-table">', "<thead><tr>"]
        lines += [f"<th {cell}>{html.escape(c)}</th>" for c in head]
        lines.append("</tr></thead><tbody>")
        for row in body:
            lines.append("<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in row))
            lines.append("</tr>")
        lines.append("</tbody></table>")
        return "\n".join(lines)

    def __rich__(self) -> Any:
        """The table as a :class:`rich.table.Table` (``rich.print`` calls this)."""
        from rich.table import Table as RichTable

        if not self.rows:
            return ""
        head, *body = self.rows
        table = RichTable(*head, box=None, header_style="bold", pad_edge=False)
        for row in body:
            table.add_row(*row)
        return table

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's terminal shows the aligned text, not a quoted string."""
        printer.text(str(self))
