"""Why is this image big: its layers, the instruction behind each, sharing and wasted bytes.

Three parts, kept apart:

- readers: `read_history` reads an image config's `history` (the imagedb reader
  keeps only what the report needs); `walk_layers` walks an image's layer dirs
  once, merging them as overlayfs does, and returns plain figures;
- analysis: `resolve_refs` and `analyze_images` join those with the Index
  (layerdb sizes, sharing, containers, build cache) into `ImageInfo` records;
- rendering lives in `dockerdu.render.image`.

The walk follows measure.py's rules: lstat only, never a symlink followed, never
another file system or a mount point entered, allocated bytes = st_blocks * 512
of every inode (directories included), a hard-linked inode once per layer.
Beside it, Docker's size (pkg/directory.Size): apparent sizes of non-directories,
each inode once, a symlink as the length of its target.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .fsread import ReadError, list_dir, parse_json, read_bytes
from .ids import ChainID, ContainerID, ImageID
from .imagedefaults import DEFAULT_OFFENDERS
from .index import ImageView, Index
from .locate import Location
from .measure import BLOCK, mount_points
from .model import Problem
from .scan import Options, index_root

SCHEMA = "dockerdu.image/1"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
"""Docker's overlay2 marks opaque dirs with the trusted xattr; rootless (userxattr) with the user one."""


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


def _is_opaque(path: str) -> bool | None:
    """Whether the dir is opaque; None when its xattrs cannot be read."""
    unknown = False
    for name in OPAQUE_XATTRS:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                continue
            unknown = True
            continue
        if value == b"y":
            return True
    return None if unknown else False


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
    """Accumulators of one layer during the walk."""

    dev: int
    size: int = 0
    files: int = 0
    disk: int = 0
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


_Dirs = list[tuple[int, str, int]]
"""A dir as the layers hold it: (layer, path, allocated bytes of the dir itself), top layer first."""
_Pending = tuple[str, _Dirs, "_Hidden | None"]
"""A subdirectory still to enter, kept small: (root-relative path, its dirs, the hidden subtree it is in)."""


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
    """One merged walk of an image's layer dirs (see the module doc for the rules)."""

    def __init__(
        self,
        diffs: Sequence[str | None],
        top_n: int,
        offenders_n: int,
        skip: frozenset[str],
        dev: int | None,
    ) -> None:
        self.diffs = diffs
        self.skip = skip
        self.top_n = top_n
        self.layers: list[_Layer | None] = []
        for d in diffs:
            st = _lstat_dir(d) if d is not None else None
            if st is None or (dev is not None and st.st_dev != dev):
                self.layers.append(None)
                continue
            self.layers.append(_Layer(dev=st.st_dev, top=_Heap(top_n)))
        self.offenders = _Heap(offenders_n)
        self.problems: list[Problem] = []
        self.waste_size = 0
        self.waste_disk = 0
        self.waste_files = 0
        self.waste_complete = all(x is not None for x in self.layers)

    # -- helpers

    def _unreadable(self, layer: int, path: str, e: OSError) -> None:
        acc = self.layers[layer]
        if acc is not None:
            acc.complete = False
        self.waste_complete = False
        self.problems.append(Problem("path_unreadable", path, e.strerror or str(e)))

    def _list(self, layer: int, path: str) -> Iterator[tuple[str, str, os.stat_result]]:
        """(name, path, lstat) of the entries on the layer's file system, never below a mount point."""
        acc = self.layers[layer]
        assert acc is not None
        try:
            it = os.scandir(path)
        except FileNotFoundError:
            return
        except OSError as e:
            self._unreadable(layer, path, e)
            return
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    self._unreadable(layer, entry.path, e)
                    continue
                if st.st_dev != acc.dev:
                    continue  # a mount point: not ours to count
                if stat.S_ISDIR(st.st_mode) and entry.path in self.skip:
                    continue
                yield entry.name, entry.path, st

    def _offender(self, o: Offender) -> None:
        self.offenders.push((o.size, o.disk, o.path, o.written_by, o))

    def _file(
        self, frame: _Frame, layer: int, rel: str, st: os.stat_result,
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
                self._count(frame, layer, acc, rel, size, disk, kind, st)
            if hide is None and hidden is None:
                state[3] = True
            elif state[4] is None:
                if hidden is not None:
                    state[4] = (rel, hidden.by, hidden.how)
                else:
                    assert hide is not None
                    state[4] = (rel, hide[0], hide[1])
            return
        self._count(frame, layer, acc, rel, size, disk, kind, st)
        if (hide is None and hidden is None) or _is_whiteout(st):
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
        st: os.stat_result,
    ) -> None:  # fmt: skip
        acc.size += size
        acc.disk += disk
        acc.files += 1
        t = frame.totals.setdefault(layer, [0, 0])
        t[0] += size
        t[1] += disk
        if self.top_n > 0 and not _is_whiteout(st):
            acc.top.push((size, disk, rel, kind))

    def _dir_blocks(self, layer: int, st: os.stat_result) -> int:
        """A subdirectory's own blocks go to its layer now, and to its frame's totals when it opens."""
        acc = self.layers[layer]
        assert acc is not None
        blocks = st.st_blocks * BLOCK
        acc.disk += blocks
        return blocks

    # -- frames

    def _open(self, frame: _Frame) -> None:
        """Read a dir in every layer that has it; files are counted now, subdirs queued."""
        prefix = frame.rel + "/"
        if frame.hidden is not None or len(frame.dirs) == 1:
            (layer, path, _) = frame.dirs[0]
            for name, child, st in self._list(layer, path):
                rel = prefix + name
                if stat.S_ISDIR(st.st_mode):
                    blocks = self._dir_blocks(layer, st)
                    if frame.hidden is not None:
                        self.waste_disk += blocks
                        frame.hidden.disk += blocks
                    frame.pending.append((rel, [(layer, child, blocks)], frame.hidden))
                else:
                    self._file(frame, layer, rel, st, None, frame.hidden)
            return
        names: dict[str, _Name] = {}
        bottom = len(frame.dirs) - 1
        for pos, (layer, path, _) in enumerate(frame.dirs):
            for name, child, st in self._list(layer, path):
                state = names.get(name)
                if state is None:
                    state = _Name()
                    if pos < bottom:
                        names[name] = state
                self._merge(frame, layer, prefix + name, child, st, state)
        for name, state in names.items():
            if state.dirs:
                frame.pending.append((prefix + name, state.dirs, None))
        # Names only the bottom layer has were queued by _merge directly.

    def _merge(
        self, frame: _Frame, layer: int, rel: str, path: str, st: os.stat_result, state: _Name
    ) -> None:
        """Classify one entry of a merged dir against what the layers above hold at its name."""
        is_dir = stat.S_ISDIR(st.st_mode)
        hide = state.hider
        if hide is None and state.dirs:
            upper_layer, upper_path, _ = state.dirs[-1]
            if not state.opaque_checked:
                state.opaque_checked = True
                opaque = _is_opaque(upper_path)
                if opaque is None:
                    self.waste_complete = False
                    self.problems.append(
                        Problem("path_unreadable", upper_path, "its overlay xattrs cannot be read")
                    )
                if opaque:
                    state.hider = (upper_layer, "opaque")
            hide = state.hider
            if hide is None and not is_dir:
                # A non-directory under a directory of a higher layer: replaced by it.
                hide = state.hider = (upper_layer, "overwritten")
        if is_dir:
            blocks = self._dir_blocks(layer, st)
            if hide is None:
                state.dirs.append((layer, path, blocks))
                state.opaque_checked = False
                if layer == frame.dirs[-1][0] and len(state.dirs) == 1:
                    # Only the bottom layer has this name (its state is not kept): enter it alone.
                    frame.pending.append((rel, state.dirs, None))
                return
            self.waste_disk += blocks
            hidden = _Hidden(rel, "dir", layer, hide[0], hide[1], disk=blocks)
            frame.pending.append((rel, [(layer, path, blocks)], hidden))
            return
        if hide is None:
            self._file(frame, layer, rel, st, None, None)
            state.hider = (layer, "deleted" if _is_whiteout(st) else "overwritten")
            return
        self._file(frame, layer, rel, st, hide, None)

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
        dirs = [(i, d, 0) for i, d in enumerate(self.diffs) if d is not None and self.layers[i] is not None]
        dirs.reverse()  # top first
        if not dirs:
            return
        root = _Frame("", dirs, None)
        self._open(root)
        stack: list[_Frame] = [root]
        while stack:
            frame = stack[-1]
            if frame.pending:
                child = _Frame(*frame.pending.pop())
                self._open(child)
                stack.append(child)
                continue
            stack.pop()
            self._close(frame, stack[-1] if stack else None)
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


def _lstat_dir(path: str) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def _walk_rest(
    layer_dir: str, acc: _Layer, skip: frozenset[str], problems: list[Problem], content: str = "diff"
) -> None:
    """Allocated bytes of overlay2/<cache-id> outside diff/ (the dir itself, link, lower, work/ ...)."""
    try:
        st = os.lstat(layer_dir)
    except OSError as e:
        acc.complete = False
        problems.append(Problem("path_unreadable", layer_dir, e.strerror or str(e)))
        return
    acc.disk += st.st_blocks * BLOCK
    stack = [layer_dir]
    first = True
    while stack:
        path = stack.pop()
        try:
            it = os.scandir(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            acc.complete = False
            problems.append(Problem("path_unreadable", path, e.strerror or str(e)))
            continue
        with it:
            for entry in it:
                if first and entry.name == content:
                    continue
                try:
                    est = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    acc.complete = False
                    problems.append(Problem("path_unreadable", entry.path, e.strerror or str(e)))
                    continue
                if est.st_dev != acc.dev:
                    continue
                if stat.S_ISDIR(est.st_mode):
                    if entry.path in skip:
                        continue
                    acc.disk += est.st_blocks * BLOCK
                    stack.append(entry.path)
                    continue
                if est.st_nlink > 1:
                    if est.st_ino in acc.links:
                        continue
                    acc.links[est.st_ino] = [0, 0, "other", True, None]
                acc.disk += est.st_blocks * BLOCK
        first = False


@dataclass(frozen=True)
class LayerPlace:
    """Where a layer's bytes are: overlay2/<cache-id> and the l/ short links to its diff/."""

    dir: str
    links: tuple[str, ...] = ()
    content: str = "diff"
    """The subdir holding the layer's files: `diff` (overlay2), `fs` (a containerd snapshot)."""


def _link_blocks(link: str, acc: _Layer, problems: list[Problem]) -> int:
    """Allocated bytes of an l/ short link (0 once it is gone)."""
    try:
        st = os.lstat(link)
    except FileNotFoundError:
        return 0
    except OSError as e:
        acc.complete = False
        problems.append(Problem("path_unreadable", link, e.strerror or str(e)))
        return 0
    return st.st_blocks * BLOCK if st.st_dev == acc.dev else 0


def walk_layers(
    places: Sequence[LayerPlace | None],
    *,
    top: int = 0,
    offenders: int = DEFAULT_OFFENDERS,
    skip: frozenset[str] = frozenset(),
    dev: int | None = None,
) -> tuple[list[LayerWalk | None], WasteWalk, list[Problem]]:
    """Walk an image's layers (base first) once: per-layer figures and the image's hidden bytes.

    A layer whose dir is missing (None, or not a dir) gets None. `skip` holds
    mount points not to enter; `dev`, when given, is the only file system
    counted. Memory grows with `top` and `offenders`, with the largest single
    directory and with the number of hard-linked inodes, never with the number
    of files.
    """
    diffs: list[str | None] = []
    for p in places:
        ok = p is not None and _lstat_dir(p.dir) is not None
        diffs.append(os.path.join(p.dir, p.content) if p is not None and ok else None)
    walk = _Walk(diffs, top, offenders, skip, dev)
    walk.run()
    out: list[LayerWalk | None] = []
    for place, diff, acc in zip(places, diffs, walk.layers, strict=True):
        if acc is None or place is None or diff is None:
            out.append(None)
            continue
        diff_st = _lstat_dir(diff)
        acc.disk += diff_st.st_blocks * BLOCK if diff_st is not None else 0
        _walk_rest(place.dir, acc, skip, walk.problems, place.content)
        for link in place.links:
            acc.disk += _link_blocks(link, acc, walk.problems)
        tops = tuple(TopPath(path or "/", kind, size, disk) for size, disk, path, kind in acc.top.largest())
        out.append(LayerWalk(acc.size, acc.files, acc.disk, tops, acc.complete))
    stored = sum(w.size for w in out if w is not None)
    waste = WasteWalk(
        size=walk.waste_size,
        disk=walk.waste_disk,
        files=walk.waste_files,
        stored=stored,
        offenders=tuple(item[-1] for item in walk.offenders.largest()),
        complete=walk.waste_complete and all(w is not None and w.complete for w in out),
    )
    return out, waste, walk.problems


# --------------------------------------------------------------------------- analysis


def _short_links(base: Path) -> dict[str, list[str]]:
    """overlay2 dir name -> the l/ symlinks to its diff/ (`../<id>/diff`, as overlay2 writes them)."""
    out: dict[str, list[str]] = {}
    try:
        entries = list_dir(base / "l")
    except ReadError:
        return out
    for entry in entries:
        try:
            parts = os.readlink(entry.path).split("/")
        except OSError:
            continue  # not a symlink, or gone
        if len(parts) == 3 and parts[0] == ".." and parts[2] == "diff" and parts[1] not in ("", ".", ".."):
            out.setdefault(parts[1], []).append(entry.path)
    return out


def _ancestors(index: Index, tops: Iterable[ChainID | None]) -> set[ChainID]:
    held: set[ChainID] = set()
    for top in tops:
        c = top
        while c is not None and c in index.layers and c not in held:
            held.add(c)
            c = index.layers[c].parent
    return held


def _pruned_with(index: Index, image_id: ImageID) -> list[ImageID]:
    """Untagged parents `docker rmi` removes along with the image (no tag, no container, no other child)."""
    loaded = {i: v for i, v in index.images.items() if v.loaded}
    children: dict[ImageID, set[ImageID]] = {}
    for i, v in loaded.items():
        if v.record.parent is not None:
            children.setdefault(v.record.parent, set()).add(i)
    gone = {image_id}
    out: list[ImageID] = []
    current = image_id
    while True:
        parent = loaded[current].record.parent
        if parent is None or parent not in loaded or parent in gone:
            return out
        pv = loaded[parent]
        if pv.tags or pv.digests or pv.containers or children.get(parent, set()) - gone:
            return out
        gone.add(parent)
        out.append(parent)
        current = parent


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
        for c in _ancestors(index, [top]):
            names.setdefault(c, []).append(view.record.name or cid[:12])
    return names


def _build_cache_layers(index: Index) -> set[ChainID]:
    """Layers BuildKit's records hold (exported results and FROM bases), with their ancestors."""
    dirs = {r.snapshot_id for r in index.buildkit.records if r.snapshot_id}
    tops: list[ChainID | None] = [
        ChainID(r.chain_id) for r in index.buildkit.records if r.chain_id is not None
    ]
    tops += [c for c, layer in index.layers.items() if layer.cache_id in dirs]
    return _ancestors(index, tops)


@dataclass(frozen=True)
class _Shared:
    """What is computed once for every image analysed."""

    all_images: bool
    containers: dict[ChainID, list[str]]
    build_cache: set[ChainID]
    skip: frozenset[str]
    dev: int | None
    links: dict[str, list[str]]


INIT_COMMENT = "init layer of a classic build's container"
"""containerd store: a `<id>-init` snapshot the classic builder committed a step over."""


def _place(index: Index, root: Path, cache_id: str, shared: _Shared) -> LayerPlace:
    if index.store == "containerd":
        # Imported here: most roots are graphdriver roots.
        from .readers.containerd import snapshotter_dir

        base = index.containerd_root
        ctrd = "containerd/daemon" if base is None or base.managed or base.path is None else str(base.path)
        return LayerPlace(str(root / snapshotter_dir(index.driver, ctrd) / "snapshots" / cache_id), (), "fs")
    return LayerPlace(str(root / index.driver / cache_id), tuple(shared.links.get(cache_id, ())))


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
            return (), [None] * len(chain), [Problem("metadata_unreadable", rel, f"image config {e}")]
        entries, matched, note = match_history(raw, len(real))
        per_layer: list[int | None] = [None] * len(chain)
        for n, h in zip(real, matched, strict=True):
            per_layer[n] = h
        return entries, per_layer, [Problem("history_mismatch", rel, note)] if note else []
    store = root / "image" / index.driver
    rel = f"image/{index.driver}/imagedb/content/sha256/{image_id[7:]}"
    try:
        raw = read_history(store, image_id)
    except ReadError as e:
        return (), [None] * len(chain), [Problem("metadata_unreadable", rel, f"image config {e}")]
    entries, per_layer, note = match_history(raw, len(chain))
    problems = [Problem("history_mismatch", rel, note)] if note else []
    return entries, per_layer, problems


def analyze_image(
    index: Index, root: Path, ref: str, image_id: ImageID, shared: _Shared, top: int, offenders: int
) -> ImageInfo:
    """One image: layers with instruction, sizes and sharing; totals; hidden bytes."""
    view = index.images[image_id]
    chain = view.chain
    loaded = {i: v for i, v in index.images.items() if v.loaded}
    counted = [v for i, v in loaded.items() if v.listed or shared.all_images or i == image_id]
    refs: dict[ChainID, int] = {}
    for v in counted:
        for c in v.chain:
            refs[c] = refs.get(c, 0) + 1
    users: dict[ChainID, list[ImageView]] = {}
    for i, v in loaded.items():
        if i != image_id:
            for c in v.chain:
                users.setdefault(c, []).append(v)

    removed_with = _pruned_with(index, image_id)
    gone = {image_id, *removed_with}
    in_chain = set(chain)
    held = _ancestors(
        index,
        [
            *(v.chain[-1] for i, v in loaded.items() if i not in gone and v.chain),
            *_container_tops(index).values(),
            *(c for c in index.layers if c not in in_chain),
            *shared.build_cache,
        ],
    )
    container_layers = _ancestors(index, _container_tops(index).values())

    records = [index.layers[c] for c in chain]
    places = [_place(index, root, r.cache_id, shared) for r in records]
    walks, waste_walk, walk_problems = walk_layers(
        places, top=top, offenders=offenders, skip=shared.skip, dev=shared.dev
    )
    history, per_layer, problems = _history(index, root, image_id, chain)
    prefix = str(root).rstrip("/") + "/"
    problems += [
        Problem(p.kind, p.path.removeprefix(prefix) if p.path.startswith(prefix) else p.path, p.reason)
        for p in walk_problems
    ]
    own = {r.cache_id for r in records} | {c[7:] for c in chain}
    problems += [p for p in index.problems if any(x in p.path for x in own)]

    layers: list[LayerInfo] = []
    for n, (c, r, w) in enumerate(zip(chain, records, walks, strict=True)):
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
                disk=w.disk if w is not None else None,
                files=w.files if w is not None else None,
                shared_with=tuple(sharers),
                containers=tuple(sorted(shared.containers.get(c, []))),
                build_cache=c in shared.build_cache,
                freed=c not in held,
                top=w.top if w is not None else (),
            )
        )

    size = sum(r.size or 0 for r in records)
    shared_size = sum(r.size or 0 for c, r in zip(chain, records, strict=True) if refs.get(c, 0) > 1)
    if index.figures is not None and image_id in index.figures.image_sizes:
        size, shared_size = index.figures.image_sizes[image_id]  # containerd: blobs and snapshots
    disks = [layer.disk for layer in layers]
    disk = None if any(d is None for d in disks) else sum(d for d in disks if d is not None)
    unique_disk: int | None = None
    if disk is not None:
        unique_disk = sum(
            layer.disk or 0
            for c, layer in zip(chain, layers, strict=True)
            if c not in users and c not in container_layers
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
        size=size,
        shared_size=shared_size,
        unique_size=size - shared_size,
        disk=disk,
        unique_disk=unique_disk,
        containers=view.containers,
        free_size=sum(layer.size or 0 for layer in freed),
        free_disk=free_disk,
        removed_with=tuple(removed_with),
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
        all_images=os.path.lexists(root / "engine-id"),
        containers=_container_names(index),
        build_cache=_build_cache_layers(index),
        skip=mount_points(str(root)) | mount_points(str(layers_root)),
        dev=dev,
        links=_short_links(root / index.driver),
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
    return ImageDoc(
        root=str(location.root),
        root_source=location.source,
        generated_at=dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        images=tuple(images),
        notes=tuple(index.notes),
    )
