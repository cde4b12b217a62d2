"""Defaults of `dockerdu image` that its --help shows, kept apart so the help needs no heavy import."""

DEFAULT_OFFENDERS = 10
"""How many of the largest hidden (wasted) paths an image's report lists."""
