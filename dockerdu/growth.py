"""Growth since the previous audit: per category, and who grew most."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import humanize

from .history import KINDS, Snapshot, consumers
from .report import Report
from .text import display
from .units import human

PER_KIND = 5
"""How many of the largest growers of each kind (images, containers, volumes, orphans) to name."""
SINGULAR = {"images": "image", "containers": "container", "volumes": "volume", "orphans": "orphan"}


def signed(n: int) -> str:
    """A change in bytes for people: `+1.0 MiB`, `-512 Bytes`, `0 Bytes`."""
    return f"+{human(n)}" if n > 0 else f"-{human(-n)}" if n < 0 else human(0)


@dataclass(frozen=True)
class Change:
    """One image, container, volume or orphan that grew (or appeared) since the previous audit."""

    kind: str
    """image, container, volume or orphan."""
    id: str
    name: str
    before: int
    after: int
    new: bool
    """Not there at the previous audit (which listed all of that kind)."""
    at_least: bool
    """Not among the largest the previous audit kept: `before` is an upper bound of what it
    had (the smallest kept), so `change` is a lower bound."""

    @property
    def change(self) -> int:
        """Bytes gained."""
        return self.after - self.before

    def change_text(self) -> str:
        """`+1.0 MiB`, `new, 1.0 MiB` or `at least +1.0 MiB`."""
        if self.new:
            return f"new, {human(self.after)}"
        return f"at least {signed(self.change)}" if self.at_least else signed(self.change)


@dataclass(frozen=True)
class Growth:
    """What changed between the previous audit of a root and this report."""

    since: str
    """`generated_at` of the previous audit."""
    seconds: float | None
    """Time between the two, when both timestamps parse."""
    categories: tuple[tuple[str, int, int], ...]
    """(name, before, after) for each figure of `totals` known both times, in its order."""
    grew: tuple[Change, ...]
    """The largest growers of each kind, largest change first."""

    @property
    def total(self) -> int | None:
        """Change of `root_disk`, when it is known both times."""
        return next((after - before for name, before, after in self.categories if name == "root_disk"), None)


def _seconds(before: str, after: str) -> float | None:
    try:
        return (dt.datetime.fromisoformat(after) - dt.datetime.fromisoformat(before)).total_seconds()
    except (ValueError, TypeError):
        return None


def compare(previous: Snapshot, report: Report, per_kind: int = PER_KIND) -> Growth:
    """Growth from `previous` (a history line of the same root) to `report`."""
    now = Snapshot.of(report)
    categories = tuple(
        (name, before_total, after)
        for name, after in now.totals.items()
        if after is not None and (before_total := previous.totals.get(name)) is not None
    )
    grew: list[Change] = []
    for kind, items in consumers(report).items():
        kept = previous.top.get(kind, ())
        before = {i.id: i.disk for i in kept}
        whole = previous.counts.get(kind, 0) <= len(kept)
        floor = 0 if whole else min((i.disk for i in kept), default=0)
        changes: list[Change] = []
        for item in items:
            if item.id in before:
                change = Change(SINGULAR[kind], item.id, item.name, before[item.id], item.disk, False, False)
            elif whole:
                change = Change(SINGULAR[kind], item.id, item.name, 0, item.disk, True, False)
            else:
                change = Change(SINGULAR[kind], item.id, item.name, floor, item.disk, False, True)
            if change.change > 0:
                changes.append(change)
        changes.sort(key=lambda c: (-c.change, c.kind, c.id))
        grew += changes[:per_kind]
    grew.sort(key=lambda c: (-c.change, KINDS.index(c.kind + "s"), c.id))
    return Growth(previous.at, _seconds(previous.at, report.generated_at), categories, tuple(grew))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    cells = [[display(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    return [
        "  ".join(
            v.ljust(w) if i < left else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in [list(headers), *cells]
    ]


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else f", {humanize.naturaldelta(dt.timedelta(seconds=seconds))} earlier"


def growth_lines(growth: Growth) -> list[str]:
    """The growth as a section of the table report."""
    rows = [
        [
            name.replace("_", " ") if name != "root_disk" else "total (du -sx)",
            human(b),
            human(a),
            signed(a - b),
        ]
        for name, b, a in growth.categories
        if not (name == "image_content" and a == b == 0)  # the containerd store's alone
    ]
    lines = ["", f"Growth since the previous audit ({growth.since}{_ago(growth.seconds)})"]
    lines += _table(["CATEGORY", "BEFORE", "NOW", "CHANGE"], rows, 1)
    if growth.grew:
        grew = [
            [c.kind, c.name, "-" if c.new else ("≤ " if c.at_least else "") + human(c.before), human(c.after),
             "new" if c.new else ("≥ " if c.at_least else "") + signed(c.change)]
            for c in growth.grew
        ]  # fmt: skip
        lines += ["", "Grew most", *_table(["KIND", "NAME", "BEFORE", "NOW", "CHANGE"], grew, 2)]
    else:
        lines += ["", "Grew most: nothing grew"]
    return lines


def render_growth_table(growth: Growth) -> str:
    """The growth section, as text."""
    return "\n".join(growth_lines(growth)) + "\n"


def growth_dict(growth: Growth) -> dict[str, Any]:
    """The growth as JSON-ready data (the `growth` object of the JSON report)."""
    return {
        "since": growth.since,
        "seconds": growth.seconds,
        "total": growth.total,
        "categories": {name: {"before": b, "after": a, "change": a - b} for name, b, a in growth.categories},
        "grew": [
            {
                "kind": c.kind,
                "id": c.id,
                "name": c.name,
                "before": c.before,
                "after": c.after,
                "change": c.change,
                "new": c.new,
                "at_least": c.at_least,
            }
            for c in growth.grew
        ],
    }
