"""Sizes for people: the one place dockerdu turns bytes into text."""

from __future__ import annotations

import humanize


def human(n: int | None) -> str:
    """Binary units (KiB, MiB, ...), or `-` for a figure that is not known."""
    if n is None:
        return "-"
    return str(humanize.naturalsize(n, binary=True, format="%.1f"))
