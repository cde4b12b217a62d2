"""The command line as documented: every command, option and format in `--help` works and is in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from dockerdu.cli import ExitCode, app

README = (Path(__file__).parent.parent / "README.md").read_text()
SAMPLE = Path(__file__).parent.parent / "sample_root"
# typer's Click objects, read through their public attributes (opts, type.choices, param_type_name).
COMMANDS: dict[str, Any] = dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# The positional arguments each command needs, on sample_root.
ARGUMENTS = {"which": ["dd-app:1"], "image": ["dd-app:1"]}


def _format_choices(command: Any) -> tuple[str, ...]:
    for param in command.params:
        if "--format" in param.opts:
            return tuple(str(c) for c in param.type.choices)
    return ()


def _options(command: Any) -> set[str]:
    return {o for p in command.params if p.param_type_name == "option" for o in p.opts if o.startswith("--")}


CASES = [(name, fmt) for name, command in COMMANDS.items() for fmt in _format_choices(command) or ("",)]


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}-{f or 'default'}" for n, f in CASES])
def test_every_command_in_every_format_it_offers(name: str, fmt: str, tmp_path: Path) -> None:
    """A format that `--help` offers works: exit 0 (audit: 0 or 1), output, nothing on stderr but breaches."""
    command = COMMANDS[name]
    args = [name, *ARGUMENTS.get(name, []), "--root", str(SAMPLE)]
    if fmt:
        args += ["--format", fmt]
    out = tmp_path / "out"
    options = _options(command)
    if "--output" in options:
        args += ["--output", str(out)]
    if "--history" in options:
        args += ["--history", str(tmp_path / "history.jsonl")]
    if "--no-cache" in options:
        args.append("--no-cache")
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    allowed = {ExitCode.OK, ExitCode.THRESHOLD_EXCEEDED} if name == "audit" else {ExitCode.OK}
    assert result.exit_code in allowed, (args, result.output)
    assert "Traceback" not in result.output
    text = out.read_text() if out.exists() else result.stdout
    assert text.strip(), args
    if fmt == "json":
        assert json.loads(text)["tool"] == "dockerdu"


def test_readme_names_every_command_option_and_format() -> None:
    """The README's Commands section and option lists cover what `--help` offers."""
    for name, command in COMMANDS.items():
        assert f"`dockerdu {name}" in README, name
        for option in _options(command) - {"--help"}:
            documented = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", README)
            assert documented, f"{name} {option} is not in the README"
        for fmt in _format_choices(command):
            assert re.search(rf"\b{re.escape(fmt)}\b", README), f"{name} --format {fmt}"


def test_every_command_has_help() -> None:
    for name, command in COMMANDS.items():
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help or command.short_help, name
