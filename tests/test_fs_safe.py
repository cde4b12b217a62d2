"""The safe file-system layer on real trees: removal and moves that never follow, cross or leave."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerdu.fs import safe
from tests.conftest import du
from tests.test_integration import _tree_state


def _tree(top: Path) -> None:
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "f").write_bytes(b"x" * 10000)
    os.link(top / "a" / "f", top / "a" / "b" / "f-link")
    (top / "a" / "b" / "g").write_bytes(b"y" * 5000)
    os.symlink("../../..", top / "a" / "b" / "up")
    os.mkfifo(top / "a" / "fifo")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[safe.Root, Path]]:
    path = tmp_path / "root"
    path.mkdir()
    with safe.Root(str(path)) as r:
        yield r, path


def test_remove_frees_what_du_counted(root: tuple[safe.Root, Path]) -> None:
    r, path = root
    _tree(path / "orphan")
    (path / "keep").write_text("kept")
    before = du(path / "orphan")
    done = safe.remove(r, "orphan")
    assert done.complete, done.left
    assert not (path / "orphan").exists() and (path / "keep").read_text() == "kept"
    assert done.freed == before
    assert done.entries == 8


def test_symlinks_are_unlinked_never_followed(root: tuple[safe.Root, Path], tmp_path: Path) -> None:
    r, path = root
    canary = tmp_path / "canary"
    _tree(canary)
    state = _tree_state(canary)
    (path / "orphan" / "sub").mkdir(parents=True)
    os.symlink(canary, path / "orphan" / "sub" / "to-canary")
    os.symlink(canary / "a", path / "orphan" / "dirlink")
    assert safe.remove(r, "orphan").complete
    assert _tree_state(canary) == state
    # A symlink in the middle of a path is refused, not followed.
    os.symlink(canary, path / "link")
    with pytest.raises(safe.Unsafe):
        safe.remove(r, "link/a")
    assert safe.remove(r, "link").complete  # the link itself goes
    assert _tree_state(canary) == state


def test_paths_never_leave_the_root(root: tuple[safe.Root, Path], tmp_path: Path) -> None:
    r, _ = root
    (tmp_path / "outside").mkdir()
    for bad in ("../outside", "a/../../outside", "", "/"):
        with pytest.raises(safe.Unsafe):
            safe.remove(r, bad)
    assert (tmp_path / "outside").is_dir()


def test_a_replaced_inode_is_left(root: tuple[safe.Root, Path]) -> None:
    r, path = root
    (path / "orphan").mkdir()
    st = os.lstat(path / "orphan")
    (path / "other").mkdir()
    (path / "orphan").rmdir()
    (path / "other").rename(path / "orphan")  # another inode at the same name
    (path / "orphan" / "data").write_text("new")
    done = safe.remove(r, "orphan", expect=(st.st_dev, st.st_ino))
    assert not done.complete and (path / "orphan" / "data").exists()


def test_deep_tree_removed_with_bounded_fds(root: tuple[safe.Root, Path]) -> None:
    r, path = root
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.mkdir("deep", dir_fd=fd)
    cur = os.open("deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    for _ in range(3000):  # far past PATH_MAX and past the fds a removal keeps open
        os.mkdir("d" * 50, dir_fd=cur)
        nxt = os.open("d" * 50, os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
        os.close(cur)
        cur = nxt
    with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=cur), "w") as f:
        f.write("bottom")
    os.close(cur)
    done = safe.remove(r, "deep")
    assert done.complete, done.left[:3]
    assert done.entries == 3002
    assert not (path / "deep").exists()


def _require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("bind mounts need root in CI")
        pytest.skip("bind mounts need root")


def test_a_bind_mount_inside_is_never_entered(root: tuple[safe.Root, Path], tmp_path: Path) -> None:
    _require_root()
    r, path = root
    src = tmp_path / "mounted"
    _tree(src)
    state = _tree_state(src)
    (path / "orphan" / "m").mkdir(parents=True)
    (path / "orphan" / "file").write_text("goes")
    subprocess.run(["mount", "--bind", str(src), str(path / "orphan" / "m")], check=True)
    try:
        # Seen at the start (mountinfo read when the root is opened) ...
        r.refresh()
        done = safe.remove(r, "orphan")
        assert not done.complete and (path / "orphan" / "file").exists()
        # ... and by the inode check alone when mountinfo was read before the mount.
        r.mounts = frozenset()
        done = safe.remove(r, "orphan")
        r.refresh()
        assert not done.complete
        assert any("mount point" in x for x in done.left)
        assert not (path / "orphan" / "file").exists()
    finally:
        subprocess.run(["umount", str(path / "orphan" / "m")], check=True)
    assert _tree_state(src) == state


def test_move_and_back_is_byte_identical(root: tuple[safe.Root, Path], tmp_path: Path) -> None:
    r, path = root
    _tree(path / "layer")
    os.setxattr(path / "layer" / "a", "user.dockerdu", b"kept")
    os.chmod(path / "layer" / "a" / "b", 0o710)
    before = _tree_state(path)
    q = tmp_path / "quarantine"
    q.mkdir()
    qfd = os.open(q, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _, parent = safe.move(r, "layer/a", qfd, "0")
        assert not (path / "layer" / "a").exists() and (q / "0" / "f").is_file()
        safe.move_back(r, qfd, "0", "layer/a", (parent.st_atime_ns, parent.st_mtime_ns))
    finally:
        os.close(qfd)
    assert _tree_state(path) == before
