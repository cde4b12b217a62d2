"""`dockerdu report` parsed without typer: the same options, values and outcome as typer's."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from dockerdu.cli import _app_for, app
from dockerdu.fastcli import FORMATS, REPORT_OPTIONS, parse_report, report_work
from dockerdu.model import OutputFormat
from tests.rootbuilder import RootBuilder

runner = CliRunner()


def _report_command() -> Any:
    return typer.main.get_command(_app_for(["report"])).commands["report"]  # type: ignore[attr-defined]


def _kind(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    name = type(param.type).__name__
    return {"TyperPath": "path", "IntRange": "int", "TyperChoice": "format", "Choice": "format"}[name]


def test_the_table_is_the_typer_commands_options() -> None:
    command = _report_command()
    options = {
        opt: (p.name, _kind(p))
        for p in command.params
        if p.name != "help"
        for opt in [*p.opts, *p.secondary_opts]
    }
    assert REPORT_OPTIONS == options
    jobs = next(p for p in command.params if p.name == "jobs")
    assert (jobs.type.min, jobs.type.max) == (0, None)
    fmt = next(p for p in command.params if p.name == "fmt")
    assert tuple(FORMATS) == tuple(f.value for f in OutputFormat) == tuple(fmt.type.choices)
    assert fmt.type.case_sensitive
    # Every parameter but --debug is report_work's, with typer's default.
    defaults = {p.name: p.default for p in command.params if p.name not in ("help", "debug")}
    defaults["fmt"] = defaults["fmt"].value
    signature = inspect.signature(report_work).parameters
    assert {name: p.default for name, p in signature.items()} == defaults


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--root", "/r/", "-f", "json", "--quick", "--quiet"],
        ["--root=/r", "--format=prometheus", "-j", "3", "--jobs=007", "--no-cache", "-q"],
        ["--cache-dir", "c", "--containerd-root", "/ctr", "--history", "h.jsonl", "-o", "out", "--since"],
        ["--no-trunc", "--binary", "--debug", "-f", "table", "-f", "csv", "--root", "a", "--root", "b"],
        ["--output=x=y", "--bytes", "--format", "html"],
    ],
)
def test_parsed_as_typer_parses(args: list[str]) -> None:
    command = _report_command()
    params = command.make_context("report", list(args)).params
    kinds = dict(REPORT_OPTIONS.values())
    want = {k: Path(v) if kinds[k] == "path" and v is not None else v for k, v in params.items()}
    signature = inspect.signature(report_work).parameters
    got = {**{name: p.default for name, p in signature.items()}, "debug": False, **(parse_report(args) or {})}
    assert parse_report(args) is not None
    assert got == want


@pytest.mark.parametrize(
    "args",
    [
        ["-h"], ["--help"], ["--root"], ["--root", ""], ["--root="], ["--root", "-x"], ["-f", "xml"],
        ["--format", "JSON"], ["-j", "-1"], ["-j", "x"], ["-j", "²"], ["--quick=1"], ["-qf", "json"],
        ["-fjson"], ["extra"], ["--"], ["--roo", "r"], ["--version"], ["--root", "--quick"],
    ],
)  # fmt: skip
def test_everything_else_is_left_to_typer(args: list[str]) -> None:
    assert parse_report(args) is None


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockerdu", *args], capture_output=True, text=True)


def _figures(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    doc.pop("generated_at")
    doc.pop("filesystem")  # its free bytes move with whatever else runs
    return doc


def test_same_report_and_messages_as_through_typer(builder: RootBuilder, tmp_path: Path) -> None:
    files = {"bin/sh": b"x" * 5000}
    image = builder.add_image([files], ["base:1"])
    builder.add_container(image, builder.image_chain([files])[-1], "web", {"f": b"f" * 10})
    root = str(builder.root)
    for args in (["--quick"], ["--no-cache", "-j", "1"], ["--cache-dir", str(tmp_path / "c")]):
        fast = _run("report", "--root", root, "-f", "json", "-q", *args)
        slow = runner.invoke(app, ["report", "--root", root, "-f", "json", "-q", *args])
        assert (fast.returncode, fast.stderr) == (slow.exit_code, slow.stderr) == (0, "")
        assert _figures(fast.stdout) == _figures(slow.stdout)
    for args, code in (
        (["--root", str(tmp_path / "nope")], 3),
        (["--root", root, "--binary", "--bytes"], 2),
        (["--root", root, "--since", "-f", "csv"], 2),
        (["--root", root, "-o", str(tmp_path / "no" / "file")], 2),
    ):
        fast = _run("report", *args)
        slow = runner.invoke(app, ["report", *args])
        assert (fast.returncode, fast.stdout, fast.stderr) == (code, "", slow.stderr)
        assert slow.exit_code == code and fast.stderr.startswith("dockerdu: ")
    # What the table does not read is left to typer, with its own message.
    bad = _run("report", "--root", root, "-f", "xml")
    assert bad.returncode == 2 and bad.stderr.startswith("dockerdu: --format: ")
