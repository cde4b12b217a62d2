"""`dockerdu prune` on roots the tests build: plan, removal, re-proof, refusal, quarantine, interruption."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockerdu import prune as pr
from dockerdu.cli import ExitCode, app
from dockerdu.errors import InUse
from dockerdu.fs import safe
from dockerdu.locate import Location
from dockerdu.scan import Options, index_root
from tests.conftest import du, scan
from tests.rootbuilder import RootBuilder
from tests.test_integration import _tree_state

BASE = {"bin/busybox": b"x" * 100_000}
APP = {"app/data": b"a" * 30_000}
STORE = "image/overlay2"


@pytest.fixture
def planted(builder: RootBuilder) -> RootBuilder:
    """A healthy root with one of each graphdriver orphan kind."""
    b = builder
    image = b.add_image([BASE, APP], ["app:1"])
    b.add_container(image, b.image_chain([BASE, APP])[-1], "web", {"f": b"f" * 100})
    b.add_volume("data", {"db": b"d" * 1000})
    b.layer_dir({"pulled": b"p" * 9000}, [])  # layer_dir_unreferenced
    gone = b.add_container(image, b.image_chain([BASE, APP])[-1], "gone", {"x": b"x" * 8000})
    shutil.rmtree(b.root / "containers" / gone.id)  # container_layer_orphaned
    files = [BASE, APP, {"u1": b"1" * 5000}, {"u2": b"2" * 6000}]
    unref = b.add_image(files, ["unref:1"])
    os.remove(b.store / "imagedb" / "content" / "sha256" / unref[7:])  # two layer_unreferenced, stacked
    b.repositories.pop("unref")
    b._write_repositories()
    os.symlink("../" + "9" * 64 + "/diff", b.root / "overlay2" / "l" / "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    name, _ = b.layer_dir({"half": b"h" * 7000}, [])
    ws = b.store / "layerdb" / "tmp" / "write-set-123456789"
    ws.mkdir(parents=True)
    (ws / "cache-id").write_text(name)
    (ws / "diff").write_text("sha256:" + "0" * 64)
    return b


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def _prune(root: Path, tmp: Path, *args: str) -> tuple[int, str, str]:
    return _cli("prune", "--root", str(root), "--history", str(tmp / "h" / "history.jsonl"), "-q", *args)


def test_plan_changes_nothing_and_lists_every_orphan(planted: RootBuilder, tmp_path: Path) -> None:
    root = planted.root
    before = _tree_state(root)
    report = scan(root)
    code, out, _ = _prune(root, tmp_path, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "dockerdu.prune/1" and doc["dry_run"] is True and doc["result"] is None
    assert {(o["kind"], o["path"]) for o in doc["orphans"]} == {(o.kind, o.path) for o in report.orphans}
    assert doc["total"] == report.totals.orphans
    assert all(o["action"] == "remove" and o["cleaned_by"] == "never" for o in doc["orphans"])
    # References before data, the top layer before the one below it.
    kinds = [o["kind"] for o in doc["orphans"]]
    assert kinds.index("container_layer_orphaned") < kinds.index("layer_unreferenced")
    mount = next(o for o in doc["orphans"] if o["kind"] == "container_layer_orphaned")
    assert mount["steps"][0] == mount["path"] and mount["steps"][1].startswith("overlay2/l/")
    layers = [o["path"] for o in doc["orphans"] if o["kind"] == "layer_unreferenced"]
    top = planted.image_chain([BASE, APP, {"u1": b"1" * 5000}, {"u2": b"2" * 6000}])[-1]
    assert layers[0] == f"{STORE}/layerdb/sha256/{top.chain_id[7:]}"
    assert _tree_state(root) == before


def test_yes_removes_exactly_the_plan(planted: RootBuilder, tmp_path: Path) -> None:
    root = planted.root
    report = scan(root)
    du_before = du(root)
    code, out, err = _prune(root, tmp_path, "--yes", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    result = doc["result"]
    assert result["skipped"] == []
    assert result["freed"] == doc["total"] == report.totals.orphans == du_before - du(root)
    after = scan(root)
    assert after.orphans == () and after.problems == ()
    assert [i.id for i in after.images] == [i.id for i in report.images]
    assert [c.id for c in after.containers] == [c.id for c in report.containers]
    journal = [json.loads(line) for line in (tmp_path / "h" / "prune.jsonl").read_text().splitlines()]
    assert {j["orphan"] for j in journal} == {o.path for o in report.orphans}
    assert sum(j["bytes"] for j in journal) == result["freed"]
    assert all(j["root"] == str(root) and j["action"] == "removed" for j in journal)


def test_selection(planted: RootBuilder, tmp_path: Path) -> None:
    root = planted.root
    code, out, _ = _prune(root, tmp_path, "--format", "json", "--kind", "link_broken", "--min-size", "1")
    assert code == 0
    doc = json.loads(out)
    assert [o["kind"] for o in doc["orphans"] if o["action"] == "remove"] == ["link_broken"]
    code, out, _ = _prune(root, tmp_path, "--format", "json", "--older-than", "1d")
    assert {o["why"] for o in json.loads(out)["orphans"]} == {"changed more recently than --older-than"}
    code, out, _ = _prune(root, tmp_path, "--format", "json", "--min-size", "1G")
    assert json.loads(out)["total"] == 0
    assert _prune(root, tmp_path, "--kind", "nonsense")[0] == ExitCode.USAGE
    assert _prune(root, tmp_path, "--older-than", "soon")[0] == ExitCode.USAGE


def test_a_second_proof_keeps_what_became_referenced(planted: RootBuilder, tmp_path: Path) -> None:
    """Between the plan and the removal the orphaned mount's container comes back: it stays."""
    root = planted.root
    report = scan(root)
    plan = pr.make_plan(report)
    mount = next(i for i in plan.removals if i.kind == "container_layer_orphaned")
    cid = mount.path.rsplit("/", 1)[1]
    web = next(c.id for c in report.containers)
    shutil.copytree(root / "containers" / web, root / "containers" / cid)
    loc = Location(root, "--root", None)
    out = pr.act(
        loc, plan, lambda: index_root(loc, Options(), 0), history_file=tmp_path / "h" / "history.jsonl"
    )
    assert {s["path"] for s in out.skipped} == {mount.path}
    assert (root / mount.path).is_dir()


def _mounted(root: Path, point: Path) -> bool:
    return str(point) in safe.mount_points(str(root))


def test_hostile_swaps_between_plan_and_removal(planted: RootBuilder, tmp_path: Path) -> None:
    """A subdir swapped for a symlink to a canary, and a dir for a bind mount: both left untouched."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("bind mounts need root in CI")
        pytest.skip("bind mounts need root")
    root = planted.root
    canary = tmp_path / "canary"
    (canary / "deep").mkdir(parents=True)
    (canary / "deep" / "precious").write_bytes(b"c" * 5000)
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "kept").write_bytes(b"m" * 3000)
    canary_state, mounted_state = _tree_state(canary), _tree_state(mounted)
    plan = pr.make_plan(scan(root))
    dirs = [s for i in plan.removals for s in i.steps if s.startswith("overlay2/") and "/l/" not in s]
    swap, bind = dirs[0], dirs[1]
    mount_point = root / bind / "diff"

    def before(item: pr.Item, step: str) -> None:
        if step == swap and (root / swap / "diff").is_dir() and not (root / swap / "diff").is_symlink():
            shutil.rmtree(root / swap / "diff")
            os.symlink(canary, root / swap / "diff")
        if step == bind and not _mounted(root, mount_point):
            subprocess.run(["mount", "--bind", str(mounted), str(mount_point)], check=True)

    loc = Location(root, "--root", None)
    try:
        with pytest.raises(InUse, match="is mounted under"):  # seen at the step after the mount
            pr.act(
                loc, plan, lambda: index_root(loc, Options(), 0),
                history_file=tmp_path / "h" / "history.jsonl", before_step=before,
            )  # fmt: skip
        assert _mounted(root, mount_point)
        assert _tree_state(mounted) == mounted_state
        assert (root / bind).is_dir()  # the dir holding the mount point stays
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
    assert _tree_state(canary) == canary_state
    assert not (root / swap).exists()  # the symlink went as an entry, the canary stayed
    assert _tree_state(mounted) == mounted_state


def test_quarantine_then_restore_is_byte_identical(planted: RootBuilder, tmp_path: Path) -> None:
    root = planted.root
    os.setxattr(root / "containers", "user.dockerdu", b"x")
    before = _tree_state(root)
    q = tmp_path / "quarantine"
    code, _, err = _prune(root, tmp_path, "--yes", "--quarantine", str(q))
    assert code == 0, err
    assert scan(root).orphans == ()
    assert (q / "manifest.jsonl").is_file()
    code, out, err = _prune(root, tmp_path, "--restore", str(q))
    assert code == 0, err
    assert out.count("restored ") >= 7
    assert _tree_state(root) == before
    assert {o.kind for o in scan(root).orphans} >= {"layer_unreferenced", "link_broken"}
    assert _prune(root, tmp_path, "--yes", "--quarantine", str(root / "q"))[0] == ExitCode.USAGE


def test_refused_while_a_process_holds_the_root(planted: RootBuilder, tmp_path: Path) -> None:
    root = planted.root
    before = _tree_state(root)
    holder = subprocess.Popen(["sleep", "600"], cwd=root / "containers")
    try:
        code, _, err = _prune(root, tmp_path, "--yes")
    finally:
        holder.kill()
        holder.wait()
    assert code == ExitCode.ROOT_IN_USE
    assert f"(pid {holder.pid}) holds {root}/containers" in err and "stop it" in err
    assert len(err.strip().splitlines()) == 1
    assert _tree_state(root) == before


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 11, 14])
def test_interrupted_after_each_step_then_completed(planted: RootBuilder, tmp_path: Path, steps: int) -> None:
    root = planted.root
    report = scan(root)
    base = [sys.executable, "-m", "dockerdu", "prune", "--root", str(root), "-q"]
    base += ["--history", str(tmp_path / "h" / "history.jsonl"), "--no-cache", "--yes"]
    env = {**os.environ, pr.KILL_AFTER_ENV: str(steps)}
    killed = subprocess.run(base, env=env, capture_output=True, check=False)
    assert killed.returncode == -9
    middle = scan(root)
    # Every step leaves a root whose images and containers all load, no new problem.
    assert middle.problems == ()
    assert [i.id for i in middle.images] == [i.id for i in report.images]
    assert [c.id for c in middle.containers] == [c.id for c in report.containers]
    done = subprocess.run(base, capture_output=True, check=False, text=True)
    assert done.returncode == 0, done.stderr
    assert scan(root).orphans == ()


def test_a_parent_swapped_for_a_symlink_removes_nothing_elsewhere(
    planted: RootBuilder, tmp_path: Path
) -> None:
    root = planted.root
    canary = tmp_path / "canary"
    (canary / "write-set-123456789").mkdir(parents=True)
    (canary / "write-set-123456789" / "cache-id").write_text("precious")
    state = _tree_state(canary)
    plan = pr.make_plan(scan(root))
    tmp = root / STORE / "layerdb" / "tmp"

    def before(item: pr.Item, step: str) -> None:
        if item.kind == "layerdb_tmp" and not tmp.is_symlink():
            shutil.rmtree(tmp)
            os.symlink(canary, tmp)

    loc = Location(root, "--root", None)
    out = pr.act(
        loc, plan, lambda: index_root(loc, Options(), 0),
        history_file=tmp_path / "h" / "history.jsonl", before_step=before,
    )  # fmt: skip
    (done,) = [d for d in out.done if d["kind"] == "layerdb_tmp"]
    assert done["left"] and "symlink" in str(done["left"])
    assert _tree_state(canary) == state
    assert tmp.is_symlink()


def test_a_containerd_store_whose_containerd_root_was_not_read_is_refused(planted: RootBuilder) -> None:
    import dataclasses

    from dockerdu.errors import UsageError

    report = dataclasses.replace(scan(planted.root), store="containerd", containerd_root=None)
    with pytest.raises(UsageError, match="containerd root was not found or not read"):
        pr.check_store(report)
    pr.check_store(dataclasses.replace(report, containerd_root=str(planted.root / "containerd/daemon")))
