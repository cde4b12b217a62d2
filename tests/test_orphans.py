"""Each orphan and problem kind, planted as a crash or half-finished removal leaves it."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest

from tests.conftest import du, scan
from tests.rootbuilder import RootBuilder

BASE = {"bin/busybox": b"x" * 100_000}
APP = {"app/data": b"a" * 30_000}
STORE = "image/overlay2"


@pytest.fixture
def healthy(builder: RootBuilder) -> RootBuilder:
    image = builder.add_image([BASE, APP], ["app:1"])
    builder.add_container(image, builder.image_chain([BASE, APP])[-1], "web", {"f": b"f" * 100})
    builder.add_volume("data", {"db": b"d" * 1000})
    r = scan(builder.root)
    assert r.orphans == () and r.problems == ()
    return builder


def _found(root: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]], int]:
    r = scan(root)
    assert r.totals.root_disk == du(root)
    assert r.totals.orphans is not None
    return {(o.kind, o.path) for o in r.orphans}, {(p.kind, p.path) for p in r.problems}, r.totals.orphans


def test_layer_dir_unreferenced(healthy: RootBuilder) -> None:
    name, link = healthy.layer_dir({"pulled": b"p" * 9000}, [])
    orphans, problems, disk = _found(healthy.root)
    assert orphans == {("layer_dir_unreferenced", f"overlay2/{name}")}
    assert problems == set()
    assert disk == du(healthy.root / "overlay2" / name, healthy.root / "overlay2" / "l" / link)


def test_layer_unreferenced(healthy: RootBuilder) -> None:
    image = healthy.add_image([BASE, APP, {"gone": b"g" * 5000}], ["app:2"])
    top = healthy.image_chain([BASE, APP, {"gone": b"g" * 5000}])[-1]
    # An rmi interrupted after the image went, before its top layer was released.
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories.pop("app")
    healthy.repositories["app"] = {
        "app:1": next(i.id for i in scan(healthy.root).images if i.tags == ("app:1",))
    }
    healthy._write_repositories()
    orphans, problems, _ = _found(healthy.root)
    assert orphans == {("layer_unreferenced", f"{STORE}/layerdb/sha256/{top.chain_id[7:]}")}
    assert problems == set()


def test_container_layer_orphaned(healthy: RootBuilder) -> None:
    image = next(i.id for i in scan(healthy.root).images)
    c = healthy.add_container(image, healthy.image_chain([BASE, APP])[-1], "gone", {"x": b"x" * 8000})
    shutil.rmtree(healthy.root / "containers" / c.id)
    orphans, problems, disk = _found(healthy.root)
    assert orphans == {("container_layer_orphaned", f"{STORE}/layerdb/mounts/{c.id}")}
    assert disk >= du(
        healthy.root / "overlay2" / c.mount_id, healthy.root / "overlay2" / f"{c.mount_id}-init"
    )


def test_container_dir_orphaned(healthy: RootBuilder) -> None:
    image = next(i.id for i in scan(healthy.root).images)
    c = healthy.add_container(image, healthy.image_chain([BASE, APP])[-1], "half", {"x": b"x"})
    # docker rm removed the writable layer, then stopped before the container dir.
    for d in (c.mount_id, f"{c.mount_id}-init"):
        link = (healthy.root / "overlay2" / d / "link").read_text()
        os.remove(healthy.root / "overlay2" / "l" / link)
        shutil.rmtree(healthy.root / "overlay2" / d)
    shutil.rmtree(healthy.store / "layerdb" / "mounts" / c.id)
    orphans, problems, _ = _found(healthy.root)
    assert orphans == {("container_dir_orphaned", f"containers/{c.id}")}
    assert problems == set()


def test_link_broken(healthy: RootBuilder) -> None:
    os.symlink(
        f"../{secrets.token_hex(32)}/diff", healthy.root / "overlay2" / "l" / "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    )
    orphans, _, _ = _found(healthy.root)
    assert orphans == {("link_broken", "overlay2/l/ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def test_layerdb_tmp_owns_its_dir(healthy: RootBuilder) -> None:
    name, _ = healthy.layer_dir({"half": b"h" * 7000}, [])
    ws = healthy.store / "layerdb" / "tmp" / "write-set-123456789"
    ws.mkdir()
    (ws / "cache-id").write_text(name)
    (ws / "diff").write_text("sha256:" + "0" * 64)
    orphans, _, _ = _found(healthy.root)
    assert orphans == {("layerdb_tmp", f"{STORE}/layerdb/tmp/write-set-123456789")}


def test_layer_removing(healthy: RootBuilder) -> None:
    files = [BASE, APP, {"rm": b"r" * 3000}]
    layers = healthy.add_layers(files)
    top = layers[-1]
    src = healthy.store / "layerdb" / "sha256" / top.chain_id[7:]
    name = f"{top.chain_id[7:]}-{secrets.token_hex(32)}-removing"
    src.rename(src.with_name(name))
    orphans, _, disk = _found(healthy.root)
    assert orphans == {("layer_removing", f"{STORE}/layerdb/sha256/{name}")}
    assert disk >= du(healthy.root / "overlay2" / top.cache_id)


def test_problems_layer_dir_and_link_missing(healthy: RootBuilder) -> None:
    layers = healthy.image_chain([BASE, APP])
    shutil.rmtree(healthy.root / "overlay2" / layers[1].cache_id)
    os.remove(healthy.root / "overlay2" / "l" / layers[0].link)
    orphans, problems, _ = _found(healthy.root)
    assert orphans == set()
    assert problems == {
        ("layer_dir_missing", f"overlay2/{layers[1].cache_id}"),
        ("link_missing", f"overlay2/l/{layers[0].link}"),
    }


def test_image_layer_missing(healthy: RootBuilder) -> None:
    files = [BASE, APP, {"top": b"t" * 100}]
    healthy.add_image(files, ["app:3"])
    top = healthy.image_chain(files)[-1]
    shutil.rmtree(healthy.store / "layerdb" / "sha256" / top.chain_id[7:])
    os.remove(healthy.root / "overlay2" / "l" / top.link)
    shutil.rmtree(healthy.root / "overlay2" / top.cache_id)
    orphans, problems, _ = _found(healthy.root)
    assert orphans == set()
    assert problems == {("image_layer_missing", f"{STORE}/layerdb/sha256/{top.chain_id[7:]}")}


def test_unreadable_image_config_proves_nothing(healthy: RootBuilder) -> None:
    files = [BASE, APP, {"mine": b"m" * 100}]
    image = healthy.add_image(files, ["app:4"])
    config = healthy.store / "imagedb" / "content" / "sha256" / image[7:]
    config.write_bytes(config.read_bytes()[:20])
    orphans, problems, _ = _found(healthy.root)
    # Its top layer is referenced by nothing readable, but the config that may name it is unreadable.
    assert orphans == set()
    assert ("metadata_unreadable", f"{STORE}/imagedb/content/sha256/{image[7:]}") in problems
    assert ("references_incomplete", STORE) in problems


def test_buildkit_named_dir_without_buildkit_db(healthy: RootBuilder) -> None:
    # With no BuildKit database at all nothing can name a BuildKit-style dir: it is proven unreferenced.
    healthy.layer_dir({"cache": b"c"}, [], name="abcdefghijklmnopqrstuvwxy")
    orphans, _, _ = _found(healthy.root)
    assert orphans == {("layer_dir_unreferenced", "overlay2/abcdefghijklmnopqrstuvwxy")}


def test_unreadable_buildkit_db_proves_nothing(healthy: RootBuilder) -> None:
    healthy.layer_dir({"cache": b"c"}, [], name="abcdefghijklmnopqrstuvwxy")
    (healthy.root / "buildkit" / "snapshots.db").write_bytes(b"\0" * 100)
    (healthy.root / "buildkit" / "metadata_v2.db").write_bytes(b"\0" * 100)
    orphans, problems, _ = _found(healthy.root)
    assert orphans == set()
    assert {k for k, _ in problems} == {"metadata_unreadable"}


def test_chain_mismatch_reported(healthy: RootBuilder) -> None:
    top = healthy.image_chain([BASE, APP])[-1]
    (healthy.store / "layerdb" / "sha256" / top.chain_id[7:] / "diff").write_text("sha256:" + "1" * 64)
    _, problems, _ = _found(healthy.root)
    assert ("layer_chain_mismatch", f"{STORE}/layerdb/sha256/{top.chain_id[7:]}/diff") in problems


def test_layers_only_an_orphaned_mount_holds_are_part_of_it(healthy: RootBuilder) -> None:
    """A container created, its dir lost, then its image removed: its layers go with its mount."""
    files = [BASE, APP, {"only-gone": b"o" * 6000}]
    image = healthy.add_image(files, ["gone:1"])
    top = healthy.image_chain(files)[-1]
    c = healthy.add_container(image, top, "lost", {"x": b"x" * 8000})
    shutil.rmtree(healthy.root / "containers" / c.id)
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories.pop("gone")
    healthy._write_repositories()
    r = scan(healthy.root)
    assert [(o.kind, o.path) for o in r.orphans] == [
        ("container_layer_orphaned", f"{STORE}/layerdb/mounts/{c.id}")
    ]
    orphan = r.orphans[0]
    assert f"{STORE}/layerdb/sha256/{top.chain_id[7:]}" in orphan.paths
    assert f"overlay2/{top.cache_id}" in orphan.paths and f"overlay2/l/{top.link}" in orphan.paths
    assert orphan.cleaned_by == "never"
    root = healthy.root
    links = root / "overlay2" / "l"
    mine = (c.mount_id, f"{c.mount_id}-init", top.cache_id)
    assert orphan.disk == du(
        *(root / "overlay2" / d for d in mine),
        root / STORE / "layerdb" / "mounts" / c.id,
        root / STORE / "layerdb" / "sha256" / top.chain_id[7:],
        *(links / n for n in os.listdir(links) if os.readlink(links / n).split("/")[1] in mine),
    )
    # The layers app:1 shares stay images'.
    assert r.totals.images == sum(i.disk or 0 for i in r.images if i.tags == ("app:1",))


def test_a_removing_layer_is_dockerds_at_clean_stop(healthy: RootBuilder) -> None:
    files = [BASE, APP, {"rm": b"r" * 3000}]
    image = healthy.add_image(files, ["rm:1"])
    top = healthy.image_chain(files)[-1]
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories.pop("rm")
    healthy._write_repositories()
    ldb = healthy.store / "layerdb" / "sha256"
    os.rename(ldb / top.chain_id[7:], ldb / f"{top.chain_id[7:]}-{secrets.token_hex(32)}-removing")
    (o,) = scan(healthy.root).orphans
    assert (o.kind, o.cleaned_by) == ("layer_removing", "dockerd at clean stop")


def test_a_buildkit_layer_no_record_holds_is_not_build_cache(healthy: RootBuilder) -> None:
    """A BuildKit-made layer whose record is gone (a failed builder prune): Docker counts it nowhere."""
    files = [BASE, {"bk": b"k" * 7000}]
    image = healthy.add_image(files, ["bk:1"])
    top = healthy.image_chain(files)[-1]
    os.remove(healthy.store / "imagedb" / "content" / "sha256" / image[7:])
    healthy.repositories.pop("bk")
    healthy._write_repositories()
    bk_id = "k" * 25
    os.rename(healthy.root / "overlay2" / top.cache_id, healthy.root / "overlay2" / bk_id)
    os.remove(healthy.root / "overlay2" / "l" / top.link)
    os.symlink(f"../{bk_id}/diff", healthy.root / "overlay2" / "l" / top.link)
    (healthy.store / "layerdb" / "sha256" / top.chain_id[7:] / "cache-id").write_text(bk_id)
    r = scan(healthy.root)
    assert r.build_cache.records == () and r.totals.build_cache == 0
    assert r.orphans == ()
    stale = [o.disk for o in r.other if o.name == "BuildKit snapshots with no cache record"]
    assert stale and stale[0] >= du(healthy.root / "overlay2" / bk_id)
