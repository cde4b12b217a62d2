"""Docker's naive-diff size of an overlay upper dir over its lowers, on real trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockerdu.naivediff import naive_diff_size

MTIME = 1_700_000_000


def _file(path: Path, data: bytes, mtime: int = MTIME, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, (mtime, mtime))


def _whiteout(path: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: whiteouts (0:0 character devices) must be testable")
        pytest.skip("a whiteout (a 0:0 character device) needs root to make")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    upper, mid, base = (tmp_path / n for n in ("upper", "mid", "base"))
    for d in (upper, mid, base):
        d.mkdir()
    return upper, mid, base


def test_new_changed_and_unchanged_files(layers: tuple[Path, Path, Path]) -> None:
    upper, mid, base = layers
    _file(base / "same.bin", b"a" * 100)
    _file(upper / "same.bin", b"a" * 100)  # copied up, unchanged: not in Docker's figure
    _file(base / "touched.bin", b"b" * 10)
    _file(upper / "touched.bin", b"b" * 10, mtime=MTIME + 1)
    _file(base / "mode.bin", b"c" * 20)
    _file(upper / "mode.bin", b"c" * 20, mode=0o600)
    _file(upper / "new/dir/n.bin", b"d" * 7)
    os.symlink("/etc/passwd", upper / "link")
    assert naive_diff_size(upper, [mid, base]) == 10 + 20 + 7 + len("/etc/passwd")


def test_hard_links_count_once_and_whiteouts_not_at_all(layers: tuple[Path, Path, Path]) -> None:
    upper, mid, base = layers
    _file(upper / "a.bin", b"x" * 1000)
    os.link(upper / "a.bin", upper / "b.bin")
    _file(base / "gone.txt", b"gone")
    _whiteout(upper / "gone.txt")
    assert naive_diff_size(upper, [mid, base]) == 1000


def test_the_topmost_lower_decides(layers: tuple[Path, Path, Path]) -> None:
    upper, mid, base = layers
    _file(base / "f", b"old")
    _file(mid / "f", b"newer")
    _file(upper / "f", b"newer")  # equal to mid's, the one the parent shows
    _file(base / "w", b"w")
    _whiteout(mid / "w")  # deleted in mid: upper's w is new
    _file(upper / "w", b"w")
    assert naive_diff_size(upper, [mid, base]) == 1


def test_opaque_dirs(layers: tuple[Path, Path, Path]) -> None:
    upper, mid, base = layers
    _file(base / "d/hidden", b"h")
    _file(mid / "d/.wh..wh..opq", b"")  # mid's d hides base's
    _file(upper / "d/hidden", b"h")  # new to the parent, which shows mid's d only
    _file(mid / "d/kept", b"k")
    _file(upper / "d/kept", b"k")  # the upper d is opaque too, yet kept is as the parent has it
    _file(upper / "d/.wh..wh..opq", b"")
    assert naive_diff_size(upper, [mid, base]) == 1


def test_a_lower_symlink_is_not_followed(layers: tuple[Path, Path, Path], tmp_path: Path) -> None:
    upper, mid, base = layers
    outside = tmp_path / "outside"
    _file(outside / "f", b"o" * 5)
    os.symlink(outside, base / "d")  # the parent has a symlink d, not a dir
    _file(upper / "d/f", b"o" * 5)
    assert naive_diff_size(upper, [mid, base]) == 5


def test_an_unreadable_lower_raises(layers: tuple[Path, Path, Path], tmp_path: Path) -> None:
    upper, mid, _ = layers
    with pytest.raises(OSError):
        naive_diff_size(upper, [mid, tmp_path / "missing"])


def test_plain_trees_have_no_whiteouts(layers: tuple[Path, Path, Path]) -> None:
    """vfs: the container's whole tree against the init layer's; `.wh.` names are files there."""
    upper, mid, _ = layers
    _file(mid / "kept", b"k" * 3)
    _file(upper / "kept", b"k" * 3)
    _file(mid / "x", b"x")
    _file(upper / ".wh.x", b"w" * 4)
    _file(upper / "d/.wh..wh..opq", b"o" * 2)
    assert naive_diff_size(upper, [mid], overlay=False) == 4 + 2
    assert naive_diff_size(upper, [mid]) == 0
