"""Read `containers/<id>/`: config.v2.json, hostconfig.json and the log files."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..fsread import ReadError, list_dir, read_json
from ..ids import HEX64, ContainerID, IDError, ImageID, parse_image_id
from ..model import Problem, ProblemKind
from ..records import record

LOCAL_LOGS = "local-logs"


@record
class ContainerRecord:
    """One container as its config.v2.json describes it."""

    id: ContainerID
    name: str
    image_id: ImageID | None
    image_ref: str
    state: str
    driver: str
    volumes: tuple[str, ...]
    log_driver: str
    log_files: tuple[str, ...]
    """Names of log files and dirs inside the container dir (json-file, local, cache)."""
    image_platform: bool = False
    """config.v2.json has `ImagePlatform`: written by Docker 28.0 or later."""


class TypeDamage(ReadError):
    """A config that decodes as JSON but that Docker's decoder rejects; `volumes` it names."""

    def __init__(self, reason: str, volumes: tuple[str, ...] | None) -> None:
        super().__init__(reason)
        self.volumes = volumes


@record
class ContainersScan:
    """Containers with a usable config, and container dirs without one."""

    containers: dict[ContainerID, ContainerRecord]
    unusable: dict[ContainerID, str]
    """Container dirs whose config.v2.json could not be used, with the reason."""
    problems: tuple[Problem, ...]
    readable: bool
    mtimes: dict[ContainerID, float]
    """Last change of each container dir, to tell one being created or removed."""
    complete: bool = True
    """Every container dir was read in full: container lists and volume users are whole."""
    no_config: frozenset[ContainerID] = frozenset()
    """Container dirs with no config.v2.json at all: Docker never loads them, nor removes them."""
    unusable_volumes: frozenset[str] | None = frozenset()
    """Volumes the unusable or config-less containers may use: None when one does not say which."""


# Docker no longer counts a container it cannot load: its volumes look unused to prune.
NOT_LOADED = (
    "Docker cannot load this container and no longer counts it, so `docker system prune --volumes` "
    "deletes its anonymous volumes; its writable layer and volumes are not orphans"
)


def read_containers(base: Path, rel: str = "containers") -> ContainersScan:
    """Read every `containers/<id>/` under `base`."""
    try:
        entries = list_dir(base)
    except ReadError as e:
        problem = Problem(ProblemKind.metadata_unreadable, rel, str(e))
        return ContainersScan({}, {}, (problem,), False, {}, False, unusable_volumes=None)
    containers: dict[ContainerID, ContainerRecord] = {}
    unusable: dict[ContainerID, str] = {}
    no_config: set[ContainerID] = set()
    held: set[str] | None = set()
    mtimes: dict[ContainerID, float] = {}
    problems: list[Problem] = []
    for entry in sorted(entries, key=lambda e: e.name):
        relpath = f"{rel}/{entry.name}"
        is_dir = entry.is_dir(follow_symlinks=False)
        if not HEX64.fullmatch(entry.name):
            what = "a dir" if is_dir else "not a dir"
            problems.append(
                Problem(
                    ProblemKind.metadata_unreadable,
                    relpath,
                    f"not a container dir ({what}): Docker cannot load it",
                )
            )
            continue
        container_id = ContainerID(entry.name)
        try:
            mtimes[container_id] = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue  # removed while we looked
        if not is_dir:
            # A container ID that is a symlink, file or FIFO: what it owned is unknown, not gone.
            what = _file_type(entry)
            unusable[container_id] = f"is {what}, not a dir"
            held = None
            why = f"is {what}, not a dir: {NOT_LOADED}"
            if what == "a symlink":
                # Seen on 20.10: dockerd follows it and loads the container from its target.
                why = (
                    "is a symlink, not a dir: dockerdu does not follow it, while Docker loads the "
                    "container from what it points to; its writable layer and volumes are not orphans"
                )
            problems.append(Problem(ProblemKind.metadata_unreadable, relpath, why))
            continue
        try:
            record, damage = _read_container(Path(entry.path), container_id)
        except ReadError as e:
            if str(e) == "missing":
                no_config.add(container_id)
                held = None  # which volumes it used is unknown: none of them is safe to prune
                continue
            unusable[container_id] = f"config.v2.json {e}"
            named = e.volumes if isinstance(e, TypeDamage) else None
            held = None if held is None or named is None else held | set(named)
            problems.append(
                Problem(ProblemKind.metadata_unreadable, f"{relpath}/config.v2.json", f"{e}: {NOT_LOADED}")
            )
            continue
        containers[container_id] = record
        problems.extend(
            Problem(ProblemKind.metadata_unreadable, f"{relpath}/{name}", why) for name, why in damage
        )
    return ContainersScan(
        containers,
        unusable,
        tuple(problems),
        True,
        mtimes,
        not problems,
        frozenset(no_config),
        None if held is None else frozenset(held),
    )


def _file_type(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "gone"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file" if stat.S_ISREG(mode) else "a device"


def state_string(state: dict[str, object]) -> str:
    """Docker's State.StateString(): running, paused, restarting, removing, dead, created, exited."""
    if state.get("Running"):
        if state.get("Paused"):
            return "paused"
        if state.get("Restarting"):
            return "restarting"
        return "running"
    if state.get("RemovalInProgress"):
        return "removing"
    if state.get("Dead"):
        return "dead"
    started = state.get("StartedAt")
    if not isinstance(started, str) or started.startswith("0001-01-01"):
        return "created"
    return "exited"


def _read_container(path: Path, container_id: ContainerID) -> tuple[ContainerRecord, list[tuple[str, str]]]:
    """The container, and (file, reason) for each part of it that could not be used."""
    config = read_json(path / "config.v2.json")
    if not isinstance(config, dict):
        raise ReadError("is not a JSON object")
    if config.get("ID") != container_id:
        raise ReadError("names another container ID")
    why = _type_error(config)
    if why is not None:
        raise TypeDamage(why, _volume_names(config.get("MountPoints")))
    damage: list[tuple[str, str]] = []
    try:
        image_id = parse_image_id(config["Image"]) if isinstance(config.get("Image"), str) else None
    except IDError:
        image_id = None
    state = config.get("State")
    mount_points = config.get("MountPoints")
    volumes = [
        mp["Name"]
        for mp in (mount_points.values() if isinstance(mount_points, dict) else ())
        if isinstance(mp, dict) and mp.get("Type") == "volume" and isinstance(mp.get("Name"), str)
    ]
    inner = config.get("Config")
    image_ref = inner.get("Image") if isinstance(inner, dict) else None
    name = config.get("Name")
    driver = config.get("Driver")
    log_driver, why = _log_driver(path)
    if why is not None:
        damage.append(("hostconfig.json", why))
    record = ContainerRecord(
        id=container_id,
        name=name.lstrip("/") if isinstance(name, str) else "",
        image_id=image_id,
        image_ref=image_ref if isinstance(image_ref, str) else "",
        state=state_string(state) if isinstance(state, dict) else "unknown",
        driver=driver if isinstance(driver, str) else "",
        volumes=tuple(sorted(set(volumes))),
        log_driver=log_driver,
        log_files=_log_files(path, container_id),
        image_platform="ImagePlatform" in config,
    )
    return record, damage


# Fields dockerdu reads, with the JSON type Docker's decoder needs there: a value of
# another type fails the whole json.Unmarshal, and Docker does not load the container.
_TOP_TYPES: dict[str, type] = {
    "State": dict, "MountPoints": dict, "Config": dict, "Name": str, "Image": str, "Driver": str,
}  # fmt: skip
_STATE_TYPES: dict[str, type] = {
    "Running": bool, "Paused": bool, "Restarting": bool, "Dead": bool, "RemovalInProgress": bool,
    "StartedAt": str,
}  # fmt: skip
_MOUNT_TYPES: dict[str, type] = {"Name": str, "Type": str, "Source": str, "Destination": str}


def _volume_names(mount_points: object) -> tuple[str, ...] | None:
    """The volume names of MountPoints; None when it is not an object of objects (unknown)."""
    if not isinstance(mount_points, dict) or not all(isinstance(mp, dict) for mp in mount_points.values()):
        return None
    return tuple(sorted({mp["Name"] for mp in mount_points.values() if isinstance(mp.get("Name"), str)}))


def _type_error(config: dict[str, Any]) -> str | None:
    """Why Docker's decoder rejects `config` (a field of the wrong type), None when it does not."""

    def wrong(doc: dict[str, Any], types: dict[str, type], where: str) -> str | None:
        for key, kind in types.items():
            value = doc.get(key)
            if value is not None and not isinstance(value, kind):
                name = {dict: "an object", str: "a string", bool: "a boolean"}[kind]
                return f"{where}{key} is {type(value).__name__}, not {name}"
        return None

    why = wrong(config, _TOP_TYPES, "")
    state = config.get("State")
    if why is None and isinstance(state, dict):
        why = wrong(state, _STATE_TYPES, "State.")
    for point, mp in (config.get("MountPoints") or {}).items() if why is None else ():
        why = (
            wrong(mp, _MOUNT_TYPES, f"MountPoints[{point[:40]!r}].")
            if isinstance(mp, dict)
            else (f"MountPoints[{point[:40]!r}] is not an object")
        )
        if why is not None:
            break
    return why


def _log_driver(path: Path) -> tuple[str, str | None]:
    """The log driver ("" when unknown), and why hostconfig.json is unusable (None when fine)."""
    try:
        host = read_json(path / "hostconfig.json")
    except ReadError as e:
        return "", None if str(e) == "missing" else str(e)
    if not isinstance(host, dict):
        return "", "is not a JSON object"
    log_config = host.get("LogConfig")
    kind = log_config.get("Type") if isinstance(log_config, dict) else None
    return (kind, None) if isinstance(kind, str) else ("", None)


def _log_files(path: Path, container_id: str) -> tuple[str, ...]:
    """json-file logs with rotated (and compressed) siblings, `local-logs/`, the dual-logging cache."""
    try:
        entries = list_dir(path)
    except ReadError:
        return ()
    return tuple(sorted(e.name for e in entries if is_log_name(e.name, container_id)))


def is_log_name(name: str, container_id: str) -> bool:
    """Whether a name inside `containers/<id>/` is a log file or log dir."""
    return (
        name.startswith(f"{container_id}-json.log")
        or name.startswith("container-cached.log")
        or name == LOCAL_LOGS
    )
