"""The HTML report: one self-contained file that shows what regularization did.

``_files.py`` reads and writes a results directory (what ``shrinkage tune`` writes:
``results.csv``, ``model/``, ``search.json``, ``baseline.safetensors``); ``_html.py``
renders :class:`ReportInputs` as one HTML page with inline figures, no script and a
Content-Security-Policy that forbids loading anything. The report reads results; it never
trains (the CLI's workflows fit the unregularized baseline it compares against).
"""

from shrinkage.report._files import (
    BASELINE_FILE,
    METADATA_FILE,
    MODEL_DIR,
    REPORT_FILE,
    RESULTS_FILE,
    ReportInputs,
    describe_data,
    is_plane,
    load_report_inputs,
    save_report_metadata,
    search_settings,
)
from shrinkage.report._html import build_report, render_html

__all__ = [
    "BASELINE_FILE",
    "METADATA_FILE",
    "MODEL_DIR",
    "REPORT_FILE",
    "RESULTS_FILE",
    "ReportInputs",
    "build_report",
    "describe_data",
    "is_plane",
    "load_report_inputs",
    "render_html",
    "save_report_metadata",
    "search_settings",
]
