"""describe() tables: the same text as before, plus HTML and rich displays for notebooks."""

import copy
import pickle
import re
from html.parser import HTMLParser

from rich.console import Console
from torch import nn

from shrinkage import L1, L2, Plan, Regularizer
from shrinkage.display import Table

MODEL_TEXT = "\n".join(
    [
        "parameter   shape   penalty  strength  reason",
        "0.weight    (2, 3)  L2       l2=0.01   rule 0 ('*')",
        "0.bias      (2,)    -        -         bias (excluded by default)",
        "2.weight    (1, 2)  L1       l1=0.001  rule 1 ('2.weight')",
        "2.bias      (1,)    -        -         bias (excluded by default)",
        "0 (output)  -       L1       l1=0.1    activity of Linear, / batch size",
    ]
)


def model_and_plan():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    plan = Plan({"*": L2(0.01), "2.weight": L1(0.001)}, activity={"0": L1(0.1)})
    return model, plan


class Cells(HTMLParser):
    """The text of every <th>/<td>, row by row."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.rows[-1].append(self._cell)
            self._cell = None


def test_describe_text_is_unchanged_and_is_a_str(capsys):
    model, plan = model_and_plan()
    table = plan.describe(model)
    assert isinstance(table, Table) and isinstance(table, str)
    assert table == MODEL_TEXT and str(table) == MODEL_TEXT and type(str(table)) is str
    print(table)
    assert capsys.readouterr().out == MODEL_TEXT + "\n"
    reg = Regularizer(model, plan, "gradient")
    assert isinstance(reg.describe(), Table) and reg.describe() == MODEL_TEXT
    reg.remove()


def test_html_has_every_cell_escaped():
    model, plan = model_and_plan()
    table = plan.describe(model)
    page = table._repr_html_()
    parser = Cells()
    parser.feed(page)
    assert [tuple(r) for r in parser.rows] == list(table.rows)
    assert parser.rows[0] == ["parameter", "shape", "penalty", "strength", "reason"]
    assert parser.rows[3][0] == "2.weight" and parser.rows[3][2] == "L1"
    # Quotes and angle brackets in selectors are escaped, not markup.
    odd = Table([("a<b>", "x"), ("'*'", "&")])._repr_html_()
    assert "a&lt;b&gt;" in odd and "&#x27;*&#x27;" in odd and "&amp;" in odd
    assert "<b>" not in odd


def test_rich_renders_a_table_with_the_same_cells():
    model, plan = model_and_plan()
    table = plan.describe(model)
    console = Console(record=True, width=200, color_system=None)
    console.print(table)
    lines = [line.split() for line in console.export_text().splitlines() if line.strip()]
    assert lines[0] == ["parameter", "shape", "penalty", "strength", "reason"]
    assert lines[1][:3] == ["0.weight", "(2,", "3)"]
    assert len(lines) == len(table.rows)


def test_rows_pickle_and_copy():
    model, plan = model_and_plan()
    table = plan.describe(model)
    for clone in (pickle.loads(pickle.dumps(table)), copy.copy(table), copy.deepcopy(table)):
        assert isinstance(clone, Table) and clone == table and clone.rows == table.rows


def test_ipython_pretty_shows_the_text():
    class Printer:  # IPython's RepresentationPrinter, reduced to what the table uses
        written = ""

        def text(self, s):
            self.written += s

    model, plan = model_and_plan()
    printer = Printer()
    plan.describe(model)._repr_pretty_(printer, cycle=False)
    assert printer.written == MODEL_TEXT and type(printer.written) is str


def test_empty_table():
    assert Table([]) == "" and Table([])._repr_html_() == "<table></table>"
    assert re.fullmatch(r"a  b\nc", Table([("a", "b"), ("c", "")]))
