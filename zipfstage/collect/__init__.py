"""Run a causal LM over packed text and reduce each token's hidden vector to scalar metrics."""
