"""`dockerdu prune` on a real containerd-store root (Docker 26.1): only files no database names go.

The root of tests/test_containerd.py (built again for this module): garbage planted
(an unknown snapshot dir, a blob with no record, a partial ingest), BuildKit's
temporary leases, and the abandoned overlay2 store. Prune removes the ingest only;
the daemon then starts with every image, and what `cleaned_by` says the daemon
removes is gone after a start and a clean stop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dockerdu.locate import Location
from dockerdu.scan import Options, build_report
from tests import realdocker as rd
from tests.test_containerd import CONTAINERD_CONFIG, Root, ctrd  # noqa: F401 - the fixture

pytestmark = pytest.mark.docker


def _prune(root: Path, tmp: Path, *args: str) -> dict[str, object]:
    cmd = [sys.executable, "-m", "dockerdu", "prune", "--root", str(root), "-q", "--no-cache"]
    cmd += ["--history", str(tmp / "h" / "history.jsonl"), "--format", "json", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_prune_removes_only_files_and_leaves_the_rest_to_containerd(ctrd: Root, tmp_path: Path) -> None:  # noqa: F811
    root = ctrd.root
    plan = _prune(root, tmp_path)
    orphans = plan["orphans"]
    assert isinstance(orphans, list)
    actions = {(o["kind"], o["action"]) for o in orphans}
    assert actions == {
        ("content_ingest", "remove"),
        ("snapshot_dir_unreferenced", "leave"),
        ("blob_unreferenced", "remove"),  # a file with no record in meta.db
        ("lease_stale", "leave"),
        ("store_unused", "leave"),
    }
    why = {o["kind"]: o["why"] for o in orphans}
    assert why["lease_stale"].startswith("start the daemon: containerd removes these")
    cleaned = {o["kind"]: o["cleaned_by"] for o in orphans}
    assert cleaned["blob_unreferenced"] == "never"  # checked below: a start leaves it
    assert cleaned["lease_stale"] == "BuildKit at start"
    # BuildKit's start drops its temporary leases; the GC pass that removes their
    # snapshots runs the snapshotter's Cleanup, which removes unknown snapshot dirs.
    assert cleaned["snapshot_dir_unreferenced"] == "containerd at start"

    du_before = rd.du_bytes(root)
    done = _prune(root, tmp_path, "--yes")
    result = done["result"]
    assert isinstance(result, dict)
    assert sorted(r["kind"] for r in result["removed"]) == ["blob_unreferenced", "content_ingest"]
    assert result["freed"] == done["total"] == du_before - rd.du_bytes(root) > 0

    left = {o.kind: o for o in build_report(Location(root, "--root", None), Options(jobs=2)).orphans}
    assert "content_ingest" not in left and "blob_unreferenced" not in left
    with rd.PrivateDaemon("26.1", root.parent, config=CONTAINERD_CONFIG) as d:
        images = d.docker("images", "-q", "--no-trunc").split()
        assert len(images) == len(ctrd.report.images)
        for image in images:
            d.docker("run", "--rm", "--network", "none", image, "true")
    after = build_report(Location(root, "--root", None), Options(jobs=2))
    still = {o.kind for o in after.orphans}
    for kind, orphan in left.items():
        if orphan.cleaned_by in ("containerd at start", "BuildKit at start"):
            assert kind not in still, f"{kind} ({orphan.cleaned_by}) survived a start"
