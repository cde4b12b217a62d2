"""`dockerdu prune` on real Docker 20.10 and 26.1 roots with every crash leftover planted.

Per version one scenario is built, the daemon stopped, every orphan kind planted, and
the daemon started once on the planted root (what it shows must stay: `docker images`,
`ps -a`, `volume ls`, `/system/df`; and the errors it logs, that a pruned root must not
add to) and killed. Then: a running daemon makes prune
refuse; `--quarantine` then `--restore` gives the root back byte for byte; a copy of
the root is pruned with a SIGKILL after each removal step in turn, the daemon started
after each; and the root itself is pruned and the daemon must find everything intact.
Outside CI a missing Docker skips these tests; with CI set it fails them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerdu.prune import KILL_AFTER_ENV
from tests import realdocker as rd
from tests.test_integration import _tree_state

pytestmark = pytest.mark.docker


@dataclass
class Planted:
    daemon: rd.PrivateDaemon
    scenario: rd.Scenario
    listing: dict[str, list[str]]
    figures: dict[str, Any]
    start_errors: set[str]
    planted: list[rd.Planted]


def _listing(d: rd.PrivateDaemon) -> dict[str, list[str]]:
    return {
        "images": sorted(
            d.docker(
                "images", "--all", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"
            ).splitlines()
        ),
        "containers": sorted(
            d.docker(
                "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}}"
            ).splitlines()
        ),
        "volumes": sorted(d.docker("volume", "ls", "-q").splitlines()),
    }


def _figures(d: rd.PrivateDaemon) -> dict[str, Any]:
    df = rd.system_df(d)
    return {
        "LayersSize": df["LayersSize"],
        "images": sorted((i["Id"], i["Size"], i["SharedSize"], i["Containers"]) for i in df["Images"]),
        "containers": sorted((c["Id"], c.get("SizeRw", 0)) for c in df["Containers"]),
        "volumes": sorted((v["Name"], v["UsageData"]["Size"]) for v in df["Volumes"]),
    }


_HEX = re.compile(r"[0-9a-f]{12,}|[A-Z2-7]{26}")
_LIFECYCLE = re.compile(
    r"containerd did not exit successfully|failed connecting to containerd|error reading from containerd"
    r"|Failed to get event"
)
"""dockerd's messages about its own containerd process starting or stopping (slow on a loaded
machine): about the process, never about what the root holds."""


def _errors(log: Path, offset: int, end: int) -> set[str]:
    """The `level=error` messages logged from `offset` to `end` (start-up and use), IDs blanked."""
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read(end - offset).decode(errors="replace")
    out = set()
    for line in text.splitlines():
        if "level=error" in line and not _LIFECYCLE.search(line):
            m = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
            out.add(_HEX.sub("<id>", m.group(1) if m else line))
    return out


def _end(d: rd.PrivateDaemon) -> int:
    """Where the daemon's log ends now: errors a stop logs are not about the root."""
    return d.log_path.stat().st_size


def _start(d: rd.PrivateDaemon) -> int:
    offset = d.log_path.stat().st_size if d.log_path.exists() else 0
    d.start()
    return offset


def _kill(d: rd.PrivateDaemon) -> None:
    """Stop the daemon with SIGKILL (no clean-up of its own), then clear what it left."""
    os.kill(d.pid, signal.SIGKILL)
    d._terminate(force=True)


def _dockerdu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dockerdu", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)


def _prune(
    root: Path, history: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _dockerdu(
        "prune", "--root", str(root), "--history", str(history), "-q", "--no-cache", *args, env=env
    )


def _report(root: Path) -> dict[str, Any]:
    r = _dockerdu("report", "--root", str(root), "--format", "json", "-q", "--no-cache")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module", params=rd.VERSIONS)
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    version: rd.Version = request.param
    rd.require_docker(version)
    base = tmp_path_factory.mktemp(f"prune-{version}")
    d = rd.PrivateDaemon(version, base)
    try:
        with d:
            scenario = rd.build_scenario(d, plants=rd.ORPHAN_KINDS)
        planted = rd.plant_leftovers(d.root, scenario, kinds=rd.ORPHAN_KINDS)
        # What the daemon shows of the planted root is what must stay. It is stopped by
        # SIGKILL: a clean stop would remove the -removing layer (its own clean-up).
        offset = _start(d)
        listing, figures = _listing(d), _figures(d)
        start_errors = _errors(d.log_path, offset, _end(d))
        _kill(d)
        assert any("failed to load container" in e for e in start_errors), start_errors
        yield Planted(d, scenario, listing, figures, start_errors, planted)
    finally:
        d.stop()


def _copy(planted: Planted, base: Path) -> rd.PrivateDaemon:
    """A daemon of the same version on a copy of the planted root (its clean stop changes the root)."""
    base.mkdir()
    subprocess.run(
        ["cp", "-a", str(planted.daemon.root), str(base / "root")], check=True
    )  # devices, links, xattrs
    return rd.PrivateDaemon(planted.daemon.version, base)


def test_refused_while_the_daemon_runs(planted: Planted, tmp_path: Path) -> None:
    d = _copy(planted, tmp_path / "copy")
    history = tmp_path / "h" / "history.jsonl"
    d.start()
    try:
        r = _prune(d.root, history, "--yes")
        assert r.returncode == 6, r.stderr
        line = r.stderr.strip()
        assert "\n" not in line and f"dockerd (pid {d.pid}) is running on {d.root}" in line and "stop" in line
        for p in planted.planted:
            assert os.path.lexists(d.root / p.path), p
    finally:
        d.stop()
    assert not (history.parent / "prune.jsonl").exists()


def test_quarantine_then_restore_is_byte_identical(planted: Planted, tmp_path: Path) -> None:
    root = planted.daemon.root
    before = _tree_state(root)
    q = root.parent / "quarantine"
    history = tmp_path / "h" / "history.jsonl"
    r = _prune(root, history, "--yes", "--quarantine", str(q), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["skipped"] == []
    assert [o["kind"] for o in _report(root)["orphans"]] == ["layer_removing"]
    r = _prune(root, history, "--restore", str(q))
    assert r.returncode == 0, r.stderr
    assert _tree_state(root) == before


def test_interrupted_after_each_step_the_daemon_still_loads(planted: Planted, tmp_path: Path) -> None:
    """A copy of the root, pruned one step at a time by SIGKILL; the daemon started after each."""
    d = _copy(planted, tmp_path / "copy")
    history = tmp_path / "h" / "history.jsonl"
    env = {**os.environ, KILL_AFTER_ENV: "1"}
    kills = 0
    try:
        while True:
            r = _prune(d.root, history, "--yes", env=env)
            if r.returncode == 0:
                break
            assert r.returncode == -9, r.stderr
            kills += 1
            assert kills < 40, "prune never completes"
            offset = _start(d)
            assert _listing(d) == planted.listing
            end = _end(d)
            d.stop()
            assert _errors(d.log_path, offset, end) - planted.start_errors == set()
    finally:
        d.stop()
    assert kills >= 12, "every planted orphan takes at least one step"
    assert len((history.parent / "prune.jsonl").read_text().splitlines()) == kills
    assert [o["kind"] for o in _report(d.root)["orphans"]] == []  # -removing went at a clean stop


def test_prune_then_the_daemon_has_everything(planted: Planted, tmp_path: Path) -> None:
    d = planted.daemon
    root = d.root
    history = tmp_path / "h" / "history.jsonl"
    report = _report(root)
    assert {(o["kind"], o["path"]) for o in report["orphans"]} == {(p.kind, p.path) for p in planted.planted}
    assert report["problems"] == []
    assert {o["kind"]: o["cleaned_by"] for o in report["orphans"]}[
        "layer_removing"
    ] == "dockerd at clean stop"

    r = _prune(root, history, "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    going = {o["path"] for o in plan["orphans"] if o["action"] == "remove"}
    assert going == {p.path for p in planted.planted if p.kind != "layer_removing"}

    du_before = rd.du_bytes(root)
    r = _prune(root, history, "--yes", "--format", "json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert {o["path"] for o in done["orphans"] if o["action"] == "remove"} == going
    result = done["result"]
    assert result["skipped"] == [] and all(x["left"] == [] for x in result["removed"])
    assert result["freed"] == done["total"] == du_before - rd.du_bytes(root)
    assert "Freed" not in r.stdout  # JSON only
    assert [o["kind"] for o in _report(root)["orphans"]] == ["layer_removing"]

    offset = _start(d)
    try:
        assert _listing(d) == planted.listing
        assert _figures(d) == planted.figures
        for image_id in d.docker("images", "-q", "--no-trunc").split():
            d.docker("run", "--rm", "--network", "none", image_id, "true")
        d.docker("start", "-a", rd.EXITED)
        d.docker("start", "-a", rd.CREATED)
        end = _end(d)
    finally:
        d.stop()
    errors = _errors(d.log_path, offset, end)
    assert errors - planted.start_errors == set()
    assert not [e for e in errors if "failed to load container" in e], errors  # the leftovers' errors went
    after = _report(root)
    assert after["orphans"] == [] and after["problems"] == []  # the clean stop removed the -removing layer
