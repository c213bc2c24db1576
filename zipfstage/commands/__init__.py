"""One module per CLI command; each turns options into one library call."""
