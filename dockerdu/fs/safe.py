"""Opening, removing and moving under a root through dir fds, never through a path a container could redirect.

Every dir is opened relative to an open ancestor with O_NOFOLLOW, and used only if its
fstat shows the inode the parent's listing showed. A symlink is an entry like any other:
unlinked or moved, never traversed. Nothing on another device or at a mount point (a
bind mount of the same file system included, found in /proc/self/mountinfo) is entered,
removed or moved, and no path leaves the root: names come from the root's own listings,
relative paths may not hold `..`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
BLOCK = 512
_noatime = [os.O_NOATIME]
"""O_NOATIME while the kernel allows it (to an inode's owner or a privileged process)."""
_MAX_OPEN = 64
"""Dir fds a removal keeps open at once; deeper ancestors are reopened through `..` and re-checked."""

Identity = tuple[int, int]
"""(st_dev, st_ino)."""


class Unsafe(Exception):
    """A path that may not be opened, removed or moved: the message says why in one line."""


def open_dir(name: str, dir_fd: int | None, *, follow: bool = False) -> int:
    """Open the dir `name` (relative to `dir_fd`) read-only, never through a symlink unless `follow`."""
    flags = DIR_FLAGS & ~os.O_NOFOLLOW if follow else DIR_FLAGS
    if _noatime[0]:
        try:
            return os.open(name, flags | os.O_NOATIME, dir_fd=dir_fd)
        except PermissionError as e:
            if e.errno != errno.EPERM:
                raise
            _noatime[0] = 0
    return os.open(name, flags, dir_fd=dir_fd)


def mount_points(root: str) -> frozenset[str]:
    """Mount points strictly below `root` (bind mounts on the same device included)."""
    found: set[str] = set()
    prefix = root.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split(" ")
                if len(fields) > 4:
                    point = unescape_mountinfo(fields[4])
                    if point.startswith(prefix):
                        found.add(point)
    except OSError:
        pass
    return frozenset(found)


def unescape_mountinfo(text: str) -> str:
    """A mountinfo path field as the path it names."""
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def _identities(points: frozenset[str]) -> frozenset[Identity]:
    out: set[Identity] = set()
    for point in points:
        try:
            st = os.stat(point)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return frozenset(out)


class Root:
    """An open root dir: the anchor of every open, removal and move below it.

    The mount points below it are read when it is opened (and again by `refresh`):
    neither they nor anything on another device is entered.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = open_dir(self.path, None, follow=True)
        st = os.fstat(self.fd)
        self.dev = st.st_dev
        self.mounts: frozenset[str] = frozenset()
        self._mount_ids: frozenset[Identity] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Read the mount points below the root again."""
        self.mounts = mount_points(self.path)
        self._mount_ids = _identities(self.mounts)

    def close(self) -> None:
        """Close the root's fd."""
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def is_mount(self, st: os.stat_result) -> bool:
        """Whether a dir's stat shows another device or the root of a mount below the root."""
        return st.st_dev != self.dev or (st.st_dev, st.st_ino) in self._mount_ids

    def mounts_at_or_below(self, rel: str) -> list[str]:
        """Mount points at `rel` or below it."""
        top = f"{self.path}/{rel}"
        return sorted(p for p in self.mounts if p == top or p.startswith(top + "/"))

    def open_parent(self, rel: str) -> tuple[int, str]:
        """An fd of the dir holding `rel` (the caller closes it) and the last name of `rel`."""
        parts = _parts(rel)
        fd = os.dup(self.fd)
        try:
            for name in parts[:-1]:
                try:
                    child = open_dir(name, fd)
                except OSError as e:
                    # O_NOFOLLOW with O_DIRECTORY: a symlink fails with ELOOP or ENOTDIR.
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise Unsafe(f"{rel}: {name} is a symlink or no dir, not followed") from None
                    raise
                os.close(fd)
                fd = child
                if self.is_mount(os.fstat(fd)):
                    raise Unsafe(f"{rel}: {name} is a mount point or on another file system")
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def lstat(self, rel: str) -> os.stat_result:
        """lstat of `rel`, reached through dir fds."""
        fd, name = self.open_parent(rel)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p and p != "."]
    if not parts or any(p == ".." for p in parts):
        raise Unsafe(f"{rel!r} is not a path below the root")
    return parts


@dataclass
class Removal:
    """What a removal did: allocated bytes it freed, entries removed, and what it left and why."""

    freed: int = 0
    entries: int = 0
    left: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when everything was removed."""
        return not self.left


def _freed_by_unlink(st: os.stat_result) -> int:
    # The last link of an inode frees its blocks; an earlier one frees nothing.
    return st.st_blocks * BLOCK if st.st_nlink <= 1 else 0


class _Frame:
    __slots__ = ("fd", "ident", "name", "rel", "blocks", "pending")

    def __init__(self, fd: int | None, ident: Identity, name: str, rel: str, blocks: int) -> None:
        self.fd = fd
        self.ident = ident
        self.name = name
        self.rel = rel
        self.blocks = blocks
        self.pending: list[tuple[str, Identity, int]] = []


def remove(root: Root, rel: str, expect: Identity | None = None) -> Removal:
    """Remove `rel` and everything below it, through dir fds, never leaving the root.

    A symlink is unlinked, never followed; a dir swapped since its parent was listed
    (another inode), a mount point and anything on another device are left in place,
    with their ancestors (named in `left`). `expect`: the identity `rel` must still have.
    """
    out = Removal()
    parent_fd, name = root.open_parent(rel)
    try:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return out
        if expect is not None and (st.st_dev, st.st_ino) != expect:
            out.left.append(f"{rel}: not the inode the plan listed")
            return out
        if not stat.S_ISDIR(st.st_mode):
            _unlink(name, parent_fd, st, rel, out)
            return out
        if root.is_mount(st) or root.mounts_at_or_below(rel):
            out.left.append(f"{rel}: a mount point is at or below it")
            return out
        _remove_dir(root, parent_fd, name, rel, (st.st_dev, st.st_ino), st.st_blocks, out)
        return out
    finally:
        os.close(parent_fd)


def _unlink(name: str, dir_fd: int, st: os.stat_result, rel: str, out: Removal) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as e:
        out.left.append(f"{rel}: {e.strerror}")
        return
    out.freed += _freed_by_unlink(st)
    out.entries += 1


def _open_checked(root: Root, name: str, dir_fd: int, ident: Identity) -> int | None:
    """Open the subdir `name` if it is still the inode `ident` and no mount point; else None."""
    try:
        fd = open_dir(name, dir_fd)
    except OSError:
        return None  # gone, or replaced by a file or a symlink (ELOOP): not followed
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != ident or root.is_mount(st):
        os.close(fd)
        return None
    return fd


def _list(root: Root, frame: _Frame, out: Removal) -> None:
    """Unlink the non-dirs of an open dir; queue its subdirs with the identity the listing showed."""
    assert frame.fd is not None
    with os.scandir(frame.fd) as it:
        names = [e.name for e in it]
    for name in names:
        rel = f"{frame.rel}/{name}"
        try:
            st = os.stat(name, dir_fd=frame.fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if root.is_mount(st):
                out.left.append(f"{rel}: a mount point or another file system, not entered")
            else:
                frame.pending.append((name, (st.st_dev, st.st_ino), st.st_blocks))
        else:
            _unlink(name, frame.fd, st, rel, out)


def _reopen_parent(child: _Frame, parent: _Frame) -> int:
    """The parent's fd, reopened through the child's `..` and checked when it was closed."""
    if parent.fd is not None:
        return parent.fd
    assert child.fd is not None
    fd = os.open("..", DIR_FLAGS, dir_fd=child.fd)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != parent.ident:
        os.close(fd)
        raise Unsafe(f"{parent.rel}: moved while it was being removed")
    parent.fd = fd
    return fd


def _remove_dir(
    root: Root, parent_fd: int, name: str, rel: str, ident: Identity, blocks: int, out: Removal
) -> None:
    fd = _open_checked(root, name, parent_fd, ident)
    if fd is None:
        out.left.append(f"{rel}: replaced or unreadable since it was listed")
        return
    top = _Frame(os.dup(parent_fd), (-1, -1), "", "", 0)
    stack = [top, _Frame(fd, ident, name, rel, blocks)]
    try:
        try:
            _list(root, stack[-1], out)
        except OSError as e:
            out.left.append(f"{rel}: {e.strerror}")
        while len(stack) > 1:
            frame = stack[-1]
            if frame.pending and frame.fd is not None:
                sub, sub_ident, sub_blocks = frame.pending.pop()
                sub_rel = f"{frame.rel}/{sub}"
                child_fd = _open_checked(root, sub, frame.fd, sub_ident)
                if child_fd is None:
                    out.left.append(f"{sub_rel}: replaced or unreadable since it was listed")
                    continue
                stack.append(_Frame(child_fd, sub_ident, sub, sub_rel, sub_blocks))
                # The open frames are a suffix of the stack: close the oldest past the bound.
                if len(stack) > _MAX_OPEN + 2:
                    victim = stack[-(_MAX_OPEN + 2)]
                    if victim.fd is not None and victim is not top:
                        os.close(victim.fd)
                        victim.fd = None
                try:
                    _list(root, stack[-1], out)
                except OSError as e:
                    out.left.append(f"{sub_rel}: {e.strerror}")
                continue
            stack.pop()
            parent = stack[-1]
            pfd = _reopen_parent(frame, parent) if len(stack) > 1 else parent.fd
            assert pfd is not None and frame.fd is not None
            os.close(frame.fd)
            frame.fd = None
            try:
                os.rmdir(frame.name, dir_fd=pfd)
                out.entries += 1
                out.freed += frame.blocks * BLOCK
            except FileNotFoundError:
                pass
            except OSError as e:
                if not out.left or e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    out.left.append(f"{frame.rel}: {e.strerror}")
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)


def move(root: Root, rel: str, dst_fd: int, dst_name: str) -> tuple[os.stat_result, os.stat_result]:
    """Rename `rel` to `dst_name` in the open dir `dst_fd` (same file system): one atomic step.

    Returns the stat of what moved and of its parent dir before the move (whose times
    a restore puts back). A symlink moves as itself; a mount point at or below `rel`
    makes it refuse.
    """
    parent_fd, name = root.open_parent(rel)
    try:
        parent = os.fstat(parent_fd)
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) and (root.is_mount(st) or root.mounts_at_or_below(rel)):
            raise Unsafe(f"{rel}: a mount point is at or below it")
        if _exists(dst_name, dst_fd):
            raise Unsafe(f"{dst_name} already exists where {rel} would go")
        os.rename(name, dst_name, src_dir_fd=parent_fd, dst_dir_fd=dst_fd)
        return st, parent
    finally:
        os.close(parent_fd)


def move_back(root: Root, src_fd: int, src_name: str, rel: str, parent_times: tuple[int, int]) -> None:
    """Rename `src_name` in `src_fd` back to `rel` (never over an entry), then put back its parent's times."""
    parent_fd, name = root.open_parent(rel)
    try:
        if _exists(name, parent_fd):
            raise Unsafe(f"{rel} exists again: not overwritten")
        os.rename(src_name, name, src_dir_fd=src_fd, dst_dir_fd=parent_fd)
        os.utime(parent_fd, ns=parent_times)
    finally:
        os.close(parent_fd)


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
