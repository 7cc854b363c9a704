"""MEASURE: a built-in causal measurement engine (config, simulator, models, job directories)."""
