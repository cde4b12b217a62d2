"""dockerdu against the containerd store in a system containerd's root (Docker 29's default host).

A containerd of our own (its config: root, state, a private grpc socket, CRI off)
plays the host's system containerd; dockerd runs with `--containerd=<that socket>`
and the containerd store. The roots are laid out as a host's:
`$T/var/lib/docker` and `$T/var/lib/containerd`. Another client of the same
containerd (`ctr -n k8s.io images import`, as a kubelet) holds one image. With
the daemons running, /system/df is taken and a live report made (the containerd
root found from the running containerd); then both are stopped, leftovers planted
in both roots, and the offline reports (root found beside the Docker root, and
given with --containerd-root) must equal the API's figures, reconcile each root
with `du -sx -B1`, find the planted leftovers and nothing else. A copy of the
Docker root without its containerd root must offer no live container or volume as
reclaimable, name what is missing, and exit 0.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu.cli import app
from dockerdu.locate import Daemon, Location
from dockerdu.readers.containerd import CONTENT, META_DB, read_containerd
from dockerdu.report import Report
from dockerdu.scan import Options, build_report
from dockerdu.stores.containerd.index import TEMPORARY_LABEL
from tests import realdocker as rd

pytestmark = pytest.mark.docker

K8S_IMAGE = "dd-k8s:1"
K8S_FILE = 1_500_000
SNAPSHOTS = "io.containerd.snapshotter.v1.overlayfs/snapshots"
BLOBS = f"{CONTENT}/blobs/sha256"


@dataclass
class Host:
    version: rd.Version
    base: Path
    docker_root: Path
    ctrd_root: Path
    df: dict[str, Any]
    live: Report
    report: Report
    """Offline, the containerd root found beside the Docker root."""
    planted: set[tuple[str, str]]
    k8s_dirs: tuple[str, ...]
    """Snapshot dir ids only the k8s.io namespace holds."""


def _plant(docker_root: Path, ctrd_root: Path) -> set[tuple[str, str]]:
    """Leftovers: an unknown snapshot dir, an unreferenced blob, an ingest, the old graphdriver tree."""
    snap = ctrd_root / SNAPSHOTS / "9999"
    (snap / "fs").mkdir(parents=True)
    (snap / "work").mkdir()
    (snap / "fs" / "garbage.bin").write_bytes(b"\0" * 50000)
    data = b"dockerdu planted blob\n" * 1000
    digest = hashlib.sha256(data).hexdigest()
    (ctrd_root / BLOBS / digest).write_bytes(data)
    ingest = ctrd_root / CONTENT / "ingest" / ("ab" * 32)
    ingest.mkdir(parents=True)
    (ingest / "data").write_bytes(b"\1" * 9000)
    # What a graphdriver daemon left before the switch: invisible to this one.
    layer = docker_root / "overlay2" / ("cd" * 32) / "diff"
    layer.mkdir(parents=True)
    (layer / "old.bin").write_bytes(b"\2" * 20000)
    (docker_root / "image" / "overlay2").mkdir(parents=True)
    (docker_root / "image" / "overlay2" / "repositories.json").write_text('{"Repositories":{}}')
    c = str(ctrd_root)
    return {
        ("snapshot_dir_unreferenced", f"{c}/{SNAPSHOTS}/9999"),
        ("blob_unreferenced", f"{c}/{BLOBS}/{digest}"),
        ("content_ingest", f"{c}/{CONTENT}/ingest/{'ab' * 32}"),
        ("store_unused", "image/overlay2"),
        ("store_unused", "overlay2"),
    }


def _k8s_snapshot_dirs(ctrd_root: Path) -> tuple[str, ...]:
    scan = read_containerd(Path("/"), "overlayfs", str(ctrd_root))
    return tuple(sorted(i for i, ns in scan.foreign_snapshots.items() if ns == "k8s.io"))


@pytest.fixture(scope="module", params=["26.1", "28.5"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    version: rd.Version = request.param
    rd.require_docker(version)
    base = tmp_path_factory.mktemp(f"dockerdu-sysctrd-{version}")
    tar = rd.busybox_rootfs_tar(base / "rootfs")
    with rd.PrivateDaemon(version, base, config=rd.CONTAINERD_STORE_CONFIG, system_containerd=True) as d:
        rd.containerd_scenario(d, tar)
        rd.import_into_namespace(d, "k8s.io", K8S_IMAGE, K8S_FILE)
        live = build_report(Location(d.root, "--root", Daemon(d.pid, d.root)), Options(jobs=2))
        df = rd.system_df(d)
    assert not (d.root / "containerd" / "daemon").exists() or not any((d.root / "containerd").iterdir())
    planted = _plant(d.root, d.containerd_root)
    report = build_report(Location(d.root, "--root", None), Options(jobs=2))
    yield Host(
        version,
        base,
        d.root,
        d.containerd_root,
        df,
        live,
        report,
        planted,
        _k8s_snapshot_dirs(d.containerd_root),
    )


def _temporary_leases(h: Host) -> set[tuple[str, str]]:
    """BuildKit's temporary leases of the build: deleted at the next start (see test_containerd)."""
    leases = read_containerd(Path("/"), "overlayfs", str(h.ctrd_root)).leases
    return {
        ("lease_stale", f"{h.ctrd_root}/{META_DB}#leases/{k}")
        for k, lease in leases.items()
        if TEMPORARY_LABEL in lease.labels
    }


def test_containerd_root_is_found(host: Host) -> None:
    assert (host.live.store, host.live.driver) == ("containerd", "overlayfs")
    assert host.live.containerd_root == str(host.ctrd_root)
    assert (host.live.containerd_root_source or "").startswith("running containerd, pid ")
    assert host.report.containerd_root == str(host.ctrd_root)
    assert host.report.containerd_root_source == "beside the Docker root"


def test_figures_equal_engine_api(host: Host) -> None:
    for report in (host.live, host.report):
        ours = {i.id: (i.size, i.shared_size, i.containers, sorted(i.tags)) for i in report.images}
        theirs = {
            i["Id"]: (i["Size"], i["SharedSize"], i["Containers"], sorted(i["RepoTags"] or []))
            for i in host.df["Images"]
        }
        assert ours == theirs
        assert report.docker.layers_size == host.df["LayersSize"]
        rw = {c.id: c.rw_size for c in report.containers}
        assert rw == {c["Id"]: c["SizeRw"] for c in host.df["Containers"]}
        sizes = {v.name: v.size for v in report.volumes}
        assert sizes == {v["Name"]: v["UsageData"]["Size"] for v in host.df["Volumes"]}
    theirs_bc = {b["ID"]: b["Size"] for b in host.df["BuildCache"]}
    assert {r.id: r.size for r in host.report.build_cache.records} == theirs_bc
    assert any(i.shared_size for i in host.report.images)


def test_each_root_reconciles_with_du(host: Host) -> None:
    for report in (host.live, host.report):
        roots = {r.role: r for r in report.roots}
        assert set(roots) == {"docker", "containerd"}
        assert (roots["docker"].path, roots["containerd"].path) == (
            str(host.docker_root),
            str(host.ctrd_root),
        )
        t = report.totals
        parts = [t.images, t.image_content, t.containers, t.logs, t.volumes, t.build_cache, t.orphans]
        assert sum(p or 0 for p in [*parts, t.metadata, t.other]) == t.root_disk
        assert t.root_disk == (roots["docker"].disk or 0) + (roots["containerd"].disk or 0)
    disks = {r.role: r.disk for r in host.report.roots}
    assert disks["docker"] == rd.du_bytes(host.docker_root)
    assert disks["containerd"] == rd.du_bytes(host.ctrd_root)
    t = host.report.totals
    assert t.images and t.image_content and t.containers and t.build_cache and t.volumes


def test_planted_leftovers_found_and_nothing_else(host: Host) -> None:
    found = {(o.kind, o.path) for o in host.report.orphans}
    assert found == host.planted | _temporary_leases(host)
    for o in host.report.orphans:
        paths = [Path(p) if p.startswith("/") else host.docker_root / p for p in o.paths]
        assert o.disk == rd.du_bytes(*paths), o.path
    assert not [p for p in host.report.problems if p.kind != "path_unreadable"]
    live = {(o.kind, o.path) for o in host.live.orphans}
    assert live == set()


def test_other_namespace_is_reported_never_an_orphan(host: Host) -> None:
    assert host.k8s_dirs
    for report in (host.live, host.report):
        ns = {n.name: n for n in report.namespaces}
        assert "k8s.io" in ns and any(K8S_IMAGE in name for name in ns["k8s.io"].images)
        snap_disk = rd.du_bytes(*(host.ctrd_root / SNAPSHOTS / i for i in host.k8s_dirs))
        assert snap_disk > K8S_FILE
        assert ns["k8s.io"].disk >= snap_disk
        other = {o.name: o.disk for o in report.other}
        assert other["containerd namespace k8s.io"] == ns["k8s.io"].disk
        paths = {p for o in report.orphans for p in o.paths}
        assert not [i for i in host.k8s_dirs if f"{host.ctrd_root}/{SNAPSHOTS}/{i}" in paths]


def test_given_containerd_root_in_json_and_table(host: Host, tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "report",
        "--root",
        str(host.docker_root),
        "--containerd-root",
        str(host.ctrd_root),
        "-q",
        "-j",
        "1",
    ]
    result = runner.invoke(app, [*args, "-f", "json", "--no-cache"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["containerd_root"], doc["containerd_root_source"]) == (
        str(host.ctrd_root),
        "--containerd-root",
    )
    assert [(r["path"], r["role"], r["disk"]) for r in doc["roots"]] == [
        (str(host.docker_root), "docker", rd.du_bytes(host.docker_root)),
        (str(host.ctrd_root), "containerd", rd.du_bytes(host.ctrd_root)),
    ]
    assert doc["totals"]["root_disk"] == sum(r["disk"] for r in doc["roots"])
    assert {(o["kind"], o["path"]) for o in doc["orphans"]} == host.planted | _temporary_leases(host)
    table = runner.invoke(app, [*args, "--no-cache", "--no-trunc"], catch_exceptions=False)
    assert table.exit_code == 0
    assert f"containerd   {host.ctrd_root}  (root; --containerd-root; " in table.stdout


def test_copy_without_containerd_root_gives_no_false_orphan(host: Host, tmp_path: Path) -> None:
    """The Docker root alone (copied elsewhere): containers from their configs, a problem, exit 0."""
    copy = tmp_path / "mnt" / "var" / "lib" / "docker"
    copy.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(host.docker_root), str(copy)], check=True)
    try:
        result = CliRunner().invoke(
            app, ["report", "--root", str(copy), "-f", "json", "-q", "--no-cache"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
    finally:
        shutil.rmtree(tmp_path / "mnt", ignore_errors=True)
    assert doc["store"] == "containerd" and doc["containerd_root"] is None
    assert {(o["kind"], o["path"]) for o in doc["orphans"]} == {
        ("store_unused", "image/overlay2"),
        ("store_unused", "overlay2"),
    }
    names = {c["Names"][0].lstrip("/") for c in host.df["Containers"]}
    assert {c["name"] for c in doc["containers"]} == names
    assert all(c["rw_size"] is None for c in doc["containers"])
    assert {f"containers:{c['id']}" for c in doc["containers"]} <= set(doc["incomplete"])
    used = [v for v in doc["volumes"] if v["containers"]]
    assert used and all(v["name"] != rd.UNUSED_VOLUME for v in used)
    in_use = {v["Name"] for v in host.df["Volumes"] if v["UsageData"]["RefCount"] > 0}
    assert {v["name"] for v in used} == in_use
    missing = [p for p in doc["problems"] if p["kind"] == "containerd_root_missing"]
    assert len(missing) == 1 and "--containerd-root" in missing[0]["reason"]
    assert doc["reclaimable"]["orphans"]["disk"] == doc["totals"]["orphans"]


def test_which_and_formats_cover_both_roots(host: Host) -> None:
    """which answers for a container ID and paths under either root; CSV and Prometheus name both roots."""
    runner = CliRunner()
    common = ["--root", str(host.docker_root)]
    running = next(c for c in host.report.containers if c.name == rd.RUNNING)
    app1 = next(i for i in host.report.images if rd.APP1 in i.tags)
    queries = {
        running.id[:12]: f"writable layer of container {rd.RUNNING}",
        str(host.ctrd_root / SNAPSHOTS / app1.layers[0].cache_id / "fs"): "of image(s)",
        str(host.ctrd_root / SNAPSHOTS / host.k8s_dirs[0]): "containerd namespace k8s.io",
        str(host.ctrd_root / SNAPSHOTS / "9999"): "orphan snapshot_dir_unreferenced",
        str(host.docker_root / "containers" / running.id / f"{running.id}-json.log"): rd.RUNNING,
    }
    for query, words in queries.items():
        result = runner.invoke(app, ["which", *common, query], catch_exceptions=False)
        assert result.exit_code == 0, (query, result.output)
        assert words in result.stdout, (query, result.stdout)
    csv = runner.invoke(app, ["report", *common, "-f", "csv", "-q", "--no-cache"], catch_exceptions=False)
    assert csv.exit_code == 0
    roots = {r.role: r.disk for r in host.report.roots}
    assert f"root,{host.ctrd_root},{host.ctrd_root},containerd,,{roots['containerd']}," in csv.stdout
    prom = runner.invoke(
        app, ["report", *common, "-f", "prometheus", "-q", "--no-cache"], catch_exceptions=False
    )
    assert prom.exit_code == 0
    line = f'dockerdu_root_path_disk_bytes{{path="{host.ctrd_root}",role="containerd"}} {roots["containerd"]}'
    assert line in prom.stdout.splitlines()


def test_image_reads_the_snapshots(host: Host) -> None:
    """`dockerdu image` on the containerd store: per-layer instruction, size, disk and sharing."""
    runner = CliRunner()
    result = runner.invoke(
        app, ["image", "--root", str(host.docker_root), rd.APP1, "-f", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    [img] = json.loads(result.stdout)["images"]
    api = next(i for i in host.df["Images"] if rd.APP1 in (i["RepoTags"] or []))
    assert (img["id"], img["size"], img["shared_size"]) == (api["Id"], api["Size"], api["SharedSize"])
    layers = img["layers"]
    snapshots = host.ctrd_root / SNAPSHOTS
    for layer in layers:
        assert layer["disk"] == rd.du_bytes(snapshots / layer["cache_id"]), layer["chain_id"]
    made = [layer["created_by"] or "" for layer in layers]
    assert any(f"head -c {rd.SHARED_FILE}" in m for m in made)
    assert any(f"head -c {rd.APP1_FILE}" in m for m in made)
    shared = next(layer for layer in layers if f"head -c {rd.SHARED_FILE}" in (layer["created_by"] or ""))
    assert rd.APP2 in shared["shared_with"]
    assert shared["containers"]  # dd-running and dd-created sit on it
    own = next(layer for layer in layers if f"head -c {rd.APP1_FILE}" in (layer["created_by"] or ""))
    assert own["files"] and own["size"] >= rd.APP1_FILE
    assert not [p for p in img["problems"] if p["kind"] != "history_mismatch"]


def test_containerd_root_without_docker_namespace_claims_nothing(host: Host, tmp_path: Path) -> None:
    """--containerd-root naming another containerd's root (only a kubelet's k8s.io in it): no orphan."""
    other = rd.PrivateDaemon(host.version, tmp_path, system_containerd=True)
    with other.containerd_only():
        other.ctr("k8s.io", "images", "import", str(host.base / "k8s.io.tar"))
    report = build_report(
        Location(host.docker_root, "--root", None),
        Options(jobs=1, containerd_root=other.containerd_root),
    )
    assert report.containerd_root == str(other.containerd_root)
    assert {o.path for o in report.orphans} == {"image/overlay2", "overlay2"}  # the planted old store
    assert all(c.rw_size is None for c in report.containers) and report.containers
    [problem] = [p for p in report.problems if p.kind == "containerd_root_missing"]
    assert "no Docker namespace" in problem.reason and "--containerd-root" in problem.reason
    assert [n.name for n in report.namespaces] == ["k8s.io"]
    t = report.totals
    parts = [t.images, t.image_content, t.containers, t.logs, t.volumes, t.build_cache, t.orphans]
    assert sum(p or 0 for p in [*parts, t.metadata, t.other]) == t.root_disk
    assert t.root_disk == rd.du_bytes(host.docker_root) + rd.du_bytes(other.containerd_root)
