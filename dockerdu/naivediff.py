"""Docker's naive-diff SizeRw of a fuse-overlayfs or vfs writable layer, read offline.

Docker wraps its fuse-overlayfs driver in the NaiveDiffDriver: a container's SizeRw
is `archive.ChangesSize(layer, archive.ChangesDirs(layer, parent))` over the mounted
layer and its mounted parent (the init layer). Every changed path lies in the
writable layer's `diff/`, so the figure is the sum, over the non-dir entries of
`diff/` that are not whiteouts, of the `st_size` of those that differ from the same
path in the parent's merged tree (the `lower` layers), each inode once when it has
more than one link. A file copied up but left unchanged is in `diff/` and not in
the figure, which is why a walk of `diff/` alone cannot give it.

"Differs" is moby's `statDifferent`: mode, uid, gid, rdev, and for a non-dir old
entry also the size and the mtime (same seconds, and same nanoseconds unless either
is 0); or a different `security.capability` xattr.

On vfs the layer dir is the container's whole tree and its parent the init layer's
whole tree: the same comparison with no whiteouts or opaque dirs (`overlay=False`).

Every dir is opened relative to its parent's descriptor with O_NOFOLLOW, so a
symlink in any layer is never followed out of the layer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .fs.safe import open_dir

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque")
CAPABILITY_XATTR = "security.capability"


def _open_dir(name: str | Path, dir_fd: int | None = None) -> int:
    return open_dir(os.fspath(name), dir_fd)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        names = os.listxattr(fd)
    except OSError as e:
        if e.errno != errno.ENOTSUP:
            raise
        names = []
    if any(os.getxattr(fd, name) == b"y" for name in OPAQUE_XATTRS if name in names):
        return True
    return _lstat(OPAQUE_MARKER, fd) is not None


def _capability(dir_fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", CAPABILITY_XATTR, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def _same_time(a: int, b: int) -> bool:
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == nb or na == 0 or nb == 0)


def _differs(old: os.stat_result, new: os.stat_result) -> bool:
    if (old.st_mode, old.st_uid, old.st_gid) != (new.st_mode, new.st_uid, new.st_gid):
        return True
    if old.st_rdev != new.st_rdev:
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return old.st_size != new.st_size or not _same_time(old.st_mtime_ns, new.st_mtime_ns)


def _lookup(name: str, lowers: Sequence[int], overlay: bool) -> tuple[int, os.stat_result] | None:
    """The topmost lower entry `name` in the merged lower tree: (its dir fd, its lstat)."""
    for fd in lowers:
        if overlay and _lstat(WHITEOUT_PREFIX + name, fd) is not None:
            return None
        st = _lstat(name, fd)
        if st is None:
            continue
        return None if overlay and _is_whiteout(st) else (fd, st)
    return None


def _child_lowers(name: str, lowers: Sequence[int], overlay: bool) -> list[int]:
    """Open the dirs that make up `name` in the merged lower tree, topmost first."""
    opened: list[int] = []
    try:
        for fd in lowers:
            if overlay and _lstat(WHITEOUT_PREFIX + name, fd) is not None:
                break
            st = _lstat(name, fd)
            if st is None:
                continue
            if not stat.S_ISDIR(st.st_mode):
                break  # a file or whiteout here hides the layers below
            child = _open_dir(name, fd)
            opened.append(child)
            if overlay and _is_opaque(child):
                break
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return opened


def _close_frames(frames: list[tuple[int, list[int], list[str]]], keep: list[int]) -> None:
    """Close the dirs of the frames left open when the walk stopped on an error."""
    for upper_fd, lower_fds, _ in frames:
        for fd in (upper_fd, *lower_fds):
            if fd not in keep:
                os.close(fd)


def naive_diff_size(upper: Path, lowers: Sequence[Path], *, overlay: bool = True) -> int:
    """Docker's naive-diff size of `upper` (a `diff/`) over `lowers` (their `diff/`, topmost first).

    `overlay=False` reads plain trees (vfs): no name or device is a whiteout there.

    Raises OSError when a dir cannot be read: the figure is then unknown.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    with contextlib.ExitStack() as stack:
        root_fds = [_open_dir(upper), *(_open_dir(p) for p in lowers)]
        for fd in root_fds:
            stack.callback(os.close, fd)
        # A frame: the upper dir, its merged lower dirs, and the subdirs still to visit.
        frames: list[tuple[int, list[int], list[str]]] = []

        def enter(upper_fd: int, lower_fds: list[int]) -> None:
            nonlocal total
            subdirs: list[str] = []
            with os.scandir(upper_fd) as it:
                entries = [e.name for e in it]
            for name in entries:
                if overlay and name.startswith(WHITEOUT_PREFIX):
                    continue
                st = _lstat(name, upper_fd)
                if st is None or (overlay and _is_whiteout(st)):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append(name)
                    continue
                found = _lookup(name, lower_fds, overlay)
                changed = (
                    found is None
                    or _differs(found[1], st)
                    or _capability(found[0], name) != _capability(upper_fd, name)
                )
                if not changed:
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_size
            frames.append((upper_fd, lower_fds, subdirs))

        stack.callback(_close_frames, frames, root_fds)
        enter(root_fds[0], root_fds[1:])
        while frames:
            upper_fd, lower_fds, subdirs = frames[-1]
            if not subdirs:
                frames.pop()
                if upper_fd not in root_fds:
                    for fd in (upper_fd, *lower_fds):
                        os.close(fd)
                continue
            name = subdirs.pop()
            child = _open_dir(name, upper_fd)
            try:
                child_lowers = _child_lowers(name, lower_fds, overlay)
            except BaseException:
                os.close(child)
                raise
            try:
                enter(child, child_lowers)
            except BaseException:
                for fd in (child, *child_lowers):
                    os.close(fd)
                raise
    return total
