"""`dockerdu audit`: thresholds and exit codes, history and growth, config, lock, timeout, no terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from dockerdu import history
from dockerdu.cli import ExitCode, app
from dockerdu.thresholds import parse_size
from dockerdu.units import human
from tests.conftest import du
from tests.rootbuilder import RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 100_000}
BIG_LOG = 200_000
SMALL_LOG = 100


@pytest.fixture
def root(builder: RootBuilder) -> Path:
    """An image, two exited containers (one with a big log), a volume, an orphan dir."""
    image = builder.add_image([BASE], ["base:1"])
    top = builder.image_chain([BASE])[-1]
    builder.add_container(image, top, "chatty", {"f": b"f" * 10}, volumes=("data",), log=b"l" * BIG_LOG)
    builder.add_container(image, top, "quiet", log=b"q" * SMALL_LOG)
    builder.add_volume("data", {"db": b"d" * 50_000})
    builder.layer_dir({"left": b"l" * 40_000}, [])
    return builder.root


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    (d / "empty.toml").write_text("")
    return d


def audit(root: Path, work: Path, *args: str) -> Result:
    """`dockerdu audit` on `root`, with its history and an empty config file under `work`."""
    return runner.invoke(
        app,
        [
            "audit",
            "--root",
            str(root),
            "--history",
            str(work / "history.jsonl"),
            "--config",
            str(work / "empty.toml"),
            "--no-cache",
            *args,
        ],
    )


def audit_json(root: Path, work: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    """An audit that also prints the JSON report (its lines then go to stderr)."""
    result = audit(root, work, "--format", "json", *args)
    return result, json.loads(result.stdout)


def test_no_breach_prints_nothing(root: Path, work: Path) -> None:
    first = audit(root, work)
    assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
    generous = audit(
        root,
        work,
        "--max-fs-used-percent",
        "100",
        "--max-orphans",
        "10G",
        "--max-log",
        "1G",
        "--max-reclaimable",
        "10G",
        "--max-growth",
        "1G",
    )
    assert (generous.exit_code, generous.stdout, generous.stderr) == (ExitCode.OK, "", "")
    assert len(history.entries(work / "history.jsonl")) == 2


def _figures(doc: dict[str, Any]) -> dict[str, int | float]:
    chatty = next(c for c in doc["containers"] if c["name"] == "chatty")
    return {
        "max-fs-used-percent": doc["filesystem"]["percent"],
        "max-orphans": doc["totals"]["orphans"],
        "max-log": chatty["log_disk"],
        "max-reclaimable": doc["totals"]["reclaimable"],
    }


@pytest.mark.parametrize("option", ["max-orphans", "max-log", "max-reclaimable"])
def test_each_size_threshold(root: Path, work: Path, option: str) -> None:
    _, doc = audit_json(root, work)
    value = int(_figures(doc)[option])
    assert value > 1000
    held = audit(root, work, f"--{option}", str(value))  # equal: not over
    assert (held.exit_code, held.stdout) == (ExitCode.OK, "")
    over = audit(root, work, f"--{option}", f"{value - 1000}B")
    assert over.exit_code == ExitCode.THRESHOLD_EXCEEDED
    lines = over.stdout.splitlines()
    assert len(lines) == 1, lines  # one breach: the quiet container's log is far below
    assert f"--{option} {human(value - 1000)} by {human(1000)}" in lines[0]
    assert lines[0].startswith("breach: ")
    if option == "max-log":
        assert "logs of container chatty" in lines[0]


def test_fs_used_percent_threshold(root: Path, work: Path) -> None:
    _, doc = audit_json(root, work)
    percent = doc["filesystem"]["percent"]
    held = audit(root, work, "--max-fs-used-percent", "100")
    assert (held.exit_code, held.stdout) == (ExitCode.OK, "")
    if percent < 1:
        pytest.skip("the file system under the test's temp dir is almost empty")
    over = audit(root, work, "--max-fs-used-percent", "0.5")
    assert over.exit_code == ExitCode.THRESHOLD_EXCEEDED
    (line,) = over.stdout.splitlines()
    assert f"file system of {root}" in line and "--max-fs-used-percent 0.5%" in line and "points" in line


def test_log_threshold_names_every_container_over_it(root: Path, work: Path) -> None:
    result = audit(root, work, "--max-log", "1B")
    assert result.exit_code == ExitCode.THRESHOLD_EXCEEDED
    lines = result.stdout.splitlines()
    assert [line.split("logs of container ")[1].split(":")[0] for line in lines] == ["chatty", "quiet"]


def test_growth_across_two_runs(root: Path, work: Path, builder: RootBuilder) -> None:
    first, before = audit_json(root, work)
    assert first.exit_code == ExitCode.OK
    # The root changes: a volume gets a file, a new orphan dir appears, a log grows.
    (root / "volumes" / "data" / "_data" / "new-table").write_bytes(b"t" * 300_000)
    orphan, _ = builder.layer_dir({"junk": b"j" * 120_000}, [])
    chatty = next(c for c in before["containers"] if c["name"] == "chatty")
    with open(root / "containers" / chatty["id"] / f"{chatty['id']}-json.log", "ab") as f:
        f.write(b"x" * 64_000)

    second, after = audit_json(root, work, "--max-growth", "100K")
    assert second.exit_code == ExitCode.THRESHOLD_EXCEEDED
    growth = after["growth"]
    assert growth["since"] == before["generated_at"]
    for name, figures in growth["categories"].items():
        assert figures == {
            "before": before["totals"][name],
            "after": after["totals"][name],
            "change": after["totals"][name] - before["totals"][name],
        }
    assert (
        growth["total"]
        == after["totals"]["root_disk"] - before["totals"]["root_disk"]
        == du(root) - (before["totals"]["root_disk"])
    )
    assert growth["categories"]["volumes"]["change"] >= 300_000
    assert growth["categories"]["orphans"]["change"] >= 120_000
    grew = {(g["kind"], g["name"]): g for g in growth["grew"]}
    volume = grew["volume", "data"]
    vol_before = next(v for v in before["volumes"] if v["name"] == "data")["disk"]
    vol_after = next(v for v in after["volumes"] if v["name"] == "data")["disk"]
    assert (volume["before"], volume["after"], volume["change"]) == (
        vol_before,
        vol_after,
        vol_after - vol_before,
    )
    new_orphan = grew["orphan", "layer_dir_unreferenced"]
    assert new_orphan["id"] == f"overlay2/{orphan}" and new_orphan["new"] and new_orphan["before"] == 0
    assert grew["container", "chatty"]["change"] >= 64_000
    assert [g["change"] for g in growth["grew"]] == sorted(
        (g["change"] for g in growth["grew"]), reverse=True
    )
    # The breach line says by how much, and who grew most.
    (line,) = second.stderr.splitlines()  # the JSON went to stdout, the line to stderr
    limit = parse_size("100K")
    assert line.startswith(f"breach: growth since {before['generated_at']}: {human(growth['total'])}, ")
    assert f"over --max-growth {human(limit)} by {human(growth['total'] - limit)}" in line
    assert "grew most: volume data +" in line

    # report --since shows the same growth without recording anything.
    since = runner.invoke(
        app,
        ["report", "--root", str(root), "--since", "--history", str(work / "history.jsonl"), "--no-cache"],
    )
    assert since.exit_code == ExitCode.OK
    assert f"Growth since the previous audit ({after['generated_at']}" in since.stdout
    assert "Grew most: nothing grew" in since.stdout  # against the second audit
    assert len(history.entries(work / "history.jsonl")) == 2


def test_report_since_json_and_prometheus(root: Path, work: Path) -> None:
    audit(root, work)
    (root / "volumes" / "data" / "_data" / "more").write_bytes(b"m" * 100_000)
    hist = str(work / "history.jsonl")
    doc = json.loads(
        runner.invoke(app, ["report", "--root", str(root), "-f", "json", "--since", "--history", hist]).stdout
    )
    assert doc["growth"]["categories"]["volumes"]["change"] >= 100_000
    assert doc["growth"]["grew"][0]["name"] == "data"
    prom = runner.invoke(
        app, ["report", "--root", str(root), "-f", "prometheus", "--since", "--history", hist]
    )
    line = next(
        x for x in prom.stdout.splitlines() if x.startswith('dockerdu_growth_bytes{category="volumes"}')
    )
    assert int(line.split()[-1]) == doc["growth"]["categories"]["volumes"]["change"]
    none = runner.invoke(
        app, ["report", "--root", str(root), "--since", "--history", str(work / "nothing.jsonl")]
    )
    assert none.exit_code == ExitCode.OK and "no previous audit" in none.stderr


def test_first_audit_does_not_breach_growth(root: Path, work: Path) -> None:
    result = audit(root, work, "--max-growth", "0", "--verbose")
    assert result.exit_code == ExitCode.OK
    assert "ok: growth not checked: no previous audit of this root" in result.stdout
    assert "no previous audit of" in result.stdout


def test_verbose_lists_checks_growth_and_history(root: Path, work: Path) -> None:
    audit(root, work)
    (root / "volumes" / "data" / "_data" / "grown").write_bytes(b"g" * 100_000)
    result = audit(root, work, "-v", "--max-orphans", "10G", "--max-log", "1K")
    assert result.exit_code == ExitCode.THRESHOLD_EXCEEDED
    out = result.stdout
    assert out.startswith(f"root {root} (--root): ")
    assert "ok: orphans (1): " in out and "breach: logs of container chatty" in out
    assert "Growth since the previous audit" in out and "Grew most" in out and "volume" in out
    assert f"history: {work / 'history.jsonl'} (last 400 audits kept)" in out


def test_history_is_compact_bounded_and_atomic(root: Path, work: Path) -> None:
    path = work / "history.jsonl"
    path.write_text('not json\n{"schema": "someone-else/1"}\n')
    sizes = []
    for i in range(4):
        (root / "volumes" / "data" / "_data" / f"f{i}").write_bytes(b"z" * 10_000)
        _, doc = audit_json(root, work, "--history-keep", "3")
        sizes.append(doc["totals"]["root_disk"])
    lines = path.read_text().splitlines()
    assert len(lines) == 3  # bounded; the garbage line is dropped, the foreign line aged out
    docs = [json.loads(line) for line in lines]
    assert [d["totals"]["root_disk"] for d in docs] == sizes[-3:]
    for d in docs:
        assert d["schema"] == "dockerdu.history/1" and d["root"] == str(root)
        assert set(d["top"]) == {"images", "containers", "volumes", "orphans"}
        assert d["top"]["volumes"][0]["name"] == "data"
        assert d["counts"] == {"images": 1, "containers": 2, "volumes": 1, "orphans": 1}
    assert sorted(os.listdir(work)) == ["empty.toml", "history.jsonl", "history.jsonl.lock"]  # no temp file


def test_history_of_another_root_is_not_compared(root: Path, work: Path, tmp_path: Path) -> None:
    other = RootBuilder(tmp_path / "other-root")
    other.add_volume("v", {"a": b"a" * 1000})
    audit(other.root, work)
    result = audit(root, work, "--max-growth", "0", "-v")
    assert result.exit_code == ExitCode.OK
    assert "growth not checked" in result.stdout
    assert [e.root for e in history.entries(work / "history.jsonl")] == [str(other.root), str(root)]


def test_config_file(root: Path, work: Path) -> None:
    config = work / "dockerdu.toml"
    hist = work / "from-config.jsonl"
    config.write_text(
        f'[audit]\nmax-orphans = "1K"\nmax-log = 1_000_000_000\nhistory = "{hist}"\nhistory-keep = 5\n'
    )
    base = ["audit", "--root", str(root), "--config", str(config), "--no-cache"]
    breached = runner.invoke(app, base)
    assert breached.exit_code == ExitCode.THRESHOLD_EXCEEDED
    assert "--max-orphans 1.0 KiB" in breached.stdout
    assert len(history.entries(hist)) == 1  # history path from the config
    overridden = runner.invoke(app, [*base, "--max-orphans", "1G"])  # the command line wins
    assert (overridden.exit_code, overridden.stdout) == (ExitCode.OK, "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[audit]\nmax-orphanz = 1\n", "unknown key 'max-orphanz'"),
        ('[audit]\nmax-log = "ten"\n', "max-log in"),
        ("[audit]\nmax-fs-used-percent = 120\n", "percentage"),
        ("[audit]\nhistory-keep = 0\n", "at least 1"),
        ("[audit]\ntimeout = -1\n", "above 0"),
        ("[report]\nx = 1\n", "unknown table or key 'report'"),
        ("[audit\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_usage_error(root: Path, work: Path, text: str, message: str) -> None:
    (work / "bad.toml").write_text(text)
    result = runner.invoke(app, ["audit", "--root", str(root), "--config", str(work / "bad.toml")])
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
    assert not (work / "history.jsonl").exists()


def test_usage_errors(root: Path, work: Path) -> None:
    assert audit(root, work, "--max-orphans", "ten").exit_code == ExitCode.USAGE
    assert audit(root, work, "--max-fs-used-percent", "101").exit_code == ExitCode.USAGE
    assert audit(root, work, "--history-keep", "0").exit_code == ExitCode.USAGE
    no_format = audit(root, work, "--output", str(work / "x.prom"))
    assert no_format.exit_code == ExitCode.USAGE and "--output needs --format" in no_format.stderr
    missing = runner.invoke(app, ["audit", "--root", str(root), "--config", str(work / "nope.toml")])
    assert missing.exit_code == ExitCode.USAGE and "does not exist" in missing.stderr
    blocker = work / "file"
    blocker.write_text("")
    unwritable = runner.invoke(
        app, ["audit", "--root", str(root), "--config", str(work / "empty.toml"), "--history", f"{blocker}/h"]
    )
    assert unwritable.exit_code == ExitCode.USAGE and "cannot create" in unwritable.stderr


def test_root_unreadable(work: Path, tmp_path: Path) -> None:
    result = audit(tmp_path / "missing", work)
    assert result.exit_code == ExitCode.ROOT_UNREADABLE and "does not exist" in result.stderr
    assert not (work / "history.jsonl").exists()


@pytest.fixture
def held_lock(work: Path) -> Iterator[int]:
    """The audit lock, held by this test as another audit would hold it."""
    fd = os.open(work / "history.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242\n")
    try:
        yield fd
    finally:
        os.close(fd)


def test_lock_contention(root: Path, work: Path, held_lock: int) -> None:
    result = audit(root, work, "--max-orphans", "1B")
    assert result.exit_code == ExitCode.AUDIT_RUNNING
    assert int(ExitCode.AUDIT_RUNNING) == 5
    assert result.stdout == ""
    lock = work / "history.jsonl.lock"
    assert result.stderr == (
        f"dockerdu: another dockerdu audit is running (lock {lock} is held by pid 4242); "
        "not starting a second one\n"
    )
    assert not (work / "history.jsonl").exists()
    fcntl.flock(held_lock, fcntl.LOCK_UN)
    assert audit(root, work).exit_code == ExitCode.OK  # released: the next audit runs
    assert len(history.entries(work / "history.jsonl")) == 1


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE")}
    env.update(TERM="xterm-256color", **extra)
    env.pop("TTY_COMPATIBLE", None)
    return env


def _cli(root: Path, work: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "dockerdu", "audit", "--root", str(root),
        "--history", str(work / "history.jsonl"), "--config", str(work / "empty.toml"), "--no-cache", *args,
    ]  # fmt: skip


def test_timeout(builder: RootBuilder, work: Path) -> None:
    builder.add_volume("many", {f"d{i // 100}/f{i}": b"x" for i in range(5000)})
    result = subprocess.run(
        _cli(builder.root, work, "--timeout", "0.001", "--jobs", "1"),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert result.returncode == ExitCode.ROOT_UNREADABLE
    assert result.stderr == (
        f"dockerdu: the scan of {builder.root} did not finish within 0.001 s (--timeout); "
        "nothing was recorded\n"
    )
    assert not (work / "history.jsonl").exists()
    ok = subprocess.run(
        _cli(builder.root, work, "--timeout", "600"), capture_output=True, text=True, env=_env()
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")


def test_timeout_ends_walker_processes(builder: RootBuilder, work: Path) -> None:
    """Walker processes that outlast the timeout are killed: none outlives the audit."""
    for v in range(12):  # enough volume dirs for a pool of walkers
        builder.add_volume(f"v{v}", {f"f{i}": b"x" for i in range(20)})
    marker = str(work / "history.jsonl")
    args = ["dockerdu", *_cli(builder.root, work, "--timeout", "0.5", "--jobs", "2")[3:]]
    # Each walker task takes 2 s (12 tasks, 2 walkers: 12 s), so the timeout strikes while
    # the walkers run, and their pool would wait for all of them without the grace kill.
    code = f"""
import sys, time
import dockerdu.audit, dockerdu.measure
walk = dockerdu.measure._run_task
def slow(*a, **k):
    time.sleep(2)
    return walk(*a, **k)
dockerdu.measure._run_task = slow
dockerdu.audit.GRACE = 0.3
sys.argv = {args!r}
from dockerdu.cli import main
main()
"""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert time.monotonic() - started < 4  # neither the queued tasks nor a grace period are waited for
    assert result.returncode == ExitCode.ROOT_UNREADABLE, result.stderr
    assert result.stderr.endswith("did not finish within 0.5 s (--timeout); nothing was recorded\n")
    assert not (work / "history.jsonl").exists()
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert left == []


def test_no_terminal_no_escape_codes(root: Path, work: Path) -> None:
    """Under cron: stdout and stderr are pipes; nothing may carry colour or a progress line."""
    runs = [
        _cli(root, work, "--max-orphans", "1B", "--max-log", "1B", "-v", "--format", "table"),
        _cli(root, work, "--max-orphans", "ten"),  # a usage error, which Typer would colour on a terminal
        [sys.executable, "-m", "dockerdu", "report", "--root", str(root), "--no-cache"],
    ]
    for args in runs:
        out = subprocess.run(args, capture_output=True, env=_env())
        assert b"\x1b" not in out.stdout and b"\x1b" not in out.stderr, args
        assert b"\r" not in out.stderr
    breach = subprocess.run(
        _cli(root, work, "--max-orphans", "1B"), capture_output=True, text=True, env=_env()
    )
    assert breach.returncode == ExitCode.THRESHOLD_EXCEEDED
    assert breach.stdout.startswith("breach: orphans (1): ") and breach.stderr == ""


def _on_pty(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(timeout=60), out


def test_no_color_on_a_terminal(root: Path, work: Path) -> None:
    """On a terminal, NO_COLOR turns off Typer's styled help and errors; the audit never styles."""
    code, out = _on_pty(_cli(root, work, "--max-orphans", "ten"), _env(NO_COLOR="1"))
    assert code == ExitCode.USAGE and b"not a size" in out and b"\x1b" not in out
    code, out = _on_pty(_cli(root, work, "--max-orphans", "1B", "-v"), _env())
    assert code == ExitCode.THRESHOLD_EXCEEDED and b"breach: orphans" in out
    assert b"\x1b" not in out  # no colour and no progress line, even on a terminal


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10G", 10 * 2**30),
        ("10g", 10 * 2**30),
        ("500MiB", 500 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1.5GB", 1_500_000_000),
        ("1kB", 1000),
        ("1K", 1024),
        (".5K", 512),
        ("4096", 4096),
        ("4096B", 4096),
        (" 10 GiB ", 10 * 2**30),
        ("1.0 KiB", 1024),
        ("512 Bytes", 512),
        ("1 Byte", 1),
        ("0", 0),
        ("1T", 2**40),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "G", "10X", "-1G", "1.2.3", "10i", "ten", "1e3", "1kbytes", "1_000", "nan"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=2**60))
def test_parse_size_reads_what_dockerdu_prints(n: int) -> None:
    # human() prints one decimal: the reading is within 0.05 of a unit of the figure.
    back = parse_size(human(n))
    assert abs(back - n) <= n * 0.05 + 1


def test_default_history_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert history.default_path() == Path("/var/lib/dockerdu/history.jsonl")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert history.default_path() == tmp_path / "xdg" / "dockerdu" / "history.jsonl"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert history.default_path() == tmp_path / "home" / ".local" / "share" / "dockerdu" / "history.jsonl"


def test_audit_prometheus_output_for_node_exporter(root: Path, work: Path) -> None:
    textfile = work / "textfile"
    textfile.mkdir()
    prom = textfile / "dockerdu.prom"
    first = audit(root, work, "--format", "prometheus", "--output", str(prom), "--max-orphans", "1B")
    assert first.exit_code == ExitCode.THRESHOLD_EXCEEDED
    assert first.stdout.startswith("breach: orphans")  # the report went to the file, the line to stdout
    assert os.listdir(textfile) == ["dockerdu.prom"]
    assert "dockerdu_root_disk_bytes " in prom.read_text()
    assert "dockerdu_growth_bytes" not in prom.read_text()  # first audit: nothing to compare
    audit(root, work, "--format", "prometheus", "--output", str(prom))
    assert 'dockerdu_growth_bytes{category="root_disk"} 0' in prom.read_text()


def test_progress_line_on_a_terminal_only(root: Path, work: Path) -> None:
    """`report` on a terminal draws files and bytes walked on stderr, then erases the line."""
    args = [sys.executable, "-m", "dockerdu", "report", "--root", str(root), "--no-cache", "--format", "json"]
    code, out = _on_pty(args, _env())
    assert code == ExitCode.OK
    text = out.decode()
    assert re.search(r"\r\x1b\[Kdockerdu: [\d,]+ files, [\d.]+ (KiB|MiB) walked", text), text[:300]
    assert text[: text.index("{")].endswith("\r\x1b[K")  # erased before the report starts
    report = json.loads(text[text.index("{") :].replace("\r\n", "\n"))
    assert report["totals"]["root_disk"] > 0
    code, out = _on_pty([*args, "--quiet"], _env())
    assert code == ExitCode.OK and b"walked" not in out
    piped = subprocess.run(args, capture_output=True, env=_env(), check=True)
    assert piped.stderr == b""
