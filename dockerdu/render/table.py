"""The report as tables for a person: one section per kind, largest first."""

from __future__ import annotations

from collections.abc import Sequence

from ..report import Report
from ..text import display
from ..units import human


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    cells = [[display(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in cells)]


def _section(title: str, body: list[str]) -> list[str]:
    return ["", title, *body]


def render_header(report: Report) -> list[str]:
    """Where the figures come from."""
    lines = [f"Docker root  {display(report.root)}  ({display(report.root_source)}; store {report.store})"]
    d = report.docker
    state = f"running (pid {d.daemon_pid})" if d.daemon_running else "not running"
    lines.append(f"dockerd      {state}; SharedSize counted over {d.shared_size_rule}")
    fs = report.filesystem
    if fs is not None:
        lines.append(
            f"file system  {human(fs.used)} used of {human(fs.total)} ({fs.percent:.1f}%), "
            f"{human(fs.free)} free"
        )
    return lines


def render_images(report: Report) -> list[str]:
    """Images as `docker images` lists them."""
    rows = [
        [
            ", ".join(i.tags) or "<none>",
            i.id[7:19],
            human(i.size),
            human(i.shared_size),
            human(i.unique_size),
            human(i.disk),
            str(i.containers),
        ]
        for i in report.images
    ]
    headers = ["IMAGE", "ID", "SIZE", "SHARED", "UNIQUE", "DISK", "CONTAINERS"]
    return _section(f"Images ({len(rows)})", _table(headers, rows, {2, 3, 4, 5, 6}))


def render_containers(report: Report) -> list[str]:
    """Containers with their writable layers and logs."""
    rows = [
        [
            c.name,
            c.id[:12],
            c.image or (c.image_id or "")[7:19],
            c.state,
            human(c.rw_size),
            human(c.rw_disk),
            human(c.log_disk),
        ]
        for c in report.containers
    ]
    headers = ["CONTAINER", "ID", "IMAGE", "STATE", "RW SIZE", "RW DISK", "LOGS"]
    return _section(f"Containers ({len(rows)})", _table(headers, rows, {4, 5, 6}))


def render_volumes(report: Report) -> list[str]:
    """Volumes and who mounts them."""
    rows = [
        [
            v.name[:12] + "…" if v.anonymous else v.name,
            human(v.size),
            human(v.disk),
            ", ".join(v.containers) or "-",
        ]
        for v in report.volumes
    ]
    return _section(f"Volumes ({len(rows)})", _table(["VOLUME", "SIZE", "DISK", "CONTAINERS"], rows, {1, 2}))


def render_orphans(report: Report) -> list[str]:
    """Orphans and problems."""
    lines: list[str] = []
    rows = [[o.kind, o.path, human(o.disk), o.cleaned_by, o.reason] for o in report.orphans]
    lines += _section(
        f"Orphans ({len(rows)}, {human(sum(o.disk for o in report.orphans))})",
        _table(["KIND", "PATH", "DISK", "CLEANED BY", "REASON"], rows, {2}) if rows else ["none found"],
    )
    prow = [[p.kind, p.path, p.reason] for p in report.problems]
    lines += _section(
        f"Problems ({len(prow)})", _table(["KIND", "PATH", "REASON"], prow, set()) if prow else ["none found"]
    )
    return lines


def render_totals(report: Report) -> list[str]:
    """Per-category allocated bytes, reclaimable, and the summary line."""
    t = report.totals
    cats = [
        ("images", t.images), *([("image content", t.image_content)] if t.image_content else []),
        ("containers", t.containers), ("logs", t.logs), ("volumes", t.volumes),
        ("build cache", t.build_cache), ("orphans", t.orphans), ("metadata", t.metadata), ("other", t.other),
    ]  # fmt: skip
    rows = [[name, human(v)] for name, v in cats]
    rows += [[f"  {o.name}", human(o.disk)] for o in report.other]
    rows.append(["total (du -sx)", human(t.root_disk)])
    lines = _section("Disk by category", _table(["CATEGORY", "DISK"], rows, {1}))
    rrows = [[k.replace("_", " "), human(r.size), human(r.disk)] for k, r in report.reclaimable.items()]
    lines += _section("Reclaimable", _table(["WHAT", "DOCKER SIZE", "DISK"], rrows, {1, 2}))
    if report.incomplete:
        lines += _section("Incomplete figures", [", ".join(report.incomplete)])
    for note in report.notes:
        lines.append(f"note: {display(note)}")
    lines.append("")
    lines.append(
        f"Total {human(t.root_disk)}: images {human(t.images)}, "
        + (f"image content {human(t.image_content)}, " if t.image_content else "")
        + f"containers {human(t.containers)}, "
        f"logs {human(t.logs)}, volumes {human(t.volumes)}, build cache {human(t.build_cache)}, "
        f"orphans {human(t.orphans)}, metadata {human(t.metadata)}, other {human(t.other)}; "
        f"reclaimable {human(t.reclaimable)}"
    )
    return lines


def render_table(report: Report) -> str:
    """The full report."""
    bc = report.build_cache
    lines = [
        *render_header(report),
        *render_images(report),
        *render_containers(report),
        *render_volumes(report),
        "",
        f"Build cache: {len(bc.records)} records, size {human(bc.size)}, disk {human(bc.disk)}",
        *render_orphans(report),
        *render_totals(report),
    ]
    return "\n".join(lines) + "\n"


def render_orphans_table(report: Report) -> str:
    """Orphans and problems only."""
    return "\n".join([*render_header(report), *render_orphans(report)]) + "\n"
