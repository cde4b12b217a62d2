"""The entry point: `dockerdu report`'s common command lines run without typer.

Importing typer and building a command from its signature cost a cached report or a
`--quick` one about a fifth of its time. So a `report` whose arguments are all plain
`--option value`, `--option=value` or flags of the command is parsed here, from a table
that the tests prove equal to the typer command's own options, and runs the same code
as `cli.report`; any other command line (help, a mistyped option, a bad value, another
command) goes to typer in cli.py, which gives its usual help and messages.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Busy, HistoryError, InUse, RootError, UsageError
from .model import OutputFormat
from .text import display

if TYPE_CHECKING:
    from .growth import Growth
    from .locate import Location
    from .render.table import Layout
    from .report import Report
    from .scan import Options


class ExitCode(enum.IntEnum):
    """dockerdu's exit codes; 2 is Click's own for usage errors."""

    OK = 0
    THRESHOLD_EXCEEDED = 1
    USAGE = 2
    ROOT_UNREADABLE = 3
    INTERNAL_ERROR = 4
    AUDIT_RUNNING = 5
    """audit: another audit holds the lock beside the history file."""
    ROOT_IN_USE = 6
    """prune: a dockerd or containerd runs on the root, or a process holds files or mounts under it."""


def echo_error(message: str) -> None:
    """`dockerdu: <message>` on stderr, one line whatever the message holds (newlines, escapes)."""
    sys.stderr.write(f"dockerdu: {display(message)}\n")
    sys.stderr.flush()


def run_work(
    debug: bool, work: Callable[[], ExitCode], passthrough: tuple[type[BaseException], ...] = ()
) -> int:
    """Run a command's `work`: its exit code, or the code of the error it raised, whose
    message is printed first; `passthrough` (typer's Exit and Abort) is raised on."""
    try:
        return int(work())
    except RootError as e:
        echo_error(str(e))
        return ExitCode.ROOT_UNREADABLE
    except (UsageError, HistoryError) as e:
        echo_error(str(e))
        return ExitCode.USAGE
    except Busy as e:
        echo_error(str(e))
        return ExitCode.AUDIT_RUNNING
    except InUse as e:
        echo_error(str(e))
        return ExitCode.ROOT_IN_USE
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - the one place a bug becomes a message
        if isinstance(e, passthrough):
            raise
        if debug:
            import traceback

            traceback.print_exc()
        echo_error(f"internal error: {type(e).__name__}: {e} (run again with --debug for a bug report)")
        return ExitCode.INTERNAL_ERROR


def located(root: Path | None) -> Location:
    from .locate import check_root, locate

    location = locate(root)
    check_root(location.root)
    return location


def scan_options(
    quick: bool,
    cache_dir: Path | None,
    no_cache: bool,
    jobs: int,
    quiet: bool,
    containerd_root: Path | None = None,
) -> Options:
    from .cache import default_cache_dir
    from .scan import Options

    progress = None
    if not quiet:  # imported only then: it brings humanize
        from .progress import progress_for

        progress = progress_for(sys.stderr)
    return Options(
        quick=quick,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        jobs=jobs,
        progress=progress,
        containerd_root=containerd_root,
    )


def table_layout(no_trunc: bool, binary: bool, raw_bytes: bool, quick: bool, output: Path | None) -> Layout:
    """The table's width: none with --no-trunc, else $COLUMNS, else the terminal's, else 80."""
    from .render.table import Layout

    check_units(binary, raw_bytes)
    width: int | None = None
    if not no_trunc:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            width = int(columns)
        elif output is None and sys.stdout.isatty():
            width = os.get_terminal_size(sys.stdout.fileno()).columns or 80
        else:
            width = 80
    return Layout(width, "binary" if binary else "bytes" if raw_bytes else "docker", quick)


def check_units(binary: bool, raw_bytes: bool) -> None:
    if binary and raw_bytes:
        raise UsageError("--binary and --bytes: choose one")


def emit(
    report: Report,
    fmt: OutputFormat,
    growth: Growth | None = None,
    output: Path | None = None,
    *,
    orphans_only: bool = False,
    layout: Layout | None = None,
    history: Path | None = None,
) -> None:
    from .output import render, write_output

    text = render(report, fmt, growth, orphans_only=orphans_only, layout=layout, history=history)
    write_output(text, output)


def history_file(path: Path | None) -> Path:
    from .history import default_path

    return path or default_path()


def report_work(
    root: Path | None = None,
    fmt: OutputFormat = OutputFormat.table,
    quick: bool = False,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    jobs: int = 0,
    quiet: bool = False,
    containerd_root: Path | None = None,
    since: bool = False,
    history: Path | None = None,
    output: Path | None = None,
    no_trunc: bool = False,
    binary: bool = False,
    raw_bytes: bool = False,
) -> ExitCode:
    """`dockerdu report`: the whole report of the root, in format `fmt`."""
    from .scan import build_report

    if since and fmt is OutputFormat.csv:
        raise UsageError("--since has no CSV form (one row per object); use table, json or prometheus")
    # Only the table has a layout: the other formats do not import the table's renderer.
    layout = None
    if fmt is OutputFormat.table:
        layout = table_layout(no_trunc, binary, raw_bytes, quick, output)
    else:
        check_units(binary, raw_bytes)
    options = scan_options(quick, cache_dir, no_cache, jobs, quiet, containerd_root)
    report = build_report(located(root), options)
    growth = None
    if since:
        from .audit import since as growth_since

        growth = growth_since(history, report)
    if since and growth is None:
        where = display(str(history_file(history)))
        sys.stderr.write(
            f"dockerdu: no previous audit of {display(report.root)} in {where}"
            "; `dockerdu audit` records one (run it from cron or a timer)\n"
        )
        sys.stderr.flush()
    emit(report, fmt, growth, output, layout=layout, history=history_file(history) if since else None)
    return ExitCode.OK


# `dockerdu report`'s options: name -> (parameter, kind); kind "flag" takes no value,
# "path" a path, "int" a count of at least 0, "format" one of FORMATS. The tests check
# this table against the typer command in cli.py, which stays the one definition.
REPORT_OPTIONS: dict[str, tuple[str, str]] = {
    "--root": ("root", "path"),
    "--format": ("fmt", "format"),
    "-f": ("fmt", "format"),
    "--quick": ("quick", "flag"),
    "--cache-dir": ("cache_dir", "path"),
    "--no-cache": ("no_cache", "flag"),
    "--jobs": ("jobs", "int"),
    "-j": ("jobs", "int"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
    "--containerd-root": ("containerd_root", "path"),
    "--since": ("since", "flag"),
    "--history": ("history", "path"),
    "--output": ("output", "path"),
    "-o": ("output", "path"),
    "--no-trunc": ("no_trunc", "flag"),
    "--binary": ("binary", "flag"),
    "--bytes": ("raw_bytes", "flag"),
    "--debug": ("debug", "flag"),
}
FORMATS = {f.value: f for f in OutputFormat}


def parse_report(args: list[str]) -> dict[str, Any] | None:
    """The parameters of `dockerdu report ARGS`, or None when typer should parse ARGS.

    Only what typer would read the same way is taken: known options, each value given
    whole (`--opt value` or `--opt=value`), non-empty, not starting with `-`, and valid.
    """
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        spec = REPORT_OPTIONS.get(name)
        if spec is None:
            return None
        param, kind = spec
        if kind == "flag":
            if eq:
                return None
            params[param] = True
            continue
        if not eq:
            if i == len(args):
                return None
            value = args[i]
            i += 1
        if not value or value.startswith("-"):
            return None
        if kind == "path":
            params[param] = Path(value)
        elif kind == "int":
            if not (value.isascii() and value.isdigit()):
                return None
            params[param] = int(value)
        elif value in FORMATS:
            params[param] = FORMATS[value]
        else:
            return None
    return params


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    params = parse_report(args[1:]) if args[:1] == ["report"] else None
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        params = None  # Click's shell-completion request
    if params is None:
        from .cli import main as typer_main

        typer_main()
        return
    debug = params.pop("debug", False)
    try:
        code = run_work(debug, lambda: report_work(**params))
    except KeyboardInterrupt:
        code = 130  # as typer exits on Ctrl-C
    sys.exit(code)
