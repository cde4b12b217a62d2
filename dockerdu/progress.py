"""A progress line on a terminal's stderr during long walks; nothing anywhere else."""

from __future__ import annotations

import os
import time
from typing import TextIO

from .measure import Progress

INTERVAL = 0.2  # seconds between redraws


def progress_for(stream: TextIO) -> Progress | None:
    """A callback drawing `N files walked` on `stream`, or None when it is not a terminal."""
    try:
        if not stream.isatty() or os.environ.get("TERM") == "dumb":
            return None
    except (AttributeError, ValueError):
        return None
    last = [0.0]

    def draw(files: int, _bytes: int) -> None:
        now = time.monotonic()
        if now - last[0] < INTERVAL:
            return
        last[0] = now
        stream.write(f"\r\x1b[Kdockerdu: {files:,} files walked")
        stream.flush()

    return draw
