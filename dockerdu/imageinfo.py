"""Why is this image big: its layers, the instruction behind each, sharing and wasted bytes.

Three parts, kept apart:

- readers: `read_history` reads an image config's `history` (the imagedb reader
  keeps only what the report needs); `walk_layers` measures each layer dir with
  the report's own walk and walks the layers once more, merged as overlayfs
  merges them, returning plain figures;
- analysis: `resolve_refs` and `analyze_images` join those with the Index into
  `ImageInfo` records; sizes, sharing and what removal frees are the report's
  accounting (`account.sharing`, `image_report`, `removal`);
- rendering lives in `dockerdu.render.image`.

The merged walk follows measure.py's rules and opens dirs as it does
(`measure.open_listed`): each relative to an open ancestor, never through a
symlink, only while it is the inode its parent's listing showed, so any depth is
walked and a dir swapped meanwhile is left out; never another file system or a
mount point entered; xattrs read through the dir's own fd. Beside the allocated
bytes (st_blocks * 512 of every inode, directories included, a hard-linked inode
once per layer), Docker's size (pkg/directory.Size): apparent sizes of
non-directories, each inode once, a symlink as the length of its target.

Hidden bytes ("wasted"): overlay2 stores a deletion as a 0:0 character device
(a whiteout) and a directory whose lower contents are hidden with the xattr
`trusted.overlay.opaque` = "y". An entry of a lower layer is hidden when a
higher layer of the same image has a whiteout, a non-directory or an opaque
directory at its path or at one of its parents, or a non-directory where it
has a directory; its bytes stay stored in the lower layer.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import heapq
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .account import Sharing, image_report, removal, sharing
from .chain import ancestry
from .fsread import ReadError, parse_json, read_bytes
from .ids import ChainID, ContainerID, ImageID
from .imagedefaults import DEFAULT_OFFENDERS
from .index import ImageView, Index, Owner
from .locate import Location
from .measure import (
    ANCHOR_AT,
    BLOCK,
    Anchors,
    DirUsage,
    Measurement,
    Tally,
    _skip_tree,
    dir_usage,
    mount_points,
    open_listed,
)
from .model import Category, Problem, ProblemKind
from .scan import Options, index_root
from .stores.graphdriver.drivers import driver as driver_row

SCHEMA = "dockerdu.image/1"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
"""Docker's overlay2 marks opaque dirs with the trusted xattr; rootless (userxattr) with the user one."""
WHITEOUT_PREFIX = ".wh."
OPAQUE_FILE = ".wh..wh..opq"
FUSE_OPAQUE_XATTR = "user.fuseoverlayfs.opaque"
"""fuse-overlayfs also reads (and, where it cannot make a 0:0 device or set a trusted xattr,
writes) whiteouts as `.wh.<name>` files, opaque dirs as a `.wh..wh..opq` file or this xattr."""


class RefError(Exception):
    """A REF names no image Docker would load, or more than one; the message is one line."""


# --------------------------------------------------------------------------- plain records


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of the image config's `history`, as `docker history` shows it."""

    created: str | None
    created_by: str
    comment: str
    empty_layer: bool
    layer: int | None
    """Index (base = 0) of the layer this step made, None for a step that made none."""


@dataclass(frozen=True)
class TopPath:
    """A file or directory a layer adds, with its bytes in that layer."""

    path: str
    kind: str
    """`file`, `dir`, `symlink` or `other`."""
    size: int
    """Apparent bytes (Docker's size rules); of a dir, everything this layer has below it."""
    disk: int
    """Allocated bytes; of a dir, its own blocks and everything this layer has below it."""


@dataclass(frozen=True)
class Offender:
    """Bytes a layer wrote that a later layer of the same image hides."""

    path: str
    kind: str
    """`file`, `dir`, `symlink` or `other`: what the lower layer holds at `path`."""
    files: int
    size: int
    disk: int
    written_by: int
    """Index of the layer that holds the bytes."""
    hidden_by: int
    """Index of the layer that hides them."""
    how: str
    """`deleted` (a whiteout), `opaque` (an opaque dir above), `overwritten` (another entry at the path)."""


@dataclass(frozen=True)
class LayerWalk:
    """What the walk found in one layer's dir."""

    size: int
    """Docker's size of diff/, as walked now."""
    files: int
    """Non-directory inodes in diff/ (whiteouts included, a hard-linked inode once)."""
    disk: int
    """Allocated bytes of overlay2/<cache-id> (everything in it) and its l/ link."""
    top: tuple[TopPath, ...]
    complete: bool


@dataclass(frozen=True)
class WasteWalk:
    """Hidden bytes of one image, from the same walk."""

    size: int
    disk: int
    files: int
    stored: int
    """Sum of the layers' walked Docker sizes."""
    offenders: tuple[Offender, ...]
    complete: bool


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image, base first."""

    index: int
    chain_id: str
    diff_id: str
    cache_id: str
    created_by: str | None
    """The instruction (history `created_by`), None when it cannot be known."""
    created: str | None
    comment: str | None
    size: int | None
    """layerdb `size`: Docker's figure for this layer alone."""
    disk: int | None
    """Allocated bytes of overlay2/<cache-id> and its l/ link; None when the dir is missing."""
    files: int | None
    shared_with: tuple[str, ...]
    """Other images that hold this layer: their tags, `<none>@<id>` when untagged."""
    containers: tuple[str, ...]
    """Containers whose layer stack holds this layer."""
    build_cache: bool
    """BuildKit's build cache holds this layer (it stays until `docker builder prune`)."""
    freed: bool
    """Removing this image alone would delete this layer."""
    top: tuple[TopPath, ...]


@dataclass(frozen=True)
class Waste:
    """Bytes stored in lower layers that later layers of the image hide."""

    size: int | None
    disk: int | None
    files: int | None
    stored: int | None
    efficiency: float | None
    """Bytes visible in the final filesystem / bytes stored (Docker sizes), 1.0 for an empty image."""
    offenders: tuple[Offender, ...]


@dataclass(frozen=True)
class ImageInfo:
    """One image, its layers and its totals."""

    ref: str
    id: str
    tags: tuple[str, ...]
    digests: tuple[str, ...]
    created: str | None
    listed: bool
    size: int
    shared_size: int
    unique_size: int
    disk: int | None
    unique_disk: int | None
    """As the report: allocated bytes of the layers no other image and no container uses."""
    containers: int
    free_size: int
    """Docker's size of the layers removing this image alone would delete."""
    free_disk: int | None
    removed_with: tuple[str, ...]
    """Untagged parent images (classic builder) that `docker rmi` removes along with it."""
    layers: tuple[LayerInfo, ...]
    history: tuple[HistoryEntry, ...]
    wasted: Waste
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class ImageDoc:
    """What `dockerdu image` reports."""

    root: str
    root_source: str
    generated_at: str
    version: str
    images: tuple[ImageInfo, ...]
    notes: tuple[str, ...] = ()
    schema: str = SCHEMA


# --------------------------------------------------------------------------- REF -> image


def _familiar(ref: str) -> str:
    """A reference as repositories.json spells it: Docker Hub's prefixes dropped, `:latest` added."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


def _label(view: ImageView) -> str:
    return ", ".join(view.tags) or f"<none>@{view.record.id[7:19]}"


def resolve_ref(index: Index, ref: str) -> ImageID:
    """The image `ref` names, as Docker resolves it: a tag or digest reference, a full ID, an ID prefix."""
    if not ref:
        raise RefError("an empty REF names no image")
    name = _familiar(ref)
    by_name = [v for v in index.images.values() if name in v.tags or name in v.digests]
    if not by_name:
        q = ref.lower().removeprefix("sha256:")
        if q and all(c in "0123456789abcdef" for c in q):
            by_name = [v for v in index.images.values() if v.record.id[7:].startswith(q)]
            loaded = [v for v in by_name if v.loaded]
            if len(loaded) > 1:
                names = "; ".join(sorted(f"{v.record.id[7:19]} ({_label(v)})" for v in loaded[:5]))
                raise RefError(f"{ref!r} is ambiguous: it matches {len(loaded)} images: {names}")
            by_name = loaded or by_name
    if not by_name:
        raise RefError(f"no image matches {ref!r}")
    view = by_name[0]
    if not view.loaded:
        raise RefError(
            f"{ref!r} names image {view.record.id[7:19]} whose layer chain is incomplete "
            "(Docker no longer loads it)"
        )
    return view.record.id


def resolve_refs(index: Index, refs: Sequence[str]) -> list[tuple[str, ImageID]]:
    """Every REF with its image, an image once (under its first REF); RefError names every bad REF."""
    out: list[tuple[str, ImageID]] = []
    errors: list[str] = []
    seen: set[ImageID] = set()
    for ref in refs:
        try:
            image_id = resolve_ref(index, ref)
        except RefError as e:
            errors.append(str(e))
            continue
        if image_id not in seen:
            seen.add(image_id)
            out.append((ref, image_id))
    if errors:
        raise RefError("; ".join(errors))
    return out


# --------------------------------------------------------------------------- history


def _history_entry(raw: Any) -> tuple[str | None, str, str, bool]:
    if not isinstance(raw, dict):
        raise ReadError("has a history entry that is not an object")
    created = raw.get("created")
    created_by = raw.get("created_by", "")
    comment = raw.get("comment", "")
    empty = raw.get("empty_layer", False)
    if not isinstance(created_by, str) or not isinstance(comment, str) or not isinstance(empty, bool):
        raise ReadError("has a malformed history entry")
    return (created if isinstance(created, str) else None, created_by, comment, empty)


def read_history(store: Path, image_id: ImageID) -> list[tuple[str | None, str, str, bool]]:
    """The config's `history` as (created, created_by, comment, empty_layer), oldest first.

    Read as the imagedb reader reads configs (`fsread`, its digest checked); an
    absent `history` is an empty list; a damaged file raises ReadError.
    """
    return read_config_history(store / "imagedb" / "content" / "sha256" / image_id[7:], image_id)


def read_config_history(path: Path, digest: str) -> list[tuple[str | None, str, str, bool]]:
    """`read_history` of the image config at `path` (an imagedb file or a content-store blob)."""
    data = read_bytes(path)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ReadError("does not match its digest (truncated or altered)")
    doc = parse_json(data)
    if not isinstance(doc, dict):
        raise ReadError("is not a JSON object")
    raw = doc.get("history")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ReadError("has a history that is not a list")
    return [_history_entry(h) for h in raw]


def match_history(
    raw: Sequence[tuple[str | None, str, str, bool]], layers: int
) -> tuple[tuple[HistoryEntry, ...], list[int | None], str | None]:
    """Pair history entries with layers as `docker history` does.

    The i-th entry without `empty_layer` made the i-th layer. Returns the entries,
    for each layer the index of its entry (None: not known), and a note when the
    history does not fit the layers.
    """
    producing = [i for i, h in enumerate(raw) if not h[3]]
    note = None
    if len(producing) > layers:
        # Docker refuses: "too many non-empty layers in History section".
        note = f"the history names {len(producing)} layers for {layers}; no instruction can be matched"
        producing = []
    elif len(producing) < layers:
        note = f"the history names {len(producing)} of {layers} layers; the others are <missing>"
    layer_of = {h: n for n, h in enumerate(producing)}
    entries = tuple(
        HistoryEntry(created, created_by, comment, empty, layer_of.get(i))
        for i, (created, created_by, comment, empty) in enumerate(raw)
    )
    per_layer: list[int | None] = [*producing, *([None] * (layers - len(producing)))]
    return entries, per_layer, note


# --------------------------------------------------------------------------- the walk


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int, wh_files: bool = False) -> bool | None:
    """Whether the dir open as `fd` is opaque; None when its xattrs cannot be read.

    `wh_files`: fuse-overlayfs's markers count too (its xattr, a `.wh..wh..opq` file).
    """
    unknown = False
    if wh_files:
        try:
            os.stat(OPAQUE_FILE, dir_fd=fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            pass
        except OSError:
            unknown = True
    for name in (*OPAQUE_XATTRS, FUSE_OPAQUE_XATTR) if wh_files else OPAQUE_XATTRS:
        try:
            value = os.getxattr(fd, name)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                continue
            unknown = True
            continue
        if value == b"y":
            return True
    return None if unknown else False


CHAIN_SHARE = 0.9
"""A dir whose one child holds this share of its size is only the way to that child (`--top`)."""


def _candidates(top_n: int) -> int:
    """Entries kept per layer for `--top N`: more than N, so chains of parents can be skipped."""
    return 4 * top_n + 16 if top_n > 0 else 0


def _past_chains(items: list[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
    """The N largest (size, disk, path, kind) entries, leaving out each dir that is only the
    chain of parents of a larger entry: one of its children holds nearly all of it
    (`/srv/` of `/srv/node_modules/`); the deepest such dir stays."""
    out = []
    for size, disk, path, kind in items:
        prefix = path + "/"
        depth = prefix.count("/")
        if kind == "dir" and any(
            p.startswith(prefix) and p.count("/") == depth and s >= CHAIN_SHARE * size for s, _, p, _ in items
        ):
            continue
        out.append((size, disk, path, kind))
    return out[:n]


class _Heap:
    """The N largest items seen, in bounded memory."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[Any, ...]] = []

    def push(self, item: tuple[Any, ...]) -> None:
        if self.n <= 0:
            return
        if len(self.items) < self.n:
            heapq.heappush(self.items, item)
        elif item > self.items[0]:
            heapq.heapreplace(self.items, item)

    def largest(self) -> list[tuple[Any, ...]]:
        """Largest first; equal sizes by path."""
        return sorted(self.items, key=lambda t: (-t[0], -t[1], t[2]))


@dataclass
class _Layer:
    """Accumulators of one layer during the merged walk."""

    dev: int
    diff: str
    """The layer's diff/ path, for messages only: nothing is opened through it."""
    complete: bool = True
    top: _Heap = field(default_factory=lambda: _Heap(0))
    links: dict[int, list[Any]] = field(default_factory=dict)
    """Inodes with several names: ino -> [size, disk, kind, visible, first hidden (path, by, how) or None]."""


@dataclass(slots=True)
class _Hidden:
    """A hidden subtree in the making: one offender."""

    path: str
    kind: str
    layer: int
    by: int
    how: str
    files: int = 0
    size: int = 0
    disk: int = 0


_At = tuple[list[int], str, tuple[int, int], "dict[str, Any] | None"]
"""Where a queued dir is: (the anchor it is opened from, its path from there, (st_dev, st_ino) as
its parent's listing showed it, the mount points below it as a tree of names or None)."""
_Dirs = list[tuple[int, _At, int]]
"""A dir as the layers hold it: (layer, where, allocated bytes of the dir itself), top layer first."""
_Pending = tuple[str, _Dirs, "_Hidden | None"]
"""A subdirectory still to enter, kept small: (root-relative path, its dirs, the hidden subtree it is in)."""


@dataclass(slots=True)
class _Open:
    """A dir open for listing, and where its children are opened from."""

    layer: int
    fd: int
    at: _At
    own: list[int] | None
    """The dir itself as an anchor, when its path from its anchor grew long; else None."""


@dataclass(slots=True)
class _Frame:
    """A directory being walked: its layers (top first), what remains to enter, its per-layer totals."""

    rel: str
    dirs: _Dirs
    hidden: _Hidden | None
    pending: list[_Pending] = field(default_factory=list)
    totals: dict[int, list[int]] = field(default_factory=dict)
    """layer -> [size, disk] of this dir in that layer, its own blocks included."""

    def __post_init__(self) -> None:
        for layer, _, blocks in self.dirs:
            self.totals[layer] = [0, blocks]


@dataclass(slots=True)
class _Name:
    """One name of a merged dir, as the layers above the current one left it."""

    hider: tuple[int, str] | None = None
    dirs: _Dirs = field(default_factory=list)
    opaque_checked: bool = False


class _Walk:
    """One merged walk of an image's layer dirs (see the module doc for the rules).

    Every dir is opened as the report's walk opens it (measure.open_listed): relative
    to an open ancestor, never through a symlink, and only when it is still the inode
    its parent's listing showed; a dir swapped since is not ours and is left out.
    """

    def __init__(
        self,
        diffs: Sequence[str | None],
        top_n: int,
        offenders_n: int,
        skip: frozenset[str],
        dev: int | None,
        before_open: Callable[[str], None] | None = None,
        wh_files: bool = False,
    ) -> None:
        self.top_n = top_n
        self.wh_files = wh_files
        self.skip = skip
        self.dev = dev
        self.before_open = before_open
        self.anchors = Anchors()
        self.layers: list[_Layer | None] = []
        self.roots: _Dirs = []
        self.offenders = _Heap(offenders_n)
        self.problems: list[Problem] = []
        self.waste_size = 0
        self.waste_disk = 0
        self.waste_files = 0
        for n, d in enumerate(diffs):
            self.layers.append(self._root(n, d) if d is not None else None)
        self.waste_complete = all(x is not None for x in self.layers)

    def _root(self, layer: int, diff: str) -> _Layer | None:
        """Open the layer dir holding `diff` (never through a symlink) and queue its diff/."""
        parent, name = os.path.split(diff)
        try:
            st = os.lstat(parent)
            if not stat.S_ISDIR(st.st_mode) or (self.dev is not None and st.st_dev != self.dev):
                return None
            fd = open_listed(parent, None, (st.st_dev, st.st_ino))
            if fd is None:
                return None
            try:
                dst = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                os.close(fd)
                return None
        except OSError:
            return None
        if not stat.S_ISDIR(dst.st_mode) or dst.st_dev != st.st_dev:
            os.close(fd)
            return None
        at: _At = (self.anchors.add(fd), name, (dst.st_dev, dst.st_ino), _skip_tree(self.skip, diff))
        self.roots.insert(0, (layer, at, 0))  # top first
        return _Layer(dev=dst.st_dev, diff=diff, top=_Heap(_candidates(self.top_n)))

    # -- helpers

    def _unreadable(self, layer: int, path: str, e: OSError) -> None:
        acc = self.layers[layer]
        if acc is not None:
            acc.complete = False
        self.waste_complete = False
        self.problems.append(Problem(ProblemKind.path_unreadable, path, e.strerror or str(e)))

    def _enter(self, layer: int, at: _At, rel: str) -> _Open | None:
        """Open a queued dir; None when it is gone or is not the dir that was listed."""
        anchor, sub, want, _ = at
        acc = self.layers[layer]
        assert acc is not None
        try:
            fd = open_listed(sub, anchor[0], want)
        except OSError as e:
            fd = None
            self._unreadable(layer, acc.diff + rel, e)
        if fd is None:
            self.anchors.release(anchor)
            return None
        own = self.anchors.add(fd) if len(os.fsencode(sub)) > ANCHOR_AT else None
        return _Open(layer, fd, at, own)

    def _leave(self, d: _Open) -> None:
        if d.own is not None:
            self.anchors.release(d.own)
        else:
            os.close(d.fd)
        self.anchors.release(d.at[0])

    def _child(self, d: _Open, name: str, st: os.stat_result) -> _At:
        """Where the subdir `name` of the open dir `d` will be opened from (a reference held)."""
        below = d.at[3]
        sub_below = below.get(name) if below is not None else None
        if d.own is not None:
            d.own[1] += 1
            return (d.own, name, (st.st_dev, st.st_ino), sub_below)
        anchor = d.at[0]
        anchor[1] += 1
        return (anchor, f"{d.at[1]}/{name}", (st.st_dev, st.st_ino), sub_below)

    def _list(self, d: _Open, rel: str) -> Iterator[tuple[str, os.stat_result, bool]]:
        """(name, lstat, is a whiteout) of the entries on the layer's file system, never a mount point.

        A `.wh.<name>` file (fuse-overlayfs, when `wh_files`) is the whiteout of <name>.
        """
        acc = self.layers[d.layer]
        assert acc is not None
        below = d.at[3]
        try:
            it = os.scandir(d.fd)
        except OSError as e:
            self._unreadable(d.layer, acc.diff + rel, e)
            return
        with it:
            while True:
                try:
                    entry = next(it)
                except StopIteration:
                    return
                except OSError as e:  # the listing itself failed part-way
                    self._unreadable(d.layer, acc.diff + rel, e)
                    return
                name = entry.name
                try:
                    st = entry.stat(follow_symlinks=False)  # fstatat relative to the dir's fd
                except FileNotFoundError:
                    continue
                except OSError as e:
                    self._unreadable(d.layer, f"{acc.diff}{rel}/{name}", e)
                    continue
                if st.st_dev != acc.dev:
                    continue  # a mount point: not ours to count
                if below is not None and stat.S_ISDIR(st.st_mode) and "" in below.get(name, {}):
                    continue  # a mount point on this file system: not entered
                if self.wh_files and name.startswith(WHITEOUT_PREFIX) and not stat.S_ISDIR(st.st_mode):
                    # The opaque marker stays under its own name: it whites out nothing.
                    yield (name if name == OPAQUE_FILE else name[len(WHITEOUT_PREFIX) :]), st, True
                    continue
                yield name, st, _is_whiteout(st)

    def _opaque(self, upper: _Open, name: str, want: tuple[int, int], rel: str) -> bool:
        """Whether the subdir `name` of the open dir `upper` is opaque, read through its own fd."""
        acc = self.layers[upper.layer]
        assert acc is not None
        try:
            fd = open_listed(name, upper.fd, want)
        except OSError:
            fd, opaque = None, None
        else:
            if fd is None:
                return False  # gone or swapped: it is left out when entered
            try:
                opaque = _is_opaque(fd, self.wh_files)
            finally:
                os.close(fd)
        if opaque is None:
            self.waste_complete = False
            self.problems.append(
                Problem(ProblemKind.path_unreadable, acc.diff + rel, "its overlay xattrs cannot be read")
            )
        return bool(opaque)

    def _offender(self, o: Offender) -> None:
        self.offenders.push((o.size, o.disk, o.path, o.written_by, o))

    def _file(
        self, frame: _Frame, layer: int, rel: str, st: os.stat_result, wh: bool,
        hide: tuple[int, str] | None, hidden: _Hidden | None,
    ) -> None:  # fmt: skip
        """A non-directory: its layer's figures, and hidden bytes when `hide` (or the frame) hides it."""
        acc = self.layers[layer]
        assert acc is not None
        size, disk = st.st_size, st.st_blocks * BLOCK
        kind = _kind(st.st_mode)
        if st.st_nlink > 1:
            state = acc.links.get(st.st_ino)
            if state is None:
                state = acc.links[st.st_ino] = [size, disk, kind, False, None]
                self._count(frame, layer, acc, rel, size, disk, kind, wh)
            if hide is None and hidden is None:
                state[3] = True
            elif state[4] is None:
                if hidden is not None:
                    state[4] = (rel, hidden.by, hidden.how)
                else:
                    assert hide is not None
                    state[4] = (rel, hide[0], hide[1])
            return
        self._count(frame, layer, acc, rel, size, disk, kind, wh)
        if (hide is None and hidden is None) or wh:
            return
        self.waste_size += size
        self.waste_disk += disk
        self.waste_files += 1
        if hidden is not None:
            hidden.files += 1
            hidden.size += size
            hidden.disk += disk
        else:
            assert hide is not None
            self._offender(Offender(rel, kind, 1, size, disk, layer, hide[0], hide[1]))

    def _count(
        self, frame: _Frame, layer: int, acc: _Layer, rel: str, size: int, disk: int, kind: str,
        wh: bool,
    ) -> None:  # fmt: skip
        t = frame.totals.setdefault(layer, [0, 0])
        t[0] += size
        t[1] += disk
        if self.top_n > 0 and not wh:
            acc.top.push((size, disk, rel, kind))

    # -- frames

    def _open(self, frame: _Frame) -> None:
        """Read a dir in every layer that has it; files are counted now, subdirs queued."""
        opened: list[_Open] = []
        try:
            for layer, at, _ in frame.dirs:
                d = self._enter(layer, at, frame.rel)
                if d is not None:
                    opened.append(d)
            if opened:
                self._read(frame, opened)
        finally:
            for d in opened:
                self._leave(d)

    def _read(self, frame: _Frame, opened: list[_Open]) -> None:
        prefix = frame.rel + "/"
        if frame.hidden is not None or len(opened) == 1:
            d = opened[0]
            for name, st, wh in self._list(d, frame.rel):
                rel = prefix + name
                if stat.S_ISDIR(st.st_mode):
                    blocks = st.st_blocks * BLOCK
                    if frame.hidden is not None:
                        self.waste_disk += blocks
                        frame.hidden.disk += blocks
                    frame.pending.append((rel, [(d.layer, self._child(d, name, st), blocks)], frame.hidden))
                else:
                    self._file(frame, d.layer, rel, st, wh, None, frame.hidden)
            return
        names: dict[str, _Name] = {}
        bottom = len(opened) - 1
        by_layer = {d.layer: d for d in opened}
        for pos, d in enumerate(opened):
            for name, st, wh in self._list(d, frame.rel):
                state = names.get(name)
                if state is None:
                    state = _Name()
                    if pos < bottom:
                        names[name] = state
                self._merge(frame, d, by_layer, pos == bottom, prefix + name, name, st, wh, state)
        for name, state in names.items():
            if state.dirs:
                frame.pending.append((prefix + name, state.dirs, None))
        # Names only the bottom layer has were queued by _merge directly.

    def _merge(
        self, frame: _Frame, d: _Open, by_layer: dict[int, _Open], bottom: bool, rel: str, name: str,
        st: os.stat_result, wh: bool, state: _Name,
    ) -> None:  # fmt: skip
        """Classify one entry of a merged dir against what the layers above hold at its name."""
        layer = d.layer
        is_dir = stat.S_ISDIR(st.st_mode)
        hide = state.hider
        if hide is None and state.dirs:
            upper_layer, upper_at, _ = state.dirs[-1]
            if not state.opaque_checked:
                state.opaque_checked = True
                if self._opaque(by_layer[upper_layer], name, upper_at[2], rel):
                    state.hider = (upper_layer, "opaque")
            hide = state.hider
            if hide is None and not is_dir:
                # A non-directory under a directory of a higher layer: replaced by it.
                hide = state.hider = (upper_layer, "overwritten")
        if is_dir:
            blocks = st.st_blocks * BLOCK
            at = self._child(d, name, st)
            if hide is None:
                state.dirs.append((layer, at, blocks))
                state.opaque_checked = False
                if bottom and len(state.dirs) == 1:
                    # Only the bottom layer has this name (its state is not kept): enter it alone.
                    frame.pending.append((rel, state.dirs, None))
                return
            self.waste_disk += blocks
            hidden = _Hidden(rel, "dir", layer, hide[0], hide[1], disk=blocks)
            frame.pending.append((rel, [(layer, at, blocks)], hidden))
            return
        if hide is None:
            self._file(frame, layer, rel, st, wh, None, None)
            state.hider = (layer, "deleted" if wh else "overwritten")
            return
        self._file(frame, layer, rel, st, wh, hide, None)

    def _close(self, frame: _Frame, parent: _Frame | None) -> None:
        """A dir is done: its per-layer totals go to the top lists and to its parent."""
        if frame.hidden is not None and (parent is None or parent.hidden is not frame.hidden):
            h = frame.hidden
            self._offender(Offender(h.path, h.kind, h.files, h.size, h.disk, h.layer, h.by, h.how))
        if parent is None:
            return
        for layer, (size, disk) in frame.totals.items():
            acc = self.layers[layer]
            if acc is not None and self.top_n > 0:
                acc.top.push((size, disk, frame.rel, "dir"))
            t = parent.totals.setdefault(layer, [0, 0])
            t[0] += size
            t[1] += disk

    def run(self) -> None:
        try:
            if self.roots:
                self._run()
        finally:
            self.anchors.close()
        for layer, acc in enumerate(self.layers):
            if acc is None:
                continue
            for size, disk, kind, visible, hidden in acc.links.values():
                if visible or hidden is None:
                    continue
                path, by, how = hidden
                self.waste_size += size
                self.waste_disk += disk
                self.waste_files += 1
                self._offender(Offender(path, kind, 1, size, disk, layer, by, how))

    def _run(self) -> None:
        root = _Frame("", self.roots, None)
        self._open(root)
        stack: list[_Frame] = [root]
        while stack:
            frame = stack[-1]
            if frame.pending:
                child = _Frame(*frame.pending.pop())
                if self.before_open is not None:
                    self.before_open(child.rel)
                self._open(child)
                stack.append(child)
                continue
            stack.pop()
            self._close(frame, stack[-1] if stack else None)


def _lstat_dir(path: str) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


@dataclass(frozen=True)
class LayerPlace:
    """Where a layer's bytes are: its dir (`overlay2/<cache-id>`) and the l/ short links to it."""

    dir: str
    links: tuple[str, ...] = ()
    content: str | None = "diff"
    """The subdir holding the layer's own files as overlayfs stacks them (`diff`); None when
    `dir` is a full copy of the image's tree (vfs): then it is measured, not merged."""


def _link_blocks(link: str, dev: int, problems: list[Problem]) -> tuple[int, bool]:
    """Allocated bytes of an l/ short link (0 once it is gone), and whether it could be read."""
    try:
        st = os.lstat(link)
    except FileNotFoundError:
        return 0, True
    except OSError as e:
        problems.append(Problem(ProblemKind.path_unreadable, link, e.strerror or str(e)))
        return 0, False
    return (st.st_blocks * BLOCK if st.st_dev == dev else 0), True


def walk_layers(
    places: Sequence[LayerPlace | None],
    *,
    top: int = 0,
    offenders: int = DEFAULT_OFFENDERS,
    skip: frozenset[str] = frozenset(),
    dev: int | None = None,
    before_open: Callable[[str], None] | None = None,
    wh_files: bool = False,
) -> tuple[list[LayerWalk | None], WasteWalk, list[Problem]]:
    """Walk an image's layers (base first): per-layer figures and the image's hidden bytes.

    Each layer dir is measured by the report's own walk (measure.dir_usage), so its
    disk, files and Docker size are the report's; the layers are then walked once more,
    merged as overlayfs merges them, for the hidden bytes and the largest paths. A
    layer whose dir is missing (None, not a dir, or no diff/) gets None. `skip` holds
    mount points not to enter; `dev`, when given, is the only file system counted;
    `before_open` is called with the image path of each dir the merged walk is about
    to open (a test's hook); `wh_files` reads fuse-overlayfs's whiteout and opaque
    files beside overlayfs's devices and xattrs. Memory grows with `top` and `offenders`, with the largest
    single directory and with the number of hard-linked inodes, never with the number
    of files.
    """
    problems: list[Problem] = []
    usages: list[tuple[DirUsage, int, bool] | None] = []
    diffs: list[str | None] = []
    for p in places:
        st = _lstat_dir(p.dir) if p is not None else None
        if p is None or st is None or (dev is not None and st.st_dev != dev):
            usages.append(None)
            diffs.append(None)
            continue
        diff = os.path.join(p.dir, p.content) if p.content is not None else None
        if diff is not None and _lstat_dir(diff) is None:
            usages.append(None)
            diffs.append(None)
            continue
        use = dir_usage(p.dir, (st.st_dev, st.st_ino), p.content if p.content is not None else "", skip)
        problems += use.problems
        links, links_read = 0, True
        for link in p.links:
            blocks, ok = _link_blocks(link, st.st_dev, problems)
            links += blocks
            links_read = links_read and ok
        usages.append((use, links, links_read))
        diffs.append(diff)
    walk = _Walk(diffs, top, offenders, skip, dev, before_open, wh_files)
    walk.run()
    out: list[LayerWalk | None] = []
    for found, acc in zip(usages, walk.layers, strict=True):
        if found is None:
            out.append(None)
            continue
        use, links, links_read = found
        tops = _past_chains(acc.top.largest(), top) if acc is not None else []
        out.append(
            LayerWalk(
                size=use.size,
                files=use.files,
                disk=use.disk + links,
                top=tuple(TopPath(path or "/", kind, size, disk) for size, disk, path, kind in tops),
                complete=use.complete and links_read and (acc is None or acc.complete),
            )
        )
    stored = sum(w.size for w in out if w is not None)
    waste = WasteWalk(
        size=walk.waste_size,
        disk=walk.waste_disk,
        files=walk.waste_files,
        stored=stored,
        offenders=tuple(item[-1] for item in walk.offenders.largest()),
        complete=walk.waste_complete and all(w is not None and w.complete for w in out),
    )
    return out, waste, problems + walk.problems


# --------------------------------------------------------------------------- analysis


def _layer_links(index: Index, root: Path) -> dict[Owner, list[str]]:
    """The l/ short links the report charges to each owner (the index's marks), as paths."""
    prefix = f"{index.layer_root}/l/"
    out: dict[Owner, list[str]] = {}
    for rel, mark in index.marks.items():
        if rel.startswith(prefix) and mark.owner is not None:
            out.setdefault(mark.owner, []).append(str(root / rel))
    return out


def _content(index: Index) -> str | None:
    """The subdir of a layer dir that holds the layer's own files; None where a layer dir is a
    full copy of the image's tree (vfs), which is measured whole and not merged."""
    return None if driver_row(index.driver).full_trees else "diff"


def _wh_files(index: Index) -> bool:
    """Whether the driver's layers may hold whiteouts as `.wh.` files (fuse-overlayfs's fallback);
    kernel overlayfs (overlay2) reads only its devices and xattrs, so there a `.wh.` file is a file."""
    return driver_row(index.driver).whiteout_files


def _container_tops(index: Index) -> dict[ContainerID, ChainID | None]:
    """Container ID -> the image layer its writable layer sits on (the graphdriver's layerdb
    mount parent; on the containerd store, the parent of its `<id>-init` snapshot)."""
    tops: dict[ContainerID, ChainID | None] = {}
    for cid, view in index.containers.items():
        if view.mount is not None:
            tops[cid] = view.mount.parent
        elif index.store == "containerd":
            init = index.layers.get(ChainID(f"{cid}-init")) or index.layers.get(ChainID(cid))
            tops[cid] = init.parent if init is not None else None
    return tops


def _container_names(index: Index) -> dict[ChainID, list[str]]:
    names: dict[ChainID, list[str]] = {}
    for cid, top in _container_tops(index).items():
        view = index.containers[cid]
        for c in ancestry(index.layers, top):
            names.setdefault(c, []).append(view.record.name or cid[:12])
    return names


@dataclass(frozen=True)
class _Shared:
    """What is computed once for every image analysed."""

    held: Sharing
    containers: dict[ChainID, list[str]]
    skip: frozenset[str]
    dev: int | None
    links: dict[Owner, list[str]]


INIT_COMMENT = "init layer of a classic build's container"
"""containerd store: a `<id>-init` snapshot the classic builder committed a step over."""


def _place(index: Index, root: Path, cache_id: str, shared: _Shared) -> LayerPlace:
    if index.store == "containerd":
        return LayerPlace(str(root / index.layout.layer_dir(cache_id)), (), "fs")
    return LayerPlace(
        str(root / index.layer_root / cache_id),
        tuple(shared.links.get(Owner(Category.images, cache_id), ())),
        _content(index),
    )


def _history(
    index: Index, root: Path, image_id: ImageID, chain: Sequence[ChainID]
) -> tuple[tuple[HistoryEntry, ...], list[int | None], list[Problem]]:
    config = index.image_configs.get(image_id)
    if config is not None:  # containerd store: the config blob; the chain may hold -init snapshots
        rel, digest = config
        real = [n for n, c in enumerate(chain) if c in index.image_layers.get(image_id, frozenset())]
        try:
            raw = read_config_history(root / rel, digest)
        except ReadError as e:
            return (
                (),
                [None] * len(chain),
                [Problem(ProblemKind.metadata_unreadable, rel, f"image config {e}")],
            )
        entries, matched, note = match_history(raw, len(real))
        per_layer: list[int | None] = [None] * len(chain)
        for n, h in zip(real, matched, strict=True):
            per_layer[n] = h
        return entries, per_layer, [Problem(ProblemKind.history_mismatch, rel, note)] if note else []
    store = root / "image" / index.driver
    rel = f"image/{index.driver}/imagedb/content/sha256/{image_id[7:]}"
    try:
        raw = read_history(store, image_id)
    except ReadError as e:
        return (), [None] * len(chain), [Problem(ProblemKind.metadata_unreadable, rel, f"image config {e}")]
    entries, per_layer, note = match_history(raw, len(chain))
    problems = [Problem(ProblemKind.history_mismatch, rel, note)] if note else []
    return entries, per_layer, problems


def _measurement(index: Index, chain: Sequence[ChainID], walks: Sequence[LayerWalk | None]) -> Measurement:
    """The walk's figures of an image's layers as the report's accounting reads them."""
    tallies: dict[Owner, Tally] = {}
    files: dict[str, int] = {}
    unknown: set[Owner] = set()
    for c, w in zip(chain, walks, strict=True):
        owner = index.layer_owner.get(c)
        if owner is None:
            continue
        if w is None:
            unknown.add(owner)
            continue
        tallies[owner] = Tally(disk=w.disk, incomplete=not w.complete)
        files[f"layer:{index.layers[c].cache_id}"] = w.files
    return Measurement(tallies, {}, files, sum(t.disk for t in tallies.values()), [], frozenset(unknown))


def analyze_image(
    index: Index, root: Path, ref: str, image_id: ImageID, shared: _Shared, top: int, offenders: int
) -> ImageInfo:
    """One image: layers with instruction, sizes and sharing; totals; hidden bytes."""
    view = index.images[image_id]
    chain = view.chain
    loaded = {i: v for i, v in index.images.items() if v.loaded}
    users: dict[ChainID, list[ImageView]] = {}
    for i, v in loaded.items():
        if i != image_id:
            for c in v.chain:
                users.setdefault(c, []).append(v)
    gone = removal(index, image_id, shared.held)

    records = [index.layers[c] for c in chain]
    places = [_place(index, root, r.cache_id, shared) for r in records]
    walks, waste_walk, walk_problems = walk_layers(
        places, top=top, offenders=offenders, skip=shared.skip, dev=shared.dev, wh_files=_wh_files(index)
    )
    figures = image_report(index, _measurement(index, chain, walks), view, shared.held)
    history, per_layer, problems = _history(index, root, image_id, chain)
    prefix = str(root).rstrip("/") + "/"
    problems += [
        Problem(p.kind, p.path.removeprefix(prefix) if p.path.startswith(prefix) else p.path, p.reason)
        for p in walk_problems
    ]
    own = {r.cache_id for r in records} | {c[7:] for c in chain}
    problems += [p for p in index.problems if any(x in p.path for x in own)]

    layers: list[LayerInfo] = []
    for n, (c, r, w, lr) in enumerate(zip(chain, records, walks, figures.layers, strict=True)):
        h = per_layer[n]
        entry = history[h] if h is not None else None
        sharers = sorted(
            {t for v in users.get(c, []) if v.listed or v.tags for t in (v.tags or (_label(v),))}
        )
        layers.append(
            LayerInfo(
                index=n,
                chain_id=c,
                diff_id=r.diff_id,
                cache_id=r.cache_id,
                created_by=entry.created_by if entry else "" if c.endswith("-init") else None,
                created=entry.created if entry else None,
                comment=entry.comment if entry else INIT_COMMENT if c.endswith("-init") else None,
                size=r.size,
                disk=lr.disk,
                files=lr.files,
                shared_with=tuple(sharers),
                containers=tuple(sorted(shared.containers.get(c, []))),
                build_cache=c in shared.held.build_cache,
                freed=c in gone.freed,
                top=w.top if w is not None else (),
            )
        )

    freed = [layer for layer in layers if layer.freed]
    free_disk: int | None = sum(layer.disk or 0 for layer in freed)
    if any(layer.disk is None for layer in freed):
        free_disk = None
    stored = waste_walk.stored
    complete = waste_walk.complete and all(w is not None for w in walks)
    waste = Waste(
        size=waste_walk.size if complete else None,
        disk=waste_walk.disk if complete else None,
        files=waste_walk.files if complete else None,
        stored=stored if complete else None,
        efficiency=((stored - waste_walk.size) / stored if stored else 1.0) if complete else None,
        offenders=waste_walk.offenders,
    )
    return ImageInfo(
        ref=ref,
        id=image_id,
        tags=view.tags,
        digests=view.digests,
        created=view.record.created,
        listed=view.listed,
        size=figures.size,
        shared_size=figures.shared_size,
        unique_size=figures.unique_size,
        disk=figures.disk,
        unique_disk=figures.unique_disk,
        containers=view.containers,
        free_size=sum(layer.size or 0 for layer in freed),
        free_disk=free_disk,
        removed_with=gone.removed_with,
        layers=tuple(layers),
        history=history,
        wasted=waste,
        problems=tuple(sorted(set(problems), key=lambda p: (p.kind, p.path))),
    )


def analyze_images(
    index: Index,
    root: Path,
    resolved: Sequence[tuple[str, ImageID]],
    *,
    top: int = 0,
    offenders: int = DEFAULT_OFFENDERS,
) -> list[ImageInfo]:
    """Analyse each (REF, image ID) from `resolve_refs`."""
    root = Path(os.path.abspath(root))
    where = index.containerd_root
    # A system containerd's root holds the layers: its own file system is the one counted.
    layers_root = where.path if where is not None and where.path is not None and not where.managed else root
    try:
        dev: int | None = os.lstat(layers_root).st_dev
    except OSError:
        dev = None
    shared = _Shared(
        held=sharing(index, os.path.lexists(root / "engine-id")),
        containers=_container_names(index),
        skip=mount_points(str(root)) | mount_points(str(layers_root)),
        dev=dev,
        links=_layer_links(index, root),
    )
    return [analyze_image(index, root, ref, i, shared, top, offenders) for ref, i in resolved]


__all__ = [
    "ImageDoc",
    "ImageInfo",
    "LayerInfo",
    "LayerPlace",
    "Offender",
    "RefError",
    "TopPath",
    "Waste",
    "analyze_images",
    "image_doc",
    "match_history",
    "read_history",
    "resolve_refs",
    "walk_layers",
]


def image_doc(
    location: Location,
    refs: Sequence[str],
    *,
    top: int = 0,
    offenders: int = DEFAULT_OFFENDERS,
    containerd_root: Path | None = None,
) -> ImageDoc:
    """Read the root, resolve every REF (RefError names the bad ones), analyse each image."""
    now = time.time()
    index = index_root(location, Options(containerd_root=containerd_root), now)
    resolved = resolve_refs(index, refs)
    images = analyze_images(index, location.root, resolved, top=top, offenders=offenders)
    notes = list(index.notes)
    if _content(index) is None:
        notes.append(
            f"{index.driver} stores every layer as a full copy of the image's tree: layers are not "
            "stacked, so wasted bytes and the largest paths a layer adds are not read"
        )
    return ImageDoc(
        root=str(location.root),
        root_source=location.source,
        generated_at=dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        images=tuple(images),
        notes=tuple(notes),
    )
