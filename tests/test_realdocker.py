"""Tests of the real-Docker harness itself (tests/realdocker.py), on Docker 20.10 and 26.1.

Each version gets one private daemon for the module: it builds the scenario,
the tests check that the daemon's own /system/df shows what the scenario
promises, and the last test stops the daemon, plants the leftovers and lets
the daemon restart on the damaged root. Outside CI a missing Docker skips these
tests; with CI set it fails them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import realdocker as rd


def _require(version: rd.Version) -> None:
    rd.require_docker(version)


@dataclass
class Built:
    daemon: rd.PrivateDaemon
    scenario: rd.Scenario
    df: dict[str, Any]


@pytest.fixture(scope="module", params=rd.VERSIONS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    version: rd.Version = request.param
    _require(version)
    base = tmp_path_factory.mktemp(f"docker-{version}")
    with rd.PrivateDaemon(version, base) as d:
        scenario = rd.build_scenario(d)
        yield Built(d, scenario, rd.system_df(d))


def _layer_size(root: Path, chain_id: str) -> int:
    hexid = chain_id.split(":", 1)[1]
    return int((root / "image/overlay2/layerdb/sha256" / hexid / "size").read_text())


def _df_image(df: dict[str, Any], image_id: str) -> dict[str, Any]:
    for image in df["Images"]:
        if image["Id"] == image_id:
            assert isinstance(image, dict)
            return image
    raise AssertionError(f"{image_id} not in /system/df Images")


def _df_container(df: dict[str, Any], name: str) -> dict[str, Any]:
    for c in df["Containers"]:
        if f"/{name}" in c["Names"]:
            assert isinstance(c, dict)
            return c
    raise AssertionError(f"{name} not in /system/df Containers")


def _df_volume(df: dict[str, Any], name: str) -> dict[str, Any]:
    for v in df["Volumes"]:
        if v["Name"] == name:
            assert isinstance(v, dict)
            return v
    raise AssertionError(f"{name} not in /system/df Volumes")


def test_rootfs_tar_is_deterministic(tmp_path: Path) -> None:
    if not any(Path(p).is_file() for p in rd.BUSYBOX_CANDIDATES):
        if os.environ.get("CI"):
            pytest.fail("busybox-static is required in CI")
        pytest.skip("no busybox-static")
    a = rd.busybox_rootfs_tar(tmp_path / "a").read_bytes()
    b = rd.busybox_rootfs_tar(tmp_path / "b").read_bytes()
    assert a == b


@pytest.mark.docker
def test_daemon_is_private(built: Built) -> None:
    d = built.daemon
    info = d.api("/info")
    assert info["DockerRootDir"] == str(d.root)
    assert info["Driver"] == "overlay2"
    assert d.docker_version().startswith(d.version + ".")
    assert built.scenario.engine_version == d.docker_version()
    assert d.pid > 0 and d.running


@pytest.mark.docker
def test_images_share_layers(built: Built) -> None:
    sc, df, root = built.scenario, built.df, built.daemon.root
    app1, app2 = sc.layers[sc.images[rd.APP1]], sc.layers[sc.images[rd.APP2]]
    base = sc.layers[sc.images[rd.BASE]]
    assert app1[: len(base)] == base
    common = [c for c, o in zip(app1, app2, strict=False) if c == o]
    assert len(common) == len(base) + 3, "base plus the three common RUN layers"
    assert app1[-1] != app2[-1]
    for tag in (rd.BASE, rd.APP1, rd.APP2, rd.APP3):
        image = _df_image(df, sc.images[tag])
        assert tag in image["RepoTags"]
        assert image["Size"] == sum(_layer_size(root, c) for c in sc.layers[sc.images[tag]])
    common_size = sum(_layer_size(root, c) for c in common)
    for tag in (rd.APP1, rd.APP2):
        assert _df_image(df, sc.images[tag])["SharedSize"] >= common_size
    # The common layers: a file plus its hard link (counted once), the sparse file, "new\n".
    assert _layer_size(root, common[len(base)]) == rd.SHARED_FILE + len("gone\nold\nkeep\n")
    assert _layer_size(root, common[len(base) + 1]) == sc.layer_sparse_size
    assert _layer_size(root, common[len(base) + 2]) == len("new\n")
    assert _df_image(df, sc.images[rd.APP1])["Containers"] == 2
    assert _df_image(df, sc.images[rd.APP2])["Containers"] == 1


@pytest.mark.docker
def test_dangling_image_listed(built: Built) -> None:
    sc = built.scenario
    image = _df_image(built.df, sc.dangling_image)
    assert not image["RepoTags"] or image["RepoTags"] == ["<none>:<none>"]
    assert sc.dangling_image != sc.images[rd.APP3]
    assert sc.layers[sc.dangling_image][:-1] == sc.layers[sc.images[rd.APP3]][:-1]


@pytest.mark.docker
def test_containers_in_their_states(built: Built) -> None:
    sc, df = built.scenario, built.df
    states = {
        rd.RUNNING: "running",
        rd.EXITED: "exited",
        rd.CREATED: "created",
        rd.LOGS_JSON: "exited",
        rd.LOGS_LOCAL: "exited",
    }
    for name, state in states.items():
        c = _df_container(df, name)
        assert c["State"] == state, name
        assert c["Id"] == sc.containers[name]
    # SizeRw is omitted from the JSON when it is 0.
    assert _df_container(df, rd.RUNNING).get("SizeRw") == sc.written["running_rw"]
    assert _df_container(df, rd.EXITED).get("SizeRw") == sc.written["exited_rw"]
    assert _df_container(df, rd.CREATED).get("SizeRw", 0) == 0
    root = built.daemon.root
    for cid in sc.containers.values():
        mount_id = sc.mount_ids[cid]
        assert (root / "overlay2" / mount_id / "diff").is_dir()
        assert (root / "overlay2" / f"{mount_id}-init" / "diff").is_dir()


@pytest.mark.docker
def test_volumes_and_refcounts(built: Built) -> None:
    sc, df = built.scenario, built.df
    expect = {
        sc.volumes["named"]: (1, rd.NAMED_VOLUME_FILE),
        sc.volumes["anonymous"]: (1, rd.ANON_VOLUME_FILE),
        sc.volumes["unused"]: (0, rd.UNUSED_VOLUME_FILE),
    }
    for name, (refs, size) in expect.items():
        usage = _df_volume(df, name)["UsageData"]
        assert (usage["RefCount"], usage["Size"]) == (refs, size), name
    assert len(sc.volumes["anonymous"]) == 64


@pytest.mark.docker
def test_logs_on_disk(built: Built) -> None:
    sc, root = built.scenario, built.daemon.root
    cid = sc.containers[rd.LOGS_JSON]
    cdir = root / "containers" / cid
    names = sorted(p.name for p in cdir.iterdir() if p.name.startswith(cid))
    assert names == [f"{cid}-json.log", f"{cid}-json.log.1.gz", f"{cid}-json.log.2.gz"]
    local = root / "containers" / sc.containers[rd.LOGS_LOCAL] / "local-logs" / "container.log"
    assert local.stat().st_size > 0


@pytest.mark.docker
def test_build_cache(built: Built) -> None:
    sc, df = built.scenario, built.df
    records = df.get("BuildCache") or []
    if sc.version == "20.10":
        assert records == []
        assert sc.buildkit_image is None
        return
    assert sc.buildkit_image == rd.BK_IMAGE
    assert records and any(r["Size"] > 0 for r in records)
    assert {r["Type"] for r in records} >= {"regular", "source.local", "exec.cachemount"}
    base_len = len(sc.layers[sc.images[rd.BASE]])
    for chain in sc.layers[sc.images[rd.BK_IMAGE]][base_len:]:
        assert len(sc.cache_ids[chain]) == 25, "layers BuildKit exports keep its snapshot ID"


def test_du_bytes_counts_hard_links_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_bytes(b"x" * 100_000)
    os.link(a / "f", b / "g")
    assert rd.du_bytes(a, b) == rd.du_bytes(a) + rd.du_bytes(b) - rd.du_bytes(b / "g")
    assert rd.du_bytes(tmp_path, a) == rd.du_bytes(tmp_path)


@pytest.mark.docker
def test_stop_plant_restart(built: Built) -> None:
    """Runs last for its daemon: stops it, plants every leftover, restarts on the damaged root."""
    d, sc = built.daemon, built.scenario
    d.stop()
    assert not d.running
    assert rd.mounts_under(d.base) == []
    assert not list((d.root / "image/overlay2/layerdb/sha256").glob("*-removing"))

    planted = rd.plant_leftovers(d.root, sc)
    assert [p.kind for p in planted] == list(rd.PLANT_KINDS)
    for p in planted:
        path = d.root / p.path
        assert p.orphan == (p.kind in rd.ORPHAN_KINDS)
        if p.kind in ("layer_dir_missing", "image_layer_missing", "link_missing"):
            assert not os.path.lexists(path), p
        else:
            assert os.path.lexists(path), p
    by_kind = {p.kind: d.root / p.path for p in planted}
    assert not by_kind["link_broken"].resolve().exists()
    tmp = by_kind["layerdb_tmp"]
    assert sorted(f.name for f in tmp.iterdir()) == [
        "cache-id", "diff", "parent", "size", "tar-split.json.gz",
    ]  # fmt: skip
    assert not (tmp / "cache-id").read_text().endswith("\n")
    assert (d.root / "overlay2" / (tmp / "cache-id").read_text() / "diff").is_dir()
    with pytest.raises(json.JSONDecodeError):
        json.loads(by_kind["metadata_unreadable"].read_bytes())

    # The daemon agrees: it starts, hides what is broken, keeps the rest working.
    d.start()
    tags = set(d.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split())
    assert {rd.APP1, rd.APP2, rd.BASE} <= tags
    gone = ("layer_unreferenced", "layer_removing", "metadata_unreadable", "image_layer_missing")
    assert not tags & {sc.plant_images[k] for k in gone}
    names = set(d.docker("ps", "-a", "--format", "{{.Names}}").split())
    assert rd.RUNNING in names
    assert not names & set(sc.plant_containers.values())
    assert d.docker("run", "--rm", "--network", "none", rd.APP1, "cat", "/data/opq/new.txt") == "new\n"
    d.stop()
    # A clean shutdown removes interrupted layer deletions; nothing cleans the rest.
    assert not os.path.lexists(by_kind["layer_removing"])
    for kind in ("layer_dir_unreferenced", "layer_unreferenced", "layerdb_tmp", "link_broken"):
        assert os.path.lexists(by_kind[kind]), kind
