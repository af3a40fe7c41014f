"""One self-contained HTML page for all cycles of a session: verdicts, timelines, evidence.

``write_html(report_dir, runs)`` writes ``report_dir/index.html`` from the per-cycle JSON records
(:meth:`pytest_vmsnap.cycle.run.RunResult.to_dict`). The page has inline CSS and inline SVG only:
no JavaScript, no fonts or images from anywhere, so it can be attached to a CI job and opened
offline. Every field may be missing or of the wrong type (a run that failed before the VM was
built has little more than an ``error``); everything that came from a run is escaped.
"""

from .page import render_html, write_html

__all__ = ["render_html", "write_html"]
