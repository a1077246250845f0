"""The report in a real browser: headless Chromium opens it from a file:// URL.

Chromium is driven over the DevTools protocol with the standard library only
(``tests/devtools.py``): every image decodes, nothing is fetched but the file itself and
its data: images, the console stays free of errors (a blocked fetch would log a CSP
error), a screenshot is not blank, and at a phone's width the page does not scroll
sideways.

Without Chromium these tests are skipped, and pytest's summary says why and how to run
them. ``SHRINKAGE_REQUIRE_BROWSER=1`` makes a missing Chromium a failure instead: CI sets
it (``.ci/run``), so there they can never be skipped. ``SHRINKAGE_SKIP_BROWSER=1`` skips
them even where Chromium is installed (unless they are required).
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import numpy as np
import pytest
from devtools import INSTALL, DevTools, find_chromium
from PIL import Image
from sklearn.datasets import make_moons

from shrinkage.cli import _workflows as W
from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV

pytestmark = pytest.mark.browser


_REQUIRED = os.environ.get("SHRINKAGE_REQUIRE_BROWSER") == "1"
_MISSING = (
    f"headless Chromium not found, so the report's browser tests did not run: {INSTALL}, "
    "then run 'make test' (or pytest tests/test_report_browser.py)"
)
if not _REQUIRED:  # one line in pytest's summary for the whole file
    if os.environ.get("SHRINKAGE_SKIP_BROWSER") == "1":
        pytest.skip("browser tests skipped: SHRINKAGE_SKIP_BROWSER=1", allow_module_level=True)
    if find_chromium() is None:
        pytest.skip(_MISSING, allow_module_level=True)


def chromium() -> str:
    """The browser; where it is required and missing, each test fails saying so."""
    found = find_chromium()
    if found is None:
        pytest.fail(f"{_MISSING}. SHRINKAGE_REQUIRE_BROWSER=1: they must run here.")
    return found


# What a page shows, measured by the browser: images and the SVG plots (their rasterized
# layers decoded too), tables against their section, and the size of every visible plot
# text in CSS pixels (its font size times the scale from its SVG units to the screen).
CHECK_PAGE = """(async () => {
  const visible = e => e.getClientRects().length > 0;
  const images = [...document.images];
  const svgs = [...document.querySelectorAll("figure svg")].filter(visible);
  const rasters = [...document.querySelectorAll("figure svg image")].filter(visible);
  const undecodable = [];
  for (const r of rasters) {
    const img = new Image();
    img.src = r.getAttribute("xlink:href") || r.getAttribute("href");
    try { await img.decode(); } catch (e) { undecodable.push(img.src.slice(0, 30)); }
  }
  const overflowing = [...document.querySelectorAll("table")].filter(visible).filter(t => {
    const box = t.getBoundingClientRect(), outer = t.closest("section").getBoundingClientRect();
    const scroller = t.closest(".scroll");
    return box.right > outer.right + 0.5 || box.left < outer.left - 0.5 ||
      (scroller && scroller.scrollWidth > scroller.clientWidth + 0.5);
  }).map(t => t.querySelector("th, td").textContent);
  const sizes = [...document.querySelectorAll("figure svg text")].filter(visible).map(t => {
    const m = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    return [px, t.textContent];
  }).sort((a, b) => a[0] - b[0]);
  return {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    plots: svgs.length,
    plotLabels: svgs.map(s => s.getAttribute("aria-label")),
    rasters: rasters.length,
    undecodable: undecodable,
    widestPlot: Math.max(0, ...svgs.map(s => s.getBoundingClientRect().width)),
    texts: sizes.length,
    smallestText: sizes.length ? sizes[0] : null,
    tables: [...document.querySelectorAll("table")].filter(visible).length,
    overflowing: overflowing,
    sections: document.querySelectorAll("section").length,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
})()"""

#: The figures of both reports below, in order.
PLOTS = [
    "validation curve",
    "regularization path",
    "placement study",
    "weight histograms",
    "learning curves",
    "decision boundary",
]
#: (CSS width, height, device pixel ratio, mobile): a desktop and a phone.
SCREENS = {"desktop": (1280, 900, 1, False), "phone": (390, 844, 2, True)}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    yield tools
    tools.close()


def _search(X, y):
    return SearchCV(
        MLPClassifier((8,), epochs=20, batch_size=60, learning_rate=0.05),
        strengths=[1e-3, 1e-2, 1e-1],
        placements=("all", "output"),
        cv=2,
        random_state=0,
    ).fit(X, y)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, str]:
    """A tune report and a demo report (their URLs), on two moons."""
    X, y = make_moons(60, noise=0.25, random_state=0)
    out = tmp_path_factory.mktemp("browser report")  # a space: the URL must be quoted
    tune = W.write_tune_report(out, _search(X, y), X, y, title="browser check")
    X_test, y_test = make_moons(40, noise=0.25, random_state=1)
    search = _search(X, y)
    baseline = MLPClassifier((8,), epochs=20, batch_size=60, learning_rate=0.05, penalty="none")
    demo = W.write_demo_report(
        out / "demo.html",
        search.best_estimator_,
        baseline.fit(X, y),
        X,
        y,
        X_test,
        y_test,
        search=search,
    )
    return {"tune": tune.resolve().as_uri(), "demo": demo.resolve().as_uri()}


def show(browser: DevTools, url: str, screen: str) -> dict[str, Any]:
    width, height, scale, mobile = SCREENS[screen]
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=scale,
        mobile=mobile,
    )
    browser.open(url)
    result = browser.call(
        "Runtime.evaluate", expression=CHECK_PAGE, returnByValue=True, awaitPromise=True
    )
    return result["result"]["value"]


def problems(events: list[dict[str, Any]], url: str) -> list[str]:
    """Console errors, uncaught exceptions, and any fetch other than the file and data:."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            found.append(f"console.{params['type']}: {params['args']}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            target = params["request"]["url"]
            if target != url and not target.startswith("data:"):
                found.append(f"fetch: {target}")
    return found


@pytest.mark.parametrize("report", ["tune", "demo"])
def test_plots_render_without_errors_and_the_page_is_not_blank(browser, reports, report):
    url = reports[report]
    state = show(browser, url, "desktop")
    assert state["plotLabels"] == PLOTS  # one drawing of each, the wide one
    assert state["broken"] == [] and state["undecodable"] == []
    assert state["rasters"] >= 2  # the decision boundaries' filled contours
    assert state["sections"] == 8
    shot = browser.call("Page.captureScreenshot", format="png")
    picture = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    pixels = np.asarray(picture)
    assert picture.size == (1280, 900)
    assert pixels.std() > 10  # text and cards, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert problems(browser.events, url) == []


@pytest.mark.parametrize("screen", ["desktop", "phone"])
@pytest.mark.parametrize("report", ["tune", "demo"])
def test_tables_fit_and_plot_text_is_at_least_10_css_pixels(browser, reports, report, screen):
    url = reports[report]
    state = show(browser, url, screen)
    assert state["tables"] >= 6
    assert state["overflowing"] == []
    assert state["scrollWidth"] <= state["innerWidth"]  # the page never scrolls sideways
    assert state["plots"] == len(PLOTS) and state["widestPlot"] <= state["innerWidth"]
    assert state["texts"] > 50  # ticks, labels, titles and legends are text, measured
    size, text = state["smallestText"]
    assert size >= 10, f"plot text {text!r} is {size:.1f} CSS px at {screen} width"
    assert problems(browser.events, url) == []


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    # The report's policy, one image from the network, one that does not decode, a table
    # wider than its section and 6-pixel plot text: the checks above must see each, or
    # their silence on the reports would mean nothing.
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        '</head><body><img alt="remote" src="https://example.invalid/a.png">'
        '<img alt="corrupt" src="data:image/png;base64,AAAA">'
        '<section style="width: 300px"><table><tr><td style="white-space: nowrap">'
        + "wide "
        * 100
        + '</td></tr></table></section><figure><svg viewBox="0 0 100 50" '
        'style="width: 100px"><text x="0" y="20" style="font-size: 6px">tiny</text></svg>'
        "</figure></body></html>"
    )
    url = page.as_uri()
    browser.open(url)
    result = browser.call(
        "Runtime.evaluate", expression=CHECK_PAGE, returnByValue=True, awaitPromise=True
    )
    state = result["result"]["value"]
    assert state["broken"] == ["remote", "corrupt"]
    assert state["overflowing"] == ["wide " * 100]
    assert state["smallestText"] == [6, "tiny"]
    found = problems(browser.events, url)
    assert any("Content Security Policy" in p and "example.invalid" in p for p in found), found
