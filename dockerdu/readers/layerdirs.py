"""Read a graphdriver's layer dirs (`overlay2/`, `vfs/dir/`, ...), their `link`/`lower` files, and `l/`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..fsread import ReadError, list_dir, read_text
from ..model import Problem, ProblemKind
from ..records import record

LINK_NAME = re.compile(r"[A-Z0-9]{26}")
# Names overlay2 itself creates beside layer dirs.
DRIVER_FILES = ("backingFsBlockDev",)
DRIVER_CHECK_PREFIXES = ("opaque-bug-check", "metacopy-check", "check-overlayfs-support")


@record
class LayerDir:
    """overlay2/<name>/ as found on disk."""

    name: str
    link: str | None
    lower: tuple[str, ...]
    committed: bool
    mtime: float
    is_dir: bool
    link_error: str | None = None
    """Why `link` names no short link (missing, unreadable, not a link name); None when it does."""
    lower_error: str | None = None
    """Why `lower` is unusable (missing, unreadable, an entry not `l/<link>`); None when fine."""
    diff_link: str | None = None
    """Where `diff` points when it is a symlink (what overlayfs would mount instead); else None."""


@record
class ShortLink:
    """overlay2/l/<name> and the overlay2 dir it points to (None when it points elsewhere)."""

    name: str
    target_dir: str | None
    target_exists: bool
    raw_target: str


@record
class LayerDirScan:
    """Everything directly under the driver's layer dir."""

    dirs: dict[str, LayerDir]
    links: dict[str, ShortLink]
    driver_entries: tuple[str, ...]
    problems: tuple[Problem, ...]
    readable: bool


def read_layer_dirs(base: Path, rel: str = "overlay2") -> LayerDirScan:
    """Read the dirs and short links of a layer dir tree at `base` (`l/` where the driver keeps one)."""
    problems: list[Problem] = []
    try:
        entries = list_dir(base)
    except ReadError as e:
        return LayerDirScan({}, {}, (), (Problem(ProblemKind.metadata_unreadable, rel, str(e)),), False)
    dirs: dict[str, LayerDir] = {}
    driver_entries: list[str] = []
    for entry in entries:
        name = entry.name
        if name == "l":
            continue
        if name in DRIVER_FILES or name.startswith(DRIVER_CHECK_PREFIXES):
            driver_entries.append(name)
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed while we looked
        is_dir = entry.is_dir(follow_symlinks=False)
        link: str | None = None
        lower: str | None = None
        link_error: str | None = None
        lower_error: str | None = None
        diff_link: str | None = None
        if is_dir:
            link, link_error = _text(Path(entry.path) / "link")
            lower, lower_error = _text(Path(entry.path) / "lower")
            diff_link = _readlink(Path(entry.path) / "diff")
        if link is not None and not LINK_NAME.fullmatch(link):
            link_error = f"not a link name: {link[:40]!r}"
            link = None
        lowers = tuple(lower.split(":")) if lower else ()
        bad = [p for p in lowers if not (p.startswith("l/") and LINK_NAME.fullmatch(p[2:]))]
        if bad:
            lower_error = f"not a short link: {bad[0][:40]!r}"
        dirs[name] = LayerDir(
            name=name,
            link=link,
            lower=tuple(p[2:] for p in lowers if p not in bad),
            committed=is_dir and os.path.lexists(Path(entry.path) / "committed"),
            mtime=st.st_mtime,
            is_dir=is_dir,
            link_error=link_error,
            lower_error=lower_error,
            diff_link=diff_link,
        )
    links: dict[str, ShortLink] = {}
    try:
        link_entries = list_dir(base / "l")
    except ReadError as e:
        problems.append(Problem(ProblemKind.metadata_unreadable, f"{rel}/l", str(e)))
        link_entries = []
    for entry in link_entries:
        try:
            target = os.readlink(entry.path)
        except OSError:
            continue  # not a symlink, or gone
        target_dir = _link_target_dir(target)
        exists = target_dir is not None and os.path.isdir(base / target_dir / "diff")
        links[entry.name] = ShortLink(entry.name, target_dir, exists, target)
    return LayerDirScan(dirs, links, tuple(sorted(driver_entries)), tuple(problems), True)


def _link_target_dir(target: str) -> str | None:
    # overlay2 writes "../<id>/diff"; anything else does not name a layer dir.
    parts = target.split("/")
    if len(parts) == 3 and parts[0] == ".." and parts[2] == "diff" and parts[1] not in ("", ".", ".."):
        return parts[1]
    return None


def _readlink(path: Path) -> str | None:
    """The target of `path` if it is a symlink (never followed), else None."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def _text(path: Path) -> tuple[str | None, str | None]:
    """A small file's text, or None and why not ("missing" when absent)."""
    try:
        return read_text(path, limit=1 << 16), None
    except ReadError as e:
        return None, str(e)
