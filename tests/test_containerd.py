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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerdu.locate import Location, detect_store
from dockerdu.readers.containerd import CONTENT, CTRD, snapshotter_dir
from dockerdu.render.json_ import render_json
from dockerdu.report import Report
from dockerdu.scan import Options, build_report
from tests import realdocker as rd

pytestmark = pytest.mark.docker

CONTAINERD_CONFIG = {"storage-driver": "overlayfs", "features": {"containerd-snapshotter": True}}
SNAPSHOTS = f"{snapshotter_dir('overlayfs')}/snapshots"
BLOBS = f"{CTRD}/{CONTENT}/blobs/sha256"


@dataclass
class Root:
    root: Path
    df: dict[str, Any]
    report: Report
    planted: dict[str, str]
    """Orphan kind -> root-relative path planted (or left by the store switch)."""


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
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        common = (
            f"FROM {rd.BASE}\nRUN head -c {rd.SHARED_FILE} /dev/zero > /shared.bin && ln /shared.bin /s.ln\n"
        )
        rd.build_image(d, rd.APP1, common + f"RUN head -c {rd.APP1_FILE} /dev/zero > /app1.bin\n")
        rd.build_image(d, rd.APP2, common + f"RUN head -c {rd.APP2_FILE} /dev/zero > /app2.bin\nLABEL x=2\n")
        rd.build_image(
            d,
            rd.BK_IMAGE,
            f"FROM {rd.BASE}\nCOPY c.txt /c.txt\nRUN head -c {rd.BK_FILE} /dev/zero > /bk.bin\n"
            f"RUN --mount=type=cache,target=/cache head -c {rd.BK_CACHE_FILE} /dev/zero > /cache/c.bin\n",
            buildkit=True,
            files={"c.txt": b"context\n"},
        )
        d.docker("volume", "create", rd.NAMED_VOLUME)
        d.docker(
            "run", "-d", "--name", rd.RUNNING, "--network", "none", "--stop-timeout", "1",
            "-v", f"{rd.NAMED_VOLUME}:/named", "-v", "/anon", rd.APP1, "sleep", "3600",
        )  # fmt: skip
        d.docker(
            "exec", rd.RUNNING, "sh", "-c",
            f"head -c {rd.RUNNING_RW_FILE} /dev/zero > /rw.bin && ln /rw.bin /rw.ln && rm /s.ln"
            f" && head -c {rd.NAMED_VOLUME_FILE} /dev/zero > /named/n.bin",
        )  # fmt: skip
        d.docker(
            "run", "--name", rd.EXITED, "--network", "none", rd.APP2,
            "sh", "-c", f"head -c {rd.EXITED_RW_FILE} /dev/zero > /out.bin; seq 1 300",
        )  # fmt: skip
        d.docker("create", "--name", rd.CREATED, "--network", "none", rd.APP1, "true")
        df = rd.system_df(d)
    planted = _plant(d.root)
    planted["store_unused"] = "image/overlay2"
    report = build_report(Location(d.root, "--root", None), Options(jobs=2))
    yield Root(d.root, df, report, planted)


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


def test_planted_garbage_found_and_nothing_else(ctrd: Root) -> None:
    found = {(o.kind, o.path) for o in ctrd.report.orphans}
    expected = set(ctrd.planted.items()) | {("store_unused", "overlay2")}
    assert found == expected
    for o in ctrd.report.orphans:
        assert o.disk == rd.du_bytes(*(ctrd.root / p for p in o.paths)), o.path
    unused = sum(o.disk for o in ctrd.report.orphans if o.kind == "store_unused")
    assert unused == rd.du_bytes(ctrd.root / "image/overlay2", ctrd.root / "overlay2") > 0
    assert ctrd.report.reclaimable["orphans"].disk == ctrd.report.totals.orphans
    assert not [p for p in ctrd.report.problems if p.kind != "path_unreadable"]
