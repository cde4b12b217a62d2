"""The command line: options in, a rendered report out, and the exit code. Nothing else."""

from __future__ import annotations

import enum
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from . import __version__
from .cache import default_cache_dir
from .locate import Location, RootError, check_root, locate
from .progress import progress_for
from .render.json_ import render_json
from .render.table import render_orphans_table, render_table
from .report import Report
from .scan import Options, build_report, index_root
from .which import which as which_query


class ExitCode(enum.IntEnum):
    """dockerdu's exit codes; 2 is Click's own for usage errors."""

    OK = 0
    THRESHOLD_EXCEEDED = 1
    USAGE = 2
    ROOT_UNREADABLE = 3
    INTERNAL_ERROR = 4


class OutputFormat(str, enum.Enum):
    """What `--format` accepts."""

    table = "table"
    json = "json"


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Where the disk under Docker's data root went, and what can safely go.",
)

RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Docker data root. Default: a running dockerd's --data-root, else data-root "
        "in /etc/docker/daemon.json, else /var/lib/docker.",
        show_default=False,
    ),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")]
QuickOption = Annotated[
    bool,
    typer.Option("--quick", help="Image figures from Docker's metadata alone: image layers are not walked."),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where to remember image-layer walks "
        "(default /var/cache/dockerdu as root, else the XDG cache dir).",
        show_default=False,
    ),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Walk every layer afresh; read and write no cache.")
]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Walker processes (0: one per core).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dockerdu {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Where the disk under Docker's data root went, and what can safely go."""


def _fail(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"dockerdu: {message}", err=True)
    raise typer.Exit(int(code))


def _run(debug: bool, work: Callable[[], ExitCode]) -> None:
    try:
        code = work()
    except RootError as e:
        _fail(str(e), ExitCode.ROOT_UNREADABLE)
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - the one place a bug becomes a message
        if debug:
            traceback.print_exc()
        _fail(
            f"internal error: {type(e).__name__}: {e} (run again with --debug for a bug report)",
            ExitCode.INTERNAL_ERROR,
        )
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def _located(root: Path | None) -> Location:
    location = locate(root)
    check_root(location.root)
    return location


def _options(quick: bool, cache_dir: Path | None, no_cache: bool, jobs: int, quiet: bool) -> Options:
    return Options(
        quick=quick,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        jobs=jobs,
        progress=None if quiet else progress_for(sys.stderr),
    )


def _emit(report: Report, fmt: OutputFormat, table: Callable[[Report], str]) -> None:
    sys.stdout.write(render_json(report) if fmt is OutputFormat.json else table(report))


@app.command()
def report(
    root: RootOption = None,
    fmt: FormatOption = OutputFormat.table,
    quick: QuickOption = False,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Account for every byte under the root: images, containers, logs, volumes, build cache, orphans."""

    def work() -> ExitCode:
        options = _options(quick, cache_dir, no_cache, jobs, quiet)
        _emit(build_report(_located(root), options), fmt, render_table)
        return ExitCode.OK

    _run(debug, work)


@app.command()
def orphans(
    root: RootOption = None,
    fmt: FormatOption = OutputFormat.table,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Only the orphans (reclaimable leftovers) and problems (inconsistencies)."""

    def work() -> ExitCode:
        options = _options(False, cache_dir, no_cache, jobs, quiet)
        _emit(build_report(_located(root), options), fmt, render_orphans_table)
        return ExitCode.OK

    _run(debug, work)


@app.command()
def which(
    query: Annotated[
        str,
        typer.Argument(
            help="An image, chain, diff, cache, mount or container ID (or prefix), a short link, or a path."
        ),
    ],
    root: RootOption = None,
    debug: DebugOption = False,
) -> None:
    """Who owns an overlay2 dir, a short link, an ID or a path under the root."""

    def work() -> ExitCode:
        location = _located(root)
        answers = which_query(index_root(location, Options(), time.time()), location.root, query)
        if not answers:
            _fail(f"nothing under {location.root} matches {query!r}", ExitCode.THRESHOLD_EXCEEDED)
        for line in answers:
            typer.echo(line)
        return ExitCode.OK

    _run(debug, work)


def main() -> None:
    """Console-script entry point."""
    app()
