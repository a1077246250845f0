"""The README's two commands on a fresh machine: what `make` installs and when, what
`make test` does without Chromium, and what CI requires."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make(folder: Path, *args: str) -> str:
    # Under `make test` this runs inside make: its variables would make the inner make a
    # sub-make ("make[1]: Entering directory ...").
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_install_stamp_follows_the_content_of_pyproject_not_its_mtime(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert "pip install" in _make(tmp_path, "test")  # nothing installed yet
    stamp = next(
        line.split(":=")[1].strip()
        for line in _make(tmp_path, "-p", "test").splitlines()
        if line.startswith("STAMP :=")
    )
    (tmp_path / stamp).parent.mkdir()
    (tmp_path / stamp).touch()
    assert _make(tmp_path, "test").split("\n")[0].endswith("-m pytest -q")
    # A clone or a checkout gives pyproject.toml a new mtime: no reinstall.
    later = (tmp_path / stamp).stat().st_mtime + 3600
    os.utime(tmp_path / "pyproject.toml", (later, later))
    assert "pip install" not in _make(tmp_path, "test")
    # A changed dependency list does reinstall, and drops the old stamp.
    with open(tmp_path / "pyproject.toml", "a") as handle:
        handle.write("\n# changed\n")
    planned = _make(tmp_path, "test")
    assert "pip install" in planned and "rm -f .venv/.installed .venv/.installed-*" in planned
    # So does another torch index (the CPU wheels on Linux).
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    cpu = _make(tmp_path, "test", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    assert "--index-url https://download.pytorch.org/whl/cpu torch==" in cpu


def test_ci_requires_the_browser_tests():
    script = (ROOT / ".ci" / "run").read_text()
    assert "export SHRINKAGE_REQUIRE_BROWSER=1" in script
    assert script.index("export SHRINKAGE_REQUIRE_BROWSER=1") < script.index("\nmake test")


def _browser_tests(**env: str) -> subprocess.CompletedProcess:
    # With one other test, as in `make test` (a run whose tests all skip exits with 5).
    files = [
        "tests/test_report_browser.py",
        "tests/test_setup.py::test_ci_requires_the_browser_tests",
    ]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SHRINKAGE_REQUIRE_BROWSER": "0", **env},
    )


def test_without_chromium_the_browser_tests_skip_and_say_how_to_run_them():
    # SHRINKAGE_CHROMIUM naming no binary hides any Chromium on PATH.
    result = _browser_tests(SHRINKAGE_CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped" in result.stdout
    assert "SKIPPED" in result.stdout and "headless Chromium not found" in result.stdout
    assert "apt-get install chromium" in result.stdout
    assert "brew install --cask chromium" in result.stdout


def test_where_required_a_missing_chromium_fails():
    result = _browser_tests(
        SHRINKAGE_CHROMIUM="/nonexistent/chromium", SHRINKAGE_REQUIRE_BROWSER="1"
    )
    assert result.returncode != 0
    assert "skipped" not in result.stdout
    assert "SHRINKAGE_REQUIRE_BROWSER=1: they must run here" in result.stdout
