"""While a daemon runs, what it is half-way through creating or removing is in flight, not an orphan.

Each test plants the state a live daemon passes through (as tests/race.py caught it),
scans once as if a daemon were running on the root, and once with the window closed
(IN_FLIGHT_SECONDS = 0: the same state left long ago, or by a crash) to show that the
same leftover is still an orphan when it is old.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dockerdu import index as index_module
from dockerdu.locate import Daemon, Location
from dockerdu.report import Report
from dockerdu.scan import build_report
from dockerdu.stores.graphdriver import index as graphdriver_index
from dockerdu.stores.graphdriver import read as scan_module
from dockerdu.stores.graphdriver.index import Scans
from tests.conftest import du
from tests.rootbuilder import Layer, RootBuilder

BASE = {"bin/busybox": b"x" * 100_000}
APP = {"app/data": b"a" * 30_000}
STORE = "image/overlay2"
IN_FLIGHT = "in flight (daemon running)"


def live_scan(root: Path) -> Report:
    """Report on `root` as if a dockerd (this process, for the test) were running on it."""
    return build_report(Location(root, "--root", Daemon(os.getpid(), root)))


def _in_flight_disk(r: Report) -> int:
    return sum(o.disk for o in r.other if o.name == IN_FLIGHT)


@pytest.fixture
def healthy(builder: RootBuilder) -> RootBuilder:
    image = builder.add_image([BASE, APP], ["app:1"])
    builder.add_container(image, builder.image_chain([BASE, APP])[-1], "web", {"f": b"f" * 100})
    r = live_scan(builder.root)
    assert r.orphans == () and r.problems == ()
    assert r.docker.daemon_running
    return builder


def test_layer_write_in_flight(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # registerWithDescriptor: driver.Create, untar, then the write set in layerdb/tmp.
    name, _ = healthy.layer_dir({"half": b"h" * 7000}, [])
    ws = healthy.store / "layerdb" / "tmp" / "write-set-123456789"
    ws.mkdir()
    (ws / "cache-id").write_text(name)
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    assert _in_flight_disk(r) >= du(ws, healthy.root / "overlay2" / name)
    assert r.totals.root_disk == du(healthy.root)
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    assert {o.kind for o in live_scan(healthy.root).orphans} == {"layerdb_tmp"}


def test_layer_delete_in_flight(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # deleteLayer: rename to <chain>-<random>-removing, driver.Remove, RemoveAll. The rename
    # sets the ctime only: an old layer being deleted now has an old mtime.
    top = healthy.add_layers([BASE, APP, {"rm": b"r" * 3000}])[-1]
    src = healthy.store / "layerdb" / "sha256" / top.chain_id[7:]
    os.utime(src, (1_000_000_000, 1_000_000_000))
    name = f"{top.chain_id[7:]}-{secrets.token_hex(32)}-removing"
    src.rename(src.with_name(name))
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    assert _in_flight_disk(r) >= du(healthy.root / "overlay2" / top.cache_id)
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    assert {o.kind for o in live_scan(healthy.root).orphans} == {"layer_removing"}


def _finish_after_first_read(monkeypatch: pytest.MonkeyPatch, finish: Callable[[], None]) -> list[int]:
    """Make the daemon complete what it was doing right after dockerdu's first read of the root."""
    real = scan_module.read_root
    calls: list[int] = []

    def read_root(root: Path, driver: str = "overlay2") -> Scans:
        scans = real(root, driver)
        calls.append(1)
        if len(calls) == 1:
            finish()
        return scans

    monkeypatch.setattr(scan_module, "read_root", read_root)
    return calls


def _rmi_half_done(healthy: RootBuilder) -> Layer:
    """An rmi caught after the image config and the layer's dir went, before its layerdb entry."""
    files = [BASE, APP, {"gone": b"g" * 5000}]
    image = healthy.add_image(files, ["app:2"])
    top = healthy.image_chain(files)[-1]
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories["app"].pop("app:2")
    healthy._write_repositories()
    os.remove(healthy.root / "overlay2" / "l" / top.link)
    shutil.rmtree(healthy.root / "overlay2" / top.cache_id)
    return top


def test_second_read_drops_what_completed(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # An old layer (window closed) seen half-way through its rmi: the first read finds a
    # layer_unreferenced orphan and its layer_dir_missing; the rmi ends before the second.
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    top = _rmi_half_done(healthy)
    entry = healthy.store / "layerdb" / "sha256" / top.chain_id[7:]
    calls = _finish_after_first_read(monkeypatch, lambda: shutil.rmtree(entry))
    r = live_scan(healthy.root)
    assert len(calls) == 2
    assert r.orphans == () and r.problems == ()
    assert r.totals.root_disk == du(healthy.root)


def test_second_read_keeps_what_stays(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same state, still there on the second read: an rmi that stopped half-way.
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    top = _rmi_half_done(healthy)
    calls = _finish_after_first_read(monkeypatch, lambda: None)
    r = live_scan(healthy.root)
    assert len(calls) == 2
    rel = f"{STORE}/layerdb/sha256/{top.chain_id[7:]}"
    assert {(o.kind, o.path) for o in r.orphans} == {("layer_unreferenced", rel)}
    assert {(p.kind, p.path) for p in r.problems} == {("layer_dir_missing", f"overlay2/{top.cache_id}")}
    assert r.totals.orphans == du(healthy.root / rel)


def test_no_second_read_without_a_daemon(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    _rmi_half_done(healthy)
    calls = _finish_after_first_read(monkeypatch, lambda: None)
    r = build_report(Location(healthy.root, "--root", None))
    assert len(calls) == 1
    assert {o.kind for o in r.orphans} == {"layer_unreferenced"}


def _rm_half_done(healthy: RootBuilder) -> None:
    """A docker rm caught after it removed the writable and init dirs (links first), before the mount."""
    layers = healthy.image_chain([BASE, APP])
    image_id = live_scan(healthy.root).images[0].id
    c = healthy.add_container(image_id, layers[-1], "leaving", {"x": b"x" * 8000})
    config = healthy.root / "containers" / c.id / "config.v2.json"
    doc = json.loads(config.read_text())
    doc["State"].update({"Dead": True, "RemovalInProgress": True})
    config.write_text(json.dumps(doc))
    for d in (c.mount_id, f"{c.mount_id}-init"):
        link = (healthy.root / "overlay2" / d / "link").read_text()
        os.remove(healthy.root / "overlay2" / "l" / link)
    shutil.rmtree(healthy.root / "overlay2" / c.mount_id)
    os.remove(healthy.root / "overlay2" / f"{c.mount_id}-init" / "link")  # EnsureRemoveAll under way


def test_container_being_removed(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    _rm_half_done(healthy)
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    assert "removing" in {c.state for c in r.containers}
    assert r.totals.root_disk == du(healthy.root)
    # The same state left by an rm that crashed long ago is damage, daemon or not.
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    assert {p.kind for p in live_scan(healthy.root).problems} == {"layer_dir_missing", "link_missing"}
    assert {p.kind for p in build_report(Location(healthy.root, "--root", None)).problems} == {
        "layer_dir_missing",
        "link_missing",
    }


def test_mount_being_written(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # saveMount: MkdirAll(mounts/<id>) a moment before it writes mount-id into it.
    half = healthy.store / "layerdb" / "mounts" / secrets.token_hex(32)
    half.mkdir()
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    kinds = {p.kind for p in live_scan(healthy.root).problems}
    assert kinds == {"metadata_unreadable", "references_incomplete"}


def test_mount_of_a_container_being_removed(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # docker rm of an old container, caught by readers that saw the mount before it went and
    # the containers/ dir after: the dirs are gone already (removed before the mount).
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    image_id = live_scan(healthy.root).images[0].id
    c = healthy.add_container(image_id, healthy.image_chain([BASE, APP])[-1], "old", {"x": b"x" * 8000})
    for d in (c.mount_id, f"{c.mount_id}-init"):
        os.remove(healthy.root / "overlay2" / "l" / (healthy.root / "overlay2" / d / "link").read_text())
        shutil.rmtree(healthy.root / "overlay2" / d)
    shutil.rmtree(healthy.root / "containers" / c.id)
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    assert r.totals.root_disk == du(healthy.root)
    offline = build_report(Location(healthy.root, "--root", None))
    assert {o.kind for o in offline.orphans} == {"container_layer_orphaned"}


def test_mount_being_created(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # CreateRWLayer writes the init and writable dirs, then the mount; the container dir comes
    # after. An old image's dirs are fresh, but so is the mount: in flight either way.
    image_id = live_scan(healthy.root).images[0].id
    c = healthy.add_container(image_id, healthy.image_chain([BASE, APP])[-1], "new", {})
    shutil.rmtree(healthy.root / "containers" / c.id)
    for d in (c.mount_id, f"{c.mount_id}-init"):
        os.utime(healthy.root / "overlay2" / d, (1_000_000_000, 1_000_000_000))
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    assert _in_flight_disk(r) >= du(healthy.root / "overlay2" / c.mount_id)
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    assert {o.kind for o in live_scan(healthy.root).orphans} == {"container_layer_orphaned"}


def test_layer_registered_before_its_image(healthy: RootBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    # docker commit and each build step register the layer, then create the image.
    healthy.add_layers([BASE, APP, {"committed": b"c" * 4000}])
    r = live_scan(healthy.root)
    assert r.orphans == () and r.problems == ()
    monkeypatch.setattr(index_module, "IN_FLIGHT_SECONDS", 0.0)
    assert {o.kind for o in live_scan(healthy.root).orphans} == {"layer_unreferenced"}


def _aged(scans: Scans) -> Scans:
    """`scans` as if every layer and dir were a day old, the leftovers left as they are."""
    layerdb = replace(
        scans.layerdb, layers={c: replace(x, changed=0.0) for c, x in scans.layerdb.layers.items()}
    )
    layer_dirs = replace(
        scans.layer_dirs, dirs={n: replace(x, mtime=0.0) for n, x in scans.layer_dirs.dirs.items()}
    )
    return replace(scans, layerdb=layerdb, layer_dirs=layer_dirs)


def test_parents_of_a_layer_being_deleted(healthy: RootBuilder) -> None:
    # rmi of an old image: its config went, its top layer is being deleted (renamed to
    # -removing, its dir still going), the parent below waits for its turn, unchanged.
    files = [BASE, APP, {"mid": b"m" * 6000}, {"top": b"t" * 9000}]
    image = healthy.add_image(files, ["app:big"])
    chain = healthy.image_chain(files)
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories["app"].pop("app:big")
    healthy._write_repositories()
    top = healthy.store / "layerdb" / "sha256" / chain[-1].chain_id[7:]
    top.rename(top.with_name(f"{top.name}-{secrets.token_hex(32)}-removing"))
    scans = _aged(scan_module.read_root(healthy.root))
    live = graphdriver_index.build_index(scans, now=time.time(), daemon_running=True)
    assert live.orphans == []
    assert live.layer_owner[chain[-2].chain_id] == index_module.IN_FLIGHT
    offline = graphdriver_index.build_index(scans, now=time.time(), daemon_running=False)
    assert {o.kind for o in offline.orphans} == {"layer_removing", "layer_unreferenced"}
