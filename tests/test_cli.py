"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dockerdu import __version__
from dockerdu.cli import ExitCode, app
from tests.conftest import du
from tests.rootbuilder import RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 100_000}


def _root(builder: RootBuilder) -> Path:
    image = builder.add_image([BASE], ["base:1"])
    builder.add_container(image, builder.image_chain([BASE])[-1], "web\x1b[31mred", {"f": b"f" * 10})
    builder.layer_dir({"left": b"l" * 5000}, [])
    return builder.root


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dockerdu {__version__}"


def test_report_json_is_the_only_output(builder: RootBuilder) -> None:
    root = _root(builder)
    result = runner.invoke(app, ["report", "--root", str(root), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == ExitCode.OK
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dockerdu.report/1"
    assert doc["store"] == "overlay2"
    assert doc["root"] == str(root)
    assert doc["totals"]["root_disk"] == du(root)
    for key in ("images", "containers", "volumes", "build_cache", "orphans", "problems", "totals"):
        assert key in doc
    assert {o["kind"] for o in doc["orphans"]} == {"layer_dir_unreferenced"}
    image = doc["images"][0]
    assert set(image) >= {"id", "tags", "size", "shared_size", "unique_size", "containers", "disk", "layers"}
    assert set(image["layers"][0]) >= {"chain_id", "diff_id", "cache_id", "size", "disk"}
    assert set(doc["containers"][0]) >= {
        "id",
        "name",
        "image_id",
        "state",
        "rw_size",
        "rw_disk",
        "log_size",
        "volumes",
    }
    assert doc["containers"][0]["name"] == "web\x1b[31mred"  # JSON escapes it as \u001b


def test_table_escapes_names(builder: RootBuilder) -> None:
    root = _root(builder)
    result = runner.invoke(app, ["report", "--root", str(root)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    assert "web\\x1b[31mred" in result.stdout
    assert "layer_dir_unreferenced" in result.stdout


def test_orphans_command(builder: RootBuilder) -> None:
    root = _root(builder)
    result = runner.invoke(app, ["orphans", "--root", str(root), "-f", "json"], catch_exceptions=False)
    doc = json.loads(result.stdout)
    assert [o["kind"] for o in doc["orphans"]] == ["layer_dir_unreferenced"]
    text = runner.invoke(app, ["orphans", "--root", str(root)]).stdout
    assert "Orphans (1" in text and "Images" not in text


def test_which(builder: RootBuilder) -> None:
    root = _root(builder)
    layer = next(iter(builder.layers.values()))
    result = runner.invoke(app, ["which", layer.cache_id[:12], "--root", str(root)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "base:1" in result.stdout
    by_path = runner.invoke(
        app, ["which", f"overlay2/{layer.cache_id}/diff/bin/busybox", "--root", str(root)]
    )
    assert "base:1" in by_path.stdout
    by_link = runner.invoke(app, ["which", f"overlay2/l/{layer.link}", "--root", str(root)])
    assert "base:1" in by_link.stdout
    nothing = runner.invoke(app, ["which", "ffffffffffff", "--root", str(root)])
    assert nothing.exit_code == 1


def test_not_a_docker_root(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--root", str(tmp_path)])
    assert result.exit_code == ExitCode.ROOT_UNREADABLE
    assert "not a Docker data root" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = runner.invoke(app, ["report", "--root", str(tmp_path / "nope")])
    assert missing.exit_code == ExitCode.ROOT_UNREADABLE
    assert "does not exist" in missing.stderr


def test_python_dash_m(builder: RootBuilder) -> None:
    root = _root(builder)
    out = subprocess.run(
        [sys.executable, "-m", "dockerdu", "report", "--root", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["totals"]["root_disk"] == du(root)
    assert out.stderr == ""


def test_unreadable_root_as_unprivileged_user(builder: RootBuilder) -> None:
    root = _root(builder)
    root.chmod(0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody with everything already imported, then run the CLI
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = runner.invoke(app, ["report", "--root", str(root)])
            os.write(write_end, f"{result.exit_code}\n{result.stderr}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as f:
        code, message = f.read().split("\n", 1)
    assert int(code) == ExitCode.ROOT_UNREADABLE
    assert "cannot be read by this user" in message


def test_lone_surrogate_in_a_container_name(builder: RootBuilder) -> None:
    root = _root(builder)
    config = next((root / "containers").glob("*/config.v2.json"))
    config.write_text(config.read_text().replace('"Name": "/web', '"Name": "/\\ud800web'))
    result = runner.invoke(app, ["report", "--root", str(root), "-f", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["containers"][0]["name"].startswith("\\ud800web")
    table = runner.invoke(app, ["report", "--root", str(root), "--no-trunc"], catch_exceptions=False)
    assert table.exit_code == 0 and "\\ud800web" in table.stdout


def test_image_refuses_formats_it_has_not(builder: RootBuilder) -> None:
    root = _root(builder)
    result = runner.invoke(app, ["image", "base:1", "--root", str(root), "-f", "csv"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == "dockerdu: --format: 'csv' is not one of 'table', 'json'\n"
    assert result.stdout == ""
