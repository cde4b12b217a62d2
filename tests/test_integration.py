"""dockerdu against real Docker roots: Docker 20.10 (classic builder) and 26.1 (BuildKit).

Each version gets one private daemon for the module. With the daemon running, every
`size` figure must equal the Engine API's /system/df and every `disk` figure
`du -sx -B1` of the same paths; with it stopped, the totals must add up to du of
the root, a run must leave the root unchanged, and each planted leftover must be
found with its kind, and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerdu.locate import Daemon, Location
from dockerdu.report import Report
from dockerdu.scan import Options, build_report
from tests import realdocker as rd

pytestmark = pytest.mark.docker


def _require(version: rd.Version) -> None:
    rd.require_docker(version)


@dataclass
class Live:
    daemon: rd.PrivateDaemon
    scenario: rd.Scenario
    df: dict[str, Any]
    report: Report


def _scan(root: Path, daemon: rd.PrivateDaemon | None = None) -> Report:
    owner = Daemon(daemon.pid, root) if daemon is not None else None
    return build_report(Location(root, "--root", owner), Options(jobs=2))


@pytest.fixture(scope="module", params=rd.VERSIONS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    version: rd.Version = request.param
    _require(version)
    base = tmp_path_factory.mktemp(f"dockerdu-{version}")
    with rd.PrivateDaemon(version, base) as d:
        scenario = rd.build_scenario(d)
        df = rd.system_df(d)
        yield Live(d, scenario, df, _scan(d.root, d))


def test_images_equal_engine_api(live: Live) -> None:
    ours = {i.id: i for i in live.report.images}
    theirs = {i["Id"]: i for i in live.df["Images"]}
    assert set(ours) == set(theirs)
    for image_id, api in theirs.items():
        mine = ours[image_id]
        assert (mine.size, mine.shared_size, mine.containers) == (
            api["Size"],
            api["SharedSize"],
            api["Containers"],
        ), image_id
        assert sorted(mine.tags) == sorted(t for t in api["RepoTags"] or [] if t != "<none>:<none>")
    assert live.report.docker.layers_size == live.df["LayersSize"]
    assert live.report.images and any(i.shared_size for i in live.report.images)
    assert any(not i.tags for i in live.report.images), "the dangling image is listed"


def test_shared_size_rule_follows_the_version(live: Live) -> None:
    expected = "all images" if live.scenario.version == "26.1" else "listed images"
    assert live.report.docker.shared_size_rule.startswith(expected)


def test_containers_equal_engine_api(live: Live) -> None:
    ours = {c.id: c for c in live.report.containers}
    theirs = {c["Id"]: c for c in live.df["Containers"]}
    assert set(ours) == set(theirs)
    for cid, api in theirs.items():
        assert ours[cid].rw_size == api.get("SizeRw", 0), api["Names"]
        assert ours[cid].state == api["State"], api["Names"]
        assert ours[cid].image_id == api["ImageID"]
    states = {c.state for c in live.report.containers}
    assert {"running", "exited", "created"} <= states


def test_volumes_equal_engine_api(live: Live) -> None:
    ours = {v.name: v for v in live.report.volumes}
    theirs = {v["Name"]: v for v in live.df["Volumes"]}
    assert set(ours) == set(theirs)
    for name, api in theirs.items():
        usage = api["UsageData"]
        assert ours[name].size == usage["Size"], name
        assert len(ours[name].containers) == usage["RefCount"], name


def test_disk_equals_du(live: Live) -> None:
    root = live.daemon.root
    links = {os.readlink(p).split("/")[1]: p for p in (root / "overlay2" / "l").iterdir()}

    def with_link(*names: str) -> list[Path]:
        return [p for n in names for p in (root / "overlay2" / n, links.get(n)) if p is not None]

    for image in live.report.images:
        for layer in image.layers:
            assert layer.disk == rd.du_bytes(*with_link(layer.cache_id)), layer.cache_id
    for c in live.report.containers:
        mount_id = live.scenario.mount_ids[c.id]
        assert c.rw_disk == rd.du_bytes(*with_link(mount_id, f"{mount_id}-init")), c.name
        logs = [root / "containers" / c.id / n for n in os.listdir(root / "containers" / c.id)
                if n.startswith(f"{c.id}-json.log") or n == "local-logs"]  # fmt: skip
        assert c.log_disk == (rd.du_bytes(*logs) if logs else 0), c.name
    for v in live.report.volumes:
        assert v.disk == rd.du_bytes(root / "volumes" / v.name), v.name


def test_logs_rotated_and_local_driver(live: Live) -> None:
    by_name = {c.name: c for c in live.report.containers}
    json_logs = by_name[rd.LOGS_JSON]
    local_logs = by_name[rd.LOGS_LOCAL]
    assert json_logs.log_driver == "json-file" and json_logs.log_size > 1024
    assert local_logs.log_driver == "local" and local_logs.log_size > 0
    cdir = live.daemon.root / "containers" / json_logs.id
    rotated = [n for n in os.listdir(cdir) if n.startswith(f"{json_logs.id}-json.log.")]
    assert rotated, "the scenario rotates logs"
    assert json_logs.log_size == sum(os.lstat(cdir / n).st_size for n in os.listdir(cdir) if "-json.log" in n)


def test_build_cache_known_never_orphaned(live: Live) -> None:
    r = live.report
    assert r.orphans == ()
    assert r.problems == ()
    if live.scenario.version == "26.1":
        assert len(r.build_cache.records) == len(live.df["BuildCache"])
        assert {b.id for b in r.build_cache.records} == {b["ID"] for b in live.df["BuildCache"]}
        assert r.build_cache.disk > 0


def _tree_state(root: Path) -> str:
    """A digest of every name, type, mode, owner, size, mtime, xattr and file content under root."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(
                f"{p}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0{st.st_mtime_ns}\0".encode()
            )
            for attr in sorted(os.listxattr(p, follow_symlinks=False)):
                h.update(attr.encode() + os.getxattr(p, attr, follow_symlinks=False))
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def test_stopped_root_reconciles_and_is_untouched_then_leftovers_found(live: Live, tmp_path: Path) -> None:
    """Runs last for its daemon: stops it, checks totals and read-only-ness, then plants leftovers."""
    d = live.daemon
    d.stop()
    root = d.root
    before = _tree_state(root)
    r = _scan(root)
    assert _tree_state(root) == before, "a run changed the root"
    totals = vars(r.totals)
    assert r.totals.root_disk == rd.du_bytes(root)
    assert sum(v for k, v in totals.items() if k not in ("root_disk", "reclaimable")) == r.totals.root_disk
    assert r.orphans == () and r.problems == ()

    damaged = tmp_path / "root-meta"
    subprocess.run(["cp", "-a", str(root), str(damaged)], check=True)  # devices, hard links, xattrs
    planted = rd.plant_leftovers(
        root, live.scenario, kinds=[k for k in rd.PLANT_KINDS if k != "metadata_unreadable"]
    )
    r = _scan(root)
    assert {(o.kind, o.path) for o in r.orphans} == {(p.kind, p.path) for p in planted if p.orphan}
    assert {(p.kind, p.path) for p in r.problems} == {(p.kind, p.path) for p in planted if not p.orphan}
    assert r.totals.root_disk == rd.du_bytes(root)
    for o in r.orphans:
        assert o.disk == rd.du_bytes(*(root / p for p in o.paths)), o.kind

    # An unreadable image config: reported, and it keeps any layer it may name from being called orphan.
    (meta,) = rd.plant_leftovers(damaged, live.scenario, kinds=["metadata_unreadable"])
    r = _scan(damaged)
    assert {(p.kind, p.path) for p in r.problems} == {
        (meta.kind, meta.path),
        ("references_incomplete", "image/overlay2"),
    }
    assert r.orphans == ()
