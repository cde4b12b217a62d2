"""Every error path: one line on stderr naming the path and what to do; --debug adds the traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockerdu import audit, imageinfo, scan
from dockerdu.cli import ExitCode, app
from tests.rootbuilder import RootBuilder

runner = CliRunner()
COMMANDS = (
    ["report"],
    ["report", "-f", "json"],
    ["orphans"],
    ["which", "abc"],
    ["image", "x:1"],
    ["audit", "--history", "HISTORY"],
)


def _args(command: list[str], root: Path, tmp_path: Path) -> list[str]:
    return [a.replace("HISTORY", str(tmp_path / "h.jsonl")) for a in command] + ["--root", str(root)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "missing", "does not exist; pass --root"),
        (lambda p: (p / "file").write_text("x") and p / "file", "is not a directory; pass --root"),
        (lambda p: p, "is not a Docker data root"),
    ],
    ids=["missing", "a file", "not a root"],
)
def test_root_errors_are_one_line(command: list[str], make: object, says: str, tmp_path: Path) -> None:
    root = make(tmp_path)  # type: ignore[operator]
    result = runner.invoke(app, _args(command, root, tmp_path))
    assert result.exit_code == ExitCode.ROOT_UNREADABLE, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockerdu: ") and str(root) in lines[0], lines
    assert says in lines[0]


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError("a bug\nover two lines")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "which"], ids=lambda c: " ".join(c))
def test_internal_error_one_line_then_traceback_with_debug(
    command: list[str], builder: RootBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder.add_image([{"bin/sh": b"x"}], ["x:1"])
    # The commands import these when they run, so they meet the patched ones.
    monkeypatch.setattr(scan, "build_report", _boom)
    monkeypatch.setattr(imageinfo, "image_doc", _boom)
    monkeypatch.setattr(audit, "run_audit", _boom)
    args = _args(command, builder.root, tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.INTERNAL_ERROR
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "internal error: RuntimeError" in lines[0] and "--debug" in lines[0]
    debug = runner.invoke(app, [*args, "--debug"])
    assert debug.exit_code == ExitCode.INTERNAL_ERROR
    assert "Traceback (most recent call last)" in debug.stderr and "RuntimeError: a bug" in debug.stderr
