"""The bbolt reader on files written by real Docker daemons, intact and damaged."""

from __future__ import annotations

import gzip
import json
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockerdu.bbolt import BoltError, Bucket, _fnv1a64, open_db, parse_db

DATA = Path(__file__).parent / "data" / "buildkit"
DB_FILES = sorted(DATA.glob("*/*.db.gz"))
REAL = {f"{p.parent.name}/{p.name[:-3]}": gzip.decompress(p.read_bytes()) for p in DB_FILES}
PAGE = 4096  # every captured file uses the host page size


def walk(bucket: Bucket, strict: bool, depth: int = 0) -> int:
    """Visit every key and sub-bucket; with `strict`, check order and lookups."""
    count, last = 0, None
    for key, value in bucket.items():
        count += 1
        if strict:
            assert last is None or last < key
            last = key
        if isinstance(value, Bucket):
            assert bucket.get(key) is None
            sub = bucket.bucket(key)
            assert sub is not None or not strict
            if depth < 16:
                count += walk(value, strict, depth + 1)
        else:
            found = bucket.get(key)
            assert found == value or not strict
            assert bucket.bucket(key) is None or not strict
    return count


def test_real_files_are_complete_trees() -> None:
    assert len(REAL) == 12
    for name, data in REAL.items():
        root = parse_db(data)
        # A fresh daemon's dbs are valid and empty.
        assert (walk(root, strict=True) > 0) != name.startswith("docker20-fresh/"), name
        assert list(root.keys()) == [k for k, _ in root.items()] == list(root)


def test_known_keys(tmp_path: Path) -> None:
    path = tmp_path / "metadata_v2.db"
    path.write_bytes(REAL["docker26/metadata_v2.db"])
    root = open_db(path)
    assert list(root.keys()) == [b"_external", b"_index", b"_main"]
    record = root.bucket(b"_main")
    assert record is not None
    aa3 = record.bucket(b"aa3a4ge5outduu2jpqegaxyi9")
    assert aa3 is not None
    assert json.loads(aa3.get(b"cache.description") or b"") == {
        "value": "mount / from exec /bin/sh -c head -c 300000 /dev/urandom > /a.bin"
    }
    assert aa3.get(b"snapshot.size") == b'{"value":300000}'
    assert aa3.get(b"missing") is None and root.get(b"_main") is None

    snaps = parse_db(REAL["docker26/snapshots.db"])
    bucket = snaps.bucket(b"aa3a4ge5outduu2jpqegaxyi9")
    assert bucket is not None
    assert bucket.get(b"committed") == b"fu50iy38ikw9zh082xejjv7vw"
    assert bucket.get(b"chainid") == (
        b"sha256:b86ab6304353f89e55b609ff627426be7543ef951f5d8b83df03ee821eb9190c"
    )

    leases = parse_db(REAL["docker20/containerdmeta.db"]).bucket(b"v1")
    assert leases is not None and leases.bucket(b"buildkit") is not None


def test_overflow_and_branch_pages_are_read() -> None:
    # metadata_v2.db of the 26.1 capture has a branch page and a value spilling into
    # an overflow page; walking it reaches both.
    root = parse_db(REAL["docker26/metadata_v2.db"])
    walk(root, strict=True)
    data = REAL["docker26/metadata_v2.db"]
    seen = root._db.referrer  # page -> where it was reached from
    headers = [struct.unpack_from("<QHHI", data, p * PAGE) for p in seen]
    assert any(flags == 0x01 for _, flags, _, _ in headers)
    assert any(overflow > 0 for _, _, _, overflow in headers)


def test_limits_and_short_files(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(REAL["docker26/snapshots.db"])
    with pytest.raises(BoltError, match="larger than"):
        open_db(path, max_bytes=1000)
    for data in (b"", b"\0" * 100, b"\xff" * 70000, REAL["docker26/snapshots.db"][:100]):
        with pytest.raises(BoltError):
            parse_db(data)
    with pytest.raises(FileNotFoundError):
        open_db(tmp_path / "absent.db")


def _set_meta(data: bytearray, meta: int, field: int, value: int) -> None:
    """Overwrite one u64 meta field (root=16, pgid=40, txid=48) and fix the checksum."""
    base = meta * PAGE + 16
    struct.pack_into("<Q", data, base + field, value)
    struct.pack_into("<Q", data, base + 56, _fnv1a64(bytes(data[base : base + 56])))


def _newest_meta(data: bytes | bytearray) -> int:
    return max((0, 1), key=lambda m: struct.unpack_from("<Q", data, m * PAGE + 16 + 48)[0])


def test_meta_checksum_is_verified() -> None:
    data = bytearray(REAL["docker26/snapshots.db"])
    newest = _newest_meta(data)
    data[newest * PAGE + 16 + 16] ^= 0xFF  # corrupt root pgid, checksum now wrong
    walk(parse_db(bytes(data)), strict=False)  # falls back to the other meta page
    data[(1 - newest) * PAGE + 16 + 16] ^= 0xFF
    with pytest.raises(BoltError, match="meta"):
        parse_db(bytes(data))


@pytest.mark.parametrize(
    ("value", "message"), [(0, "out of range"), (1, "out of range"), (10**9, "out of range")]
)
def test_bad_root_page(value: int, message: str) -> None:
    data = bytearray(REAL["docker26/metadata_v2.db"])
    _set_meta(data, _newest_meta(data), 16, value)
    with pytest.raises(BoltError, match=message):
        list(parse_db(bytes(data)).items())


def test_truncated_file_is_detected() -> None:
    data = REAL["docker26/containerdmeta.db"]
    root = parse_db(data)
    walk(root, strict=True)
    last = max(root._db.referrer)
    with pytest.raises(BoltError, match="truncated"):
        parse_db(data[: last * PAGE + 100])
    # A meta page that claims fewer pages than the tree uses: caught page by page.
    short = bytearray(data[: last * PAGE])
    _set_meta(short, _newest_meta(short), 40, last)
    with pytest.raises(BoltError, match="out of range"):
        walk(parse_db(bytes(short)), strict=False)


def test_branch_cycle_is_detected() -> None:
    data = bytearray(REAL["docker26/metadata_v2.db"])
    root = parse_db(bytes(data))
    walk(root, strict=True)
    branch = next(p for p in root._db.referrer if struct.unpack_from("<H", data, p * PAGE + 8)[0] == 1)
    struct.pack_into("<Q", data, branch * PAGE + 16 + 8, branch)  # child 0 -> itself
    with pytest.raises(BoltError, match="referenced twice"):
        walk(parse_db(bytes(data)), strict=False)


def test_shared_subtree_is_detected() -> None:
    data = bytearray(REAL["docker26/metadata_v2.db"])
    root = parse_db(bytes(data))
    walk(root, strict=True)
    branch = next(p for p in root._db.referrer if struct.unpack_from("<H", data, p * PAGE + 8)[0] == 1)
    first = struct.unpack_from("<Q", data, branch * PAGE + 16 + 8)[0]
    struct.pack_into("<Q", data, branch * PAGE + 32 + 8, first)  # children 0 and 1 alike
    with pytest.raises(BoltError, match="referenced twice"):
        walk(parse_db(bytes(data)), strict=False)


def test_huge_count_and_bad_flags() -> None:
    data = bytearray(REAL["docker26/metadata_v2.db"])
    root = parse_db(bytes(data))
    walk(root, strict=True)
    leaf = next(p for p in root._db.referrer if struct.unpack_from("<H", data, p * PAGE + 8)[0] == 2)
    counted = bytearray(data)
    struct.pack_into("<H", counted, leaf * PAGE + 10, 0xFFFF)
    with pytest.raises(BoltError, match="count"):
        walk(parse_db(bytes(counted)), strict=False)
    flagged = bytearray(data)
    struct.pack_into("<H", flagged, leaf * PAGE + 8, 0x10)
    with pytest.raises(BoltError, match="flags"):
        walk(parse_db(bytes(flagged)), strict=False)


# A mutation (kind, a, b, blob): "cut" truncates at a; "put" writes blob at a; "meta"
# sets a u64 field of the newest meta page to b with a valid checksum; "head" sets
# a u32 of a page header to b.
_mutation = st.tuples(
    st.sampled_from(["cut", "put", "meta", "head"]),
    st.integers(0, 200_000),
    st.one_of(st.integers(0, 200), st.integers(0, 2**64 - 1)),
    st.binary(min_size=1, max_size=64),
)
Mutation = tuple[str, int, int, bytes]


def _mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, a, b, blob in mutations:
        if kind == "cut":
            del out[a % (len(out) + 1) :]
        elif kind == "put":
            at = a % (len(out) + 1)
            out[at : at + len(blob)] = blob
        elif kind == "meta" and len(out) >= 2 * PAGE:
            _set_meta(out, _newest_meta(out), (16, 24, 32, 40, 48)[a % 5], b)
        elif kind == "head":
            at = (a % 128) * PAGE + (0, 4, 8, 12)[(a // 128) % 4]
            if at + 4 <= len(out):
                struct.pack_into("<I", out, at, b & 0xFFFFFFFF)
    return bytes(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(REAL)), st.lists(_mutation, min_size=1, max_size=6))
def test_damaged_files_give_bolt_error_or_a_result(name: str, mutations: list[Mutation]) -> None:
    data = _mutate(REAL[name], mutations)
    started = time.monotonic()
    try:
        walk(parse_db(data), strict=False)
    except BoltError as exc:
        assert str(exc)
    assert time.monotonic() - started < 20
