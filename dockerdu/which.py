"""Answer "who owns this?" for a name, an ID or a path under the root, from the index alone.

A query is tried as Docker would read it: an exact name first (container, tag, volume),
then a path (relative to the current directory when that is under the root, else to the
root or the driver's layer dir), then an ID or any prefix of one, as `docker` accepts
prefixes. A path that does not exist, or lies outside the root, matches nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .ids import ChainID
from .index import METADATA, Index, Owner
from .model import Category
from .refs import familiar

HEX = re.compile(r"[0-9a-f]+")
ID_IN_TEXT = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def images_using(index: Index, chain_id: str) -> str:
    """The images whose chain holds a layer, as the report lists them: tags first, then IDs.

    Images `docker images` hides (a build's untagged intermediates) are counted, not named.
    """
    tags: list[str] = []
    ids: list[str] = []
    hidden = 0
    for view in index.images.values():
        if chain_id not in view.chain:
            continue
        if not view.listed:
            hidden += 1
        elif view.tags:
            tags.extend(view.tags)
        else:
            ids.append(view.record.id[7:19])
    names = sorted(tags) + sorted(ids)
    if hidden:
        names.append(f"{hidden} intermediate image{'s' if hidden != 1 else ''} (docker images -a)")
    return ", ".join(names)


def _container_name(index: Index, key: str) -> str:
    view = index.containers.get(key)  # type: ignore[call-overload]
    return view.record.name if view is not None else ""


def describe_owner(index: Index, owner: Owner, relpath: str = "") -> str:
    """One line naming an owner in Docker's terms; `relpath` tells an init layer from a writable one."""
    cat, key = owner
    if cat == Category.images:
        chains = [c for c, layer in index.layers.items() if layer.cache_id == key]
        parts = []
        for c in chains:
            images = images_using(index, c) or "no image (held by a container)"
            place = f"{index.layout.layer_word} {key}"
            parts.append(f"layer {c} ({place}) of image(s) {images}")
        return " / ".join(parts) or f"image layer dir {key}"
    if cat == Category.containers:
        view = index.containers.get(key)  # type: ignore[call-overload]
        init = view.mount.init_id if view is not None and view.mount is not None else None
        what = "init layer" if init and f"/{init}" in f"/{relpath}/" else "writable layer"
        return f"{what} of container {_container_name(index, key)} ({key})"
    if cat == Category.logs:
        return f"logs of container {_container_name(index, key)} ({key})"
    if cat == Category.volumes:
        users = [_container_name(index, c) or c[:12] for c in index.volume_users.get(key, ())]
        return f"volume {key}" + (f", mounted by {', '.join(sorted(users))}" if users else ", unused")
    if cat == Category.image_content:
        return "content-store blob an image reaches (compressed layer, manifest, index or config)"
    if cat == Category.build_cache:
        recs = [r.id for r in index.buildkit.records if key in (r.snapshot_id, r.id)]
        return f"build cache {key}" + (f" (records {', '.join(recs)})" if recs else "")
    if cat == Category.orphans:
        for o in index.orphans:
            if o.path == key:
                return f"orphan {o.kind}: {o.path} ({o.reason})"
        return f"orphan {key}"
    if cat == Category.metadata:
        return "Docker's own metadata" + _metadata_of(index, relpath)
    return f"other: {key}"


def _metadata_of(index: Index, relpath: str) -> str:
    """Whose metadata a path is, where its path names an object: ` (config of container web)`."""
    parts = relpath.split("/")
    store = f"image/{index.driver}"
    if len(parts) >= 2 and parts[0] == "containers" and parts[1] in index.containers:
        return f" (container {_container_name(index, parts[1])}, {parts[1]})"
    sub = relpath.removeprefix(store + "/").split("/")
    if relpath.startswith(store + "/") and len(sub) >= 3:
        if sub[:2] == ["layerdb", "sha256"] and ChainID("sha256:" + sub[2]) in index.layers:
            chain = f"sha256:{sub[2]}"
            return f" (layerdb record of layer {chain}" + (
                f" of image(s) {images_using(index, chain)})" if images_using(index, chain) else ")"
            )
        if sub[:2] == ["layerdb", "mounts"] and sub[2] in index.containers:
            return f" (layerdb mount of container {_container_name(index, sub[2])}, {sub[2]})"
        if sub[:2] == ["imagedb", "content"] and len(sub) >= 4:
            view = index.images.get(f"sha256:{sub[3]}")  # type: ignore[call-overload]
            if view is not None:
                return f" (config of image {', '.join(view.tags) or view.record.id[7:19]})"
    return ""


def which(index: Index, root: Path, query: str, cwd: Path | None = None) -> list[str]:
    """Every owner the query names; empty when nothing does (the caller says "nothing matches")."""
    query = query.removesuffix("…")  # an ID as the tables print it: `6670991e9275…`
    named = _by_name(index, query)
    if named:
        return named
    looks_like_path = os.path.isabs(query) or "/" in query or query.startswith(".")
    here = _here(root, cwd)
    if looks_like_path or (here is not None and os.path.lexists(here / query)):
        rel = _as_relpath(root, query, [here, cwd, root, root / index.layer_root])
        if rel is None:
            rel = _under_containerd_root(index, query, cwd)
        return [] if rel is None else [_path_line(index, rel)]
    by_id = _by_id(index, query)
    if by_id:
        return by_id
    rel = _as_relpath(root, query, [root, root / index.layer_root])
    return [] if rel is None else [_path_line(index, rel)]


def _path_line(index: Index, rel: str) -> str:
    if rel == ".":
        return ".: the Docker root itself (every category; ask about a path under it)"
    owner = index.owner_of(rel)
    if owner == METADATA and rel in index.parents():
        return f"{rel}: a dir whose entries have owners of their own (the dir itself is Docker's metadata)"
    return f"{rel}: {describe_owner(index, owner, rel)}"


def _by_name(index: Index, query: str) -> list[str]:
    """Exact names, as Docker resolves them: a container name, a tag or digest, a volume name."""
    out: list[str] = []
    name = query.removeprefix("/")
    for cid, view in index.containers.items():
        if view.record.name == name:
            out.append(_container_line(index, cid))
    ref = familiar(query)
    for image_id, iview in index.images.items():
        if ref in iview.tags or ref in iview.digests:
            out.append(_image_line(index, image_id))
    if query in index.volumes.volumes:
        out.append(describe_owner(index, Owner(Category.volumes, query)))
    return out


def _image_line(index: Index, image_id: str) -> str:
    view = index.images[image_id]  # type: ignore[index]
    n = view.containers
    used = f", {n} container{'s' if n != 1 else ''}" if n else ""
    hidden = "" if view.listed else ", an intermediate image (docker images -a)"
    return f"image {image_id} ({', '.join(view.tags) or '<none>'}{used}{hidden})"


def _container_line(index: Index, cid: str) -> str:
    view = index.containers[cid]  # type: ignore[index]
    line = f"container {cid}: {describe_owner(index, Owner(Category.containers, cid))}"
    if view.mount is not None:  # a graphdriver's layerdb mount: the containerd store has none
        line += f" in {index.layer_root}/{view.mount.mount_id}"
        if view.mount.init_id:
            line += f", init layer {index.layer_root}/{view.mount.init_id}"
    return line


def _by_id(index: Index, query: str) -> list[str]:
    """Every object whose ID starts with the query (hex, with or without `sha256:`)."""
    q = query.lower().removeprefix("sha256:")
    answers: list[str] = []
    seen: set[str] = set()

    def add(key: str, line: str) -> None:
        if key not in seen:
            seen.add(key)
            answers.append(line)

    if HEX.fullmatch(q):
        for image_id in index.images:
            if image_id[7:].startswith(q):
                add(image_id, _image_line(index, image_id))
        for chain_id, layer in index.layers.items():
            for label, value in (
                ("chain ID", chain_id[7:]),
                ("diff ID", layer.diff_id[7:]),
                ("cache ID", layer.cache_id),
            ):
                if value.startswith(q):
                    owner = index.layer_owner.get(chain_id, Owner(Category.other, "?"))
                    add(value, f"{label} {value}: {describe_owner(index, owner)}")
        for cid, cview in index.containers.items():
            if cid.startswith(q):
                add(cid, _container_line(index, cid))
            mount = cview.mount
            if mount is not None:
                for label, dir_name in (("mount ID", mount.mount_id), ("init ID", mount.init_id or "")):
                    if dir_name and dir_name.startswith(q):
                        rel = f"{index.layer_root}/{dir_name}"
                        owner = Owner(Category.containers, cid)
                        add(dir_name, f"{label} {dir_name}: {describe_owner(index, owner, rel)}")
        for name in index.volumes.volumes:
            if name.startswith(q):
                add(f"volume {name}", describe_owner(index, Owner(Category.volumes, name)))
        for name, owner in index.dir_owner.items():
            if name.startswith(q) and name not in seen:
                rel = f"{index.layer_root}/{name}"
                seen.add(name)
                add(rel, f"{rel}: {describe_owner(index, owner, rel)}")
        for rec in index.buildkit.records:
            for value in (rec.id, rec.snapshot_id or ""):
                if value.startswith(q):
                    add(f"record {rec.id}", f"build cache record {rec.id} ({rec.record_type})")
        for rel_mark, mark in index.marks.items():
            if (at := _blob_at(index, rel_mark)) and rel_mark[at:].startswith(q) and mark.owner:
                add(rel_mark, f"blob sha256:{rel_mark[at:]}: {describe_owner(index, mark.owner)}")
    if q.isalnum():
        links = f"{index.layer_root}/l/"
        for rel_mark, mark in index.marks.items():
            if rel_mark.startswith(links) and rel_mark[len(links) :].lower().startswith(q) and mark.owner:
                add(rel_mark, f"{rel_mark}: {describe_owner(index, mark.owner, rel_mark)}")
    for kind, path, reason, paths in _leftovers(index):
        if _names(q, path, reason, paths) and not seen & {path, *(os.path.basename(p) for p in paths)}:
            add(path, f"{kind}: {path} ({reason})")
    return answers


def _leftovers(index: Index) -> Iterable[tuple[str, str, str, tuple[str, ...]]]:
    """What the orphans table prints: every orphan and problem, with the paths it names."""
    for o in index.orphans:
        yield f"orphan {o.kind}", o.path, o.reason, o.paths
    for p in index.problems:
        yield f"problem {p.kind}", p.path, p.reason, ()


def _names(q: str, path: str, reason: str, paths: tuple[str, ...]) -> bool:
    """Whether `q` starts a file name of an orphan's or problem's paths, or an ID they or its reason name."""
    texts = (path, *paths)
    if any(os.path.basename(p).lower().startswith(q) for p in texts):
        return True
    return bool(HEX.fullmatch(q)) and any(
        m.startswith(q) for t in (*texts, reason) for m in ID_IN_TEXT.findall(t)
    )


def _under_containerd_root(index: Index, query: str, cwd: Path | None) -> str | None:
    """A path under another root of the layout (a system containerd's), as the index names it."""
    for root in index.layout.roots[1:]:
        inside = _as_relpath(Path(root.path), query, [cwd])
        if inside is not None:
            return root.path if inside == "." else f"{root.prefix}{inside}"
    return None


def _blob_at(index: Index, rel: str) -> int:
    """Where the digest starts in a content-store blob's path, else 0."""
    blobs = index.layout.blobs
    return len(blobs) if blobs and rel.startswith(blobs) else 0


def _here(root: Path, cwd: Path | None) -> Path | None:
    """The current directory, when it is under the root."""
    if cwd is None:
        return None
    try:
        Path(os.path.realpath(cwd)).relative_to(root)
    except ValueError:
        return None
    return Path(os.path.realpath(cwd))


def _as_relpath(root: Path, query: str, bases: Iterable[Path | None]) -> str | None:
    """The root-relative path `query` names from the first base where it exists under the root.

    Symlinks are followed on the way (`overlay2/l/SHORT/bin` is that layer's `diff/bin`),
    never at the last component (`overlay2/l/SHORT` is the link).
    """
    for base in [Path("/")] if os.path.isabs(query) else bases:
        if base is None:
            continue
        full = os.path.join(base, query).rstrip("/") or "/"
        head, tail = os.path.split(full)
        real = (
            os.path.realpath(full) if tail in ("", ".", "..") else os.path.join(os.path.realpath(head), tail)
        )
        try:
            rel = Path(real).relative_to(root)
        except ValueError:
            continue
        if os.path.lexists(real):
            return str(rel)
    return None
