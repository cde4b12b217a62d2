"""The committed sample_root (made by a real Docker 20.10 daemon): report and audit on a copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dockerdu.cli import app
from tests.conftest import du

SAMPLE = Path(__file__).resolve().parent.parent / "sample_root"
runner = CliRunner()


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(SAMPLE, root, symlinks=True)
    return root


def test_report_reconciles_and_finds_the_planted_orphans(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    result = runner.invoke(app, ["report", "--root", str(root), "-f", "json", "--no-cache"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["totals"]["root_disk"] == du(root)
    assert {o["kind"] for o in doc["orphans"]} >= {
        "layer_dir_unreferenced", "link_broken", "layerdb_tmp", "container_layer_orphaned",
    }  # fmt: skip
    assert doc["problems"] == []


def test_audit_quiet_then_breach_then_growth(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    history = tmp_path / "history.jsonl"
    base = ["audit", "--root", str(root), "--history", str(history), "--no-cache"]
    quiet = runner.invoke(app, base)
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    breach = runner.invoke(app, [*base, "--max-orphans", "0"])
    assert breach.exit_code == 1
    assert breach.stdout.startswith("breach: orphans") and len(breach.stdout.splitlines()) == 1
    data = root / "volumes" / "dd-named" / "_data" / "grown"
    data.write_bytes(b"g" * 3_000_000)
    grown = runner.invoke(app, [*base, "--max-growth", "1M"])
    assert grown.exit_code == 1
    assert "dd-named" in grown.stdout


def test_prometheus_equals_json(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    as_json = json.loads(runner.invoke(app, ["report", "--root", str(root), "-f", "json"]).stdout)
    text = runner.invoke(app, ["report", "--root", str(root), "-f", "prometheus"]).stdout
    samples = {
        s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples if not s.labels
    }
    assert samples["dockerdu_root_disk_bytes"] == as_json["totals"]["root_disk"]
