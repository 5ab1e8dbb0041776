"""Reports from a results database: the paper's figures, per-ratio tables, decisions, claims.

    from prunebench.report import write_report
    files = write_report("results/demo")          # results/demo/report/report.html + report.md

Modules: prepare (final rows, variants), analysis (aggregation), uncertainty (intervals over
seeds and test examples), candidates (pairing), verdicts (three outcomes, Holm, seeds to
decide), decisions (one decision per criterion, ratio and budget; the claims use them), claims,
advice (the words), figures (DataFrame -> Figure), sections / studies / overview (the
Document's sections), html / markdown (writers), build (orchestration), terminal (`advise`),
calibration (simulated comparisons with a known truth; also the old Welch method, for the
benchmark).
This module only re-exports.
"""

from prunebench.report.build import ReportFiles, build_document, write_report

__all__ = ["ReportFiles", "build_document", "write_report"]
