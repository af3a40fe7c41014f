"""One self-contained HTML page for all cycles of a session: pass or fail first, then each
cycle's verdict, timeline and evidence.

``write_html(report_dir, runs, checks=..., expected=...)`` writes ``report_dir/index.html``
from the per-cycle JSON records (:meth:`pytest_vmsnap.cycle.result.RunResult.to_dict`) and,
from a pytest session, its checks and what they expected of each cycle (:mod:`.checks`). Every
duration is one number with one definition (:mod:`.measures`), the same in the tables, the
cards and the timeline's bars. The page has inline CSS and inline SVG only: no JavaScript, no
fonts or images from anywhere, so it can be attached to a CI job and opened offline. Every
field may be missing or of the wrong type (a run that failed before the VM was built has
little more than an ``error``); everything that came from a run is escaped.
"""

from .checks import CheckResult, Expected
from .page import render_html, write_html

__all__ = ["CheckResult", "Expected", "render_html", "write_html"]
