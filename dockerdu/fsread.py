"""Careful reads of Docker's small metadata files.

Every read opens read-only, never follows a symlink in the last component, never
blocks on a FIFO planted where a file should be, and refuses files larger than a
bound, so hostile or damaged metadata yields a `ReadError`, never a hang or a
huge allocation.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any

# Docker's own metadata files are small; an image config with a long history is
# the largest, and a few MiB already means damage, not data.
MAX_METADATA_BYTES = 16 << 20

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)


class ReadError(Exception):
    """A metadata file could not be read; the message says why in one line."""


def _open(path: str) -> int:
    try:
        # O_NOATIME keeps even access times as they were; it needs ownership or root.
        return os.open(path, _FLAGS | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        return os.open(path, _FLAGS)


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_METADATA_BYTES) -> bytes:
    """Return the contents of a regular file of at most `limit` bytes."""
    try:
        fd = _open(os.fspath(path))
    except FileNotFoundError:
        raise ReadError("missing") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ReadError("is a symlink") from None
        raise ReadError(e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadError("not a regular file")
        if st.st_size > limit:
            raise ReadError(f"{st.st_size} bytes, larger than the {limit} expected")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ReadError(f"grew past the {limit} bytes expected while read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise ReadError(e.strerror or str(e)) from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int = MAX_METADATA_BYTES) -> str:
    """Return a file's contents decoded as UTF-8 and stripped, as Docker trims ID files."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ReadError("not UTF-8 text") from None


def read_json(path: str | os.PathLike[str], limit: int = MAX_METADATA_BYTES) -> Any:
    """Return a file's JSON value."""
    return parse_json(read_bytes(path, limit))


def parse_json(data: bytes) -> Any:
    """Parse JSON bytes, turning every failure into a ReadError."""
    if not data.strip():
        raise ReadError("empty")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ReadError(f"not valid JSON ({str(e)[:80]})") from None


def list_dir(path: str | os.PathLike[str]) -> list[os.DirEntry[str]]:
    """Return a directory's entries; a missing directory is empty, other failures raise.

    A symlink where the directory should be is not followed (scandir would list its target).
    """
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise ReadError("is a symlink")
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ReadError(e.strerror or str(e)) from None
