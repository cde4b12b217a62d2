"""Two roots, one account: a system containerd's root walked beside the Docker root.

Each root is walked on its own, within its own file system, by the same walk; the
index names paths under the containerd root by their absolute path, which no path
of the Docker root's walk can match. The measurements are then added: each root's
inodes counted once within it, as `du -sx -B1` of each counts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .index import Index, Mark
from .locate import _resolve
from .measure import Measurement, Progress, Tally, measure
from .model import Category, Problem
from .report import RootReport

if TYPE_CHECKING:
    from .ctrdroot import ContainerdRoot


def separate_root(root: Path, where: ContainerdRoot | None) -> str | None:
    """The containerd root as an absolute path when it lies outside the Docker root `root`
    (a system containerd's root): walked as a root of its own. None: none, or inside `root`."""
    if where is None or where.managed or where.path is None:
        return None
    path = _resolve(where.path)
    if path == _resolve(root) or _resolve(root) in path.parents:
        return None
    return str(path)


def measure_containerd_root(
    index: Index, root: Path, docker: Measurement, progress: Progress | None, *, jobs: int, quick: bool
) -> tuple[Measurement, tuple[RootReport, ...]]:
    """Walk the separate containerd root (if any) and add it to the Docker root's measurement."""
    roots: tuple[RootReport, ...] = (
        RootReport(str(root), "docker", None if docker.skipped else docker.root_disk),
    )
    ctrd_root = separate_root(root, index.containerd_root) if index.store == "containerd" else None
    if ctrd_root is None or not os.path.isdir(ctrd_root):
        return docker, roots
    # Imported here: most roots are graphdriver roots.
    from .readers.containerd import snapshotter_dir

    marks = containerd_marks(index.marks, ctrd_root)
    snapshots = f"{snapshotter_dir(index.driver, ctrd_root)}/snapshots"
    ctrd = measure(
        ctrd_root,
        marks,
        Index.parents_of(marks),
        progress,
        split_parents=frozenset({snapshots[len(ctrd_root) + 1 :]}),
        jobs=jobs,
        skip_owner=(lambda owner: owner.category == Category.images) if quick else None,
    )
    roots += (RootReport(ctrd_root, "containerd", None if ctrd.skipped else ctrd.root_disk),)
    return combine(docker, ctrd, ctrd_root), roots


def containerd_marks(marks: Mapping[str, Mark], ctrd_root: str) -> dict[str, Mark]:
    """The marks under the separate containerd root, relative to it."""
    prefix = ctrd_root + "/"
    return {rel[len(prefix) :]: mark for rel, mark in marks.items() if rel.startswith(prefix)}


def combine(docker: Measurement, ctrd: Measurement, ctrd_root: str) -> Measurement:
    """One measurement of two roots: tallies of an owner added, paths under the containerd root
    absolute. Each root's inodes were counted once within it, as `du -sx` of each counts them."""
    tallies = {o: Tally(t.disk, t.inodes, t.incomplete) for o, t in docker.tallies.items()}
    for owner, t in ctrd.tallies.items():
        mine = tallies.setdefault(owner, Tally())
        mine.disk += t.disk
        mine.inodes += t.inodes
        mine.incomplete = mine.incomplete or t.incomplete
    problems = [
        *docker.problems,
        *(Problem(p.kind, f"{ctrd_root}/{p.path}" if p.path else ctrd_root, p.reason) for p in ctrd.problems),
    ]
    return Measurement(
        tallies=tallies,
        sizes={**docker.sizes, **ctrd.sizes},
        files={**docker.files, **ctrd.files},
        root_disk=docker.root_disk + ctrd.root_disk,
        problems=problems,
        skipped=docker.skipped | ctrd.skipped,
        entries=docker.entries + ctrd.entries,
    )
