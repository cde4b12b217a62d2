"""The graphdrivers Docker removed (overlay and aufs in 24.0) whose roots are still analysed.

overlay (v1): a real Docker 20.10 root, `--storage-driver overlay`. Image layers are
`overlay/<id>/root` (a whole tree, hard-linked to the parent's), containers and init
layers `upper/`, `work/`, `merged/` and a `lower-id` file; no `l/`, no `link` files.

aufs needs the aufs kernel module, which this machine's kernel lacks, so its root is
built here as Docker's aufs driver (daemon/graphdriver/aufs/aufs.go, 20.10) lays it out:
`aufs/diff/<id>` (a layer's files; a container's writable layer), `aufs/layers/<id>`
(its parents' ids, nearest first, one a line), `aufs/mnt/<id>` (the mount point), with
`<id>-init` for init layers; DiffSize is `directory.Size(aufs/diff/<id>)`.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest

from dockerdu.locate import Location, detect_store
from dockerdu.scan import Options, build_report
from tests import realdocker as rd
from tests.rootbuilder import RootBuilder


@pytest.mark.docker
def test_overlay_root_equals_engine_api_and_du(tmp_path: Path) -> None:
    """A real 20.10 root on the overlay driver: /system/df's figures, du, no false problem or orphan."""
    rd.require_docker("20.10")
    with rd.PrivateDaemon("20.10", tmp_path, config={"storage-driver": "overlay"}) as d:
        assert d.api("/info")["Driver"] == "overlay"
        tar = rd.busybox_rootfs_tar(tmp_path / "rootfs")
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        common = f"FROM {rd.BASE}\nRUN head -c {rd.SHARED_FILE} /dev/zero > /shared.bin && echo m > /m.txt\n"
        rd.build_image(d, rd.APP1, common + f"RUN head -c {rd.APP1_FILE} /dev/zero > /app1.bin\n")
        rd.build_image(d, rd.APP2, common + f"RUN head -c {rd.APP2_FILE} /dev/zero > /app2.bin\n")
        d.docker("volume", "create", rd.NAMED_VOLUME)
        d.docker(
            "run", "-d", "--name", rd.RUNNING, "--network", "none", "--stop-timeout", "1",
            "-v", f"{rd.NAMED_VOLUME}:/named", rd.APP1, "sleep", "3600",
        )  # fmt: skip
        writes = (
            f"head -c {rd.RUNNING_RW_FILE} /dev/zero > /rw.bin && ln /rw.bin /rw.ln && rm /shared.bin"
            f" && chmod 600 /m.txt && head -c {rd.NAMED_VOLUME_FILE} /dev/zero > /named/n.bin"
        )
        d.docker("exec", rd.RUNNING, "sh", "-c", writes)
        d.docker(
            "run", "--name", rd.EXITED, "--network", "none", rd.APP2,
            "sh", "-c", f"head -c {rd.EXITED_RW_FILE} /dev/zero > /out.bin; seq 1 50",
        )  # fmt: skip
        d.docker("create", "--name", rd.CREATED, "--network", "none", rd.APP1, "true")
        df = rd.system_df(d)
    report = build_report(Location(d.root, "--root", None), Options(jobs=1))
    assert (report.store, report.driver) == ("overlay", "overlay")
    assert report.problems == ()
    assert report.orphans == ()
    ours = {i.id: (i.size, i.shared_size, i.containers) for i in report.images}
    assert ours == {i["Id"]: (i["Size"], i["SharedSize"], i["Containers"]) for i in df["Images"]}
    assert report.docker.layers_size == df["LayersSize"]
    docker_rw = {c["Names"][0].lstrip("/"): c.get("SizeRw", 0) for c in df["Containers"]}  # omitempty
    assert docker_rw[rd.EXITED] == rd.EXITED_RW_FILE
    assert {c.name: c.rw_size for c in report.containers} == docker_rw
    assert {v.name: v.size for v in report.volumes} == {
        v["Name"]: v["UsageData"]["Size"] for v in df["Volumes"]
    }
    by_name = {c.name: c for c in report.containers}
    running = by_name[rd.RUNNING]
    assert running.rw_disk >= rd.du_bytes(d.root / "overlay" / _mount_id(d.root, running.id) / "upper")
    t = report.totals
    parts = [t.images, t.containers, t.logs, t.volumes, t.build_cache, t.orphans, t.metadata, t.other]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(d.root)
    assert t.other == 0 and t.images and t.containers
    # Every layer dir's bytes are its image's (hard links into the parent's tree charged once).
    layer_dirs = {layer.cache_id for i in report.images for layer in i.layers}
    assert t.images == rd.du_bytes(*(d.root / "overlay" / c for c in sorted(layer_dirs)))


def _mount_id(root: Path, cid: str) -> str:
    for driver in ("overlay", "aufs"):
        path = root / "image" / driver / "layerdb/mounts" / cid / "mount-id"
        if path.exists():
            return path.read_text()
    raise AssertionError(f"no mount-id for {cid}")


def _aufs_root(root: Path) -> tuple[RootBuilder, dict[str, str]]:
    """An aufs root as Docker 20.10's aufs driver writes one: an image of two layers, a container
    with a writable layer, an unreferenced layer dir (with its layers/ and mnt/ entries)."""
    b = RootBuilder(root)
    files = [{"bin/sh": b"\x7fELF" + b"s" * 5000}, {"app.bin": b"a" * 30000}]
    image_id = b.add_image(files, tags=("app:1",))
    layers = b.image_chain(files)
    container = b.add_container(image_id, layers[-1], "web", {"rw.bin": b"w" * 12345, "etc/x": b"xy"})
    # RootBuilder lays layers out as overlay2; move them into aufs' three trees.
    overlay2 = root / "overlay2"
    (root / "aufs" / "diff").mkdir(parents=True)
    (root / "aufs" / "layers").mkdir()
    (root / "aufs" / "mnt").mkdir()
    parents: dict[str, list[str]] = {}
    for layer in layers:
        parents[layer.cache_id] = [p.cache_id for p in reversed(layers[: layers.index(layer)])]
    init = container.mount_id + "-init"
    top = [p.cache_id for p in reversed(layers)]
    parents[init] = top
    parents[container.mount_id] = [init, *top]
    for name, chain in parents.items():
        (overlay2 / name / "diff").rename(root / "aufs" / "diff" / name)
        (root / "aufs" / "layers" / name).write_text("".join(f"{p}\n" for p in chain))
        (root / "aufs" / "mnt" / name).mkdir()
    stray = secrets.token_hex(32)
    (root / "aufs" / "diff" / stray).mkdir()
    (root / "aufs" / "diff" / stray / "junk.bin").write_bytes(b"j" * 7000)
    (root / "aufs" / "layers" / stray).write_text("")
    (root / "aufs" / "mnt" / stray).mkdir()
    shutil.rmtree(overlay2)
    image = root / "image"
    (image / "overlay2").rename(image / "aufs")
    cfg = root / "containers" / container.id / "config.v2.json"
    doc = json.loads(cfg.read_text())
    doc["Driver"] = "aufs"
    cfg.write_text(json.dumps(doc))
    return b, {"container": container.id, "mount": container.mount_id, "stray": stray}


def test_aufs_layout_built_from_the_driver_source(tmp_path: Path) -> None:
    """aufs (no kernel module here: the layout is built): disk, SizeRw, one orphan with its three paths."""
    root = tmp_path / "docker"
    _, ids = _aufs_root(root)
    assert detect_store(root).store == "aufs"
    report = build_report(Location(root, "--root", None), Options(jobs=1))
    assert (report.store, report.driver) == ("aufs", "aufs")
    assert report.problems == ()
    stray = ids["stray"]
    assert [(o.kind, o.path, o.paths) for o in report.orphans] == [
        (
            "layer_dir_unreferenced",
            f"aufs/diff/{stray}",
            (f"aufs/diff/{stray}", f"aufs/layers/{stray}", f"aufs/mnt/{stray}"),
        )
    ]
    orphan = report.orphans[0]
    assert orphan.disk == rd.du_bytes(*(root / p for p in orphan.paths))
    [image] = report.images
    assert image.size == 5004 + 30000
    assert image.disk == rd.du_bytes(
        *(
            root / d / layer.cache_id
            for layer in image.layers
            for d in ("aufs/diff", "aufs/layers", "aufs/mnt")
        )
    )
    [container] = report.containers
    assert container.rw_size == 12345 + 2  # DiffSize: directory.Size(aufs/diff/<mount-id>)
    mount = ids["mount"]
    own = [root / d / n for n in (mount, mount + "-init") for d in ("aufs/diff", "aufs/layers", "aufs/mnt")]
    assert container.rw_disk == rd.du_bytes(*own)
    t = report.totals
    parts = [t.images, t.containers, t.logs, t.volumes, t.build_cache, t.orphans, t.metadata, t.other]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(root)
    assert t.other == 0
