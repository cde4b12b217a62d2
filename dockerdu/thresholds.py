"""The audit's thresholds: sizes as people write them, and the checks against a Report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from .growth import Growth
from .report import Report
from .text import display
from .units import human

_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_SIZE = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<prefix>[kmgtpe]?)(?P<unit>bytes?|i?b?)", re.IGNORECASE
)


def parse_size(text: str) -> int:
    """Bytes in a size such as `10G`, `500MiB`, `2Gi`, `1.5 GB`, `4096`, `4096B` or `12 Bytes`.

    `K`, `M`, `G`, `T`, `P`, `E` alone or followed by `i`/`iB` are binary (1024-based), as
    Docker's own size options, `du -h` and dockerdu's output use them; followed by a bare
    `B` (`kB`, `MB`, `GB`) they are decimal (SI), as `humanize.naturalsize` prints them by
    default. Case is ignored; a fraction is rounded to the nearest byte. Whatever dockerdu
    prints as a size (`1.5 GiB`, `512 Bytes`) reads back.

    Hand-written because none of dockerdu's dependencies parses sizes: humanize (4.x) only
    formats them (`naturalsize`), and typer, click and psutil have no size type.
    """
    match = _SIZE.fullmatch(text.strip())
    prefix = match["prefix"].lower() if match else ""
    unit = match["unit"].lower() if match else ""
    binary_without_prefix = unit.startswith("i") and not prefix  # "10i", "10iB"
    bytes_with_prefix = unit.startswith("byte") and bool(prefix)  # "10kbytes"
    if match is None or binary_without_prefix or bytes_with_prefix:
        raise ValueError(f"{text!r} is not a size (e.g. 10G, 500MiB, 1.5GB, 4096)")
    base = 1000 if unit == "b" and prefix else 1024
    return int((Decimal(match["number"]) * base ** _POWERS[prefix]).to_integral_value())


@dataclass(frozen=True)
class Limits:
    """The thresholds an audit checks; None: not checked."""

    fs_used_percent: float | None = None
    orphans: int | None = None
    log: int | None = None
    reclaimable: int | None = None
    growth: int | None = None


@dataclass(frozen=True)
class Check:
    """One threshold checked: what it measured and, when breached, by how much."""

    option: str
    """The option's name, e.g. `max-orphans` (also its key in the config file)."""
    breached: bool
    message: str


def _sized(option: str, what: str, value: int | None, limit: int, extra: str = "") -> Check:
    if value is None:
        return Check(option, True, f"{what}: not measured, so --{option} cannot be checked")
    if value > limit:
        message = f"{what}: {human(value)}, over --{option} {human(limit)} by {human(value - limit)}{extra}"
        return Check(option, True, message)
    return Check(option, False, f"{what}: {human(value)}, within --{option} {human(limit)}")


def _grew_most(growth: Growth, count: int = 3) -> str:
    if not growth.grew:
        return ""
    parts = [f"{c.kind} {display(c.name)} {c.change_text()}" for c in growth.grew[:count]]
    return f" (grew most: {', '.join(parts)})"


def evaluate(report: Report, limits: Limits, growth: Growth | None) -> list[Check]:
    """Every threshold set in `limits`, checked against `report` and the growth since the last audit.

    Without a previous audit of the root (`growth` None) the growth cannot be checked,
    which is not a breach: it is the first audit of that root.
    """
    checks: list[Check] = []
    t = report.totals
    if limits.fs_used_percent is not None:
        fs, limit = report.filesystem, limits.fs_used_percent
        option = "max-fs-used-percent"
        what = f"file system of {display(report.root)}"
        if fs is None:
            checks.append(Check(option, True, f"{what}: not measured, so --{option} cannot be checked"))
        elif fs.percent > limit:
            over = f"over --{option} {limit:g}% by {fs.percent - limit:.1f} points ({human(fs.free)} free)"
            checks.append(Check(option, True, f"{what}: {fs.percent:g}% used, {over}"))
        else:
            checks.append(Check(option, False, f"{what}: {fs.percent:g}% used, within --{option} {limit:g}%"))
    if limits.orphans is not None:
        checks.append(_sized("max-orphans", f"orphans ({len(report.orphans)})", t.orphans, limits.orphans))
    if limits.log is not None:
        log = limits.log
        big = sorted((c for c in report.containers if c.log_disk > log), key=lambda c: (-c.log_disk, c.name))
        checks += [_sized("max-log", f"logs of container {display(c.name)}", c.log_disk, log) for c in big]
        if not big:
            largest = max(report.containers, key=lambda c: c.log_disk, default=None)
            what = f"largest container log ({display(largest.name)})" if largest else "container logs"
            checks.append(_sized("max-log", what, largest.log_disk if largest else 0, log))
    if limits.reclaimable is not None:
        checks.append(_sized("max-reclaimable", "reclaimable", t.reclaimable, limits.reclaimable))
    if limits.growth is not None:
        if growth is None:
            checks.append(Check("max-growth", False, "growth not checked: no previous audit of this root"))
        else:
            checks.append(
                _sized(
                    "max-growth",
                    f"growth since {growth.since}",
                    None if growth.total is None else max(growth.total, 0),
                    limits.growth,
                    _grew_most(growth) if (growth.total or 0) > limits.growth else "",
                )
            )
    return checks
