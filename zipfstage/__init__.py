"""zipfstage: do LLM activations follow power laws? Collect, fit, plot and report by stage."""

__version__ = "0.1.0"
