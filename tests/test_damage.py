"""Damaged metadata on a real root: never a traceback, a false orphan, a silent half figure or a write.

One root is made by a private Docker 20.10 daemon for the module (the scenario without
planted leftovers, so the undamaged root has no orphan and no problem), and the daemon
is stopped. Each damage is applied to a copy (`cp -a`: hard links, xattrs, devices),
then `dockerdu report --format json` runs on it as a user runs it, in a subprocess, so
a traceback would show on stderr. Every run must: exit 0; print nothing on stderr;
report a problem of the expected kind naming the damaged file; claim no orphan (the
undamaged root has none, and no damage here proves anything unreferenced); list the
figures that depend on the damaged file in `incomplete`; and leave the copy unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu import fsread
from dockerdu.cli import app
from dockerdu.fsread import MAX_METADATA_BYTES
from tests import realdocker as rd
from tests.test_integration import _tree_state

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
STORE = "image/overlay2"
IMAGE_FIGURES = {"images", "docker.layers_size", "reclaimable.images"}
CONTAINER_FIGURES = {"containers", "images.containers", "volumes.containers", "reclaimable.volumes"}


HOSTILE = (
    "mkdir -p {dir} && cd {dir} && ln -s / to-root && ln -s .. to-parent && ln -s /etc/shadow shadow"
    " && ln -s loop-a loop-b && ln -s loop-b loop-a && ln -s ../../../../../../../../.. up-and-out"
    " && mkdir sub && ln -s ../../.. sub/up"
)
"""Symlinks a container writes: to /, to .., to /etc/shadow, a loop, and out of the root."""


@dataclass(frozen=True)
class Base:
    root: Path
    scenario: rd.Scenario
    doc: dict[str, Any]


def run_report(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`dockerdu report --format json --root ROOT` in a fresh interpreter, from this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "dockerdu", "report", "--format", "json", "--root", str(root),
         "--no-cache", "--quiet", "--jobs", "1", *extra],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    rd.require_docker("20.10")
    work = tmp_path_factory.mktemp("damage-base")
    with rd.PrivateDaemon("20.10", work) as d:
        scenario = rd.build_scenario(d, plants=())
        # Hostile names a container can plant in its writable layer and in a named volume.
        d.docker("exec", rd.RUNNING, "sh", "-c", HOSTILE.format(dir="/hostile") + " && "
                 + HOSTILE.format(dir="/named/hostile"))  # fmt: skip
    result = run_report(d.root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    doc = json.loads(result.stdout)
    assert doc["orphans"] == [] and doc["problems"] == [] and doc["incomplete"] == []
    yield Base(d.root, scenario, doc)


# --------------------------------------------------------------------------- where things are


@dataclass(frozen=True)
class Where:
    """Paths of the scenario's objects inside one copy of the root."""

    root: Path
    sc: rd.Scenario

    @property
    def store(self) -> Path:
        return self.root / STORE

    def config(self, tag: str) -> Path:
        return self.store / "imagedb/content/sha256" / self.sc.images[tag][7:]

    def meta(self, tag: str) -> Path:
        return self.store / "imagedb/metadata/sha256" / self.sc.images[tag][7:]

    def layer(self, tag: str, index: int = -1) -> Path:
        return self.store / "layerdb/sha256" / self.sc.layers[self.sc.images[tag]][index][7:]

    def layer_dir(self, tag: str, index: int = -1) -> Path:
        chain = self.sc.layers[self.sc.images[tag]][index]
        return self.root / "overlay2" / self.sc.cache_ids[chain]

    def mount(self, name: str) -> Path:
        return self.store / "layerdb/mounts" / self.sc.containers[name]

    def container(self, name: str) -> Path:
        return self.root / "containers" / self.sc.containers[name]

    def short_link(self, tag: str) -> Path:
        return self.root / "overlay2/l" / (self.layer_dir(tag) / "link").read_text()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


@dataclass(frozen=True)
class Expect:
    """What the report must say about one damage."""

    kind: str
    path: str
    incomplete: frozenset[str] = field(default_factory=frozenset)


Damage = Callable[[Where], Expect]


def _write(path: Path, data: bytes | str) -> None:
    """Replace whatever is at `path` (file, dir, FIFO, symlink) with a file holding `data`."""
    _remove(path)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    elif os.path.lexists(path):
        path.unlink()


def _huge(path: Path) -> None:
    """A sparse file just over the readers' bound: big to read, small on disk."""
    _remove(path)
    with open(path, "wb") as f:
        f.truncate(MAX_METADATA_BYTES + 1)


def _fifo(path: Path) -> None:
    _remove(path)
    os.mkfifo(path)


def _dir(path: Path) -> None:
    _remove(path)
    path.mkdir()


def _symlink(path: Path, target: str) -> None:
    _remove(path)
    os.symlink(target, path)


def _new_config(w: Where, data: bytes) -> Expect:
    """An image config stored under its own digest (so it passes the digest check) but unusable."""
    import hashlib

    path = w.store / "imagedb/content/sha256" / hashlib.sha256(data).hexdigest()
    path.write_bytes(data)
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --------------------------------------------------------------------------- the damages


def config_truncated(w: Where) -> Expect:
    _truncate(w.config(rd.APP1))
    return Expect("metadata_unreadable", w.rel(w.config(rd.APP1)), frozenset(IMAGE_FIGURES))


def config_empty(w: Where) -> Expect:
    _write(w.config(rd.APP2), b"")
    return Expect("metadata_unreadable", w.rel(w.config(rd.APP2)), frozenset(IMAGE_FIGURES))


def config_huge(w: Where) -> Expect:
    _huge(w.config(rd.APP1))
    return Expect("metadata_unreadable", w.rel(w.config(rd.APP1)), frozenset(IMAGE_FIGURES))


def config_fifo(w: Where) -> Expect:
    _fifo(w.config(rd.APP3))
    return Expect("metadata_unreadable", w.rel(w.config(rd.APP3)), frozenset(IMAGE_FIGURES))


def config_not_json(w: Where) -> Expect:
    return _new_config(w, b'{"rootfs": {"diff_ids": [')


def config_a_list(w: Where) -> Expect:
    return _new_config(w, b'["rootfs", {"diff_ids": []}]')


def config_diff_ids_a_string(w: Where) -> Expect:
    return _new_config(w, b'{"rootfs": {"type": "layers", "diff_ids": "sha256:00"}}')


def config_diff_id_escapes(w: Where) -> Expect:
    return _new_config(w, b'{"rootfs": {"type": "layers", "diff_ids": ["sha256:../../../etc/shadow"]}}')


def config_name_not_an_id(w: Where) -> Expect:
    path = w.store / "imagedb/content/sha256/not-an-image-id"
    path.write_bytes(b"{}")
    return Expect("metadata_unreadable", w.rel(path))


def image_parent_garbled(w: Where) -> Expect:
    _write(w.meta(rd.APP1) / "parent", "sha256:xyz")
    return Expect("metadata_unreadable", w.rel(w.meta(rd.APP1) / "parent"), frozenset({"images"}))


def image_parent_fifo(w: Where) -> Expect:
    _fifo(w.meta(rd.APP2) / "parent")
    return Expect("metadata_unreadable", w.rel(w.meta(rd.APP2) / "parent"), frozenset({"images"}))


def image_last_updated_garbled(w: Where) -> Expect:
    _write(w.meta(rd.APP1) / "lastUpdated", "yesterday\n\x1b[31m")
    return Expect("metadata_unreadable", w.rel(w.meta(rd.APP1) / "lastUpdated"))


def layer_diff_truncated(w: Where) -> Expect:
    _truncate(w.layer(rd.APP1) / "diff")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP1) / "diff"), frozenset(IMAGE_FIGURES))


def layer_diff_empty(w: Where) -> Expect:
    _write(w.layer(rd.BASE) / "diff", b"")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.BASE) / "diff"), frozenset(IMAGE_FIGURES))


def layer_size_not_a_number(w: Where) -> Expect:
    _write(w.layer(rd.APP1) / "size", "12abc")
    return Expect(
        "metadata_unreadable",
        w.rel(w.layer(rd.APP1) / "size"),
        frozenset({"images.size", "docker.layers_size", "reclaimable.images"}),
    )


def layer_size_negative(w: Where) -> Expect:
    _write(w.layer(rd.APP2) / "size", "-5")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP2) / "size"), frozenset({"images.size"}))


def layer_size_unicode_digits(w: Where) -> Expect:
    # Python's int() reads "1_2" and fullwidth digits; Docker's ParseInt does not.
    _write(w.layer(rd.APP1) / "size", "1_2")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP1) / "size"), frozenset({"images.size"}))


def layer_size_huge(w: Where) -> Expect:
    _write(w.layer(rd.BASE) / "size", "9" * 5000)
    return Expect("metadata_unreadable", w.rel(w.layer(rd.BASE) / "size"), frozenset({"images.size"}))


def layer_cache_id_escapes(w: Where) -> Expect:
    _write(w.layer(rd.APP1) / "cache-id", "../../../etc")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP1) / "cache-id"), frozenset(IMAGE_FIGURES))


def layer_cache_id_missing(w: Where) -> Expect:
    _remove(w.layer(rd.APP2) / "cache-id")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP2) / "cache-id"), frozenset(IMAGE_FIGURES))


def layer_cache_id_symlink(w: Where) -> Expect:
    # A symlink to a file holding a valid cache ID: following it would hide the damage.
    target = w.layer(rd.APP2, -2) / "cache-id"
    _symlink(w.layer(rd.APP2) / "cache-id", str(target))
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP2) / "cache-id"), frozenset(IMAGE_FIGURES))


def layer_parent_wrong_length(w: Where) -> Expect:
    _write(w.layer(rd.APP1) / "parent", "sha256:abcd")
    return Expect("metadata_unreadable", w.rel(w.layer(rd.APP1) / "parent"), frozenset(IMAGE_FIGURES))


def layer_parents_cycle(w: Where) -> Expect:
    a, b = w.layer(rd.APP1, -1), w.layer(rd.APP1, -2)
    _write(a / "parent", "sha256:" + b.name)
    _write(b / "parent", "sha256:" + a.name)
    return Expect("layer_chain_mismatch", w.rel(b / "parent"), frozenset({"reclaimable.images"}))


def layer_name_not_an_id(w: Where) -> Expect:
    path = w.store / "layerdb/sha256/..not-a-chain-id"
    path.mkdir()
    (path / "cache-id").write_text("../../..")
    return Expect("metadata_unreadable", w.rel(path))


def mount_id_garbled(w: Where) -> Expect:
    _write(w.mount(rd.RUNNING) / "mount-id", "not/a/mount/id")
    cid = w.sc.containers[rd.RUNNING]
    return Expect(
        "metadata_unreadable", w.rel(w.mount(rd.RUNNING) / "mount-id"), frozenset({f"containers:{cid}"})
    )


def mount_init_id_a_dir(w: Where) -> Expect:
    _dir(w.mount(rd.EXITED) / "init-id")
    cid = w.sc.containers[rd.EXITED]
    return Expect(
        "metadata_unreadable", w.rel(w.mount(rd.EXITED) / "init-id"), frozenset({f"containers:{cid}"})
    )


def mount_parent_bad_hex(w: Where) -> Expect:
    _write(w.mount(rd.CREATED) / "parent", "sha256:" + "Z" * 64)
    cid = w.sc.containers[rd.CREATED]
    return Expect(
        "metadata_unreadable", w.rel(w.mount(rd.CREATED) / "parent"), frozenset({f"containers:{cid}"})
    )


def mount_name_not_an_id(w: Where) -> Expect:
    path = w.store / "layerdb/mounts/not-a-container"
    path.write_text("x")
    return Expect("metadata_unreadable", w.rel(path))


def container_config_truncated(w: Where) -> Expect:
    path = w.container(rd.RUNNING) / "config.v2.json"
    _truncate(path)
    return Expect("metadata_unreadable", w.rel(path), frozenset(CONTAINER_FIGURES))


def container_config_a_list(w: Where) -> Expect:
    path = w.container(rd.EXITED) / "config.v2.json"
    _write(path, "[]")
    return Expect("metadata_unreadable", w.rel(path), frozenset(CONTAINER_FIGURES))


def container_config_huge(w: Where) -> Expect:
    path = w.container(rd.CREATED) / "config.v2.json"
    _huge(path)
    return Expect("metadata_unreadable", w.rel(path), frozenset(CONTAINER_FIGURES))


def container_config_symlink(w: Where) -> Expect:
    path = w.container(rd.EXITED) / "config.v2.json"
    _symlink(path, "/etc/shadow")
    return Expect("metadata_unreadable", w.rel(path), frozenset(CONTAINER_FIGURES))


def container_mount_points_a_list(w: Where) -> Expect:
    path = w.container(rd.RUNNING) / "config.v2.json"
    config = json.loads(path.read_text())
    config["MountPoints"] = list(config["MountPoints"].values())
    config["State"] = "running"
    _write(path, json.dumps(config))
    return Expect("metadata_unreadable", w.rel(path), frozenset(CONTAINER_FIGURES))


def container_hostconfig_not_json(w: Where) -> Expect:
    path = w.container(rd.LOGS_JSON) / "hostconfig.json"
    _write(path, '{"LogConfig": {"Type": "json-file"')
    return Expect("metadata_unreadable", w.rel(path), frozenset({"containers"}))


def container_hostconfig_fifo(w: Where) -> Expect:
    path = w.container(rd.LOGS_LOCAL) / "hostconfig.json"
    _fifo(path)
    return Expect("metadata_unreadable", w.rel(path), frozenset({"containers"}))


def container_name_not_an_id(w: Where) -> Expect:
    path = w.root / "containers" / "not-a-container\n\x1b[2J"
    path.mkdir()
    (path / "config.v2.json").write_text("{}")
    return Expect("metadata_unreadable", w.rel(path))


def repositories_truncated(w: Where) -> Expect:
    path = w.store / "repositories.json"
    _truncate(path)
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


def repositories_a_list(w: Where) -> Expect:
    path = w.store / "repositories.json"
    _write(path, '{"Repositories": []}')
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


def repositories_number_for_an_id(w: Where) -> Expect:
    path = w.store / "repositories.json"
    doc = json.loads(path.read_text())
    doc["Repositories"]["dd-app"]["dd-app:1"] = 5
    _write(path, json.dumps(doc))
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


def repositories_huge(w: Where) -> Expect:
    path = w.store / "repositories.json"
    _huge(path)
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


def repositories_symlink(w: Where) -> Expect:
    path = w.store / "repositories.json"
    _symlink(path, "/etc/shadow")
    return Expect("metadata_unreadable", w.rel(path), frozenset(IMAGE_FIGURES))


EVIL_TAG = "dd-app:1\n\x1b[31mEVIL\u202e"


def repositories_control_characters(w: Where) -> Expect:
    path = w.store / "repositories.json"
    doc = json.loads(path.read_text())
    doc["Repositories"]["dd-app"][EVIL_TAG] = w.sc.images[rd.APP1]
    _write(path, json.dumps(doc))
    # Docker's reference store skips a key that is not a reference: the figures stay whole.
    return Expect("metadata_unreadable", w.rel(path))


def overlay_link_file_missing(w: Where) -> Expect:
    path = w.layer_dir(rd.APP1) / "link"
    _remove(path)
    return Expect("link_missing", w.rel(path))


def overlay_lower_file_missing(w: Where) -> Expect:
    path = w.layer_dir(rd.APP2) / "lower"
    _remove(path)
    return Expect("metadata_unreadable", w.rel(path))


def overlay_lower_escapes(w: Where) -> Expect:
    path = w.layer_dir(rd.APP1) / "lower"
    _write(path, "l/../../../../etc:" + path.read_text())
    return Expect("metadata_unreadable", w.rel(path))


def short_link_to_root(w: Where) -> Expect:
    path = w.short_link(rd.APP1)
    _symlink(path, "/")
    return Expect("link_missing", w.rel(path))


def short_link_out_of_the_root(w: Where) -> Expect:
    path = w.short_link(rd.APP2)
    _symlink(path, "../../../../../../etc/diff")
    return Expect("link_missing", w.rel(path))


DAMAGES: list[Damage] = [
    config_truncated, config_empty, config_huge, config_fifo, config_not_json, config_a_list,
    config_diff_ids_a_string, config_diff_id_escapes, config_name_not_an_id,
    image_parent_garbled, image_parent_fifo, image_last_updated_garbled,
    layer_diff_truncated, layer_diff_empty, layer_size_not_a_number, layer_size_negative,
    layer_size_unicode_digits, layer_size_huge, layer_cache_id_escapes, layer_cache_id_missing,
    layer_cache_id_symlink, layer_parent_wrong_length, layer_parents_cycle, layer_name_not_an_id,
    mount_id_garbled, mount_init_id_a_dir, mount_parent_bad_hex, mount_name_not_an_id,
    container_config_truncated, container_config_a_list, container_config_huge,
    container_config_symlink, container_mount_points_a_list, container_hostconfig_not_json,
    container_hostconfig_fifo, container_name_not_an_id,
    repositories_truncated, repositories_a_list, repositories_number_for_an_id, repositories_huge,
    repositories_symlink, repositories_control_characters,
    overlay_link_file_missing, overlay_lower_file_missing, overlay_lower_escapes,
    short_link_to_root, short_link_out_of_the_root,
]  # fmt: skip


def test_at_least_thirty_distinct_damages() -> None:
    assert len({d.__name__ for d in DAMAGES}) == len(DAMAGES) >= 30


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_damage(base: Base, damage: Damage, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base.root), str(copy)], check=True)
    expect = damage(Where(copy, base.scenario))
    before = _tree_state(copy)
    result = run_report(copy)
    assert _tree_state(copy) == before, "the run changed the root"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    problems = {(p["kind"], p["path"]) for p in doc["problems"]}
    assert (expect.kind, expect.path) in problems, doc["problems"]
    assert doc["orphans"] == [], "a damage proves nothing unreferenced"
    assert expect.incomplete <= set(doc["incomplete"]), doc["incomplete"]
    assert doc["totals"]["root_disk"] == rd.du_bytes(copy)
    # Every problem names a path under the root, in one line of text.
    for p in doc["problems"]:
        assert not p["path"].startswith("/") and ".." not in p["path"].split("/"), p
        assert "\n" not in p["reason"], p


# --------------------------------------------------------------------------- no escape


def _blocks(path: Path) -> int:
    return os.lstat(path).st_blocks * 512


def _opened(trace: Path) -> list[str]:
    """Paths the traced processes opened (open, openat, openat2), as strace printed them."""
    lines = trace.read_text(errors="replace").splitlines()
    return [line.split('"', 2)[1] for line in lines if " open" in line and '"' in line and "= -1" not in line]


def test_no_escape_through_symlinks_or_bind_mounts(base: Base, tmp_path: Path) -> None:
    """Planted symlinks are charged as themselves; a bind mount under the root is not entered."""
    if shutil.which("strace") is None:
        if os.environ.get("CI"):
            pytest.fail("strace is required in CI (.ci/run installs it)")
        pytest.skip("no strace")
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base.root), str(copy)], check=True)
    mount_id = base.scenario.mount_ids[base.scenario.containers[rd.RUNNING]]
    rw = copy / "overlay2" / mount_id / "diff"
    volume = copy / "volumes" / rd.NAMED_VOLUME
    assert os.readlink(rw / "hostile/to-root") == "/"
    outside = tmp_path / "outside"
    outside.mkdir()
    with open(outside / "big.bin", "wb") as f:
        f.write(b"\1" * (8 << 20))
    points = [rw / "hostile" / "bound", volume / "_data" / "bound"]
    for point in points:
        point.mkdir()
    before = rd.du_bytes(copy)
    volume_before = rd.du_bytes(volume)
    mounted: list[Path] = []
    try:
        for point in points:
            subprocess.run(["mount", "--bind", str(outside), str(point)], check=True)
            mounted.append(point)
        trace = tmp_path / "trace"
        result = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace),
             sys.executable, "-m", "dockerdu", "report", "--format", "json", "--root", str(copy),
             "--no-cache", "--quiet", "--jobs", "1"],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", str(point)], check=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    doc = json.loads(result.stdout)
    # The mount points are neither entered nor counted; everything else is what du counted.
    assert doc["totals"]["root_disk"] == before - sum(_blocks(p) for p in points)
    (vol,) = [v for v in doc["volumes"] if v["name"] == rd.NAMED_VOLUME]
    assert vol["disk"] == volume_before - _blocks(points[1])
    assert doc["orphans"] == [] and doc["problems"] == []
    opened = _opened(trace)
    assert any(p.startswith(str(copy)) for p in opened), "the trace saw the reads"
    for path in opened:
        assert not path.startswith(str(outside)), path
        assert path not in ("/etc/shadow", "/etc/gshadow"), path
        if path.startswith(str(copy) + "/"):
            rel = Path(path).relative_to(copy)
            for i in range(1, len(rel.parts) + 1):
                prefix = copy.joinpath(*rel.parts[:i])
                assert not prefix.is_symlink(), f"followed the symlink {prefix}"
                assert prefix not in points, f"entered the bind mount at {prefix}"


# --------------------------------------------------------------------------- as a user without root


def _as_nobody(root: Path) -> subprocess.CompletedProcess[str]:
    """`dockerdu report --format json` as uid/gid 65534 with no groups, in a forked child.

    The child drops privileges after the imports (the interpreter's packages may not be
    readable by nobody) and runs the CLI as a user would; an exception the CLI did not
    turn into a message shows as a traceback on the returned stderr.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            CliRunner().invoke(app, ["report", "--help"])  # loads what typer imports lazily
            import resource  # noqa: F401

            import psutil  # noqa: F401 (imported lazily by a run, after privileges are dropped)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = CliRunner().invoke(
                app, ["report", "--format", "json", "--root", str(root), "--no-cache", "--quiet", "-j", "1"]
            )
            err = result.stderr
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                err += "Traceback (in the CLI): " + repr(result.exception)
            os.write(write_end, json.dumps([result.exit_code, result.stdout, err]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    exit_code, stdout, stderr = json.loads(data)
    return subprocess.CompletedProcess([], exit_code, stdout, stderr)


def test_partial_report_as_nobody(base: Base, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Unreadable parts are named as problems and their figures as incomplete; the rest is reported."""
    top = Path(tempfile.mkdtemp(prefix="dockerdu-nobody-"))
    try:
        top.chmod(0o755)
        copy = top / "root"
        subprocess.run(["cp", "-a", str(base.root), str(copy)], check=True)
        subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
        w = Where(copy, base.scenario)
        config = w.config(rd.APP2)
        config.chmod(0o000)  # a mode-000 file: unreadable for anyone but root
        (copy / "containers").chmod(0o700)
        (copy / "volumes" / rd.NAMED_VOLUME).chmod(0o700)
        before = _tree_state(copy)
        result = _as_nobody(copy)
        assert _tree_state(copy) == before
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        problems = {(p["kind"], p["path"]) for p in doc["problems"]}
        assert ("metadata_unreadable", w.rel(config)) in problems, problems
        assert ("metadata_unreadable", "containers") in problems, problems
        assert ("path_unreadable", f"volumes/{rd.NAMED_VOLUME}") in problems, problems
        assert doc["orphans"] == []
        assert {"images", "containers", f"volumes:{rd.NAMED_VOLUME}"} <= set(doc["incomplete"])
        assert {tuple(i["tags"]) for i in doc["images"]} >= {(rd.APP1,), (rd.BASE,)}

        # Only the root dir itself readable: nothing useful, exit 3 with one line naming the root.
        for entry in copy.iterdir():
            entry.chmod(0o700)
        result = _as_nobody(copy)
        assert result.returncode == 3, result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and str(copy) in result.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(top)], check=False)
        shutil.rmtree(top, ignore_errors=True)


# --------------------------------------------------------------------------- round two
#
# Each damage below also keeps every figure it does not touch equal to the undamaged
# report's, claims nothing reclaimable the undamaged root does not, and names itself
# with a reason that says what it breaks in Docker.


@dataclass(frozen=True)
class Outcome:
    """What the report must say about one damage of the second round."""

    kind: str
    path: str
    says: str
    """A phrase the problem's (or orphan's) reason must hold: what it breaks in Docker."""
    orphan: bool = False
    touched: frozenset[str] = frozenset()
    """Figure keys the damage may change: `image:<tags>`, `container:<name>`, `volume:<name>`,
    `images`, `containers` or `volumes` (every one), `layers_size`, or `users:<container>`
    (the container, its image and its volumes)."""
    unmeasured: frozenset[str] = frozenset()
    """Objects whose data is a symlink: their measured figure must be null (or flagged)."""


Damage2 = Callable[[Where], Outcome]


def _config(w: Where, name: str) -> tuple[Path, dict[str, Any]]:
    path = w.container(name) / "config.v2.json"
    return path, json.loads(path.read_text())


def _set_config(w: Where, name: str, **fields: Any) -> Outcome:
    """Rewrite a container's config with some fields of a type Docker's decoder rejects."""
    path, config = _config(w, name)
    for key, value in fields.items():
        target = config
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    _write(path, json.dumps(config))
    return Outcome("metadata_unreadable", w.rel(path), "Docker cannot load this container",
                   touched=frozenset({f"users:{name}"}))  # fmt: skip


def _outside(w: Where, name: str) -> Path:
    """A dir beside the copy (outside the root) holding a file, as a hostile link target."""
    path = w.root.parent / name
    path.mkdir()
    (path / "outside.bin").write_bytes(b"\1" * 200_000)
    return path


def container_entry_symlink(w: Where) -> Outcome:
    # The running container's dir moved out of the root, a symlink to it left in its place.
    path = w.container(rd.RUNNING)
    moved = w.root.parent / "moved-container"
    path.rename(moved)
    os.symlink(moved, path)
    # Seen on 20.10: dockerd follows the symlink and loads the container; dockerdu never does.
    return Outcome("metadata_unreadable", w.rel(path), "Docker loads the container from what it points to",
                   touched=frozenset({f"users:{rd.RUNNING}"}))  # fmt: skip


def container_entry_file(w: Where) -> Outcome:
    path = w.container(rd.EXITED)
    _write(path, "{}")
    return Outcome("metadata_unreadable", w.rel(path), "a file, not a dir",
                   touched=frozenset({f"users:{rd.EXITED}"}))  # fmt: skip


def container_entry_fifo(w: Where) -> Outcome:
    path = w.container(rd.CREATED)
    _fifo(path)
    return Outcome("metadata_unreadable", w.rel(path), "a FIFO, not a dir",
                   touched=frozenset({f"users:{rd.CREATED}"}))  # fmt: skip


def containers_dir_symlink(w: Where) -> Outcome:
    # The whole containers/ moved out of the root: no container is known, none is gone.
    path = w.root / "containers"
    moved = w.root.parent / "moved-containers"
    path.rename(moved)
    os.symlink(moved, path)
    return Outcome("metadata_unreadable", w.rel(path), "is a symlink",
                   touched=frozenset({"images", "containers", "volumes"}))  # fmt: skip


def container_state_a_string(w: Where) -> Outcome:
    return _set_config(w, rd.RUNNING, State="running")


def container_running_a_string(w: Where) -> Outcome:
    return _set_config(w, rd.RUNNING, **{"State.Running": "true"})


def container_name_a_number(w: Where) -> Outcome:
    return _set_config(w, rd.LOGS_JSON, Name=5)


def container_image_a_number(w: Where) -> Outcome:
    return _set_config(w, rd.CREATED, Image=12345)


def container_mount_point_a_string(w: Where) -> Outcome:
    _, config = _config(w, rd.RUNNING)
    point = next(iter(config["MountPoints"]))
    return _set_config(w, rd.RUNNING, **{f"MountPoints.{point}": "/named"})


def container_config_corrupt(w: Where) -> Outcome:
    path = w.container(rd.LOGS_LOCAL) / "config.v2.json"
    _truncate(path)
    return Outcome("metadata_unreadable", w.rel(path), "`docker system prune --volumes` deletes",
                   touched=frozenset({f"users:{rd.LOGS_LOCAL}"}))  # fmt: skip


def container_config_missing(w: Where) -> Outcome:
    # Docker never loads nor removes such a dir: an orphan, with its writable layer.
    _remove(w.container(rd.EXITED) / "config.v2.json")
    return Outcome("container_dir_orphaned", w.rel(w.container(rd.EXITED)), "Docker never loads it",
                   orphan=True, touched=frozenset({f"users:{rd.EXITED}"}))  # fmt: skip


def repositories_missing(w: Where) -> Outcome:
    path = w.store / "repositories.json"
    _remove(path)
    return Outcome("metadata_unreadable", w.rel(path), "every image becomes dangling",
                   touched=frozenset({"images"}))  # fmt: skip


def _size(w: Where, tag: str, text: str, index: int = -1) -> Outcome:
    path = w.layer(tag, index) / "size"
    _write(path, text)
    touched = {"images" if tag == rd.BASE else f"image:{tag}", "layers_size"}
    return Outcome("metadata_unreadable", w.rel(path), "Docker does not load this layer",
                   touched=frozenset(touched))  # fmt: skip


def layer_size_just_past_int64(w: Where) -> Outcome:
    return _size(w, rd.APP1, str(1 << 63))


def layer_size_below_int64(w: Where) -> Outcome:
    return _size(w, rd.APP2, str(-(1 << 63) - 1))


def layer_size_trailing_newline(w: Where) -> Outcome:
    # Docker's ParseInt reads the whole file: an editor's newline makes it fail.
    return _size(w, rd.BASE, (w.layer(rd.BASE) / "size").read_text() + "\n")


def layer_size_leading_space(w: Where) -> Outcome:
    return _size(w, rd.APP1, " " + (w.layer(rd.APP1) / "size").read_text())


def layer_size_thirty_digits(w: Where) -> Outcome:
    return _size(w, rd.APP2, "1" + "0" * 29)


def lower_names_missing_link(w: Where) -> Outcome:
    path = w.layer_dir(rd.APP1) / "lower"
    lowers = path.read_text().split(":")
    _write(path, ":".join(["l/" + "Z" * 26, *lowers[1:]]))
    return Outcome("reference_dangling", w.rel(path), "overlay2 cannot mount this layer")


def container_lower_names_missing_link(w: Where) -> Outcome:
    mount_id = w.sc.mount_ids[w.sc.containers[rd.CREATED]]
    path = w.root / "overlay2" / mount_id / "lower"
    lowers = path.read_text().split(":")
    _write(path, ":".join([*lowers[:-1], "l/" + "Q" * 26]))
    return Outcome("reference_dangling", w.rel(path), f"container {rd.CREATED} cannot start")


def _add_reference(w: Where, ref: str, target: str) -> Outcome:
    path = w.store / "repositories.json"
    doc = json.loads(path.read_text())
    doc["Repositories"].setdefault(ref.split(":")[0].split("@")[0], {})[ref] = target
    _write(path, json.dumps(doc))
    return Outcome("reference_dangling", w.rel(path), "which is not in imagedb")


def tag_names_missing_image(w: Where) -> Outcome:
    return _add_reference(w, "dd-ghost:1", "sha256:" + "0" * 64)


def digest_names_missing_image(w: Where) -> Outcome:
    return _add_reference(w, "dd-ghost@sha256:" + "1" * 64, "sha256:" + "2" * 64)


def tag_moved_to_missing_image(w: Where) -> Outcome:
    # dd-app:3's tag now names nothing: dd-app:3 becomes <none> as Docker would list it.
    out = _add_reference(w, rd.APP3, "sha256:" + "3" * 64)
    return Outcome(out.kind, out.path, out.says, touched=frozenset({f"image:{rd.APP3}"}))


def mount_parent_names_missing_layer(w: Where) -> Outcome:
    path = w.mount(rd.RUNNING) / "parent"
    _write(path, "sha256:" + "4" * 64)
    return Outcome("reference_dangling", w.rel(path), "which cannot start")


def layer_parent_names_missing_layer(w: Where) -> Outcome:
    path = w.layer(rd.APP2) / "parent"
    _write(path, "sha256:" + "5" * 64)
    return Outcome("reference_dangling", w.rel(path), "Docker does not load this layer",
                   touched=frozenset({f"image:{rd.APP2}"}))  # fmt: skip


def _volume_db(w: Where) -> Path:
    return w.root / "volumes" / "metadata.db"


def volume_db_truncated(w: Where) -> Outcome:
    _truncate(_volume_db(w))
    return Outcome("metadata_unreadable", w.rel(_volume_db(w)), "will not start")


def volume_db_meta_zeroed(w: Where) -> Outcome:
    path = _volume_db(w)
    data = bytearray(path.read_bytes())
    data[: 2 * 4096] = bytes(2 * 4096)
    path.write_bytes(bytes(data))
    return Outcome("metadata_unreadable", w.rel(path), "will not start")


def volume_db_fifo(w: Where) -> Outcome:
    _fifo(_volume_db(w))
    return Outcome("metadata_unreadable", w.rel(_volume_db(w)), "will not start")


def volume_db_a_dir(w: Where) -> Outcome:
    _dir(_volume_db(w))
    return Outcome("metadata_unreadable", w.rel(_volume_db(w)), "will not start")


def volume_db_symlink(w: Where) -> Outcome:
    target = _outside(w, "volume-db") / "metadata.db"
    _volume_db(w).rename(target)
    os.symlink(target, _volume_db(w))
    return Outcome("metadata_unreadable", w.rel(_volume_db(w)), "dockerd would open what it points to")


def volume_db_empty(w: Where) -> Outcome:
    _write(_volume_db(w), b"")
    return Outcome("metadata_unreadable", w.rel(_volume_db(w)), "without the labels and options")


def volume_db_record_not_json(w: Where) -> Outcome:
    # bbolt checksums only its meta pages: a byte flipped in a record reads back as is
    # (in every copy of the record: freed pages keep older ones).
    path = _volume_db(w)
    record = b'{"Name":"' + rd.NAMED_VOLUME.encode()
    data = path.read_bytes()
    assert record in data
    path.write_bytes(data.replace(record, b"!" + record[1:]))
    return Outcome("metadata_unreadable", w.rel(path), "forgets its labels and options")


def layer_diff_symlink_outside(w: Where) -> Outcome:
    path = w.layer_dir(rd.APP1) / "diff"
    _symlink(path, str(_outside(w, "diff-target")))
    key = frozenset({f"image:{rd.APP1}"})
    return Outcome("data_outside_root", w.rel(path), "outside the root", touched=key, unmeasured=key)


def layer_diff_symlink_to_root(w: Where) -> Outcome:
    path = w.layer_dir(rd.BASE) / "diff"
    _symlink(path, "/")
    return Outcome("data_outside_root", w.rel(path), "Docker would mount what lies there",
                   touched=frozenset({"images"}), unmeasured=frozenset({f"image:{rd.BASE}"}))  # fmt: skip


def container_diff_symlink_out(w: Where) -> Outcome:
    mount_id = w.sc.mount_ids[w.sc.containers[rd.EXITED]]
    path = w.root / "overlay2" / mount_id / "diff"
    _symlink(path, "../../../../../../../../../../tmp")
    return Outcome("data_outside_root", w.rel(path), f"into container {rd.EXITED}",
                   touched=frozenset({f"container:{rd.EXITED}"}),
                   unmeasured=frozenset({f"container:{rd.EXITED}"}))  # fmt: skip


def volume_data_symlink_outside(w: Where) -> Outcome:
    path = w.root / "volumes" / rd.NAMED_VOLUME / "_data"
    _symlink(path, str(_outside(w, "volume-target")))
    return Outcome("data_outside_root", w.rel(path), f"into containers {rd.RUNNING}",
                   touched=frozenset({f"volume:{rd.NAMED_VOLUME}"}),
                   unmeasured=frozenset({f"volume:{rd.NAMED_VOLUME}"}))  # fmt: skip


def volume_data_symlink_within_root(w: Where) -> Outcome:
    path = w.root / "volumes" / rd.UNUSED_VOLUME / "_data"
    _symlink(path, f"../{rd.NAMED_VOLUME}/_data")
    return Outcome("data_outside_root", w.rel(path), "elsewhere in the root",
                   touched=frozenset({f"volume:{rd.UNUSED_VOLUME}"}),
                   unmeasured=frozenset({f"volume:{rd.UNUSED_VOLUME}"}))  # fmt: skip


def anonymous_volume_data_to_etc(w: Where) -> Outcome:
    name = w.sc.volumes["anonymous"]
    path = w.root / "volumes" / name / "_data"
    _symlink(path, "/etc")
    key = frozenset({f"volume:{name}"})
    return Outcome("data_outside_root", w.rel(path), "outside the root", touched=key, unmeasured=key)


ROUND_TWO: list[Damage2] = [
    container_entry_symlink, container_entry_file, container_entry_fifo, containers_dir_symlink,
    container_state_a_string,
    container_running_a_string, container_name_a_number, container_image_a_number,
    container_mount_point_a_string, container_config_corrupt, container_config_missing,
    repositories_missing,
    layer_size_just_past_int64, layer_size_below_int64, layer_size_trailing_newline,
    layer_size_leading_space, layer_size_thirty_digits,
    lower_names_missing_link, container_lower_names_missing_link, tag_names_missing_image,
    digest_names_missing_image, tag_moved_to_missing_image, mount_parent_names_missing_layer,
    layer_parent_names_missing_layer,
    volume_db_truncated, volume_db_meta_zeroed, volume_db_fifo, volume_db_a_dir, volume_db_symlink,
    volume_db_empty, volume_db_record_not_json,
    layer_diff_symlink_outside, layer_diff_symlink_to_root, container_diff_symlink_out,
    volume_data_symlink_outside, volume_data_symlink_within_root, anonymous_volume_data_to_etc,
]  # fmt: skip


def _figures(doc: dict[str, Any]) -> dict[str, Any]:
    """Every per-object figure of a report, keyed by the object's human name."""
    out: dict[str, Any] = {"layers_size": doc["docker"]["layers_size"]}
    for i in doc["images"]:
        out["image:" + (",".join(i["tags"]) or i["id"])] = (
            i["size"], i["shared_size"], i["disk"], i["unique_disk"], i["containers"]
        )  # fmt: skip
    for c in doc["containers"]:
        out[f"container:{c['name']}"] = (
            c["state"], c["rw_size"], c["rw_disk"], c["log_size"], c["log_disk"], c["image_id"]
        )  # fmt: skip
    for v in doc["volumes"]:
        out[f"volume:{v['name']}"] = (v["size"], v["disk"], tuple(v["containers"]), v["anonymous"])
    out["build_cache"] = (doc["build_cache"]["size"], doc["build_cache"]["disk"])
    return out


def _touched(base: dict[str, Any], keys: frozenset[str]) -> set[str]:
    """Expand `users:<container>` into the container, its image and its volumes."""
    out: set[str] = set()
    for key in keys:
        if not key.startswith("users:"):
            out.add(key)
            continue
        name = key.removeprefix("users:")
        (c,) = [c for c in base["containers"] if c["name"] == name]
        out.add(f"container:{name}")
        out.update(
            "image:" + (",".join(i["tags"]) or i["id"]) for i in base["images"] if i["id"] == c["image_id"]
        )
        out.update(f"volume:{v['name']}" for v in base["volumes"] if name in v["containers"])
    return out


def _check_unmeasured(doc: dict[str, Any], keys: frozenset[str]) -> None:
    for key in keys:
        kind, _, name = key.partition(":")
        if kind == "image":
            (i,) = [i for i in doc["images"] if name in i["tags"]]
            assert i["disk"] is None, i
        elif kind == "container":
            (c,) = [c for c in doc["containers"] if c["name"] == name]
            assert c["rw_size"] is None, c
        else:
            (v,) = [v for v in doc["volumes"] if v["name"] == name]
            assert v["size"] is None and f"volumes:{name}" in doc["incomplete"], (v, doc["incomplete"])


@pytest.mark.parametrize("damage", ROUND_TWO, ids=lambda d: d.__name__)
def test_damage_round_two(base: Base, damage: Damage2, tmp_path: Path) -> None:
    _check_round_two(base, damage, tmp_path)


def _check_round_two(base: Base, damage: Damage2, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base.root), str(copy)], check=True)
    expect = damage(Where(copy, base.scenario))
    before = _tree_state(copy)
    result = run_report(copy)
    assert _tree_state(copy) == before, "the run changed the root"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0 and result.stderr == "", result.stderr
    doc = json.loads(result.stdout)
    found = doc["orphans"] if expect.orphan else doc["problems"]
    named = [x for x in found if (x["kind"], x["path"]) == (expect.kind, expect.path)]
    assert named, found
    assert any(expect.says in x["reason"] for x in named), named
    # No false orphan: the only orphan is the one expected.
    assert [(o["kind"], o["path"]) for o in doc["orphans"]] == (
        [(expect.kind, expect.path)] if expect.orphan else []
    )
    # No false reclaimable: nothing counts as reclaimable that the undamaged root did not
    # (the layers and volumes a damaged container may hold stay in use, flagged or not).
    for category in ("images", "containers", "volumes", "build_cache"):
        was, now = base.doc["reclaimable"][category], doc["reclaimable"][category]
        assert (now["size"] or 0) <= (was["size"] or 0) and (now["disk"] or 0) <= was["disk"], category
    # Untouched figures stay as they were.
    before_figures, after_figures = _figures(base.doc), _figures(doc)
    touched = _touched(base.doc, expect.touched)
    for key, value in before_figures.items():
        if key not in touched and key.split(":")[0] + "s" not in touched:
            assert after_figures.get(key) == value, key
    _check_unmeasured(doc, expect.unmeasured)
    assert doc["totals"]["root_disk"] == rd.du_bytes(copy)
    for p in doc["problems"]:
        assert not p["path"].startswith("/") and ".." not in p["path"].split("/"), p
        assert "\n" not in p["reason"], p


# --------------------------------------------------------------------------- a FIFO at every path read
#
# A 26.1 root, for its BuildKit records: the BuildKit reader reads layerdb files too.


@pytest.fixture(scope="module")
def base26(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    rd.require_docker("26.1")
    work = tmp_path_factory.mktemp("damage-base26")
    with rd.PrivateDaemon("26.1", work) as d:
        scenario = rd.build_scenario(d, plants=())
    result = run_report(d.root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    doc = json.loads(result.stdout)
    assert doc["orphans"] == [] and doc["problems"] == [] and doc["build_cache"]["records"]
    yield Base(d.root, scenario, doc)


def _buildkit_times(w: Where, field: bytes) -> Outcome:
    """Every `field` (Unix ns, 19 digits) of every record set to 19 nines: past int64's maximum."""
    path = w.root / "buildkit" / "metadata_v2.db"
    data, n = re.subn(re.escape(field) + rb'\{"value":[0-9]{19}\}', field + b'{"value":' + b"9" * 19 + b"}",
                      path.read_bytes())  # fmt: skip
    assert n > 0
    path.write_bytes(data)
    return Outcome("metadata_unreadable", w.rel(path), "is outside int64: BuildKit cannot decode it")


def buildkit_last_used_past_int64(w: Where) -> Outcome:
    return _buildkit_times(w, b"cache.lastUsedAt")


def buildkit_created_past_int64(w: Where) -> Outcome:
    return _buildkit_times(w, b"cache.createdAt")


@pytest.mark.parametrize("damage", [buildkit_last_used_past_int64, buildkit_created_past_int64],
                         ids=lambda d: d.__name__)  # fmt: skip
def test_buildkit_damage(base26: Base, damage: Damage2, tmp_path: Path) -> None:
    """BuildKit's numbers (bbolt checksums only its meta pages, so they can be edited in place)."""
    _check_round_two(base26, damage, tmp_path)


def _paths_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path under `root` that a report opens through the safe reader, root-relative."""
    seen: list[str] = []
    real = fsread._open

    def record(path: str) -> int:
        seen.append(path)
        return real(path)

    with monkeypatch.context() as m:
        m.setattr(fsread, "_open", record)
        result = CliRunner().invoke(
            app, ["report", "--format", "json", "--root", str(root), "--no-cache", "--quiet", "-j", "1"]
        )
    assert result.exit_code == 0, result.output
    prefix = f"{root}/"
    return sorted({p.removeprefix(prefix) for p in seen if p.startswith(prefix) and os.path.lexists(p)})


def _pattern(rel: str) -> str:
    """A path with its IDs replaced: one pattern per kind of metadata file."""
    rel = re.sub(r"[0-9a-f]{64}", "<id>", rel)
    return re.sub(r"(?<![0-9a-z])[0-9a-z]{25}(?![0-9a-z])", "<buildkit-id>", rel)


def test_a_fifo_at_each_path_read_never_hangs(
    base26: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO where any reader opens a file: every run ends, names it, and claims no orphan.

    The paths are those the readers really open (recorded in a run), not a list by hand.
    A FIFO is planted at each of them, one at a time, then at all of them at once.
    The subprocess timeout bounds a hang; it is never a measure of speed.
    """
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base26.root), str(copy)], check=True)
    paths = _paths_read(copy, monkeypatch)
    kinds: dict[str, str] = {}
    for rel in paths:
        kinds.setdefault(_pattern(rel), rel)
    # Every reader took part: the enumeration did not come up short by accident.
    assert {
        "buildkit/metadata_v2.db", "buildkit/snapshots.db", "buildkit/containerdmeta.db",
        "volumes/metadata.db", "image/overlay2/repositories.json",
        "image/overlay2/imagedb/content/sha256/<id>", "image/overlay2/layerdb/sha256/<id>/size",
        "image/overlay2/layerdb/sha256/<id>/cache-id", "image/overlay2/layerdb/mounts/<id>/mount-id",
        "containers/<id>/config.v2.json", "containers/<id>/hostconfig.json", "overlay2/<id>/link",
        "overlay2/<buildkit-id>/lower",
    } <= set(kinds), sorted(kinds)  # fmt: skip
    aside = tmp_path / "aside"
    aside.mkdir()
    failures: list[str] = []
    for i, rel in enumerate(paths):
        target = copy / rel
        target.rename(aside / str(i))
        os.mkfifo(target)
        before = _tree_state(copy)
        result = run_report(copy)
        changed = _tree_state(copy) != before
        target.unlink()
        (aside / str(i)).rename(target)
        if changed or result.returncode != 0 or result.stderr:
            failures.append(f"{rel}: exit {result.returncode}, changed {changed}, {result.stderr[-300:]}")
            continue
        doc = json.loads(result.stdout)
        if doc["orphans"] or not any(p["path"] == rel for p in doc["problems"]):
            failures.append(f"{rel}: orphans {doc['orphans']}, problems {doc['problems']}")
    assert not failures, "\n".join(failures)

    for rel in paths:
        (copy / rel).unlink()
        os.mkfifo(copy / rel)
    before = _tree_state(copy)
    result = run_report(copy)
    assert _tree_state(copy) == before
    assert result.returncode == 0 and result.stderr == "", result.stderr
    doc = json.loads(result.stdout)
    assert doc["orphans"] == []
    assert {p["path"] for p in doc["problems"]} >= {"buildkit/metadata_v2.db", "volumes/metadata.db"}


def test_every_file_under_the_root_is_opened_safely(base26: Base, tmp_path: Path) -> None:
    """Under strace: every open of a non-dir under the root is O_NOFOLLOW | O_NONBLOCK."""
    if shutil.which("strace") is None:
        if os.environ.get("CI"):
            pytest.fail("strace is required in CI (.ci/run installs it)")
        pytest.skip("no strace")
    trace = tmp_path / "trace"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace),
         sys.executable, "-m", "dockerdu", "report", "--format", "json", "--root", str(base26.root),
         "--no-cache", "--quiet", "--jobs", "1"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr
    files = 0
    for line in trace.read_text(errors="replace").splitlines():
        if '"' not in line or " open" not in line:
            continue
        path, flags = line.split('"', 2)[1], line.split('"', 2)[2]
        if not path.startswith(f"{base26.root}/") or "O_DIRECTORY" in flags:
            continue
        files += 1
        assert "O_NOFOLLOW" in flags and "O_NONBLOCK" in flags, line
    assert files > 50, "the trace saw the metadata reads"
