"""The report on roots built file by file: Docker's figures, du's figures, ownership."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import du, scan
from tests.rootbuilder import RootBuilder

BASE = {"bin/busybox": b"x" * 100_000, "bin/sh": b"#!" + b"y" * 50}
APP = {"app/data": b"a" * 30_000}


def _category_sum(totals: dict[str, int]) -> int:
    return sum(v for k, v in totals.items() if k not in ("root_disk", "reclaimable"))


def test_images_sizes_and_sharing(builder: RootBuilder) -> None:
    base = builder.add_image([BASE], ["base:1"])
    app1 = builder.add_image([BASE, APP], ["app:1"])
    app2 = builder.add_image([BASE, APP, {"two": b"2" * 10}], ["app:2"])
    r = scan(builder.root)
    by_id = {i.id: i for i in r.images}
    assert set(by_id) == {base, app1, app2}
    assert by_id[base].size == 100_052
    assert by_id[app1].size == 130_052
    assert by_id[app2].size == 130_062
    # The base layer is in all three, the app layer in two: shared; the "two" layer is not.
    assert by_id[app2].shared_size == 130_052
    assert by_id[app2].unique_size == 10
    assert by_id[base].shared_size == 100_052
    for image in r.images:
        assert image.disk == sum(layer.disk or 0 for layer in image.layers)
        for layer in image.layers:
            link = builder.layers[layer.chain_id].link  # type: ignore[index]
            assert layer.disk == du(
                builder.root / "overlay2" / layer.cache_id, builder.root / "overlay2" / "l" / link
            )


def test_totals_reconcile_with_du(builder: RootBuilder) -> None:
    image = builder.add_image([BASE, APP], ["app:1"])
    top = builder.image_chain([BASE, APP])[-1]
    builder.add_container(
        image, top, "web", {"tmp/out": b"o" * 5000}, state="running", volumes=("data",), log=b"l" * 3000
    )
    builder.add_volume("data", {"db": b"d" * 70_000})
    builder.add_volume("spare", {"x": b"x" * 9000})
    r = scan(builder.root)
    totals = vars(r.totals)
    assert totals["root_disk"] == du(builder.root)
    assert _category_sum(totals) == du(builder.root)
    (c,) = r.containers
    assert c.rw_size == 5000
    assert c.state == "running"
    assert c.log_size == 3000
    cdir = builder.root / "containers" / c.id
    assert c.log_disk == du(cdir / f"{c.id}-json.log")
    volumes = {v.name: v for v in r.volumes}
    assert volumes["data"].size == 70_000
    assert volumes["data"].containers == ("web",)
    assert volumes["spare"].containers == ()
    assert volumes["data"].disk == du(builder.root / "volumes" / "data")
    assert r.orphans == ()
    assert r.problems == ()


def test_hardlinks_counted_once(builder: RootBuilder) -> None:
    image = builder.add_image([BASE], ["base:1"])
    top = builder.image_chain([BASE])[-1]
    c = builder.add_container(image, top, "c", {"big": b"b" * 64 * 1024})
    diff = builder.root / "overlay2" / c.mount_id / "diff"
    os.link(diff / "big", diff / "big-link")
    r = scan(builder.root)
    assert r.containers[0].rw_size == 64 * 1024
    assert r.totals.root_disk == du(builder.root)


def test_shared_size_rule_before_23(tmp_path: Path) -> None:
    # Before 23.0 SharedSize counted only listed images: an intermediate (parent with children,
    # untagged) does not make its layers shared.
    for engine_id, expected in ((False, 0), (True, 100_052)):
        b = RootBuilder(tmp_path / str(engine_id), engine_id=engine_id)
        parent = b.add_image([BASE])
        child = b.add_image([BASE, APP], ["app:1"], parent=parent)
        r = scan(b.root)
        assert [i.id for i in r.images] == [child]
        assert r.images[0].shared_size == expected
        assert ("all images" in r.docker.shared_size_rule) is engine_id


def test_dangling_image_listed(builder: RootBuilder) -> None:
    dangling = builder.add_image([BASE, {"old": b"o"}])
    builder.add_image([BASE, {"new": b"n"}], ["app:1"])
    r = scan(builder.root)
    assert dangling in {i.id for i in r.images}
    assert next(i for i in r.images if i.id == dangling).tags == ()
