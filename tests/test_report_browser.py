"""The report in a real browser: headless Chromium opens it from a file:// URL.

Chromium is driven over the DevTools protocol with the standard library only (a minimal
WebSocket client below): every image decodes, nothing is fetched but the file itself and
its data: images, the console stays free of errors (a blocked fetch would log a CSP
error), a screenshot is not blank, and at a phone's width the page does not scroll
sideways.

CI installs Chromium (``.ci/run``); without it these tests fail with the install command.
Set ``SHRINKAGE_SKIP_BROWSER=1`` to skip them on a machine without it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import make_moons

from shrinkage.cli import _workflows as W
from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV

pytestmark = pytest.mark.browser

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]
TIMEOUT = 60.0

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


def chromium() -> str:
    if os.environ.get("SHRINKAGE_SKIP_BROWSER") == "1":
        pytest.skip("SHRINKAGE_SKIP_BROWSER=1")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "headless Chromium is needed for the browser tests: install it with "
            "'apt-get install chromium' (CI does, in .ci/run), or set "
            "SHRINKAGE_SKIP_BROWSER=1 to skip them."
        )
    return found


class DevTools:
    """One page of a headless Chromium, over the DevTools protocol's WebSocket."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port.")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        path = page["webSocketDebuggerUrl"].split(str(port), 1)[1]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.events: list[dict[str, Any]] = []
        self.next_id = 0

    # -- WebSocket frames (RFC 6455): client frames are masked, server frames are not.

    def _send(self, text: str) -> None:
        payload = text.encode()
        header = bytearray([0x81])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools connection.")
            data += chunk
        return data

    def _receive(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: answer, keep reading
                continue
            if opcode == 0x8:
                raise RuntimeError("Chromium closed the DevTools connection.")
            message += payload
            if first & 0x80:
                return json.loads(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        for index, message in enumerate(self.events):
            if message.get("method") == event:
                return self.events.pop(index)
        while True:
            message = self._receive()
            if message.get("method") == event:
                return message
            self.events.append(message)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"]["value"]

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


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
