"""One walk of the root: every inode charged once, at first sight, to its owner.

The walk never follows a symlink, never leaves the root's file system (a mount
point is neither entered nor counted, as `du -x` does), and counts allocated
bytes (st_blocks * 512) of every inode, directories included, a hard-linked
inode once. Per-owner sums therefore add up to `du -sx -B1 ROOT`.

Beside it, in the areas the index marks, it computes Docker's own size
(pkg/directory.Size): the apparent size of every non-directory, each inode once
per area, zero-size entries and directories skipped.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .index import METADATA, Mark, Owner
from .model import Problem

BLOCK = 512  # st_blocks unit on Linux, whatever the file system's block size


@dataclass
class Tally:
    """Allocated bytes and inodes charged to one owner."""

    disk: int = 0
    inodes: int = 0
    incomplete: bool = False


@dataclass
class SizeArea:
    """Docker's size of one marked area (a layer's diff, a volume's _data)."""

    size: int = 0
    files: int = 0
    seen: set[int] = field(default_factory=set)


@dataclass
class Measurement:
    """What the walk found: per-owner tallies, Docker sizes per area, unreadable paths."""

    tallies: dict[Owner, Tally]
    sizes: dict[str, int]
    files: dict[str, int]
    root_disk: int
    problems: list[Problem]


Progress = Callable[[int, int], None]


def mount_points(root: str) -> frozenset[str]:
    """Mount points strictly below `root` (bind mounts on the same device included)."""
    found: set[str] = set()
    prefix = root.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split(" ")
                if len(fields) > 4:
                    point = _unescape_mountinfo(fields[4])
                    if point.startswith(prefix):
                        found.add(point)
    except OSError:
        pass
    return frozenset(found)


def _unescape_mountinfo(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def measure(
    root: str,
    marks: Mapping[str, Mark],
    parents: frozenset[str],
    progress: Progress | None = None,
) -> Measurement:
    """Walk `root` once and charge every inode to the owner the marks give its place."""
    tallies: dict[Owner, Tally] = {}
    areas: dict[str, SizeArea] = {}
    problems: list[Problem] = []
    skip = mount_points(root)

    def tally_of(owner: Owner) -> Tally:
        t = tallies.get(owner)
        if t is None:
            t = tallies[owner] = Tally()
        return t

    top = os.lstat(root)
    dev = top.st_dev
    root_tally = tally_of(METADATA)
    root_tally.disk += top.st_blocks * BLOCK
    root_tally.inodes += 1
    total = top.st_blocks * BLOCK
    count = 1
    seen: set[int] = set()  # inodes with more than one link, already charged
    prefix_len = len(root.rstrip("/")) + 1
    # (path, root-relative path when marks lie below it else None, tally, size area)
    stack: list[tuple[str, str | None, Tally, SizeArea | None]] = [(root, "", root_tally, None)]
    s_isdir = stat.S_ISDIR
    while stack:
        path, rel, tally, area = stack.pop()
        try:
            it = os.scandir(path)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError as e:
            tally.incomplete = True
            problems.append(Problem("path_unreadable", path[prefix_len:], e.strerror or str(e)))
            continue
        look = rel is not None and rel in parents
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    tally.incomplete = True
                    problems.append(Problem("path_unreadable", entry.path[prefix_len:], e.strerror or str(e)))
                    continue
                if st.st_dev != dev:
                    continue  # a mount point: not ours to count
                t, a, child_rel = tally, area, None
                if look:
                    child_rel = f"{rel}/{entry.name}" if rel else entry.name
                    mark = marks.get(child_rel)
                    if mark is not None:
                        if mark.owner is not None:
                            t = tally_of(mark.owner)
                        if mark.size_key is not None:
                            a = areas.setdefault(mark.size_key, SizeArea())
                if s_isdir(st.st_mode):
                    if skip and entry.path in skip:
                        continue
                    blocks = st.st_blocks * BLOCK
                    t.disk += blocks
                    t.inodes += 1
                    total += blocks
                    count += 1
                    stack.append((entry.path, child_rel, t, a))
                    continue
                if st.st_nlink > 1:
                    ino = st.st_ino
                    if a is not None and ino not in a.seen:
                        a.seen.add(ino)
                        a.size += st.st_size
                        a.files += 1
                    if ino in seen:
                        continue
                    seen.add(ino)
                elif a is not None:
                    a.files += 1
                    a.size += st.st_size
                blocks = st.st_blocks * BLOCK
                t.disk += blocks
                t.inodes += 1
                total += blocks
                count += 1
        if progress is not None:
            progress(count, total)
    return Measurement(
        tallies=tallies,
        sizes={k: v.size for k, v in areas.items()},
        files={k: v.files for k, v in areas.items()},
        root_disk=total,
        problems=problems,
    )
