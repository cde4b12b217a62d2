"""One walk of the root: every inode charged once, at first sight, to its owner.

The walk never follows a symlink, never leaves the root's file system (a mount
point is neither entered nor counted, as `du -x` does), and counts allocated
bytes (st_blocks * 512) of every inode, directories included, a hard-linked
inode once. Per-owner sums therefore add up to `du -sx -B1 ROOT`.

Beside it, in the areas the index marks, it computes Docker's own size
(pkg/directory.Size): the apparent size of every non-directory, each inode once
per area, zero-size entries and directories skipped.

Layer and volume dirs are walked as separate tasks, in worker processes when
there are several cores. A task charges inodes with one link at once and hands
back those with more, in the order it met them; merging the tasks in a fixed
order then charges each such inode to its first sighting, so the figures do
not depend on how the work was split or scheduled.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .fs.safe import mount_points as mount_points
from .fs.safe import open_dir as _open_dir
from .index import METADATA, Mark, Owner
from .model import Category, Problem, ProblemKind
from .records import record

ScanResult = tuple[
    int, int, int, int, int, list[tuple[str, int]], list[tuple[int, int, int]], list[tuple[str, int]], int
]


def scan_dir_py(fd: int, dev: int, depth: int = 0) -> ScanResult:
    """dockerdu._walkdir.scan in Python, for an install built without a C compiler.

    (blocks, inodes, files, size, entries, dirs, multi, errors, newest) of the dir open as `fd`;
    see dockerdu/_walkdir.c for what each holds. It walks no subdir (whatever `depth`):
    every one is in `dirs`, for the caller to walk.
    """
    blocks = inodes = files = size = entries = newest = 0
    dirs: list[tuple[str, int]] = []
    multi: list[tuple[int, int, int]] = []
    errors: list[tuple[str, int]] = []
    with os.scandir(fd) as it:
        for entry in it:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as e:
                errors.append((entry.name, e.errno or 0))
                continue
            if st.st_dev != dev:
                continue
            entries += 1
            if st.st_ctime_ns > newest:
                newest = st.st_ctime_ns
            if st.st_mode & S_IFMT == S_IFDIR:
                blocks += st.st_blocks
                inodes += 1
                dirs.append((entry.name, st.st_ino))
            elif st.st_nlink > 1:
                multi.append((st.st_ino, st.st_blocks, st.st_size))
            else:
                blocks += st.st_blocks
                inodes += 1
                files += 1
                size += st.st_size
    return blocks, inodes, files, size, entries, dirs, multi, errors, newest


_scan_dir: Callable[[int, int, int], ScanResult]
try:
    from ._walkdir import scan as _scan_dir
except ImportError:  # built without a C compiler: the same walk, in Python
    _scan_dir = scan_dir_py

S_IFMT = 0o170000  # the file-type bits of st_mode
S_IFDIR = stat.S_IFDIR
BLOCK = 512  # st_blocks unit on Linux, whatever the file system's block size
SCAN_DEPTH = 64
"""Levels below a dir that one _scan_dir call walks (the C scan; the Python one walks none)."""
# Below this many split-off dirs a pool costs more than it saves.
MIN_TASKS_FOR_POOL = 8


@dataclass
class Tally:
    """Allocated bytes and inodes charged to one owner."""

    disk: int = 0
    inodes: int = 0
    incomplete: bool = False


@dataclass
class AreaSize:
    """Docker's size of one marked area (a layer's diff, a volume's _data, logs)."""

    size: int = 0
    files: int = 0


@dataclass
class TaskResult:
    """What one task's walk found; multi-link inodes are left for the merge to charge."""

    tallies: dict[Owner, Tally] = field(default_factory=dict)
    areas: dict[str, AreaSize] = field(default_factory=dict)
    links: dict[int, tuple[int, Owner]] = field(default_factory=dict)
    """inode -> (allocated bytes, owner at first sighting), in sighting order."""
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    newest: int = 0
    """The latest st_ctime (ns) of any inode walked: when its contents last changed."""


@record
class Task:
    """A subtree to walk: where, as what, and the marks that lie below it."""

    path: str
    rel: str
    owner: Owner
    area: str | None
    marks: dict[str, Mark]
    parents: frozenset[str]
    identity: tuple[int, int] | None = None
    """(st_dev, st_ino) the dir had when listed; a dir found otherwise is not walked.
    None only for the root itself, which may be reached through a symlink."""


@dataclass
class Measurement:
    """What the walk found: per-owner tallies, Docker sizes per area, unreadable paths."""

    tallies: dict[Owner, Tally]
    sizes: dict[str, int]
    files: dict[str, int]
    root_disk: int
    problems: list[Problem]
    skipped: frozenset[Owner] = frozenset()
    """Owners whose dirs were not walked (quick mode): their disk is unknown."""
    entries: int = 0


Progress = Callable[[int, int], None]
"""Called with (entries, allocated bytes) walked so far, then (-1, -1) when the walk ends."""


class TaskCache:
    """Remembered results of tasks whose dirs cannot have changed; see dockerdu.cache."""

    def lookup(self, task: Task) -> TaskResult | None:  # pragma: no cover - interface
        """A remembered result for `task`, or None."""
        return None

    def store(self, task: Task, result: TaskResult) -> None:  # pragma: no cover - interface
        """Remember `result` for `task` if it may be."""

    def complete(self) -> bool:  # pragma: no cover - interface
        """Whether it holds an entry for every dir it may answer (most likely all hits)."""
        return False


@record
class _Context:
    root: str
    dev: int
    skip: frozenset[str]
    """Mount points below the root (absolute paths)."""


# Dirs are opened relative to an open ancestor (an "anchor"), never through a path a
# container could redirect: O_NOFOLLOW refuses a dir swapped for a symlink, and the
# fstat that follows must match what the parent's listing showed. A path relative to
# its anchor stays below PATH_MAX however deep the tree: past this many bytes a dir
# becomes the anchor of its children. The C scan hands back paths of up to 1024 bytes,
# which are opened through the dir it was given.
_ANCHOR_AT = 2800


def open_listed(name: str, dir_fd: int | None, want: tuple[int, int]) -> int | None:
    """Open the dir `name` (below `dir_fd`) only as the inode its parent's listing showed.

    The walk's safe open (`_walk` runs the same two steps inline, in its hot loop): the
    last component is never followed (O_NOFOLLOW), and the fd is returned only when fstat
    shows `want` = (st_dev, st_ino). None when the dir
    is gone or is something else now (a symlink, a file, another dir); OSError when it
    cannot be opened for another reason.
    """
    try:
        fd = _open_dir(name, dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if (st.st_dev, st.st_ino) != want:
        os.close(fd)
        return None
    return fd


ANCHOR_AT = _ANCHOR_AT
"""Past this many bytes of path from its anchor, a dir anchors its own children."""


class Anchors:
    """Open dir fds that queued dirs are opened relative to, each closed when none needs it.

    An anchor is [fd, references]: a walker holds a reference for each dir it queues
    below the anchor (and one while it lists the anchor itself) and releases it once
    that dir is opened or dropped. `close` closes whatever is still open.
    """

    def __init__(self) -> None:
        self._open: list[list[int]] = []

    def add(self, fd: int) -> list[int]:
        """`fd` as a new anchor, with one reference."""
        anchor = [fd, 1]
        self._open.append(anchor)
        return anchor

    def release(self, anchor: list[int]) -> None:
        anchor[1] -= 1
        if anchor[1] == 0:
            self._open.remove(anchor)
            os.close(anchor[0])

    def close(self) -> None:
        for anchor in self._open:
            os.close(anchor[0])
        self._open.clear()


def _skip_tree(skip: frozenset[str], top: str) -> dict[str, Any] | None:
    """The mount points below `top` as a tree of names, "" marking a mount point."""
    tree: dict[str, Any] = {}
    prefix = top.rstrip("/") + "/"
    for point in skip:
        if point.startswith(prefix):
            node = tree
            for name in point[len(prefix) :].split("/"):
                node = node.setdefault(name, {})
            node[""] = {}
    return tree or None


Node = tuple[Any, str]
"""A dir's place: (its parent's Node or None, its name); the path is built only for messages."""


def _rel_of(node: Node | None) -> str:
    names = []
    while node is not None:
        node, name = node
        names.append(name)
    return "/".join(n for n in reversed(names) if n)


def _walk(
    task: Task,
    ctx: _Context,
    split: Callable[[Task], bool] | None = None,
) -> TaskResult:
    """Walk `task.path` (charging the dir itself); `split` may take subtrees off as tasks."""
    res = TaskResult()
    tallies = res.tallies
    areas = res.areas
    links = res.links
    marks = task.marks
    parents = task.parents
    dev = ctx.dev
    s_isdir = stat.S_ISDIR
    fsencode = os.fsencode

    def tally_of(owner: Owner) -> Tally:
        t = tallies.get(owner)
        if t is None:
            t = tallies[owner] = Tally()
        return t

    def area_of(key: str) -> AreaSize:
        a = areas.get(key)
        if a is None:
            a = areas[key] = AreaSize()
        return a

    def unreadable(node: Node, tally: Tally, e: OSError) -> None:
        tally.incomplete = True
        res.problems.append(Problem(ProblemKind.path_unreadable, _rel_of(node), e.strerror or str(e)))

    # Every anchor is [fd, frames still to open through it]; all are closed on the way out.
    anchors: list[list[int]] = []

    def release(anchor: list[int]) -> None:
        anchor[1] -= 1
        if anchor[1] == 0:
            anchors.remove(anchor)
            os.close(anchor[0])

    def linked(ino: int, blocks: int, size: int, owner: Owner, area: AreaSize | None) -> None:
        """An inode with more than one link: once per Docker-size area, charged at the merge."""
        if area is not None:
            seen = area_seen.setdefault(id(area), set())
            if ino not in seen:
                seen.add(ino)
                area.size += size
                area.files += 1
        if ino not in links:
            links[ino] = (blocks * BLOCK, owner)

    def descend(
        name: str,
        identity: tuple[int, int],
        rel: str | None,
        owner: Owner,
        tally: Tally,
        area_key: str | None,
        area: AreaSize | None,
        below: dict[str, Any] | None,
    ) -> None:
        """Queue the subdir `name` of the dir being listed (`here`)."""
        anchor, sub, node, child_anchor = here
        if child_anchor is not None:
            child_anchor[1] += 1
            frame = (child_anchor, name, len(fsencode(name)))
        else:
            anchor[1] += 1
            child = name if sub == "." else f"{sub}/{name}"
            frame = (anchor, child, len(fsencode(child)))
        stack.append((*frame, (node, name), rel, owner, tally, area_key, area, below, identity))

    # Inodes with more than one link seen in each Docker-size area: pkg/directory.Size
    # counts an inode once per call.
    area_seen: dict[int, set[int]] = {}
    # (anchor, path from it, its length in bytes, node, root-relative path when marks
    #  lie below it else None, owner, tally, area key, area, mount points below,
    #  (st_dev, st_ino) as the parent's listing showed it)
    stack: list[tuple[Any, ...]] = []
    here: tuple[Any, ...] = ()
    top_node: Node = (None, task.rel)
    try:
        top_fd = _open_dir(task.path, None, follow=task.identity is None)
    except (FileNotFoundError, NotADirectoryError):
        return res  # removed, or replaced by a file, since it was listed
    except OSError as e:
        if e.errno != errno.ELOOP:  # ELOOP: replaced by a symlink, which is not followed
            unreadable(top_node, tally_of(task.owner), e)
        return res
    anchors.append([top_fd, 1])
    try:
        top = os.fstat(top_fd)
        if top.st_dev != dev or (task.identity is not None and (top.st_dev, top.st_ino) != task.identity):
            return res
        newest = top.st_ctime_ns
        top_tally = tally_of(task.owner)
        top_tally.disk += top.st_blocks * BLOCK
        top_tally.inodes += 1
        count = 1
        stack.append(
            (
                anchors[0], ".", 1, top_node, task.rel, task.owner, top_tally, task.area,
                area_of(task.area) if task.area else None, _skip_tree(ctx.skip, task.path),
                (top.st_dev, top.st_ino),
            )
        )  # fmt: skip
        while stack:
            anchor, sub, sub_len, node, rel, owner, tally, area_key, area, skip, want = stack.pop()
            try:
                fd = _open_dir(sub, anchor[0])
            except OSError as e:
                # Gone, or replaced by a file or a symlink (ELOOP), while we walked: not ours.
                if not isinstance(e, (FileNotFoundError, NotADirectoryError)) and e.errno != errno.ELOOP:
                    unreadable(node, tally, e)
                release(anchor)
                continue
            # Past _ANCHOR_AT bytes this dir anchors its children and stays open for them.
            child_anchor = [fd, 1] if sub_len > _ANCHOR_AT else None
            if child_anchor is not None:
                anchors.append(child_anchor)
            here = (anchor, sub, node, child_anchor)
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != want:
                    continue  # replaced since it was listed
                look = rel is not None and rel in parents
                if not look and skip is None:
                    # Most dirs: one owner and one area for every entry below. _scan_dir lists
                    # and stats them (in C when built: the whole subtree within reach) and
                    # hands back only sums and exceptions.
                    blocks, inodes, files, size, n, dirs, multi, errors, changed = _scan_dir(
                        fd, dev, SCAN_DEPTH
                    )
                    count += n
                    if changed > newest:
                        newest = changed
                    tally.disk += blocks * BLOCK
                    tally.inodes += inodes
                    if area is not None:
                        area.files += files
                        area.size += size
                    for name, ino in dirs:
                        descend(name, (dev, ino), None, owner, tally, area_key, area, None)
                    for ino, nblocks, nsize in multi:
                        linked(ino, nblocks, nsize, owner, area)
                    for name, err in errors:
                        unreadable((node, name), tally, OSError(err, os.strerror(err)))
                    continue
                with os.scandir(fd) as it:
                    for entry in it:
                        name = entry.name
                        below = None
                        if skip is not None:
                            below = skip.get(name)
                            if below is not None and "" in below:
                                continue  # a mount point on this file system: not descended
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        except OSError as e:
                            unreadable((node, name), tally, e)
                            continue
                        if st.st_dev != dev:
                            continue  # a mount point: not ours to count
                        o, t, k, a, child_rel = owner, tally, area_key, area, None
                        if look:
                            child_rel = f"{rel}/{name}" if rel else name
                            mark = marks.get(child_rel)
                            if mark is not None:
                                if mark.owner is not None:
                                    o = mark.owner
                                    t = tally_of(o)
                                if mark.size_key is not None:
                                    k = mark.size_key
                                    a = area_of(k)
                        count += 1
                        if st.st_ctime_ns > newest:
                            newest = st.st_ctime_ns
                        if s_isdir(st.st_mode):
                            identity = (st.st_dev, st.st_ino)
                            if split is not None and child_rel is not None:
                                path = f"{ctx.root}/{child_rel}"
                                if split(Task(path, child_rel, o, k, marks, parents, identity)):
                                    continue
                            t.disk += st.st_blocks * BLOCK
                            t.inodes += 1
                            descend(name, identity, child_rel, o, t, k, a, below)
                        elif st.st_nlink > 1:
                            linked(st.st_ino, st.st_blocks, st.st_size, o, a)
                        else:
                            if a is not None:
                                a.files += 1
                                a.size += st.st_size
                            t.disk += st.st_blocks * BLOCK
                            t.inodes += 1
            except OSError as e:  # the listing itself failed part-way
                if not isinstance(e, FileNotFoundError):  # else removed while listed: gone
                    unreadable(node, tally, e)
            finally:
                if child_anchor is not None:
                    release(child_anchor)
                else:
                    os.close(fd)
                release(anchor)
        res.entries = count
        res.newest = newest
        return res
    finally:
        for anchor in anchors:
            os.close(anchor[0])


def usage(path: str) -> int:
    """Allocated bytes under `path` (itself included), each inode once, as containerd's
    fs.DiskUsage counts them: the walk's own rules (no symlink followed, no other file
    system, no mount point entered, dirs opened only through their parents)."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_blocks * BLOCK
    ctx = _Context(path, top.st_dev, mount_points(path))
    res = _walk(Task(path, "", METADATA, None, {}, frozenset(), (top.st_dev, top.st_ino)), ctx)
    return sum(t.disk for t in res.tallies.values()) + sum(b for b, _ in res.links.values())


@record
class DirUsage:
    """The figures of one dir walked as the report walks a layer dir."""

    disk: int
    """Allocated bytes of everything in it, itself included, each inode once."""
    size: int
    """Docker's size of the sized dir below it."""
    files: int
    """Non-directory inodes of the sized dir (a hard-linked inode once)."""
    complete: bool
    problems: list[Problem]
    """With absolute paths."""


def dir_usage(path: str, identity: tuple[int, int], sized: str | None, skip: frozenset[str]) -> DirUsage:
    """Walk the dir `path` as a task of the report's walk, opened only as the inode `identity`.

    `sized` names the dir below `path` whose Docker size is counted ("diff"), "" for
    `path` itself, None for none; `skip` holds the mount points not to enter. A dir
    that is not `identity` any more gives zeros.
    """
    key = "sized"
    marks = {f"{path}/{sized}": Mark(None, key)} if sized else {}
    parents = frozenset({path}) if marks else frozenset()
    task = Task(path, path, METADATA, key if sized == "" else None, marks, parents, identity)
    res = _walk(task, _Context(path, identity[0], skip))
    area = res.areas.get(key, AreaSize())
    return DirUsage(
        disk=sum(t.disk for t in res.tallies.values()) + sum(b for b, _ in res.links.values()),
        size=area.size,
        files=area.files,
        complete=not res.problems and not any(t.incomplete for t in res.tallies.values()),
        problems=res.problems,
    )


def _sub_marks(task_rel: str, marks: Mapping[str, Mark]) -> dict[str, Mark]:
    prefix = task_rel + "/"
    return {k: v for k, v in marks.items() if k.startswith(prefix)}


def measure(
    root: str,
    marks: Mapping[str, Mark],
    parents: frozenset[str],
    progress: Progress | None = None,
    *,
    split_parents: frozenset[str] = frozenset(),
    jobs: int = 1,
    cache: TaskCache | None = None,
    skip_owner: Callable[[Owner], bool] | None = None,
) -> Measurement:
    """Walk `root` once and charge every inode to the owner the marks give its place.

    Dirs directly below a path in `split_parents` are walked as tasks of their own,
    in `jobs` processes; `cache` may answer a task without walking it; owners for
    which `skip_owner` is true are not walked at all (their disk stays unknown).
    """
    root = root.rstrip("/") or "/"
    top = os.stat(root)
    ctx = _Context(root, top.st_dev, mount_points(root))
    tasks: list[Task] = []
    results: list[TaskResult | None] = []
    pending: list[int] = []
    skipped: set[Owner] = set()
    walked = [0, 0]

    def advance(res: TaskResult) -> TaskResult:
        walked[0] += res.entries
        walked[1] += sum(t.disk for t in res.tallies.values()) + sum(b for b, _ in res.links.values())
        if progress is not None:
            progress(walked[0], walked[1])
        return res

    # Both cores busy from the start: with enough tasks in sight, the walkers start
    # before the walk of the root, and each task goes to them as soon as it is split off.
    # Only a walk of image layers pays for them: writable layers and volumes alone (a
    # cached or quick run) are walked faster in this process than a pool starts.
    pool = None
    running: dict[int, Any] = {}
    if (
        jobs > 1
        and (cache is None or not cache.complete())
        and skip_owner is None
        and _expected_tasks(marks, split_parents) >= MIN_TASKS_FOR_POOL
    ):
        pool = _start_pool(jobs)

    def split(task: Task) -> bool:
        parent = task.rel.rsplit("/", 1)[0] if "/" in task.rel else ""
        if parent not in split_parents:
            return False
        if skip_owner is not None and skip_owner(task.owner):
            skipped.add(task.owner)
            return True
        task = dataclasses.replace(task, marks=_sub_marks(task.rel, marks))
        hit = cache.lookup(task) if cache is not None else None
        tasks.append(task)
        results.append(hit)
        if hit is None:
            pending.append(len(tasks) - 1)
            if pool is not None:
                running[len(tasks) - 1] = pool.apply_async(_run_task, (task, ctx))
        return True

    try:
        try:
            main = advance(_walk(Task(root, "", METADATA, None, dict(marks), parents), ctx, split))
            for hit in results:
                if hit is not None:
                    advance(hit)
            if (
                pool is None
                and jobs > 1
                and len(pending) >= MIN_TASKS_FOR_POOL
                and any(tasks[i].owner.category == Category.images for i in pending)
            ):
                pool = _start_pool(jobs)
                running = {i: pool.apply_async(_run_task, (tasks[i], ctx)) for i in pending}
            if pool is None and jobs > 1 and len(pending) > 1 and _scan_dir is not scan_dir_py:
                # The C scan releases the GIL: threads walk these tasks side by side.
                walked_here = _walk_threads([tasks[i] for i in pending], ctx, jobs)
                running = {i: walked_here[n] for n, i in enumerate(pending)}
            for i in pending:
                if pool is not None:
                    results[i] = advance(running[i].get())
                else:
                    results[i] = advance(running[i] if i in running else _walk(tasks[i], ctx))
            if pool is not None:
                pool.close()
        except BaseException:
            # An error, Ctrl-C or an audit's --timeout: stop the walkers now, queued
            # tasks included, instead of waiting for them.
            if pool is not None:
                pool.terminate()
            raise
        finally:
            if pool is not None:
                pool.join()
    finally:
        if progress is not None:
            progress(-1, -1)  # the walk is over
    if cache is not None:
        for i in pending:
            cache.store(tasks[i], results[i])  # type: ignore[arg-type]
    return _merge([main, *(r for r in results if r is not None)], frozenset(skipped))


def _expected_tasks(marks: Mapping[str, Mark], split_parents: frozenset[str]) -> int:
    """How many dirs the index knows directly below the split parents: tasks to come."""
    return sum(1 for rel in marks if "/" in rel and rel.rsplit("/", 1)[0] in split_parents)


def _start_pool(jobs: int) -> Any:
    # Imported here: a small root never pays for starting a pool.
    from multiprocessing import get_context

    return get_context("fork").Pool(jobs)


def _walk_threads(tasks: list[Task], ctx: _Context, jobs: int) -> list[TaskResult]:
    """`tasks` walked by `jobs` threads (this one among them), results in their order.

    For the few tasks of a cached or quick run: threads start at once, where a pool
    of processes costs more than it saves.
    """
    import threading

    results: dict[int, TaskResult] = {}
    failed: list[BaseException] = []
    order = iter(range(len(tasks)))
    lock = threading.Lock()

    def work() -> None:
        while not failed:
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = _walk(tasks[i], ctx)
            except BaseException as e:  # raised again in the calling thread
                failed.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(jobs, len(tasks)) - 1)]
    for t in threads:
        t.start()
    try:
        work()
    except BaseException as e:  # Ctrl-C, an audit's --timeout: the others stop at their next task
        failed.append(e)
        raise
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return [results[i] for i in range(len(tasks))]


def _run_task(task: Task, ctx: _Context) -> TaskResult:
    """What a walker process runs for one task."""
    return _walk(task, ctx)


def _merge(results: list[TaskResult], skipped: frozenset[Owner]) -> Measurement:
    tallies: dict[Owner, Tally] = {}
    areas: dict[str, AreaSize] = {}
    problems: list[Problem] = []
    seen: set[int] = set()
    entries = 0
    for res in results:
        entries += res.entries
        problems.extend(res.problems)
        for owner, t in res.tallies.items():
            mine = tallies.setdefault(owner, Tally())
            mine.disk += t.disk
            mine.inodes += t.inodes
            mine.incomplete = mine.incomplete or t.incomplete
        for key, a in res.areas.items():
            ma = areas.setdefault(key, AreaSize())
            ma.size += a.size
            ma.files += a.files
        for ino, (blocks, owner) in res.links.items():
            if ino in seen:
                continue
            seen.add(ino)
            mine = tallies.setdefault(owner, Tally())
            mine.disk += blocks
            mine.inodes += 1
    return Measurement(
        tallies=tallies,
        sizes={k: v.size for k, v in areas.items()},
        files={k: v.files for k, v in areas.items()},
        root_disk=sum(t.disk for t in tallies.values()),
        problems=problems,
        skipped=skipped,
        entries=entries,
    )
