"""ALLOCATE: choose the portfolio a budget can fund (the fan-in stage)."""
