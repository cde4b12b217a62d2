"""dockerdu against a real containerd-store root (Docker 26.1, `containerd-snapshotter` on).

The root first holds a graphdriver store (26.1 on overlay2 imports one image),
then the same root is started with the containerd store, as a host that
switched stores. With that daemon running, /system/df is taken; then it is
stopped, garbage is planted, and the offline report must equal the API's
figures, add up to `du -sx -B1`, find the planted garbage and the abandoned
overlay2 store, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu.cli import app
from dockerdu.locate import Daemon, Location, detect_store
from dockerdu.readers.containerd import CONTENT, CTRD, read_containerd, snapshotter_dir
from dockerdu.render.json_ import render_json
from dockerdu.report import Report
from dockerdu.scan import Options, build_report
from dockerdu.stores.containerd.index import EXPIRE_LABEL, TEMPORARY_LABEL, _rfc3339, stale_leases
from tests import realdocker as rd

pytestmark = pytest.mark.docker

CONTAINERD_CONFIG = rd.CONTAINERD_STORE_CONFIG
SNAPSHOTS = f"{snapshotter_dir('overlayfs')}/snapshots"
BLOBS = f"{CTRD}/{CONTENT}/blobs/sha256"


@dataclass
class Root:
    root: Path
    df: dict[str, Any]
    report: Report
    planted: dict[str, str]
    """Orphan kind -> root-relative path planted (or left by the store switch)."""
    live: Report
    """Taken while the daemon ran (containers running), before /system/df stored any build-cache size."""
    left: frozenset[tuple[str, str]]
    """Writes the daemon itself left unfinished at its stop (e.g. BuildKit's history, written
    after a build returns, can still be in progress): real leftovers, found as the planted are."""


def _plant(root: Path) -> dict[str, str]:
    """Garbage containerd's GC or Cleanup would remove: a dir, a blob and an ingest nothing names."""
    snap = root / SNAPSHOTS / "9999"
    (snap / "fs").mkdir(parents=True)
    (snap / "work").mkdir()
    (snap / "fs" / "garbage.bin").write_bytes(b"\0" * 50000)
    data = b"dockerdu planted blob\n" * 1000
    digest = hashlib.sha256(data).hexdigest()
    (root / BLOBS / digest).write_bytes(data)
    ingest = root / CTRD / CONTENT / "ingest" / ("ab" * 32)
    ingest.mkdir(parents=True)
    (ingest / "data").write_bytes(b"\1" * 9000)
    return {
        "snapshot_dir_unreferenced": f"{SNAPSHOTS}/9999",
        "blob_unreferenced": f"{BLOBS}/{digest}",
        "content_ingest": f"{CTRD}/{CONTENT}/ingest/{'ab' * 32}",
    }


@pytest.fixture(scope="module")
def ctrd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    rd.require_docker("26.1")
    base = tmp_path_factory.mktemp("dockerdu-ctrd")
    tar = rd.busybox_rootfs_tar(base / "rootfs")
    with rd.PrivateDaemon("26.1", base) as old:
        old.docker("import", "--change", 'CMD ["sh"]', str(tar), "dd-old:1")
    with rd.PrivateDaemon("26.1", base, config=CONTAINERD_CONFIG) as d:
        rd.containerd_scenario(d, tar)
        rd.import_into_namespace(d, "k8s.io", "dd-k8s:1", 1_000_000)
        live = build_report(Location(d.root, "--root", Daemon(d.pid, d.root)), Options(jobs=2))
        df = rd.system_df(d)
    ingests = d.root / CTRD / CONTENT / "ingest"
    left = frozenset(("content_ingest", f"{CTRD}/{CONTENT}/ingest/{name}") for name in _names(ingests))
    planted = _plant(d.root)
    planted["store_unused"] = "image/overlay2"
    report = build_report(Location(d.root, "--root", None), Options(jobs=2))
    yield Root(d.root, df, report, planted, live, left)


def _names(path: Path) -> list[str]:
    return os.listdir(path) if path.is_dir() else []


def test_store_is_detected(ctrd: Root) -> None:
    store = detect_store(ctrd.root)
    assert (store.store, store.driver) == ("containerd", "overlayfs")
    assert store.unused == ("image/overlay2", "overlay2")
    doc = json.loads(render_json(ctrd.report))
    assert (doc["store"], doc["driver"]) == ("containerd", "overlayfs")


def test_images_equal_engine_api(ctrd: Root) -> None:
    ours = {i.id: i for i in ctrd.report.images}
    theirs = {i["Id"]: i for i in ctrd.df["Images"]}
    assert set(ours) == set(theirs)
    for image_id, api in theirs.items():
        mine = ours[image_id]
        assert (mine.size, mine.shared_size, mine.containers) == (
            api["Size"],
            api["SharedSize"],
            api["Containers"],
        ), image_id
        assert sorted(mine.tags) == sorted(api["RepoTags"] or [])
        assert sorted(mine.digests) == sorted(api["RepoDigests"] or [])
    assert ctrd.report.docker.layers_size == ctrd.df["LayersSize"]
    assert any(i.shared_size for i in ctrd.report.images)


def test_containers_and_volumes_equal_engine_api(ctrd: Root) -> None:
    ours = {c.id: c for c in ctrd.report.containers}
    theirs = {c["Id"]: c for c in ctrd.df["Containers"]}
    assert set(ours) == set(theirs)
    for cid, api in theirs.items():
        assert ours[cid].rw_size == api["SizeRw"], api["Names"]
    sizes = {v.name: v.size for v in ctrd.report.volumes}
    assert sizes == {v["Name"]: v["UsageData"]["Size"] for v in ctrd.df["Volumes"]}
    exited = next(c for c in ctrd.report.containers if c.name == rd.EXITED)
    log = ctrd.root / "containers" / exited.id / f"{exited.id}-json.log"
    assert exited.log_size == log.stat().st_size > 0
    assert exited.log_disk == rd.du_bytes(log)


def test_disk_figures_equal_du(ctrd: Root) -> None:
    r = ctrd.report
    running = next(c for c in r.containers if c.name == rd.RUNNING)
    assert running.rw_disk > 0
    for image in r.images:
        dirs = [ctrd.root / SNAPSHOTS / layer.cache_id for layer in image.layers]
        assert image.disk == sum(rd.du_bytes(p) for p in dirs), image.tags
    assert r.totals.image_content and r.totals.image_content < rd.du_bytes(ctrd.root / BLOBS)


def test_totals_reconcile_with_du(ctrd: Root) -> None:
    t = ctrd.report.totals
    parts = [
        t.images,
        t.image_content,
        t.containers,
        t.logs,
        t.volumes,
        t.build_cache,
        t.orphans,
        t.metadata,
        t.other,
    ]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(ctrd.root)
    assert t.image_content and t.images and t.build_cache and t.containers


def test_other_namespace_is_not_an_orphan(ctrd: Root) -> None:
    """An image only k8s.io holds, in the managed containerd: a line under other, no orphan."""
    scan = read_containerd(ctrd.root)
    dirs = sorted(i for i, ns in scan.foreign_snapshots.items() if ns == "k8s.io")
    assert dirs
    [ns] = [n for n in ctrd.report.namespaces if n.name == "k8s.io"]
    assert any("dd-k8s:1" in name for name in ns.images)
    assert ns.disk >= rd.du_bytes(*(ctrd.root / SNAPSHOTS / i for i in dirs)) > 1_000_000
    orphaned = {p for o in ctrd.report.orphans for p in o.paths}
    assert not [i for i in dirs if f"{SNAPSHOTS}/{i}" in orphaned]


def test_planted_garbage_found_and_nothing_else(ctrd: Root) -> None:
    found = {(o.kind, o.path) for o in ctrd.report.orphans}
    # The build left BuildKit's temporary leases (their `-view` snapshots): deleted at the next start.
    leases = read_containerd(ctrd.root).leases
    temporary = {
        ("lease_stale", f"{CTRD}/io.containerd.metadata.v1.bolt/meta.db#leases/{k}")
        for k, lease in leases.items()
        if TEMPORARY_LABEL in lease.labels
    }
    assert temporary
    expected = set(ctrd.planted.items()) | {("store_unused", "overlay2")} | temporary | ctrd.left
    assert found == expected
    for o in ctrd.report.orphans:
        assert o.disk == rd.du_bytes(*(ctrd.root / p for p in o.paths)), o.path
    unused = sum(o.disk for o in ctrd.report.orphans if o.kind == "store_unused")
    assert unused == rd.du_bytes(ctrd.root / "image/overlay2", ctrd.root / "overlay2") > 0
    assert ctrd.report.reclaimable["orphans"].disk == ctrd.report.totals.orphans
    assert not [p for p in ctrd.report.problems if p.kind != "path_unreadable"]


def _build_cache_by_id(report: Report) -> dict[str, tuple[str, str, int | None]]:
    return {r.id: (r.record_type, r.description, r.size) for r in report.build_cache.records}


def test_build_cache_equals_engine_api(ctrd: Root) -> None:
    """Records, types, descriptions and sizes equal df's: computed (live, before any df) and stored."""
    theirs = {b["ID"]: (b["Type"], b["Description"], b["Size"]) for b in ctrd.df["BuildCache"]}
    assert any(t == "exec.cachemount" for t, _, _ in theirs.values())
    for report in (ctrd.live, ctrd.report):
        assert _build_cache_by_id(report) == theirs
        assert report.build_cache.size == sum(size for _, _, size in theirs.values())
        assert all(r.snapshot for r in report.build_cache.records)


def test_scan_while_daemon_runs(ctrd: Root) -> None:
    """Containers running, the daemon up: no orphan but the old store, and Docker's figures."""
    live = ctrd.live
    assert live.docker.daemon_running
    assert any("was running during the scan" in note for note in live.notes)
    assert {(o.kind, o.path) for o in live.orphans} == {
        ("store_unused", "overlay2"),
        ("store_unused", "image/overlay2"),
    }
    assert not [p for p in live.problems if p.kind != "path_unreadable"]
    ours = {i.id: (i.size, i.shared_size) for i in live.images}
    assert ours == {i["Id"]: (i["Size"], i["SharedSize"]) for i in ctrd.df["Images"]}
    rw = {c.id: c.rw_size for c in live.containers}
    assert rw == {c["Id"]: c["SizeRw"] for c in ctrd.df["Containers"]}
    t = live.totals
    parts = [t.images, t.image_content, t.containers, t.logs, t.volumes, t.build_cache, t.orphans]
    assert sum(p or 0 for p in [*parts, t.metadata, t.other]) == t.root_disk


def _ctr(d: rd.PrivateDaemon, *args: str) -> str:
    prefix = rd.docker26_prefix()
    assert prefix is not None
    sock = d.exec_root / "containerd" / "containerd.sock"
    cmd = [str(prefix / "usr/bin/ctr"), "-a", str(sock), "-n", "moby", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def _lease_orphans(report: Report) -> dict[str, tuple[str, ...]]:
    prefix = f"{CTRD}/io.containerd.metadata.v1.bolt/meta.db#leases/"
    return {o.path.removeprefix(prefix): o.paths for o in report.orphans if o.kind == "lease_stale"}


def test_leases_and_stray_snapshot_are_orphans_only_when_stopped(tmp_path: Path) -> None:
    """Garbage left in the daemon's own containerd: in flight while it runs, orphans once it stops.

    A BuildKit build leaves temporary leases; `ctr` (on the daemon's containerd
    socket) makes a snapshot no one references, a lease named like a container
    that does not exist, a lease that expires at once and one that expires in an
    hour. Restarting the daemon proves the claims: BuildKit deletes its temporary
    leases, containerd's GC the expired lease and the snapshot, and keeps the
    lease that has not expired.
    """
    rd.require_docker("26.1")
    tar = rd.busybox_rootfs_tar(tmp_path / "rootfs")
    ghost = "f" * 64
    with rd.PrivateDaemon("26.1", tmp_path, config=CONTAINERD_CONFIG) as d:
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        rd.build_image(
            d, rd.BK_IMAGE, f"FROM {rd.BASE}\nRUN head -c {rd.BK_FILE} /dev/zero > /bk.bin\n", buildkit=True
        )
        base_chain = json.loads(d.docker("image", "inspect", rd.BASE))[0]["RootFS"]["Layers"][0]
        _ctr(d, "leases", "create", "--id", ghost, "--expires", "0")
        _ctr(d, "leases", "create", "--id", "dd-expired", "--expires", "1s")
        _ctr(d, "leases", "create", "--id", "dd-expiring", "--expires", "1h")
        time.sleep(1.1)  # dd-expired has expired
        _ctr(d, "snapshots", "prepare", "dd-kept", base_chain)  # ctr labels it containerd.io/gc.root
        _ctr(d, "snapshots", "prepare", "dd-stray", base_chain)
        _ctr(d, "snapshots", "label", "dd-stray", "containerd.io/gc.root=")  # nothing holds it now
        stray = read_containerd(d.root).snapshots["dd-stray"].id
        (d.root / SNAPSHOTS / stray / "fs" / "junk.bin").write_bytes(b"\1" * 30000)
        live = build_report(Location(d.root, "--root", Daemon(d.pid, d.root)), Options(jobs=1))
        assert live.orphans == ()
        assert (live.totals.other or 0) >= rd.du_bytes(d.root / SNAPSHOTS / stray)  # in flight
    report = build_report(Location(d.root, "--root", None), Options(jobs=1))
    leases = _lease_orphans(report)
    stopped = read_containerd(d.root)
    temporary = {k for k, v in stopped.leases.items() if TEMPORARY_LABEL in v.labels}
    # containerd's GC may delete dd-expired before the daemon is down, as it may dd-stray.
    expired = {"dd-expired"} & set(stopped.leases)
    assert temporary and set(leases) == {ghost, *expired, *temporary}
    # dd-expiring is stale once its hour has passed, and not before.
    expire = _rfc3339(stopped.leases["dd-expiring"].labels[EXPIRE_LABEL])
    assert expire is not None
    containers = frozenset(c.id for c in report.containers)
    assert "dd-expiring" not in stale_leases(stopped, containers, expire - 1, daemon_running=False)
    assert "expired" in stale_leases(stopped, containers, expire + 1, daemon_running=False)["dd-expiring"]
    assert any(leases[k] for k in temporary)  # the -view snapshots only they hold
    stray_rel = f"{SNAPSHOTS}/{stray}"
    # containerd's GC may take dd-stray before the daemon is down (any deletion schedules one).
    stray_left = "dd-stray" in read_containerd(d.root).snapshots
    # Besides dd-stray, a stopping daemon may leave a snapshot whose lease it just dropped;
    # any such orphan must be garbage that containerd's GC removes at the restart below.
    unreferenced = {o.path for o in report.orphans if o.kind == "snapshot_unreferenced"}
    assert {o.kind for o in report.orphans} <= {"lease_stale", "snapshot_unreferenced"}
    assert (stray_rel in unreferenced) == stray_left
    assert any("gc.root" in o.name and o.disk > 0 for o in report.other)  # dd-kept is someone's
    for o in report.orphans:
        assert o.disk == rd.du_bytes(*(d.root / p for p in o.paths)), o.path
    assert not [p for p in report.problems if p.kind != "path_unreadable"]
    with rd.PrivateDaemon("26.1", tmp_path, config=CONTAINERD_CONFIG) as d2:
        left = _ctr(d2, "leases", "ls", "-q").split()
        snaps = _ctr(d2, "snapshots", "ls")
    assert set(left) & (temporary | {"dd-expired"}) == set() and ghost in left and "dd-expiring" in left
    assert "dd-stray" not in snaps and "dd-kept" in snaps
    assert not (d.root / stray_rel).exists()
    assert [p for p in unreferenced if (d.root / p).exists()] == []  # all were garbage


def test_which_and_image_on_the_containerd_store(ctrd: Root) -> None:
    """which names snapshots, blobs, images and containers; image reads the snapshots."""
    runner = CliRunner()
    root = str(ctrd.root)
    app1 = next(i for i in ctrd.report.images if rd.APP1 in i.tags)
    running = next(c for c in ctrd.report.containers if c.name == rd.RUNNING)
    base_layer = app1.layers[0]
    cache = next(r for r in ctrd.report.build_cache.records if r.record_type == "exec.cachemount")
    config = json.loads((ctrd.root / BLOBS / app1.id[7:]).read_bytes())
    expected = {
        app1.id[7:19]: f"image {app1.id} (",
        running.id[:12]: f"writable layer of container {rd.RUNNING}",
        f"{SNAPSHOTS}/{base_layer.cache_id}": f"(snapshot {base_layer.cache_id}) of image(s)",
        f"{SNAPSHOTS}/{cache.snapshot}": f"build cache {cache.id}",
        config["config"]["digest"][7:19]: "content-store blob an image reaches",
        ctrd.planted["blob_unreferenced"]: "orphan blob_unreferenced",
    }
    for query, words in expected.items():
        result = runner.invoke(app, ["which", "--root", root, query], catch_exceptions=False)
        assert result.exit_code == 0, (query, result.output)
        assert words in result.stdout, (query, result.stdout)
    result = runner.invoke(app, ["image", "--root", root, rd.APP1], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"head -c {rd.APP1_FILE}" in result.stdout  # the instruction of its own layer
