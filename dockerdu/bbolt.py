"""A small read-only reader for the bbolt files Docker writes.

Docker keeps several stores in bbolt (`volumes/metadata.db`, `buildkit/*.db`,
containerd's `meta.db`). This module reads such a file into memory once and
parses that copy, so reading a file that a running daemon holds open is safe:
nothing is locked, mapped or written.

Format (bbolt v2): the file is a sequence of pages of `page_size` bytes. Page 0
and page 1 are meta pages; the valid one (magic, version 2, FNV-1a 64 checksum)
with the higher txid names the root bucket's root page. A page starts with a
16-byte header: id u64, flags u16 (0x01 branch, 0x02 leaf, 0x04 meta,
0x10 freelist), count u16, overflow u32 (extra pages that follow it). Leaf
elements are 16 bytes: flags u32 (1 = sub-bucket), pos u32, ksize u32,
vsize u32, where pos is relative to the element. Branch elements are pos u32,
ksize u32, pgid u64. A bucket value is root pgid u64 + sequence u64; root 0
means an inline leaf page follows those 16 bytes.

Every malformed input raises `BoltError`. Each page may be reached from only
one place (its parent branch element, the leaf element of its bucket, or the
meta page), which rules out cycles and shared subtrees, so every walk is
bounded by the size of the file.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from pathlib import Path

from .fsread import ReadError, read_bytes

__all__ = ["BoltError", "Bucket", "open_db", "parse_db"]

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH, LEAF, META = 0x01, 0x02, 0x04
BUCKET_LEAF = 0x01
HEADER = 16
ELEMENT = 16
MAX_DEPTH = 64
DEFAULT_MAX_BYTES = 1 << 30
_FNV_OFFSET, _FNV_PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1
_META = struct.Struct("<IIIIQQQQQQ")  # magic version psize flags root seq freelist pgid txid checksum


class BoltError(Exception):
    """The file is not a bbolt database this reader can parse."""


def _fnv1a64(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


class _DB:
    """The file bytes plus the facts from the chosen meta page."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        first = self._meta(0)
        hint = int.from_bytes(data[24:28], "little") if len(data) >= 28 else 0
        offsets = {first[2]} if first else {hint, 4096}
        metas = [m for m in [first, *(self._meta(off) for off in offsets if off > 0)] if m]
        if not metas:
            raise BoltError(
                "no valid meta page" if len(data) >= 2 * HEADER + _META.size else "file too short"
            )
        meta = max(metas, key=lambda m: m[8])
        self.page_size, self.root, self.high_water = meta[2], meta[4], meta[7]
        if len(data) < self.high_water * self.page_size:
            raise BoltError("truncated file")
        self.referrer: dict[int, tuple[int, int]] = {}

    def _meta(self, off: int) -> tuple[int, ...] | None:
        """The meta fields at byte `off` if they are valid, else None."""
        if off + HEADER + _META.size > len(self.data):
            return None
        m: tuple[int, ...] = _META.unpack_from(self.data, off + HEADER)
        size = m[2]
        ok = (
            m[0] == MAGIC
            and m[1] == VERSION
            and m[9] == _fnv1a64(self.data[off + HEADER : off + HEADER + 56])
        )
        ok = ok and 1024 <= size <= 1 << 20 and size & (size - 1) == 0 and off in (0, size)
        return m if ok else None

    def page(self, pgid: int, referrer: tuple[int, int]) -> tuple[int, int, int, bool]:
        """Return (start, end, count, is_leaf) of a tree page reached from `referrer`."""
        if pgid < 2 or pgid >= self.high_water:
            raise BoltError(f"page id {pgid} out of range")
        if self.referrer.setdefault(pgid, referrer) != referrer:
            raise BoltError(f"page {pgid} referenced twice")
        start = pgid * self.page_size
        if start + HEADER > len(self.data):
            raise BoltError(f"page {pgid} beyond end of file")
        pid, pflags, count, overflow = struct.unpack_from("<QHHI", self.data, start)
        end = start + (overflow + 1) * self.page_size
        if pid != pgid or end > len(self.data) or pgid + overflow >= self.high_water:
            raise BoltError(f"page {pgid}: bad header or truncated")
        if pflags not in (BRANCH, LEAF):
            raise BoltError(f"page {pgid}: unexpected flags {pflags:#x}")
        return start, end, count, pflags == LEAF


def _elements(
    buf: bytes, start: int, end: int, count: int, leaf: bool
) -> Iterator[tuple[int, bytes, bytes, int]]:
    """Yield (flags, key, value, child pgid) for each element of one page."""
    if HEADER + count * ELEMENT > end - start:
        raise BoltError("element count exceeds page")
    for i in range(count):
        at = start + HEADER + i * ELEMENT
        if leaf:
            flags, pos, ksize, vsize = struct.unpack_from("<IIII", buf, at)
            child = 0
        else:
            pos, ksize, child = struct.unpack_from("<IIQ", buf, at)
            flags = vsize = 0
        k = at + pos
        if k + ksize + vsize > end:
            raise BoltError("element beyond page")
        yield flags, buf[k : k + ksize], buf[k + ksize : k + ksize + vsize], child


class Bucket:
    """One bucket of an open database; a view over the in-memory copy."""

    def __init__(self, db: _DB, root: int, referrer: tuple[int, int], inline: bytes | None = None) -> None:
        self._db, self._root, self._referrer, self._inline = db, root, referrer, inline
        if inline is not None and (
            len(inline) < 2 * HEADER or struct.unpack_from("<H", inline, 24)[0] != LEAF
        ):
            raise BoltError("bad inline bucket")

    def _leaves(self) -> Iterator[tuple[int, bytes, bytes, int, int]]:
        """Yield (flags, key, value, leaf pgid, index) over all leaf elements in order."""
        if self._inline is not None:
            count = struct.unpack_from("<H", self._inline, 26)[0]
            for i, (flags, k, v, _) in enumerate(_elements(self._inline, 16, len(self._inline), count, True)):
                yield flags, k, v, 0, i
            return
        stack = [(self._root, self._referrer, 0)]
        while stack:
            pgid, ref, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise BoltError("tree too deep")
            start, end, count, leaf = self._db.page(pgid, ref)
            if leaf:
                for i, (flags, k, v, _) in enumerate(_elements(self._db.data, start, end, count, True)):
                    yield flags, k, v, pgid, i
            else:
                children = list(_elements(self._db.data, start, end, count, False))
                stack.extend((c[3], (pgid, i), depth + 1) for i, c in reversed(list(enumerate(children))))

    def _find(self, key: bytes) -> tuple[int, bytes, int, int] | None:
        """Return (flags, value, leaf pgid, index) of `key`, descending branch pages."""
        if self._inline is not None:
            return next(((f, v, p, i) for f, k, v, p, i in self._leaves() if k == key), None)
        pgid, ref = self._root, self._referrer
        for _ in range(MAX_DEPTH):
            start, end, count, leaf = self._db.page(pgid, ref)
            elements = list(_elements(self._db.data, start, end, count, leaf))
            if leaf:
                return next(
                    ((f, v, pgid, i) for i, (f, k, v, _) in enumerate(elements) if k == key),
                    None,
                )
            if not elements:
                raise BoltError(f"empty branch page {pgid}")
            index = max([i for i, e in enumerate(elements) if e[1] <= key] or [0])
            pgid, ref = elements[index][3], (pgid, index)
        raise BoltError("tree too deep")

    def _sub(self, flags: int, value: bytes, pgid: int, index: int) -> Bucket:
        if self._inline is not None:
            raise BoltError("inline bucket holds a sub-bucket")
        if len(value) < HEADER:
            raise BoltError("bucket value too short")
        root = int.from_bytes(value[:8], "little")
        return Bucket(self._db, root, (pgid, index), value if root == 0 else None)

    def get(self, key: bytes) -> bytes | None:
        """The value stored under `key`, or None if absent or a sub-bucket."""
        found = self._find(key)
        return None if found is None or found[0] & BUCKET_LEAF else found[1]

    def bucket(self, key: bytes) -> Bucket | None:
        """The sub-bucket named `key`, or None."""
        found = self._find(key)
        return self._sub(*found) if found is not None and found[0] & BUCKET_LEAF else None

    def items(self) -> Iterator[tuple[bytes, bytes | Bucket]]:
        """Yield (key, value or sub-bucket) in stored (key) order."""
        for flags, key, value, pgid, index in self._leaves():
            yield (
                key,
                (self._sub(flags, value, pgid, index) if flags & BUCKET_LEAF else value),
            )

    def keys(self) -> Iterator[bytes]:
        """Yield the keys, in order."""
        for _, key, _, _, _ in self._leaves():
            yield key

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def values(self) -> Iterator[bytes | Bucket]:
        """The values and sub-buckets, in key order."""
        return (value for _key, value in self.items())


def parse_db(data: bytes) -> Bucket:
    """Parse bbolt bytes already in memory and return the root bucket."""
    db = _DB(bytes(data))
    return Bucket(db, db.root, (-1, -1))


def open_db(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Bucket:
    """Read the file once (at most `max_bytes`) and return its root bucket.

    Raises BoltError for a malformed or too large file, and for one that is not a
    regular file (a FIFO, a dir or a symlink where the db should be) or cannot be
    read; FileNotFoundError when there is none.
    """
    try:
        data = read_bytes(path, limit=max_bytes)
    except ReadError as e:
        if str(e) == "missing":
            raise FileNotFoundError(errno.ENOENT, "missing", str(path)) from None
        raise BoltError(str(e)) from None
    return parse_db(data)
