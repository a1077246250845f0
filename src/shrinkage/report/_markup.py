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
table { border-collapse: collapse; font-size: 0.9rem; min-width: 50%; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
td:first-child { white-space: normal; min-width: 9em; }
th { background: #f7f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td { white-space: normal; overflow-wrap: anywhere; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; width: 1%; }
tr.best td { background: #fff8db; }
figure { margin: 12px 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
.note { color: var(--muted); font-size: 0.9rem; }
footer { color: var(--muted); font-size: 0.85rem; text-align: center; margin: 18px 0; }
@media (max-width: 640px) {
  body { font-size: 15px; }
  main { padding: 8px; }
  section { padding: 10px 12px; border-radius: 8px; }
  header h1 { font-size: 1.3rem; }
  th, td { padding: 3px 6px; }
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


def _table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] | None,
    *,
    highlight: int = -1,
    css: str = "",
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if header else ""
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_num(c)}</td>'
            if isinstance(c, int | float | np.number) and not isinstance(c, bool)
            else f"<td>{_e(c)}</td>"
            for c in row
        )
        body.append(f'<tr class="best">{cells}</tr>' if i == highlight else f"<tr>{cells}</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    table = f'<table class="{css}">' if css else "<table>"
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
