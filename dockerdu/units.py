"""Sizes for people: the one place dockerdu turns bytes into text."""

from __future__ import annotations

import humanize

UNITS = ("docker", "binary", "bytes")
"""How a table prints bytes: Docker's decimal units (`80.7MB`), binary (`77.0 MiB`), raw."""
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human(n: int | None) -> str:
    """Binary units (KiB, MiB, ...), or `-` for a figure that is not known."""
    if n is None:
        return "-"
    return str(humanize.naturalsize(n, binary=True, format="%.1f"))


def docker_size(n: int) -> str:
    """Docker's own text for a size (go-units HumanSize): four significant digits, 1000-based."""
    size, i = float(n), 0
    while size >= 1000 and i < len(_DECIMAL) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{_DECIMAL[i]}"


def size_text(n: int | None, units: str = "docker") -> str:
    """A size in `units` (one of UNITS), or `-` for a figure that is not known."""
    if n is None:
        return "-"
    if units == "bytes":
        return str(n)
    return human(n) if units == "binary" else docker_size(n)
