"""The report a researcher reads: report.html (self-contained) and report.md.

The stage entry is `zipfstage.report.stage.run`. Reading fits needs no plotting; the report's
figures are drawn by `zipfstage.plotting`'s figure functions.
"""
