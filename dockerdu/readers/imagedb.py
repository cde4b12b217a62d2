"""Read `image/<driver>/repositories.json` and `image/<driver>/imagedb/`."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..fsread import ReadError, list_dir, parse_json, read_bytes, read_json, read_text
from ..ids import HEX64, DiffID, IDError, ImageID, parse_diff_id, parse_image_id
from ..model import Problem, ProblemKind
from ..records import record

ID_FILE_LIMIT = 4096
# distribution/reference's grammar: Docker's reference store skips keys that do not parse.
_HOST = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_HOST}(?:\.{_HOST})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@record
class ImageRecord:
    """One image config from imagedb, with its optional metadata."""

    id: ImageID
    diff_ids: tuple[DiffID, ...]
    parent: ImageID | None
    created: str | None
    os: str


@record
class References:
    """repositories.json: tags and digests per image ID."""

    tags: dict[ImageID, tuple[str, ...]]
    digests: dict[ImageID, tuple[str, ...]]
    readable: bool
    missing: bool = False
    """There is no repositories.json (dockerd writes one, empty, at every start)."""


# dockerd decodes the whole file at start, and exits when that fails.
NO_START = "dockerd will not start (Couldn't create reference store repository)"


@record
class ImageDBScan:
    """Every image config that could be read, and the IDs of those that could not."""

    images: dict[ImageID, ImageRecord]
    unreadable: frozenset[ImageID]
    problems: tuple[Problem, ...]
    readable: bool = True
    bad_parents: frozenset[ImageID] = frozenset()
    """Images whose `parent` file exists but could not be read: which images are listed is unsure."""


def read_references(store: Path, rel: str) -> tuple[References, list[Problem]]:
    """Read repositories.json under `store` (= image/<driver>); `rel` is its root-relative path."""
    tags: dict[ImageID, list[str]] = {}
    digests: dict[ImageID, list[str]] = {}
    path = store / "repositories.json"
    relpath = f"{rel}/repositories.json"
    try:
        doc = read_json(path)
    except ReadError as e:
        if str(e) == "missing":
            return References({}, {}, True, missing=True), []
        why = str(e) if str(e) in ("is a symlink", "not a regular file") else f"{e}: {NO_START}"
        return References({}, {}, False), [Problem(ProblemKind.metadata_unreadable, relpath, why)]
    repos = doc.get("Repositories") if isinstance(doc, dict) else None
    if not isinstance(repos, dict):
        # (A value of another JSON type fails the decode; an absent or null one does not.)
        decodes = doc is None or (isinstance(doc, dict) and repos is None)
        why = "no Repositories object" + ("" if decodes else f": {NO_START}")
        return References({}, {}, False), [Problem(ProblemKind.metadata_unreadable, relpath, why)]
    problems: list[Problem] = []
    for refs in repos.values():
        if not isinstance(refs, dict):
            why = f"a repository is not an object: {NO_START}"
            problems.append(Problem(ProblemKind.metadata_unreadable, relpath, why))
            continue
        for ref, target in refs.items():
            try:
                image_id = parse_image_id(target) if isinstance(target, str) else None
            except IDError:
                image_id = None
            if image_id is None:
                why = f"reference {ref[:80]!r} names no image ID"
                if not isinstance(target, str):
                    why += f": {NO_START}"
                problems.append(Problem(ProblemKind.metadata_unreadable, relpath, why))
                continue
            if len(ref) > 512 or not REFERENCE.fullmatch(ref):
                problems.append(
                    Problem(
                        ProblemKind.metadata_unreadable,
                        relpath,
                        f"reference {ref[:80]!r} is not a valid image name: Docker ignores it",
                    )
                )
                continue
            (digests if "@" in ref else tags).setdefault(image_id, []).append(ref)
    return (
        References(
            {k: tuple(sorted(v)) for k, v in tags.items()},
            {k: tuple(sorted(v)) for k, v in digests.items()},
            not problems,
        ),
        problems,
    )


def read_imagedb(store: Path, rel: str) -> ImageDBScan:
    """Read every image config under `store/imagedb` and its metadata."""
    content = store / "imagedb" / "content" / "sha256"
    metadata = store / "imagedb" / "metadata" / "sha256"
    images: dict[ImageID, ImageRecord] = {}
    unreadable: set[ImageID] = set()
    problems: list[Problem] = []
    try:
        entries = list_dir(content)
    except ReadError as e:
        problems.append(Problem(ProblemKind.metadata_unreadable, f"{rel}/imagedb/content/sha256", str(e)))
        return ImageDBScan({}, frozenset(), tuple(problems), readable=False)
    bad_parents: set[ImageID] = set()
    for entry in entries:
        relpath = f"{rel}/imagedb/content/sha256/{entry.name}"
        if not HEX64.fullmatch(entry.name):
            if not entry.name.startswith(".tmp-"):  # leftovers of atomic writes, skipped by Docker too
                bad = "not an image ID: Docker ignores it"
                problems.append(Problem(ProblemKind.metadata_unreadable, relpath, bad))
            continue
        image_id = ImageID("sha256:" + entry.name)
        try:
            record = _read_image(Path(entry.path), image_id)
        except ReadError as e:
            unreadable.add(image_id)
            problems.append(Problem(ProblemKind.metadata_unreadable, relpath, f"image config {e}"))
            continue
        meta_rel = f"{rel}/imagedb/metadata/sha256/{entry.name}"
        parent, why = _read_parent(metadata / entry.name)
        if why is not None:
            bad_parents.add(image_id)
            problems.append(Problem(ProblemKind.metadata_unreadable, f"{meta_rel}/parent", why))
        why = _check_last_updated(metadata / entry.name)
        if why is not None:
            problems.append(Problem(ProblemKind.metadata_unreadable, f"{meta_rel}/lastUpdated", why))
        images[image_id] = ImageRecord(record.id, record.diff_ids, parent, record.created, record.os)
    return ImageDBScan(images, frozenset(unreadable), tuple(problems), bad_parents=frozenset(bad_parents))


def _read_image(path: Path, image_id: ImageID) -> ImageRecord:
    data = read_bytes(path)
    if "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
        raise ReadError("does not match its digest (truncated or altered)")
    doc = parse_json(data)
    if not isinstance(doc, dict):
        raise ReadError("is not a JSON object")
    rootfs = doc.get("rootfs")
    raw = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ReadError("has a rootfs.diff_ids that is not a list")
    try:
        diff_ids = tuple(parse_diff_id(d) if isinstance(d, str) else parse_diff_id("") for d in raw)
    except IDError as e:
        raise ReadError(f"has a bad diff ID: {e}") from None
    created = doc.get("created")
    image_os = doc.get("os")
    return ImageRecord(
        id=image_id,
        diff_ids=diff_ids,
        parent=None,
        created=created if isinstance(created, str) else None,
        os=image_os if isinstance(image_os, str) and image_os else "linux",
    )


def _read_parent(meta: Path) -> tuple[ImageID | None, str | None]:
    """The image's parent, and why its `parent` file is unusable (None when absent or fine)."""
    if not os.path.lexists(meta / "parent"):
        return None, None
    try:
        return parse_image_id(read_text(meta / "parent", limit=ID_FILE_LIMIT)), None
    except (ReadError, IDError) as e:
        return None, f"{e}; Docker then sees no parent"


def _check_last_updated(meta: Path) -> str | None:
    """Why `lastUpdated` (the time of the last tag) is unusable, or None; no figure depends on it."""
    if not os.path.lexists(meta / "lastUpdated"):
        return None
    try:
        text = read_text(meta / "lastUpdated", limit=ID_FILE_LIMIT)
    except ReadError as e:
        return str(e)
    return None if RFC3339.fullmatch(text) else f"not a time: {text[:40]!r}"


def imagedb_dir_exists(store: Path) -> bool:
    """True when `store` looks like an image/<driver> tree."""
    return os.path.isdir(store / "imagedb") or os.path.isdir(store / "layerdb")
