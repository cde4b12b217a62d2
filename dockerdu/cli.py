"""The command line: options in, a rendered report out, and the exit code. Nothing else."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import InUse, UsageError
from .fastcli import ExitCode as ExitCode
from .fastcli import emit as _emit
from .fastcli import located as _located
from .fastcli import report_work, run_work
from .fastcli import scan_options as _options
from .fastcli import table_layout as _layout
from .imagedefaults import DEFAULT_OFFENDERS
from .model import ImageFormat, OrphansFormat, OutputFormat, PlanFormat, assert_never
from .text import display

# Each command imports what it needs when it runs: start-up is a large part of a short
# run, and `report` should not pay for the modules of `image` or `audit`. The common
# `report` command lines do not even come here (dockerdu.fastcli).


class _Group(TyperGroup):
    """Usage errors as one plain line, `dockerdu: <what>`, exit 2: never a box, never colour."""

    def main(  # noqa: D102
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        exceptions = _click_exceptions()
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except exceptions.ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `dockerdu` alone: the help, exit 2
                typer.echo(e.ctx.get_help(), err=True)
            else:
                typer.echo(f"dockerdu: {display(_usage_line(e))}", err=True)
            code = e.exit_code
        except typer.Abort:
            typer.echo("dockerdu: aborted", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code or 0)


class _Command(TyperCommand):
    """A command whose usage line names its arguments plainly: `REF...`, not typer's `{REF...}`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # noqa: D102
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


def _click_exceptions() -> Any:
    """Click's exceptions: typer >= 0.26 vendors Click as `typer._click`."""
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # an older typer, over Click itself
        return importlib.import_module("click.exceptions")


def _usage_line(e: Any) -> str:
    """`--max-orphans: '5X' is not a size (…)`, or Click's own sentence with where to look."""
    if isinstance(e, typer.BadParameter) and e.param is not None and type(e).__name__ != "MissingParameter":
        param = e.param
        name = max(param.opts, key=len) if param.opts and param.param_type_name == "option" else None
        return f"{name or param.human_readable_name}: {str(e.message).rstrip('.')}"
    hint = f"; see '{e.ctx.command_path} --help'" if getattr(e, "ctx", None) is not None else ""
    return str(e.format_message()).rstrip(".") + hint


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="Where the disk under Docker's data root went, and what can safely go.",
    # dockerdu never writes colour: plain help and usage errors, without Rich's styles.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        readable=False,
        help="Docker data root. Default: a running dockerd's --data-root, else data-root "
        "in /etc/docker/daemon.json, else /var/lib/docker.",
        show_default=False,
    ),
]
ContainerdRootOption = Annotated[
    Path | None,
    typer.Option(
        "--containerd-root",
        readable=False,
        help="containerd's root holding the images of a containerd-store root (a system containerd's, "
        "e.g. /var/lib/containerd). Default: the running containerd dockerd uses, else a containerd "
        "dir beside the Docker root.",
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
        readable=False,
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
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        readable=False,
        help="Write to FILE atomically (temp file + rename) instead of stdout.",
    ),
]
NoTruncOption = Annotated[
    bool, typer.Option("--no-trunc", help="Table: full IDs, names and paths, lines as wide as they need.")
]
BinaryOption = Annotated[
    bool, typer.Option("--binary", help="Table: sizes in binary units (77.0 MiB), not Docker's (80.7MB).")
]
BytesOption = Annotated[bool, typer.Option("--bytes", help="Table: sizes as raw byte counts.")]
HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        readable=False,
        help="Audit history. Default: /var/lib/dockerdu/history.jsonl as root, "
        "else $XDG_DATA_HOME/dockerdu/history.jsonl.",
        show_default=False,
    ),
]


def _parse_size(text: str) -> int:
    from .thresholds import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _size(name: str, what: str) -> Any:
    return typer.Option(name, parser=_parse_size, metavar="SIZE", help=f"Breach when {what} (10G, 500MiB…).")


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
    # One line, whatever a path or an exception's text holds (newlines, escape codes).
    typer.echo(f"dockerdu: {display(message)}", err=True)
    raise typer.Exit(int(code))


def _run(debug: bool, work: Callable[[], ExitCode]) -> None:
    code = run_work(debug, work, (typer.Exit, typer.Abort))
    if code != ExitCode.OK:
        raise typer.Exit(code)


@app.command()
def report(
    root: RootOption = None,
    fmt: FormatOption = OutputFormat.table,
    quick: QuickOption = False,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    quiet: QuietOption = False,
    containerd_root: ContainerdRootOption = None,
    since: Annotated[
        bool, typer.Option("--since", help="Add the growth since the last audit in the history.")
    ] = False,
    history: HistoryOption = None,
    output: OutputOption = None,
    no_trunc: NoTruncOption = False,
    binary: BinaryOption = False,
    raw_bytes: BytesOption = False,
    debug: DebugOption = False,
) -> None:
    """Account for every byte under the root: images, containers, logs, volumes, build cache, orphans."""

    def work() -> ExitCode:
        return report_work(
            root, fmt, quick, cache_dir, no_cache, jobs, quiet, containerd_root,
            since, history, output, no_trunc, binary, raw_bytes,
        )  # fmt: skip

    _run(debug, work)


@app.command()
def orphans(
    root: RootOption = None,
    fmt: Annotated[
        OrphansFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OrphansFormat.table,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    quiet: QuietOption = False,
    output: OutputOption = None,
    no_trunc: NoTruncOption = False,
    binary: BinaryOption = False,
    raw_bytes: BytesOption = False,
    containerd_root: ContainerdRootOption = None,
    debug: DebugOption = False,
) -> None:
    """Only the orphans (reclaimable leftovers) and problems (inconsistencies), in every format."""

    def work() -> ExitCode:
        from .scan import build_report

        layout = _layout(no_trunc, binary, raw_bytes, False, output)
        options = _options(False, cache_dir, no_cache, jobs, quiet, containerd_root)
        report = build_report(_located(root), options)
        _emit(report, OutputFormat(fmt.value), output=output, orphans_only=True, layout=layout)
        return ExitCode.OK

    _run(debug, work)


@app.command(cls=_Command)
def which(
    query: Annotated[
        str,
        typer.Argument(
            metavar="NAME|ID|PATH",
            help="A container name, a tag, a volume name; an image, layer, container, mount or "
            "build-cache ID or any prefix of one; a short link; or a path under the root.",
            show_default=False,
        ),
    ],
    root: RootOption = None,
    containerd_root: ContainerdRootOption = None,
    debug: DebugOption = False,
) -> None:
    """Who owns a name, an ID, a short link or a path under the root."""

    def work() -> ExitCode:
        from .scan import Options, index_root
        from .which import which as which_query

        if not query.strip():
            raise UsageError("which: an empty query names nothing; give a name, an ID or a path")
        location = _located(root)
        try:
            cwd: Path | None = Path.cwd()
        except OSError:  # the current directory was removed
            cwd = None
        options = Options(containerd_root=containerd_root)
        answers = which_query(index_root(location, options, time.time()), location.root, query, cwd)
        if not answers:
            _fail(f"nothing under {location.root} matches {query!r}", ExitCode.THRESHOLD_EXCEEDED)
        for line in answers:
            typer.echo(display(line))
        return ExitCode.OK

    _run(debug, work)


@app.command(cls=_Command)
def image(
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="REF...", help="Images: tags, image IDs or unique ID prefixes.", show_default=False
        ),
    ],
    root: RootOption = None,
    fmt: Annotated[ImageFormat, typer.Option("--format", "-f", help="Output format.")] = ImageFormat.table,
    top: Annotated[
        int, typer.Option("--top", min=0, help="List the N largest files or dirs each layer adds.")
    ] = 0,
    offenders: Annotated[
        int, typer.Option("--offenders", min=0, help="List the N largest hidden (wasted) paths.")
    ] = DEFAULT_OFFENDERS,
    no_trunc: Annotated[
        bool, typer.Option("--no-trunc", help="Full instructions, IDs and names, lines as wide as they need.")
    ] = False,
    binary: BinaryOption = False,
    raw_bytes: BytesOption = False,
    containerd_root: ContainerdRootOption = None,
    debug: DebugOption = False,
) -> None:
    """Why an image is big: its layers, the instruction behind each, shared and wasted bytes."""

    def work() -> ExitCode:
        from .imageinfo import RefError, image_doc
        from .render.image import render_image_json, render_image_table

        location = _located(root)
        try:
            doc = image_doc(location, refs, top=top, offenders=offenders, containerd_root=containerd_root)
        except RefError as e:
            _fail(str(e), ExitCode.THRESHOLD_EXCEEDED)
        if fmt is ImageFormat.json:
            sys.stdout.write(render_image_json(doc))
        elif fmt is ImageFormat.table:
            layout = _layout(no_trunc, binary, raw_bytes, False, None)
            sys.stdout.write(render_image_table(doc, layout=layout))
        else:
            assert_never(fmt)
        return ExitCode.OK

    _run(debug, work)


@app.command()
def audit(
    root: RootOption = None,
    fmt: Annotated[
        OutputFormat | None,
        typer.Option("--format", "-f", help="Also write the report (to stdout or --output)."),
    ] = None,
    output: OutputOption = None,
    max_fs_used_percent: Annotated[
        float | None,
        typer.Option(min=0, max=100, help="Breach when the root's file system is fuller (percent)."),
    ] = None,
    max_orphans: Annotated[int | None, _size("--max-orphans", "orphans hold more")] = None,
    max_log: Annotated[int | None, _size("--max-log", "any one container's logs hold more")] = None,
    max_reclaimable: Annotated[int | None, _size("--max-reclaimable", "more could be reclaimed")] = None,
    max_growth: Annotated[int | None, _size("--max-growth", "the root grew more since the last audit")] = (
        None
    ),
    config: Annotated[
        Path | None,
        typer.Option(
            readable=False, help="Defaults for these options (its audit table); default /etc/dockerdu.toml."
        ),
    ] = None,
    history: HistoryOption = None,
    history_keep: Annotated[int | None, typer.Option(min=1, help="Audits the history keeps (400).")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.001, metavar="SECONDS", help="Abort a scan that takes longer.")
    ] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    containerd_root: ContainerdRootOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print every check, the growth, the history.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """For cron and timers: check thresholds (one line per breach, exit 1), record the history."""

    def work() -> ExitCode:
        from .audit import audit_lines, run_audit, settings
        from .output import echo_lines, message_stream

        if output is not None and fmt is None:
            raise UsageError("--output needs --format")
        given = {
            "root": root, "max-fs-used-percent": max_fs_used_percent, "max-orphans": max_orphans,
            "max-log": max_log, "max-reclaimable": max_reclaimable, "max-growth": max_growth,
            "history": history, "history-keep": history_keep, "timeout": timeout,
            "containerd-root": containerd_root,
        }  # fmt: skip
        result = run_audit(settings(config, given), _options(False, cache_dir, no_cache, jobs, True))
        if fmt is not None:
            _emit(result.report, fmt, result.growth, output, history=result.settings.history)
        echo_lines(audit_lines(result, verbose), message_stream(fmt, output))
        return ExitCode.THRESHOLD_EXCEEDED if result.breached else ExitCode.OK

    _run(debug, work)


@app.command()
def prune(
    root: RootOption = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", help="Output format.")] = PlanFormat.table,
    yes: Annotated[
        bool, typer.Option("--yes", help="Act: remove what the plan lists (default: plan only).")
    ] = False,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Only orphans of this kind (repeatable); needed for store_unused "
            "and for kinds a daemon cleans itself.",
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="DURATION", help="Only orphans unchanged for this long (7d, 12h)."
        ),
    ] = None,
    min_size: Annotated[
        int | None,
        typer.Option(
            "--min-size", parser=_parse_size, metavar="SIZE", help="Only orphans holding at least SIZE."
        ),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            "--quarantine",
            metavar="DIR",
            help="Move into DIR (on the root's file system) instead of deleting.",
        ),
    ] = None,
    restore: Annotated[
        Path | None,
        typer.Option(
            "--restore", metavar="DIR", help="Put every entry of a quarantine DIR back where it was."
        ),
    ] = None,
    history: HistoryOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    jobs: JobsOption = 0,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Remove proven orphans: a plan by default, --yes to act (each re-proven right before it goes)."""

    def work() -> ExitCode:
        import dataclasses
        import json

        from . import prune as pr
        from .history import default_path
        from .locate import Location
        from .render.prune import render_plan
        from .scan import build_report, index_root

        history_file = history or default_path()
        if restore is not None:
            for path in pr.restore(restore, history_file):
                typer.echo(f"restored {display(path)}")
            return ExitCode.OK
        kinds = pr.check_kinds(kind or ())
        try:
            age = pr.parse_duration(older_than) if older_than is not None else None
        except ValueError as e:
            raise UsageError(str(e)) from None
        location = _located(root)
        if yes:
            why = pr.in_use(location.root)
            if why is not None:
                raise InUse(why)
        report = build_report(location, _options(False, cache_dir, no_cache, jobs, quiet))
        pr.check_store(report)
        plan = pr.make_plan(report, kinds, age, min_size)
        outcome = None
        if yes:
            fresh = Location(location.root, location.source, None)
            outcome = pr.act(
                fresh,
                plan,
                lambda: index_root(
                    fresh, dataclasses.replace(_options(True, None, True, 1, True)), time.time()
                ),
                history_file=history_file,
                quarantine=quarantine,
            )
        elif (why := pr.in_use(location.root)) is not None:
            typer.echo(f"dockerdu: prune --yes would refuse now: {display(why)}", err=True)
        if fmt is PlanFormat.json:
            typer.echo(json.dumps(pr.plan_doc(plan, outcome, not yes), indent=2, ensure_ascii=False))
        elif fmt is PlanFormat.table:
            sys.stdout.write(render_plan(plan, outcome, not yes))
        else:
            assert_never(fmt)
        return ExitCode.OK

    _run(debug, work)


def main() -> None:
    """Console-script entry point."""
    _app_for(sys.argv[1:])()


def _app_for(args: list[str]) -> typer.Typer:
    """`app` with only the command that `args` name, when they name one.

    typer builds every command's options from its signature at each start, which
    costs a short run more than its work; the others are needed only for the
    top-level help and a mistyped command's message.
    """
    import copy

    for info in app.registered_commands:
        if info.callback is not None and args[:1] == [info.name or info.callback.__name__.replace("_", "-")]:
            one = copy.copy(app)
            one.registered_commands = [info]
            return one
    return app
