"""Remember the walk of committed image layers: their contents never change.

An entry is keyed by the layer's cache ID and proven current by what identifies
its dir on disk: device, inode, ctime and mtime of `overlay2/<cache-id>` and of
its `diff/`. A layer removed and re-created, or touched by anything, gets a new
inode or ctime and is walked again. The file is JSON, written atomically, and
thrown away whole if it is corrupt, of another schema, or of another root.
Writable layers, volumes, logs and orphans are never cached.

A layer is cached only once it has settled: the newest ctime of any inode in it
older than the kernel's writeback window. Until its dirty pages are written back,
a file system may still allocate blocks for a file (delayed allocation, an extent
block of ext4), changing st_blocks but neither ctime nor mtime: a layer cached
before that would be served short of `du` ever after.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .measure import AreaSize, Tally, Task, TaskCache, TaskResult

SCHEMA = 2
"""2: entries hold the layer's newest ctime; entries of 1 may predate writeback."""
SETTLE_MARGIN = 120.0
"""Seconds past the writeback window, for a flusher running late under load."""
SETTLE_FALLBACK = 900.0
"""Seconds to wait when the window cannot be read, or writeback is not periodic."""


def settle_seconds() -> float:
    """How long after its newest change a layer may still change on disk, in seconds.

    `$DOCKERDU_SETTLE_SECONDS` if set; else the kernel's writeback window: dirty
    data older than `vm.dirty_expire_centisecs` is written back when the flusher
    next wakes (every `vm.dirty_writeback_centisecs`), plus SETTLE_MARGIN.
    """
    override = os.environ.get("DOCKERDU_SETTLE_SECONDS")
    if override:
        with contextlib.suppress(ValueError):
            return max(0.0, float(override))
    try:
        expire = int(Path("/proc/sys/vm/dirty_expire_centisecs").read_text())
        interval = int(Path("/proc/sys/vm/dirty_writeback_centisecs").read_text())
    except (OSError, ValueError):
        return SETTLE_FALLBACK
    if expire < 0 or interval <= 0:  # 0: no periodic writeback, dirty pages wait for pressure
        return SETTLE_FALLBACK
    return (expire + interval) / 100 + SETTLE_MARGIN


def default_cache_dir() -> Path:
    """`$DOCKERDU_CACHE_DIR`, else `/var/cache/dockerdu` as root, else the XDG cache dir."""
    if os.environ.get("DOCKERDU_CACHE_DIR"):
        return Path(os.environ["DOCKERDU_CACHE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/dockerdu")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dockerdu"


def _fingerprint(path: str, content: str) -> list[int] | None:
    try:
        d = os.lstat(path)
        diff = os.lstat(os.path.join(path, content))
    except OSError:
        return None
    return [d.st_dev, d.st_ino, d.st_ctime_ns, d.st_mtime_ns, diff.st_ino, diff.st_ctime_ns, diff.st_mtime_ns]


class LayerCache(TaskCache):
    """Walk results of image-layer dirs under one root, kept in one JSON file."""

    def __init__(
        self,
        directory: Path,
        root: str,
        layers: Mapping[str, str],
        settled_before: float | None = None,
        content: str = "diff",
    ) -> None:
        """`layers` maps each cacheable dir (root-relative `overlay2/<cache-id>`) to its cache ID;
        `content` is the subdir holding a layer's files, whose identity proves the dir unchanged.

        Only layers whose newest ctime is before `settled_before` (seconds since the
        epoch; default: now less settle_seconds()) are cached or served from the cache.
        """
        if settled_before is None:
            settled_before = time.time() - settle_seconds()
        self.settled_before_ns = int(settled_before * 1e9)
        self.root = root
        self.layers = layers
        self.content = content
        self.path = directory / f"layers-{hashlib.sha256(root.encode()).hexdigest()[:16]}.json"
        self.entries: dict[str, dict[str, Any]] = {}
        self.used: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self._root_id = self._identify(root)
        self._load()

    @staticmethod
    def _identify(root: str) -> list[int]:
        st = os.stat(root)
        return [st.st_dev, st.st_ino]

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read(64 << 20))
        except (OSError, ValueError):
            return
        if (
            not isinstance(doc, dict)
            or doc.get("schema") != SCHEMA
            or doc.get("root") != self.root
            or doc.get("root_id") != self._root_id
            or not isinstance(doc.get("layers"), dict)
        ):
            return
        self.entries = {k: v for k, v in doc["layers"].items() if isinstance(v, dict)}

    def lookup(self, task: Task) -> TaskResult | None:
        """The remembered walk of a layer dir, if the dir is provably the same."""
        cache_id = self.layers.get(task.rel)
        if cache_id is None:
            return None
        entry = self.entries.get(cache_id)
        if entry is None or entry.get("fp") != _fingerprint(task.path, self.content):
            return None
        newest = entry.get("newest")
        if not isinstance(newest, int) or newest >= self.settled_before_ns:
            return None
        try:
            result = TaskResult(
                tallies={task.owner: Tally(int(entry["disk"]), int(entry["inodes"]))},
                areas={f"layer:{cache_id}": AreaSize(int(entry["size"]), int(entry["files"]))},
                links={int(i): (int(b), task.owner) for i, b in entry["links"]},
                entries=int(entry["entries"]),
                newest=newest,
            )
        except (KeyError, TypeError, ValueError):
            return None
        self.used[cache_id] = entry
        self.hits += 1
        return result

    def complete(self) -> bool:
        """Whether every layer has an entry (each still to be proven current by lookup)."""
        return all(cache_id in self.entries for cache_id in self.layers.values())

    def store(self, task: Task, result: TaskResult) -> None:
        """Remember a layer dir's walk, unless anything about it was incomplete or it has not settled."""
        cache_id = self.layers.get(task.rel)
        if cache_id is None or result.newest >= self.settled_before_ns:
            return
        fp = _fingerprint(task.path, self.content)
        if fp is None or result.problems or set(result.tallies) != {task.owner}:
            return
        tally = result.tallies[task.owner]
        area = result.areas.get(f"layer:{cache_id}", AreaSize())
        if tally.incomplete or any(owner != task.owner for _, owner in result.links.values()):
            return
        self.used[cache_id] = {
            "fp": fp,
            "disk": tally.disk,
            "inodes": tally.inodes,
            "size": area.size,
            "files": area.files,
            "entries": result.entries,
            "newest": result.newest,
            "links": [[i, b] for i, (b, _) in result.links.items()],
        }

    def save(self) -> None:
        """Write the entries used by this run (dropping removed layers), atomically."""
        if self.used == self.entries:
            return
        doc = {"schema": SCHEMA, "root": self.root, "root_id": self._root_id, "layers": self.used}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        import tempfile  # here: most runs find the cache current and write nothing

        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".layers-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
