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


CHECK_IMAGES = """(() => {
  const images = [...document.images];
  return {
    count: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    sections: document.querySelectorAll("section").length,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    widestImage: Math.max(...images.map(i => i.getBoundingClientRect().width)),
  };
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    yield tools
    tools.close()


@pytest.fixture(scope="module")
def report_url(tmp_path_factory) -> str:
    X, y = make_moons(60, noise=0.25, random_state=0)
    search = SearchCV(
        MLPClassifier((8,), epochs=20, batch_size=60, learning_rate=0.05),
        strengths=[1e-3, 1e-2, 1e-1],
        placements=("all", "output"),
        cv=2,
        random_state=0,
    ).fit(X, y)
    out = tmp_path_factory.mktemp("browser report")  # a space: the URL must be quoted
    path = W.write_tune_report(out, search, X, y, title="browser check")
    return path.resolve().as_uri()


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


def test_images_decode_without_errors_and_the_page_is_not_blank(browser, report_url):
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.open(report_url)
    state = browser.evaluate(CHECK_IMAGES)
    assert state["count"] == 6
    assert state["broken"] == []
    assert state["sections"] == 8
    shot = browser.call("Page.captureScreenshot", format="png")
    picture = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    pixels = np.asarray(picture)
    assert picture.size == (1280, 900)
    assert pixels.std() > 10  # text and cards, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert problems(browser.events, report_url) == []


def test_phone_width_does_not_scroll_sideways(browser, report_url):
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=390,
        height=844,
        deviceScaleFactor=2,
        mobile=True,
    )
    browser.open(report_url)
    state = browser.evaluate(CHECK_IMAGES)
    assert state["innerWidth"] == 390
    assert state["scrollWidth"] <= state["innerWidth"]
    assert state["widestImage"] <= 390
    assert state["broken"] == []
    assert problems(browser.events, report_url) == []


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    # The same policy as the report, one image from the network and one that does not decode:
    # the checks above must see both, or their silence on the report would mean nothing.
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        '</head><body><img alt="remote" src="https://example.invalid/a.png">'
        '<img alt="corrupt" src="data:image/png;base64,AAAA"></body></html>'
    )
    url = page.as_uri()
    browser.open(url)
    assert browser.evaluate(CHECK_IMAGES)["broken"] == ["remote", "corrupt"]
    found = problems(browser.events, url)
    assert any("Content Security Policy" in p and "example.invalid" in p for p in found), found
