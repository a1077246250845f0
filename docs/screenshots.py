"""Screenshots of the demo report and a tune report at a desktop and a phone width.

Builds both reports (``shrinkage demo`` and ``shrinkage tune`` on scikit-learn's breast
cancer data: 10 strengths x 3 placements x 5 folds), opens each in headless Chromium
(``tests/devtools.py``) at 1280 and 390 CSS pixels wide and saves a full-page screenshot:

    docs/report-demo-1280.png   docs/report-demo-390.png
    docs/report-tune-1280.png   docs/report-tune-390.png

Run from the repository root (``--quick``: fewer epochs, for a smoke run; ``--out``: where
to write the pictures)::

    python docs/screenshots.py [--quick] [--out docs]
"""

from __future__ import annotations

import argparse
import base64
import io
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from devtools import INSTALL, DevTools, find_chromium  # noqa: E402

#: (CSS width, device pixel ratio, mobile) of each screenshot.
WIDTHS = {1280: (1, False), 390: (2, True)}


def build_reports(folder: Path, quick: bool) -> dict[str, Path]:
    """Run ``shrinkage demo`` and ``shrinkage tune``; the two report.html paths."""
    from sklearn.datasets import load_breast_cancer

    shrinkage = [sys.executable, "-c", "from shrinkage.cli import main; main()"]
    demo_epochs = ["--epochs", "300"] if quick else []
    subprocess.run([*shrinkage, "demo", "-q", "-o", str(folder / "demo"), *demo_epochs], check=True)
    data = folder / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.rename(columns={"target": "malignant"}).to_csv(
        data, index=False
    )
    tune = [
        *shrinkage,
        "tune",
        str(data),
        "--target",
        "malignant",
        "--placements",
        "all,hidden,output",
        "--grid-min",
        "1e-5",
        "--grid-max",
        "1",
        "--per-decade",
        "2",
        "--folds",
        "5",
        "--hidden",
        "32",
        "--epochs",
        "10" if quick else "60",
        "--threads",
        "1",
        "-q",
        "-o",
        str(folder / "tune"),
    ]
    subprocess.run(tune, check=True)
    return {"demo": folder / "demo" / "report.html", "tune": folder / "tune" / "report.html"}


def screenshot(browser: DevTools, url: str, width: int, scale: int, mobile: bool) -> bytes:
    """A full-page PNG of ``url`` at ``width`` CSS pixels."""
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=900,
        deviceScaleFactor=scale,
        mobile=mobile,
    )
    browser.open(url)
    height = browser.evaluate("document.documentElement.scrollHeight")
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=int(height),
        deviceScaleFactor=scale,
        mobile=mobile,
    )
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    return base64.b64decode(shot["data"])


def main() -> None:
    """Build both reports and save the four screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs: a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        sys.exit(f"headless Chromium is needed: {INSTALL}.")
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        reports = build_reports(Path(tmp), args.quick)
        browser = DevTools(binary, Path(tmp) / "profile")
        try:
            for domain in ("Page", "Runtime"):
                browser.call(f"{domain}.enable")
            for name, report in reports.items():
                for width, (scale, mobile) in WIDTHS.items():
                    png = screenshot(browser, report.resolve().as_uri(), width, scale, mobile)
                    picture = Image.open(io.BytesIO(png)).convert("RGB")
                    if scale > 1:  # a phone's picture at its CSS size: half the bytes
                        picture = picture.resize(
                            (picture.width // scale, picture.height // scale), Image.LANCZOS
                        )
                    path = args.out / f"report-{name}-{width}.png"
                    picture.quantize(colors=256).save(path, optimize=True)
                    size = path.stat().st_size // 1024
                    print(f"{path}: {picture.width}x{picture.height}, {size} kB")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
