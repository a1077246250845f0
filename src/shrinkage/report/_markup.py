"""The page's building blocks: the stylesheet, the policy, and escaped HTML pieces."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_CSS = """
:root { color-scheme: light; --ink: #1c2330; --muted: #5b6473; --line: #e2e5ea;
  --card: #ffffff; --bg: #f4f5f7; --accent: #2463eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; -webkit-text-size-adjust: 100%; }
main { max-width: 1040px; margin: 0 auto; padding: 16px; }
header h1 { margin: 8px 0 2px; font-size: 1.6rem; }
header p { margin: 0; color: var(--muted); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 18px; margin: 14px 0; }
h2 { font-size: 1.2rem; margin: 4px 0 10px; }
h3 { font-size: 1rem; margin: 12px 0 6px; }
p, li { overflow-wrap: anywhere; }
code { background: #eef1f5; border-radius: 4px; padding: 0 4px; font-size: 0.92em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
  gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.card .label { color: var(--muted); font-size: 0.85rem; }
.card .value { font-size: 1.15rem; font-weight: 600; overflow-wrap: anywhere; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-weight: 600;
  font-size: 0.9rem; }
.badge.variance { background: #fde2e1; color: #9b1c1c; }
.badge.bias { background: #fef3c7; color: #8a5300; }
.badge.balanced { background: #dcfce7; color: #166534; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: 0.9rem; max-width: 100%; }
table.data { width: 100%; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { background: #f7f8fa; font-weight: 600; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv { width: 100%; }
table.kv td { overflow-wrap: anywhere; }
table.kv td:first-child { color: var(--muted); width: 14em; }
tr.best td { background: #fff8db; }
.tag { display: inline-block; border-radius: 4px; padding: 0 6px; margin: 1px 2px 1px 0;
  font-size: 0.8rem; font-weight: 600; background: #e8eefc; color: #1e3a8a; white-space: nowrap; }
.tag.chosen { background: #fde68a; color: #713f12; }
figure { margin: 12px 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figure.plot svg { display: block; width: 100%; height: auto; margin: 0 auto; }
figure.plot .narrow { display: none; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
.note { color: var(--muted); font-size: 0.9rem; }
footer { color: var(--muted); font-size: 0.85rem; text-align: center; margin: 18px 0; }
@media (max-width: 760px) {
  figure.plot .wide { display: none; }
  figure.plot .narrow { display: block; }
}
@media (max-width: 640px) {
  body { font-size: 15px; }
  main { padding: 8px; }
  section { padding: 10px 12px; border-radius: 8px; }
  header h1 { font-size: 1.3rem; }
  th, td { padding: 3px 6px; }
  table.kv td:first-child { width: 40%; }
  /* A wide table becomes one card per row: each cell's header beside its value. */
  table.data, table.data tbody, table.data tr, table.data td { display: block; width: 100%; }
  table.data thead { display: none; }
  table.data tr { border-bottom: 1px solid var(--line); padding: 4px 0; }
  table.data td { display: flex; justify-content: space-between; gap: 12px; border: 0;
    padding: 2px 6px; text-align: right; white-space: normal; }
  table.data td::before { content: attr(data-label); color: var(--muted); text-align: left;
    flex: 0 0 45%; }
  table.data td:not([data-label])::before { display: none; }
  table.data td.empty { display: none; }
}
"""

# No script, no fetch: the report can load nothing but its own inline images and styles.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_KIND_TERMS = {
    "l2": "λ·Σw²",
    "l1": "λ·Σ|w|",
    "elastic_net": "λ·(ρ·Σ|w| + (1−ρ)·Σw²), ρ = l1_ratio",
    "group_lasso": "λ·Σ_rows √n_in·‖w_row‖",
    "exp_abs": "λ·Σ(exp(|w|) − 1)",
    "l2sp": "λ·Σ(w − w₀)²",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if math.isnan(number):
        return "–"
    return f"{number:.{digits}g}"


class Html(str):
    """Markup a table cell holds as it is (escaped text otherwise)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] | None,
    *,
    highlight: int = -1,
    css: str = "",
) -> str:
    """A table: numbers right-aligned, :class:`Html` cells as they are, text escaped.

    With a header it is a data table: at a phone's width each row becomes a card whose
    cells are labelled with their column's header (``data-label``), so no column is cut.
    """
    numeric = [
        bool(rows) and all(_is_number(r[i]) or r[i] in ("", None) for r in rows)
        for i in range(len(header or ()))
    ]
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if numeric[i] else f"<th>{_e(h)}</th>"
        for i, h in enumerate(header or ())
    )
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, c in enumerate(row):
            label = f' data-label="{_e(header[j])}"' if header and header[j] else ""
            if _is_number(c):
                cells.append(f'<td class="num"{label}>{_num(c)}</td>')
            elif c in ("", None):
                cells.append(f'<td class="empty"{label}></td>')
            elif isinstance(c, Html):
                cells.append(f"<td{label}>{c}</td>")
            else:
                cells.append(f"<td{label}>{_e(c)}</td>")
        row_html = "".join(cells)
        body.append(
            f'<tr class="best">{row_html}</tr>' if i == highlight else f"<tr>{row_html}</tr>"
        )
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    classes = " ".join(c for c in (css, "data" if header else "") if c)
    table = f'<table class="{classes}">' if classes else "<table>"
    return f'<div class="scroll">{table}{thead}<tbody>{"".join(body)}</tbody></table></div>'


def _pairs(mapping: Mapping[str, Any]) -> str:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = _short_list(value)
        elif isinstance(value, float):
            value = _num(value)
        rows.append((str(key).replace("_", " "), str(value)))
    return _table(rows, None, css="kv")


def _short_list(values: Sequence[Any], limit: int = 16) -> str:
    shown = [_num(v) if isinstance(v, float) else str(v) for v in values[:limit]]
    more = f", … ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(shown) + more
