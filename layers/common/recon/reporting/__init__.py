"""Reports (HTML via jinja2), machine-readable exports and the words of notifications.

``recon.reporting.tabular`` (the per-row CSV exports) needs pyarrow and is imported only where it is.
"""

from .export import cases_csv, matches_csv, summary_json
from .render import render_report, summary_text

__all__ = ["cases_csv", "matches_csv", "render_report", "summary_json", "summary_text"]
