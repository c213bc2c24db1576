"""The report a researcher reads: report.html (self-contained) and report.md."""

from zipfstage.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
