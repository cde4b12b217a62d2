"""`dockerdu prune`: remove proven orphans, each proven again right before it goes.

The plan is the report's orphans, selected and ordered so that Docker loads the root
at every step: an orphan's references go before its data (a container dir, then its
layerdb mount, then layerdb layers child first, then each `l/` link before its dir),
and a layer before the layer it stacks on. Acting, under the audit's lock and only
while no daemon or process uses the root: before each orphan a fresh read of every
reference source must find it again, and only the paths that read still gives it
are removed (or moved into a quarantine dir), each through the safe file-system
layer. Orphans that live only in containerd's or BuildKit's databases are never
touched: those databases are never written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from . import __version__, history
from .errors import InUse, UsageError
from .fs import safe
from .fsread import ReadError, read_text
from .index import Index
from .locate import Location, running_daemons
from .model import Cleaner, OrphanKind
from .report import OrphanReport, Report
from .stores.graphdriver.drivers import driver as driver_row

SCHEMA = "dockerdu.prune/1"
METADATA_ONLY = frozenset(
    {OrphanKind.snapshot_unreferenced, OrphanKind.blob_unreferenced, OrphanKind.lease_stale}
)
"""Orphans that are records in containerd's databases: containerd's GC removes them."""
ON_REQUEST = frozenset({OrphanKind.store_unused})
"""Removed only when named with --kind: large, and used again if the daemon switches back."""
CONTAINERD_FILES = frozenset(
    {OrphanKind.content_ingest, OrphanKind.store_unused, OrphanKind.blob_unreferenced}
)
"""What prune removes on a containerd-store root: files no database names (a blob only with no record)."""


def _file_only(o: OrphanReport) -> bool:
    """A blob file with no record in meta.db: containerd's GC removes it only after removing other content."""
    return o.kind == OrphanKind.blob_unreferenced and o.cleaned_by == Cleaner.never


ORDER = (
    OrphanKind.container_dir_orphaned,
    OrphanKind.container_layer_orphaned,
    OrphanKind.layerdb_tmp,
    OrphanKind.layer_removing,
    OrphanKind.layer_unreferenced,
    OrphanKind.layer_dir_unreferenced,
    OrphanKind.link_broken,
    OrphanKind.content_ingest,
    OrphanKind.store_unused,
)
KILL_AFTER_ENV = "DOCKERDU_PRUNE_KILL_AFTER"
"""Tests: SIGKILL this process after that many removal steps (an interrupted prune)."""
JOURNAL_NAME = "prune.jsonl"
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Item:
    """One orphan of the plan: what would go (`steps`, in order) or why it stays (`why`)."""

    kind: OrphanKind
    path: str
    disk: int
    cleaned_by: Cleaner
    reason: str
    steps: tuple[str, ...]
    action: str
    """`remove`, or `leave`."""
    why: str = ""


@dataclass(frozen=True)
class Plan:
    """What `dockerdu prune` removes from a root, and what it leaves."""

    root: str
    store: str
    generated_at: str
    items: tuple[Item, ...]

    @property
    def removals(self) -> list[Item]:
        """The items to remove, in removal order."""
        return [i for i in self.items if i.action == "remove"]

    @property
    def total(self) -> int:
        """Allocated bytes of what would be removed."""
        return sum(i.disk for i in self.removals)


@dataclass
class Outcome:
    """What acting on a plan did."""

    done: list[dict[str, object]] = field(default_factory=list)
    """One per orphan: kind, path, bytes freed, steps done, what was left and why."""
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Orphans the second proof no longer finds (or finds changed): kind, path, why."""
    freed: int = 0
    free_before: int = 0
    free_after: int = 0


# --------------------------------------------------------------------------- selection


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in `30m`, `12h`, `7d`, `2w`, `1h30m` (a bare number is seconds)."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    parts = _DURATION.findall(t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 12h, 7d, 2w)")
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def check_kinds(kinds: Iterable[str]) -> frozenset[OrphanKind]:
    """The kinds named with --kind, each a known orphan kind."""
    named = frozenset(kinds)
    unknown = sorted(named - set(OrphanKind))
    if unknown:
        raise UsageError(f"unknown orphan kind {unknown[0]!r}; known: {', '.join(OrphanKind)}")
    return frozenset(OrphanKind(k) for k in named)


def _age(root: Path, paths: Iterable[str], now: float) -> float:
    """Seconds since the newest change (mtime or ctime) of any of the orphan's paths."""
    newest = 0.0
    for rel in paths:
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        newest = max(newest, st.st_mtime, st.st_ctime)
    return now - newest


def _steps(paths: Iterable[str], driver: str) -> tuple[str, ...]:
    """An orphan's paths in removal order: references, then each `l/` link, then the dirs under
    the driver's own dir (its layer dirs; aufs's `layers/` and `mnt/` entries too)."""
    ps = list(dict.fromkeys(paths))
    link = f"{driver_row(driver).layer_root}/l/"
    layer = f"{driver}/"
    refs = [p for p in ps if not p.startswith(layer)]
    links = [p for p in ps if p.startswith(link)]
    dirs = [p for p in ps if p.startswith(layer) and not p.startswith(link)]
    return (*refs, *links, *dirs)


def _depth(root: Path, layerdb_rel: str) -> int:
    """How many layers lie under a layerdb layer (its parent chain), read from the `parent` files."""
    sha = Path(layerdb_rel).parent
    depth, rel = 0, layerdb_rel
    for _ in range(256):  # Docker's maximum depth is 125
        try:
            parent = read_text(root / rel / "parent")
        except ReadError:
            return depth
        depth += 1
        rel = str(sha / parent.split(":", 1)[-1])
    return depth


def make_plan(
    report: Report,
    kinds: frozenset[OrphanKind] = frozenset(),
    older_than: float | None = None,
    min_size: int | None = None,
    now: float | None = None,
) -> Plan:
    """Select and order the report's orphans; say for every one left why."""
    now = time.time() if now is None else now
    root = Path(report.root)
    items: list[Item] = []
    for o in report.orphans:
        why = _left_because(report, o, kinds, older_than, min_size, root, now)
        steps = _steps(o.paths, report.driver)
        items.append(
            Item(o.kind, o.path, o.disk, o.cleaned_by, o.reason, steps, "leave" if why else "remove", why)
        )

    def key(i: Item) -> tuple[int, int, str]:
        rank = ORDER.index(i.kind) if i.kind in ORDER else len(ORDER)
        # A layer before the one it stacks on: the deepest first.
        depth = -_depth(root, i.path) if i.kind == OrphanKind.layer_unreferenced else 0
        return rank, depth, i.path

    items.sort(key=lambda i: (i.action != "remove", *key(i)))
    return Plan(report.root, report.store, report.generated_at, tuple(items))


def _left_because(
    report: Report,
    o: OrphanReport,
    kinds: frozenset[OrphanKind],
    older_than: float | None,
    min_size: int | None,
    root: Path,
    now: float,
) -> str:
    if kinds and o.kind not in kinds:
        return "not a selected --kind"
    if any(os.path.isabs(p) for p in (o.path, *o.paths)):
        return "lies outside the Docker root (a system containerd's): dockerdu prune acts only under the root"
    if o.kind in METADATA_ONLY and not _file_only(o):
        if o.cleaned_by == Cleaner.never:
            return "a record in containerd's database, which dockerdu never writes"
        return "start the daemon: containerd removes these (dockerdu never writes its databases)"
    if report.store == "containerd" and o.kind not in CONTAINERD_FILES:
        return "on the containerd store dockerdu removes only files no database names"
    if o.kind in ON_REQUEST and o.kind not in kinds:
        return f"a whole image store: removed only with --kind {o.kind}"
    if o.cleaned_by != Cleaner.never and o.kind not in kinds:
        return f"{o.cleaned_by} removes it (or name --kind {o.kind})"
    if min_size is not None and o.disk < min_size:
        return "smaller than --min-size"
    if older_than is not None and _age(root, o.paths, now) < older_than:
        return "changed more recently than --older-than"
    return ""


# --------------------------------------------------------------------------- who uses the root


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def in_use(root: Path) -> str | None:
    """Why prune may not act on `root` now (one line saying how to stop it), or None."""
    top = str(root)
    for daemon in running_daemons():
        if _resolved(daemon.root) == top:
            return (
                f"dockerd (pid {daemon.pid}) is running on {top}; stop it first "
                "(systemctl stop docker.socket docker), then run dockerdu prune again"
            )
    points = safe.mount_points(top)
    if points:
        point = sorted(points)[0]
        return (
            f"{point} is mounted under {top} ({len(points)} mount(s)); stop what uses it "
            f"and unmount it (umount {point}) first"
        )
    me = os.getpid()
    for proc in psutil.process_iter(["name"]):
        if proc.pid == me:
            continue
        held = _held_path(proc.pid, top)
        if held is not None:
            name = proc.info.get("name") or "?"
            what = "containerd" if name.startswith("containerd") else f"process {name!r}"
            return f"{what} (pid {proc.pid}) holds {held}; stop it (kill {proc.pid}) first"
    return None


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path.absolute())


def _held_path(pid: int, top: str) -> str | None:
    base = f"/proc/{pid}"
    for link in ("cwd", "root"):
        try:
            target = os.readlink(f"{base}/{link}")
        except OSError:
            continue
        if _under(target, top) and not (link == "root" and target == "/"):
            return target
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"{base}/fd/{fd}")
        except OSError:
            continue
        if _under(target, top):
            return target
    return None


def _refuse_if_in_use(root: Path) -> None:
    why = in_use(root)
    if why is not None:
        raise InUse(why)


# --------------------------------------------------------------------------- acting


def journal_path(history_file: Path) -> Path:
    """The prune journal: `prune.jsonl` beside the audit history."""
    return history_file.with_name(JOURNAL_NAME)


def _append(path: Path, doc: dict[str, object]) -> None:
    line = json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _free(root: Path) -> int:
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize


Reprove = Callable[[], Index]
StepHook = Callable[[Item, str], None]


def _proved_steps(item: Item, fresh: Index, layerdb: str) -> tuple[tuple[str, ...], str]:
    """The item's steps the fresh read proves too, or why none may go."""
    again = next((o for o in fresh.orphans if o.kind == item.kind and o.path == item.path), None)
    if again is None:
        return (), "the second read no longer proves it an orphan"
    proved = set(again.paths)
    steps = tuple(s for s in item.steps if s in proved)
    going = set(steps)
    # A layer goes only when every layer stacked on it goes first, within this orphan.
    for chain_id, layer in fresh.layers.items():
        child = f"{layerdb}/{chain_id[7:]}"
        parent = f"{layerdb}/{layer.parent[7:]}" if layer.parent else None
        if parent in going and child not in going:
            return (), f"layer {chain_id[7:19]} stacks on {parent}: it stays"
    return steps, ""


def act(
    location: Location,
    plan: Plan,
    reprove: Reprove,
    *,
    history_file: Path,
    quarantine: Path | None = None,
    before_step: StepHook | None = None,
) -> Outcome:
    """Remove (or move into `quarantine`) what the plan selects, re-proving each orphan first."""
    root = location.root
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    out = Outcome()
    journal = journal_path(history_file)
    layerdb = f"image/{plan.store}/layerdb/sha256"
    action = "quarantined" if quarantine is not None else "removed"
    with history.locked(history_file):
        _refuse_if_in_use(root)
        qfd = _open_quarantine(quarantine, root) if quarantine is not None else None
        count = _manifest_count(quarantine) if quarantine is not None else 0
        out.free_before = _free(root)
        steps_done = 0
        try:
            with safe.Root(str(root)) as r:
                for item in plan.removals:
                    _refuse_if_in_use(root)
                    steps, why = _proved_steps(item, reprove(), layerdb)
                    if not steps:
                        out.skipped.append({"kind": item.kind, "path": item.path, "why": why})
                        continue
                    freed, left, done = 0, [], []
                    for step in steps:
                        _refuse_if_in_use(root)
                        if before_step is not None:
                            before_step(item, step)
                        r.refresh()
                        if qfd is not None and quarantine is not None:
                            moved, why = _quarantine_step(r, step, item, qfd, quarantine, count)
                            count += moved
                            step_bytes = 0
                            if why:
                                left.append(why)
                        else:
                            try:
                                removal = safe.remove(r, step)
                            except (safe.Unsafe, OSError) as e:
                                removal = safe.Removal(left=[f"{step}: {e}"])
                            step_bytes = removal.freed
                            left.extend(removal.left)
                        freed += step_bytes
                        done.append(step)
                        _append(
                            journal,
                            {
                                "at": _now(), "root": str(root), "kind": item.kind, "path": step,
                                "bytes": step_bytes, "action": action,
                                "orphan": item.path,
                            },
                        )  # fmt: skip
                        steps_done += 1
                        if kill_after and steps_done >= kill_after:
                            os.kill(os.getpid(), signal.SIGKILL)
                        if left:
                            break  # what stays keeps its references: nothing after it goes
                    out.freed += freed
                    out.done.append(
                        {"kind": item.kind, "path": item.path, "bytes": freed, "steps": done, "left": left}
                    )
        finally:
            if qfd is not None:
                os.close(qfd)
        out.free_after = _free(root)
    return out


# --------------------------------------------------------------------------- quarantine


def _open_quarantine(path: Path, root: Path) -> int:
    qdir = path.absolute()
    if _under(str(qdir), str(root)) or _under(str(root), str(qdir)):
        raise UsageError(
            f"the quarantine dir {qdir} must lie outside the Docker root {root}, and not hold it"
        )
    try:
        qdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = safe.open_dir(str(qdir), None)
    except OSError as e:
        raise UsageError(f"cannot use {qdir} as the quarantine dir: {e.strerror}") from None
    if os.fstat(fd).st_dev != os.stat(root).st_dev:
        os.close(fd)
        raise UsageError(
            f"the quarantine dir {qdir} is on another file system than {root}; "
            "it must be on the root's own, so that every move is one rename"
        )
    return fd


def _manifest_count(quarantine: Path) -> int:
    try:
        return len((quarantine / MANIFEST).read_text().splitlines())
    except FileNotFoundError:
        return 0


def _quarantine_step(
    r: safe.Root, step: str, item: Item, qfd: int, quarantine: Path, n: int
) -> tuple[int, str]:
    """Move one path into the quarantine: the manifest line first, then the rename."""
    try:
        st = r.lstat(step)
        parent_fd, _ = r.open_parent(step)
        try:
            parent = os.fstat(parent_fd)
        finally:
            os.close(parent_fd)
    except FileNotFoundError:
        return 0, ""
    except (OSError, safe.Unsafe) as e:
        return 0, f"{step}: {e}"
    _append(
        quarantine / MANIFEST,
        {
            "n": n, "root": r.path, "kind": item.kind, "path": step, "mode": st.st_mode,
            "parent_times": [parent.st_atime_ns, parent.st_mtime_ns],
        },
    )  # fmt: skip
    try:
        safe.move(r, step, qfd, str(n))
    except (OSError, safe.Unsafe) as e:
        return 1, f"{step}: {e}"
    return 1, ""


def restore(quarantine: Path, history_file: Path) -> list[str]:
    """Put every quarantined entry back where it was, last moved first; return what was restored."""
    try:
        lines = (quarantine / MANIFEST).read_text().splitlines()
    except OSError as e:
        raise UsageError(f"{quarantine} holds no dockerdu quarantine ({MANIFEST}: {e.strerror})") from None
    entries = [json.loads(line) for line in lines if line.strip()]
    if not entries:
        return []
    roots = {e["root"] for e in entries}
    if len(roots) != 1:
        raise UsageError(f"{quarantine} holds entries of several roots: {', '.join(sorted(roots))}")
    root = Path(roots.pop())
    restored: list[str] = []
    with history.locked(history_file):
        _refuse_if_in_use(root)
        qfd = safe.open_dir(str(quarantine.absolute()), None)
        try:
            with safe.Root(str(root)) as r:
                for entry in reversed(entries):
                    name = str(entry["n"])
                    try:
                        os.stat(name, dir_fd=qfd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # its move never happened (interrupted between manifest and rename)
                    atime, mtime = entry["parent_times"]
                    safe.move_back(r, qfd, name, entry["path"], (atime, mtime))
                    restored.append(entry["path"])
                    _append(
                        journal_path(history_file),
                        {"at": _now(), "root": str(root), "kind": entry["kind"], "path": entry["path"],
                         "bytes": 0, "action": "restored"},
                    )  # fmt: skip
        finally:
            os.close(qfd)
        os.unlink(quarantine / MANIFEST)
    return restored


# --------------------------------------------------------------------------- output


def plan_doc(plan: Plan, outcome: Outcome | None, dry_run: bool) -> dict[str, object]:
    """The plan (and what was done) as JSON-ready data, schema dockerdu.prune/1."""
    return {
        "schema": SCHEMA,
        "tool": "dockerdu",
        "version": __version__,
        "generated_at": plan.generated_at,
        "root": plan.root,
        "store": plan.store,
        "dry_run": dry_run,
        "total": plan.total,
        "orphans": [
            {
                "kind": i.kind,
                "path": i.path,
                "disk": i.disk,
                "cleaned_by": i.cleaned_by,
                "reason": i.reason,
                "action": i.action,
                "why": i.why or None,
                "steps": list(i.steps),
            }
            for i in plan.items
        ],  # fmt: skip
        "result": None
        if outcome is None
        else {
            "removed": outcome.done,
            "skipped": outcome.skipped,
            "freed": outcome.freed,
            "free_before": outcome.free_before,
            "free_after": outcome.free_after,
        },
    }


def check_store(report: Report) -> None:
    """Refuse a containerd-store root whose containerd root was not read: nothing there is proven."""
    if report.store == "containerd" and report.containerd_root is None:
        raise UsageError(
            f"{report.root} uses the containerd image store and its containerd root was not found "
            "or not read; dockerdu prune acts only where it read every reference"
        )
