"""The HTML report: one self-contained file that shows what regularization did.

``_files.py`` reads and writes a results directory (what ``shrinkage tune`` writes:
``tune.json``, ``results.csv``, ``model/``, ``chunks/``, ``search.json``,
``baseline.safetensors``) and decides whether a directory is one; ``_html.py``
renders :class:`ReportInputs` as one HTML page with inline figures, no script and a
Content-Security-Policy that forbids loading anything. The report reads results; it never
trains (the CLI's workflows fit the unregularized baseline it compares against).
"""

from shrinkage.report._files import (
    BASELINE_FILE,
    CHUNKS_DIR,
    MANIFEST_FILE,
    METADATA_FILE,
    MODEL_DIR,
    REPORT_FILE,
    RESULTS_FILE,
    ReportInputs,
    check_results_dir,
    claim_results_dir,
    describe_data,
    forget_files,
    is_plane,
    load_report_inputs,
    owned_files,
    record_files,
    save_report_metadata,
    search_settings,
)
from shrinkage.report._html import build_report, render_html

__all__ = [
    "BASELINE_FILE",
    "CHUNKS_DIR",
    "MANIFEST_FILE",
    "METADATA_FILE",
    "MODEL_DIR",
    "REPORT_FILE",
    "RESULTS_FILE",
    "ReportInputs",
    "build_report",
    "check_results_dir",
    "claim_results_dir",
    "describe_data",
    "forget_files",
    "is_plane",
    "load_report_inputs",
    "owned_files",
    "record_files",
    "render_html",
    "save_report_metadata",
    "search_settings",
]
