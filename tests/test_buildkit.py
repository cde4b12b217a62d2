"""The build-cache reader against what real Docker daemons reported for the same dbs.

Each dir under tests/data/buildkit/ holds the three BuildKit dbs of one real root
(gzip'd), the layerdb `size`/`cache-id` of the layers they name, the image chain
IDs of that root, and the daemon's own `GET /system/df` `BuildCache` answer.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from dockerdu.readers.buildkit import BuildCacheRecord, BuildCacheScan, join_build_cache, read_build_cache

DATA = Path(__file__).parent / "data" / "buildkit"


def materialize(name: str, root: Path) -> tuple[Path, dict[str, Any]]:
    """Lay out `<root>/buildkit/*.db` from a capture (no layerdb: the reader reads none)."""
    src = DATA / name
    buildkit = root / "buildkit"
    buildkit.mkdir(parents=True)
    for gz in src.glob("*.db.gz"):
        (buildkit / gz.name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
    expected: dict[str, Any] = json.loads((src / "expected.json").read_text())
    return buildkit, expected


class CapturedLayers:
    """The capture's layerdb `size` and `cache-id`, as the store's join gives them (`LayerStore`)."""

    def __init__(self, layerdb: dict[str, dict[str, str]]) -> None:
        self.layerdb = layerdb

    def size(self, chain_id: str) -> int | None:
        text = self.layerdb.get(chain_id, {}).get("size")
        return int(text) if text is not None else None

    def cache_id(self, chain_id: str) -> str | None:
        text = self.layerdb.get(chain_id, {}).get("cache-id")
        return text.strip() if text is not None else None


def joined(buildkit: Path, expected: dict[str, Any] | None, chains: bool = True) -> BuildCacheScan:
    """The records of `buildkit/` joined with the capture's layers (and image chain IDs)."""
    layers = CapturedLayers(expected["layerdb"]) if expected is not None else None
    image_chain_ids = expected["image_chain_ids"] if expected is not None and chains else None
    return join_build_cache(read_build_cache(buildkit), image_chain_ids, layers)


def api_parents(item: dict[str, Any]) -> tuple[str, ...]:
    # API 1.42+ has "Parents" (spelt " Parents" by 26.1), older ones "Parent".
    parents = item.get(" Parents") or item.get("Parents")
    if parents is None:
        parents = [item["Parent"]] if item.get("Parent") else []
    return tuple(parents)


def check_fields(record: BuildCacheRecord, item: dict[str, Any], parents: bool) -> None:
    assert record.record_type == item["Type"]
    assert record.description == item["Description"]
    assert record.usage_count == item["UsageCount"]
    assert record.last_used == item.get("LastUsedAt")
    assert record.shared is item["Shared"]
    if parents:
        assert record.parent_ids == api_parents(item)


@pytest.mark.parametrize("name", ["docker26", "docker20", "docker20-fresh"])
def test_matches_system_df(name: str, tmp_path: Path) -> None:
    buildkit, expected = materialize(name, tmp_path)
    scan = joined(buildkit, expected)
    assert scan.problems == () and scan.complete
    api = {item["ID"]: item for item in expected["build_cache"] or ()}
    records = {r.id: r for r in scan.records}
    assert records.keys() == api.keys()
    for rid, record in records.items():
        assert record.size == api[rid]["Size"], rid
        check_fields(record, api[rid], parents=True)
    assert sum(r.size or 0 for r in scan.records) == expected["builder_size"]
    # Every dir in that root's overlay2/ was made by or for BuildKit, and no other.
    assert scan.snapshot_dirs == set(expected["overlay2_dirs"])


def test_before_any_df(tmp_path: Path) -> None:
    # Sizes not yet stored: layer-backed ones come from layerdb, the rest would
    # need a walk of overlay2/<snapshot_id>/diff (Docker's figure, recorded here).
    buildkit, expected = materialize("docker26-predf", tmp_path)
    scan = joined(buildkit, expected)
    assert scan.problems == () and scan.complete
    api = {item["ID"]: item for item in expected["build_cache"]}
    assert {r.id for r in scan.records} == api.keys()
    walked = expected["diff_sizes"]
    for record in scan.records:
        check_fields(record, api[record.id], parents=False)
        if record.size is None:
            assert record.snapshot_id is not None
            assert walked[record.snapshot_id] == api[record.id]["Size"]
        else:
            assert record.size == api[record.id]["Size"]
    unknown = {r.snapshot_id for r in scan.records if r.size is None}
    assert unknown == set(walked)
    assert expected["builder_size"] == sum(
        walked[r.snapshot_id] if r.size is None else r.size for r in scan.records
    )
    layer_backed = {r.id: r.size for r in scan.records if r.chain_id}
    assert layer_backed["vt3h7iwinmpls3ooif5nzahjk"] == 66536  # from layerdb `size`


def test_record_to_dir_mapping(tmp_path: Path) -> None:
    buildkit, expected = materialize("docker26", tmp_path)
    records = {r.id: r for r in joined(buildkit, expected, chains=False).records}
    # A committed RUN step: snapshots.db names the dir; exported, so a layer too.
    run = records["aa3a4ge5outduu2jpqegaxyi9"]
    assert run.snapshot_id == "fu50iy38ikw9zh082xejjv7vw"
    assert run.chain_id == "sha256:b86ab6304353f89e55b609ff627426be7543ef951f5d8b83df03ee821eb9190c"
    assert expected["layerdb"][run.chain_id]["cache-id"] == run.snapshot_id
    assert run.parent_ids == ("897a19jfo1cvynh3wobrsd15o",)
    # FROM: the base image's own layer dir (a 64-hex cache-id).
    base = records["897a19jfo1cvynh3wobrsd15o"]
    assert base.snapshot_id == "248a1ed0d44b35594991e7902e00f4b13f501dfe36527714f3bb8476132d3894"
    assert base.description == "from local " and base.size == 0
    # A cache mount: a mutable record, its ID is the dir.
    mount = records["7b8yyww55psc35o43hviz1tvq"]
    assert mount.record_type == "exec.cachemount"
    assert mount.snapshot_id == mount.id and mount.size == 77777
    assert mount.last_used is not None and mount.last_used.endswith("Z")
    # Without image chain IDs, Shared is not known.
    assert all(r.shared is None for r in records.values())


def test_missing_dir_and_missing_dbs(tmp_path: Path) -> None:
    empty = joined(tmp_path / "nowhere" / "buildkit", None)
    assert empty.records == () and empty.snapshot_dirs == frozenset()
    assert empty.problems == () and empty.complete
    (tmp_path / "buildkit").mkdir()
    assert joined(tmp_path / "buildkit", None) == empty


@pytest.mark.parametrize("db", ["metadata_v2.db", "snapshots.db", "containerdmeta.db"])
@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"\0" * 100,
        lambda b: b[:6000],
        lambda b: b[:8192] + b"\xa5" * (len(b) - 8192),
    ],
)
def test_corrupt_db_is_a_problem(tmp_path: Path, db: str, damage: Any) -> None:
    buildkit, expected = materialize("docker26", tmp_path)
    path = buildkit / db
    path.write_bytes(damage(path.read_bytes()))
    scan = read_build_cache(buildkit)
    assert not scan.complete
    assert len(scan.problems) == 1
    problem = scan.problems[0]
    assert problem.kind == "metadata_unreadable" and problem.path == f"buildkit/{db}"
    assert problem.reason


def test_unreadable_values_are_a_problem(tmp_path: Path) -> None:
    buildkit, _ = materialize("docker26", tmp_path)
    path = buildkit / "metadata_v2.db"
    data = path.read_bytes()
    # Same length, so the bbolt structure stays valid while one JSON value breaks.
    path.write_bytes(data.replace(b'{"value":"exec.cachemount"}', b'{"value":"exec.cachemount"!', 1))
    scan = read_build_cache(buildkit)
    assert len(scan.problems) == 1 and not scan.complete
    problem = scan.problems[0]
    assert problem.kind == "metadata_unreadable" and problem.path == "buildkit/metadata_v2.db"
    assert problem.reason.startswith("record ")
    assert problem.reason.endswith(": bad JSON in cache.recordType")


def test_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "buildkit").write_text("not a dir")
    scan = joined(tmp_path / "buildkit", None)
    assert scan.complete and scan.records == ()


@pytest.mark.parametrize("name", ["docker26", "docker20", "docker26-predf"])
def test_every_snapshot_of_a_healthy_root_is_held_by_a_record(name: str, tmp_path: Path) -> None:
    """Build cache is what a record holds: on the real roots that is every dir BuildKit names."""
    buildkit, expected = materialize(name, tmp_path)
    scan = joined(buildkit, expected)
    assert scan.record_dirs == scan.snapshot_dirs and scan.record_dirs
