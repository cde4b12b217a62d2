"""Every root of the layout walked, one account: the Docker root and, if any, a containerd root.

Each root is walked on its own, within its own file system, by the same walk, with the
marks of the paths under it (`Layout.marks_of`). The measurements are then added: each
root's inodes counted once within it, as `du -sx -B1` of each counts them.
"""

from __future__ import annotations

import os

from .index import Index
from .layout import Root
from .measure import Measurement, Progress, Tally, TaskCache, measure
from .model import Category, Problem
from .report import RootReport


def measure_roots(
    index: Index, progress: Progress | None, *, jobs: int, quick: bool, cache: TaskCache | None = None
) -> tuple[Measurement, tuple[RootReport, ...]]:
    """Walk each root of `index.layout` and add the measurements; `cache` serves the Docker root's."""
    layout = index.layout
    skip = (lambda owner: owner.category == Category.images) if quick else None
    total: Measurement | None = None
    reports: list[RootReport] = []
    for root in layout.roots:
        if root.prefix and not os.path.isdir(root.path):
            continue
        marks = layout.marks_of(root, index.marks)
        m = measure(
            root.path,
            marks,
            Index.parents_of(marks),
            progress,
            split_parents=root.split,
            jobs=jobs,
            cache=cache if root is layout.docker else None,
            skip_owner=skip,
        )
        reports.append(RootReport(root.path, root.role, None if m.skipped else m.root_disk))
        total = m if total is None else combine(total, m, root)
    assert total is not None  # the Docker root is always walked
    return total, tuple(reports)


def combine(first: Measurement, other: Measurement, root: Root) -> Measurement:
    """One measurement of two roots: tallies of an owner added, paths under `root` as the marks
    name them. Each root's inodes were counted once within it, as `du -sx` of each counts them."""
    tallies = {o: Tally(t.disk, t.inodes, t.incomplete) for o, t in first.tallies.items()}
    for owner, t in other.tallies.items():
        mine = tallies.setdefault(owner, Tally())
        mine.disk += t.disk
        mine.inodes += t.inodes
        mine.incomplete = mine.incomplete or t.incomplete
    problems = [
        *first.problems,
        *(
            Problem(p.kind, f"{root.prefix}{p.path}" if p.path else root.path, p.reason)
            for p in other.problems
        ),
    ]
    return Measurement(
        tallies=tallies,
        sizes={**first.sizes, **other.sizes},
        files={**first.files, **other.files},
        root_disk=first.root_disk + other.root_disk,
        problems=problems,
        skipped=first.skipped | other.skipped,
        entries=first.entries + other.entries,
    )
