"""Reports from a results database: the paper's figures, per-ratio tables, advice, claims check.

    from prunebench.report import write_report
    files = write_report("results/demo")          # results/demo/report/report.html + report.md

Modules: prepare (final rows, variants), analysis (aggregation), stats (Welch's test), advice
(recommendation), claims (the paper's claims), figures (DataFrame -> Figure), sections /
studies / overview (the Document's sections), html / markdown (writers), build (orchestration).
"""

from prunebench.report.build import ReportFiles, build_document, write_report

__all__ = ["ReportFiles", "build_document", "write_report"]
