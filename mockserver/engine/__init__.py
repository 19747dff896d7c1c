"""Runs in motion: attempts on the simulated clock, the retry rule, the workers that train."""
