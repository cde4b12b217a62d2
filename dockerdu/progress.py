"""A progress line on a terminal's stderr during long walks; nothing anywhere else."""

from __future__ import annotations

import os
import time
from typing import TextIO

from .measure import Progress
from .units import human

INTERVAL = 0.2  # seconds between redraws
CLEAR = "\r\x1b[K"


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def progress_for(stream: TextIO) -> Progress | None:
    """A callback drawing `N files, X walked` on `stream`, or None when it is not a terminal.

    The walk calls it with (-1, -1) when it ends: the line is then erased, so that
    nothing of it stays above the report.
    """
    try:
        if not stream.isatty() or os.environ.get("TERM") == "dumb":
            return None
    except (AttributeError, ValueError):
        return None
    last = [0.0]

    def draw(files: int, walked: int) -> None:
        if files < 0:
            if last[0]:
                stream.write(CLEAR)
                stream.flush()
            return
        now = time.monotonic()
        if now - last[0] < INTERVAL:
            return
        last[0] = now
        line = f"dockerdu: {files:,} files, {human(walked)} walked"
        # Shorter than the terminal: a line that wrapped would leave its first rows behind.
        stream.write(CLEAR + line[: max(_columns(stream) - 1, 1)])
        stream.flush()

    return draw
