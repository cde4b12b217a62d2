"""Plain records shared by readers, analysis and renderers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Something under the root that could not be read or does not add up.

    `kind` is one of the JSON contract's problem kinds (e.g. `metadata_unreadable`),
    `path` is relative to the Docker root, `reason` is one line of plain text.
    """

    kind: str
    path: str
    reason: str
