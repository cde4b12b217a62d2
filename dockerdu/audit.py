"""`dockerdu audit`: the report for cron and timers: thresholds, history, one line per breach.

Also the output side shared with `report`: the formats (with the growth attached where a
format can carry it) and `--output FILE`, written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from . import history
from .errors import UsageError
from .growth import Growth, compare, growth_lines
from .history import Busy, HistoryError, Snapshot
from .locate import RootError, check_root, locate
from .measure import Progress
from .report import Report
from .scan import Options, build_report
from .text import display
from .thresholds import Check, Limits, evaluate, parse_size
from .units import human

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = ["Busy", "HistoryError", "ScanTimeout", "UsageError"]

DEFAULT_CONFIG = Path("/etc/dockerdu.toml")
SIZE_KEYS = ("max-orphans", "max-log", "max-reclaimable", "max-growth")
CONFIG_KEYS = (
    "root", "containerd-root", "max-fs-used-percent", *SIZE_KEYS, "history", "history-keep", "timeout",
)  # fmt: skip


class ScanTimeout(RootError):
    """The scan did not finish within --timeout (exit code 3, as a root that cannot be read)."""


@dataclass(frozen=True)
class Settings:
    """What one audit does: the config file's values, overridden by the command line's."""

    root: Path | None
    limits: Limits
    history: Path
    keep: int
    timeout: float | None
    configured: frozenset[str] = frozenset()
    """The keys whose value came from the config file, not the command line."""
    config: Path | None = None
    """That config file."""
    containerd_root: Path | None = None
    containerd_root_source: str = "--containerd-root"


def read_config(path: Path | None) -> dict[str, Any]:
    """The `[audit]` table of `path`, or of /etc/dockerdu.toml if it exists."""
    source = path or DEFAULT_CONFIG
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        if path is None:
            return {}
        raise UsageError(f"the config file {source} does not exist") from None
    except OSError as e:
        raise UsageError(f"cannot read the config file {source}: {e.strerror}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{source} is not valid TOML: {e}") from None
    unknown = sorted(set(doc) - {"audit"})
    if unknown:
        raise UsageError(f"{source}: unknown table or key {unknown[0]!r} (dockerdu reads [audit])")
    table = doc.get("audit", {})
    if not isinstance(table, dict):
        raise UsageError(f"{source}: audit must be a table ([audit])")
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(f"{source}: unknown key {unknown[0]!r} in [audit]; known: {', '.join(CONFIG_KEYS)}")
    return {key: _config_value(source, key, value) for key, value in table.items()}


def _config_value(source: Path, key: str, value: Any) -> Any:
    where = f"{key} in {source}"
    if key in SIZE_KEYS:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError as e:
                raise UsageError(f"{where}: {e}") from None
        raise UsageError(f'{where}: a size is needed (e.g. "10G" or a number of bytes)')
    if key in ("root", "history", "containerd-root"):
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: a path is needed")
        return Path(value).expanduser()
    if key == "history-keep":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{where}: a whole number of at least 1 is needed")
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise UsageError(f"{where}: a number is needed")
    if key == "max-fs-used-percent" and not 0 <= value <= 100:
        raise UsageError(f"{where}: a percentage from 0 to 100 is needed")
    if key == "timeout" and value <= 0:
        raise UsageError(f"{where}: a number of seconds above 0 is needed")
    return float(value)


def settings(config: Path | None, given: Mapping[str, Any]) -> Settings:
    """Merge the command line (`given`, by config key; None: not given) over the config file."""
    values = read_config(config)
    from_file = frozenset(k for k in values if given.get(k) is None)
    values.update({k: v for k, v in given.items() if v is not None})
    return Settings(
        root=values.get("root"),
        limits=Limits(
            fs_used_percent=values.get("max-fs-used-percent"),
            orphans=values.get("max-orphans"),
            log=values.get("max-log"),
            reclaimable=values.get("max-reclaimable"),
            growth=values.get("max-growth"),
        ),
        history=values.get("history") or history.default_path(),
        keep=values.get("history-keep") or history.DEFAULT_KEEP,
        timeout=values.get("timeout"),
        configured=from_file,
        config=(config or DEFAULT_CONFIG) if from_file else None,
        containerd_root=values.get("containerd-root"),
        containerd_root_source=(
            f"containerd-root in {config or DEFAULT_CONFIG}"
            if "containerd-root" in from_file
            else "--containerd-root"
        ),
    )


GRACE = 5.0
"""Seconds the scan gets, after its timeout, to unwind; then the process exits at once."""
TIMEOUT_EXIT = 3
"""The exit code of a scan that timed out, as for a root that cannot be read."""


def _kill_children() -> None:
    """End the walker processes this scan started: they would go on walking after the exit."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


@contextlib.contextmanager
def deadline(seconds: float | None, root: Path) -> Iterator[Progress | None]:
    """Abort the block with ScanTimeout after `seconds`.

    In the main thread SIGALRM raises it, even in a read that hangs; if the scan has not
    unwound GRACE seconds later (walker processes still finishing), the walker processes
    are killed, the message is printed and the process exits with TIMEOUT_EXIT at once.
    The walk's progress callback (yielded) checks the clock too, for a scan run in
    another thread.
    """
    if seconds is None:
        yield None
        return
    end = time.monotonic() + seconds
    active = True
    message = f"the scan of {root} did not finish within {seconds:g} s (--timeout); nothing was recorded"

    def check(_count: int = 0, _total: int = 0) -> None:
        if active and time.monotonic() >= end:
            raise ScanTimeout(message)

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        if not active:
            return
        signal.signal(signal.SIGALRM, hard_exit)
        signal.setitimer(signal.ITIMER_REAL, GRACE)
        raise ScanTimeout(message)

    def hard_exit(_signum: int, _frame: FrameType | None) -> None:
        if active:
            _kill_children()
            os.write(2, f"dockerdu: {message}\n".encode(errors="replace"))
            os._exit(TIMEOUT_EXIT)

    alarm = threading.current_thread() is threading.main_thread()
    previous: Any = None
    if alarm:
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield check
    finally:
        active = False
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class AuditResult:
    """One audit's report, growth since the previous audit of the root, and checks."""

    report: Report
    growth: Growth | None
    checks: list[Check]
    settings: Settings

    @property
    def breached(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.breached]


def run_audit(s: Settings, options: Options | None = None) -> AuditResult:
    """Lock, scan within the timeout, compare with the history, check, append to the history.

    `options` say how to scan (jobs, cache); the audit's own progress callback (the
    timeout's clock) replaces theirs, and image layers are always walked.
    """
    location = locate(s.root)
    check_root(location.root)  # an unreadable root is exit 3 even where the history is not writable
    with history.locked(s.history):
        with deadline(s.timeout, location.root) as progress:
            scan = dataclasses.replace(
                options or Options(),
                progress=progress,
                quick=False,
                containerd_root=s.containerd_root,
                containerd_root_source=s.containerd_root_source,
            )
            report = build_report(location, scan)
        previous = history.last(s.history, report.root)
        grown = compare(previous, report) if previous is not None else None
        checks = evaluate(report, s.limits, grown)
        history.append(s.history, Snapshot.of(report), s.keep)
    return AuditResult(report, grown, checks, s)


def _with_source(check: Check, s: Settings) -> str:
    """A check's message, naming the config file when the limit came from it."""
    if check.option in s.configured and s.config is not None:
        return f"{check.message} (limit {check.option} from {display(str(s.config))})"
    return check.message


def audit_lines(result: AuditResult, verbose: bool) -> list[str]:
    """One line per breach; with `verbose`, every check, the growth and the history too."""
    if not verbose:
        return [f"breach: {_with_source(c, result.settings)}" for c in result.breached]
    r = result.report
    lines = [f"root {display(r.root)} ({display(r.root_source)}): {human(r.totals.root_disk)}"]
    lines += [
        f"{'breach' if c.breached else 'ok'}: {_with_source(c, result.settings)}" for c in result.checks
    ]
    if not result.checks:
        lines.append("no threshold set (see dockerdu audit --help)")
    if result.growth is None:
        lines.append(
            f"no previous audit of {display(r.root)} in {result.settings.history}: no growth to show"
        )
    else:
        lines += growth_lines(result.growth)[1:]
    lines.append(f"history: {result.settings.history} (last {result.settings.keep} audits kept)")
    return lines


def since(path: Path | None, report: Report) -> Growth | None:
    """Growth of `report` since the latest audit of its root in the history, if any."""
    previous = history.last(path or history.default_path(), report.root)
    return compare(previous, report) if previous is not None else None
