"""Usage errors, help and exit codes as the README documents them: one plain line, never colour."""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockerdu.cli import ExitCode, app
from tests.rootbuilder import RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 1000}
MARKERS = "engine-id, image/, containers/, volumes/, overlay2/, vfs/, fuse-overlayfs/, containerd/daemon/"


def _root(builder: RootBuilder) -> Path:
    image = builder.add_image([BASE], ["base:1"])
    builder.add_container(image, builder.image_chain([BASE])[-1], "web")
    builder.layer_dir({"left": b"l" * 5000}, [])
    return builder.root


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["audit", "--max-orphans", "5X"],
            "--max-orphans: '5X' is not a size (e.g. 10G, 500MiB, 1.5GB, 4096)",
        ),
        (["report", "-f", "xml"], "--format: 'xml' is not one of 'table', 'json', 'prometheus', 'csv'"),
        (["report", "--jobs", "x"], "--jobs: 'x' is not a valid int range"),
        (
            ["audit", "--max-fs-used-percent", "200"],
            "--max-fs-used-percent: 200.0 is not in the range 0<=x<=100",
        ),
        (["image", "x", "-f", "csv"], "--format: 'csv' is not one of 'table', 'json'"),
        (["which"], "Missing argument 'NAME|ID|PATH'; see 'root which --help'"),
        (["report", "--zzz"], "No such option: --zzz; see 'root report --help'"),
        (["nope"], "No such command 'nope'; see 'root --help'"),
    ],
)
def test_usage_errors_are_one_plain_line(args: list[str], line: str) -> None:
    result = runner.invoke(app, args, color=True)
    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, "")
    assert result.stderr == f"dockerdu: {line}\n"


@pytest.mark.parametrize("command", [[], ["report"], ["orphans"], ["which"], ["image"], ["audit"]])
def test_dash_h_is_help_and_help_is_plain(command: list[str]) -> None:
    long = runner.invoke(app, [*command, "--help"], color=True)
    short = runner.invoke(app, [*command, "-h"], color=True)
    assert long.exit_code == short.exit_code == 0
    assert short.stdout == long.stdout and "Usage: " in long.stdout
    assert "\x1b" not in long.stdout and "╭" not in long.stdout


def test_help_names_arguments_and_formats_plainly() -> None:
    image = runner.invoke(app, ["image", "--help"]).stdout
    assert image.splitlines()[0] == "Usage: root image [OPTIONS] REF..."
    assert "-f, --format <table|json>" in image
    which = runner.invoke(app, ["which", "--help"]).stdout
    assert which.splitlines()[0] == "Usage: root which [OPTIONS] NAME|ID|PATH"
    assert "{" not in which


def test_no_command_prints_the_help(tmp_path: Path) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Usage: root [OPTIONS] COMMAND [ARGS]...")


def test_a_dir_that_is_not_a_docker_root(tmp_path: Path) -> None:
    (tmp_path / "containerd").mkdir()  # as /etc has
    (tmp_path / "buildkit").mkdir()
    result = runner.invoke(app, ["report", "--root", str(tmp_path)])
    assert result.exit_code == ExitCode.ROOT_UNREADABLE
    assert result.stderr == (
        f"dockerdu: {tmp_path} is not a Docker data root (none of {MARKERS} is there); "
        "pass --root with the right path.\n"
    )


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp dir any user can enter (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="dockerdu-ux-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _as_nobody(args: list[str]) -> tuple[int, str, str]:
    # The commands import their modules when they run; nobody may not read this Python's
    # site-packages (psutil, humanize), so every module a command may need is loaded first.
    for module in ("audit", "imageinfo", "which", "scan", "progress", "render.table", "render.image"):
        importlib.import_module(f"dockerdu.{module}")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody with everything already imported, then run the CLI
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = runner.invoke(app, args)
            os.write(write_end, json.dumps([result.exit_code, result.stdout, result.stderr]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as f:
        code, out, err = json.load(f)
    return code, out, err


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root to drop to nobody")
def test_a_root_docker_made_0710_as_a_user(shared_tmp: Path) -> None:
    builder = RootBuilder(shared_tmp / "docker")
    root = _root(builder)
    root.chmod(0o710)  # as dockerd makes /var/lib/docker: others may not even enter it
    for command in (["report"], ["orphans"], ["which", "web"], ["image", "base:1"], ["audit", "--history",
                    str(shared_tmp / "h")]):  # fmt: skip
        code, out, err = _as_nobody([*command, "--root", str(root)])
        assert (code, out) == (ExitCode.ROOT_UNREADABLE, ""), command
        assert (
            err == f"dockerdu: {root} cannot be read by this user; run dockerdu as root (e.g. with sudo).\n"
        )


def test_orphans_prints_orphans_and_problems_only(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    doc = json.loads(runner.invoke(app, ["orphans", "--root", str(root), "-f", "json"]).stdout)
    assert list(doc) == ["schema", "tool", "root", "root_source", "store", "driver", "generated_at",
                         "version", "orphans", "problems", "incomplete", "notes"]  # fmt: skip
    assert doc["schema"] == "dockerdu.orphans/1"
    assert [o["kind"] for o in doc["orphans"]] == ["layer_dir_unreferenced"]
    rows = list(
        csv.DictReader(io.StringIO(runner.invoke(app, ["orphans", "--root", str(root), "-f", "csv"]).stdout))
    )
    assert [r["kind"] for r in rows] == ["orphan"]
    prom = runner.invoke(app, ["orphans", "--root", str(root), "-f", "prometheus"]).stdout
    families = [line.split()[2] for line in prom.splitlines() if line.startswith("# TYPE")]
    assert families == [
        "dockerdu_info",
        "dockerdu_report_timestamp_seconds",
        "dockerdu_daemon_running",
        "dockerdu_orphans",
        "dockerdu_orphans_disk_bytes",
    ]  # fmt: skip (no problems)
    out = tmp_path / "orphans.json"
    written = runner.invoke(app, ["orphans", "--root", str(root), "-f", "json", "-o", str(out)])
    assert (written.exit_code, written.stdout) == (0, "")
    assert json.loads(out.read_text())["orphans"] == doc["orphans"]


def test_output_into_a_missing_dir_is_refused(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    target = tmp_path / "no" / "such" / "report.json"
    for command in (["report"], ["orphans"]):
        result = runner.invoke(app, [*command, "--root", str(root), "-f", "json", "-o", str(target)])
        assert (result.exit_code, result.stdout) == (ExitCode.USAGE, "")
        assert result.stderr == (
            f"dockerdu: --output: cannot write {target}: {target.parent} is not a directory "
            "(dockerdu makes no dirs)\n"
        )
    assert not (tmp_path / "no").exists()


def test_since_with_no_history_names_it_and_the_audit(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    history = tmp_path / "history.jsonl"
    result = runner.invoke(app, ["report", "--root", str(root), "--since", "--history", str(history)])
    assert result.exit_code == 0
    assert result.stderr == (
        f"dockerdu: no previous audit of {root} in {history}; `dockerdu audit` records one "
        "(run it from cron or a timer)\n"
    )
    runner.invoke(app, ["audit", "--root", str(root), "--history", str(history)], catch_exceptions=False)
    grown = runner.invoke(app, ["report", "--root", str(root), "--since", "--history", str(history)])
    assert "Growth since the previous audit" in grown.stdout
    assert "image content" not in grown.stdout  # a graphdriver root has none


def test_engine_id_is_the_id_or_null(tmp_path: Path) -> None:
    for engine_id, expected in ((True, "f1c2e8d4-test"), (False, None)):
        b = RootBuilder(tmp_path / str(engine_id), engine_id=engine_id)
        doc = json.loads(runner.invoke(app, ["report", "--root", str(b.root), "-f", "json"]).stdout)
        assert doc["docker"]["engine_id"] == expected


def test_a_breach_names_the_config_file_its_limit_came_from(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    config = tmp_path / "dockerdu.toml"
    config.write_text('[audit]\nmax-orphans = "1"\n')
    args = ["audit", "--root", str(root), "--history", str(tmp_path / "h.jsonl"), "--config", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.THRESHOLD_EXCEEDED
    [line] = result.stdout.splitlines()
    assert line.startswith("breach: orphans (1): ") and line.endswith(f" (limit max-orphans from {config})")
    given = runner.invoke(app, [*args, "--max-orphans", "1"])
    assert "from" not in given.stdout.splitlines()[0].split("over")[1]


def test_two_dockerds_are_both_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dockerdu import locate

    daemons = [locate.Daemon(100, tmp_path / "a"), locate.Daemon(200, tmp_path / "b")]
    monkeypatch.setattr(locate, "running_daemons", lambda: daemons)
    found = locate.locate(None)
    other = tmp_path / "b"
    assert (
        found.source
        == f"running dockerd, pid 100; another dockerd runs too: pid 200 on {other}; pass --root to choose"
    )


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root to drop to nobody")
def test_a_partly_unreadable_root_flags_what_it_could_not_read(shared_tmp: Path) -> None:
    builder = RootBuilder(shared_tmp / "docker")
    root = _root(builder)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    (root / "overlay2").chmod(0o700)  # the layers: nobody cannot list them
    code, out, _ = _as_nobody(["report", "--root", str(root), "-f", "json", "--no-cache"])
    assert code == 0
    doc = json.loads(out)
    web = doc["containers"][0]
    assert web["rw_size"] is None
    assert doc["images"][0]["disk"] is None
    incomplete = set(doc["incomplete"])
    assert {"images", "containers", f"containers:{web['id']}", "reclaimable.images", "reclaimable.containers",
            "orphans"} <= incomplete  # fmt: skip
    code, out, _ = _as_nobody(["report", "--root", str(root), "--no-cache"])
    lines = out.splitlines()
    assert "incomplete   figures marked * come from partial data (see Incomplete figures)" in lines
    assert "Containers (1)*" in lines and "Images (1)*" in lines
    assert any(line.startswith("web  ") and line.split()[5].endswith("*") for line in lines)
