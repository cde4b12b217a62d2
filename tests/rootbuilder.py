"""Build small Docker roots in a temp dir, laid out file for file as Docker writes them.

For unit tests that need exact control (every orphan kind, damaged files) without a
daemon; the integration tests check the same code against roots a real dockerd made.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from dockerdu.chain import chain_ids
from dockerdu.ids import ChainID, DiffID

Files = dict[str, bytes]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _link_name() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(26))


def docker_size(files: Files) -> int:
    """pkg/directory.Size of a tree written from `files` (no hard links): sum of non-empty sizes."""
    return sum(len(v) for v in files.values())


@dataclass
class Layer:
    """A layer the builder wrote."""

    chain_id: ChainID
    diff_id: DiffID
    cache_id: str
    link: str
    size: int


@dataclass
class Container:
    """A container the builder wrote."""

    id: str
    mount_id: str
    name: str


class RootBuilder:
    """Writes a Docker root (overlay2 store) under `root`."""

    def __init__(self, root: Path, engine_id: bool = True) -> None:
        self.root = root
        self.store = root / "image" / "overlay2"
        for d in (
            "imagedb/content/sha256",
            "imagedb/metadata/sha256",
            "layerdb/sha256",
            "layerdb/mounts",
            "layerdb/tmp",
        ):
            (self.store / d).mkdir(parents=True, exist_ok=True)
        for d in ("overlay2/l", "containers", "volumes", "buildkit", "tmp", "network/files"):
            (root / d).mkdir(parents=True, exist_ok=True)
        if engine_id:
            (root / "engine-id").write_text("f1c2e8d4-test")
        self.repositories: dict[str, dict[str, str]] = {}
        self.layers: dict[ChainID, Layer] = {}
        self._write_repositories()

    def _write_repositories(self) -> None:
        (self.store / "repositories.json").write_text(json.dumps({"Repositories": self.repositories}))

    def layer_dir(self, files: Files, lowers: list[str], name: str | None = None) -> tuple[str, str]:
        """An overlay2 dir with `files` in diff/, a link and l/ symlink; returns (dir name, link)."""
        name = name or secrets.token_hex(32)
        d = self.root / "overlay2" / name
        (d / "diff").mkdir(parents=True)
        for rel, data in files.items():
            p = d / "diff" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        link = _link_name()
        (d / "link").write_text(link)
        os.symlink(f"../{name}/diff", self.root / "overlay2" / "l" / link)
        if lowers:
            (d / "lower").write_text(":".join(f"l/{x}" for x in lowers))
            (d / "work" / "work").mkdir(parents=True)
        return name, link

    def add_layers(self, layer_files: list[Files]) -> list[Layer]:
        """Register a chain of layers (base first), reusing ones that already exist."""
        diff_ids = [
            DiffID(_digest(json.dumps(sorted((k, v.hex()) for k, v in f.items())).encode()))
            for f in layer_files
        ]
        chain = chain_ids(diff_ids)
        out: list[Layer] = []
        for i, (files, diff_id, chain_id) in enumerate(zip(layer_files, diff_ids, chain, strict=True)):
            if chain_id in self.layers:
                out.append(self.layers[chain_id])
                continue
            lowers = [layer.link for layer in reversed(out)]
            if out:
                (self.root / "overlay2" / out[-1].cache_id / "committed").write_text("")
            cache_id, link = self.layer_dir(files, lowers)
            ldb = self.store / "layerdb" / "sha256" / chain_id[7:]
            ldb.mkdir()
            (ldb / "diff").write_text(diff_id)
            (ldb / "cache-id").write_text(cache_id)
            (ldb / "size").write_text(str(docker_size(files)))
            if i:
                (ldb / "parent").write_text(chain[i - 1])
            layer = Layer(chain_id, diff_id, cache_id, link, docker_size(files))
            self.layers[chain_id] = layer
            out.append(layer)
        return out

    def add_image(
        self,
        layer_files: list[Files],
        tags: tuple[str, ...] | list[str] = (),
        parent: str | None = None,
        created: str = "2026-01-01T00:00:00Z",
    ) -> str:
        """An image over those layers, tagged `tags`; returns its ID."""
        layers = self.add_layers(layer_files)
        config = {
            "architecture": "amd64",
            "created": created,
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
        data = json.dumps(config).encode()
        image_id = _digest(data)
        (self.store / "imagedb" / "content" / "sha256" / image_id[7:]).write_bytes(data)
        if parent:
            meta = self.store / "imagedb" / "metadata" / "sha256" / image_id[7:]
            meta.mkdir(parents=True, exist_ok=True)
            (meta / "parent").write_text(parent)
        for tag in tags:
            repo = tag.rsplit(":", 1)[0]
            self.repositories.setdefault(repo, {})[tag] = image_id
        self._write_repositories()
        return image_id

    def image_chain(self, layer_files: list[Files]) -> list[Layer]:
        """The layers registered for these files."""
        return self.add_layers(layer_files)

    def add_container(
        self,
        image_id: str,
        top: Layer | None,
        name: str,
        files: Files = {},  # noqa: B006 - never mutated
        state: str = "exited",
        volumes: tuple[str, ...] = (),
        log: bytes = b"",
    ) -> Container:
        """A container of `image_id` whose writable layer holds `files`."""
        cid = secrets.token_hex(32)
        mount_id = secrets.token_hex(32)
        chain_links: list[str] = []
        layer = top
        while layer is not None:
            chain_links.append(layer.link)
            parent_file = self.store / "layerdb" / "sha256" / layer.chain_id[7:] / "parent"
            layer = self.layers[ChainID(parent_file.read_text())] if parent_file.exists() else None
        init_name, init_link = self.layer_dir(
            {".dockerenv": b"", "etc/hostname": b""}, chain_links, mount_id + "-init"
        )
        self.layer_dir(files, [init_link, *chain_links], mount_id)
        mdir = self.store / "layerdb" / "mounts" / cid
        mdir.mkdir()
        (mdir / "mount-id").write_text(mount_id)
        (mdir / "init-id").write_text(init_name)
        if top is not None:
            (mdir / "parent").write_text(top.chain_id)
        cdir = self.root / "containers" / cid
        cdir.mkdir()
        started = "0001-01-01T00:00:00Z" if state == "created" else "2026-01-01T00:00:01Z"
        config = {
            "ID": cid,
            "Name": "/" + name,
            "Image": image_id,
            "Driver": "overlay2",
            "Config": {"Image": name + "-image"},
            "State": {
                "Running": state == "running",
                "Paused": False,
                "Restarting": False,
                "Dead": False,
                "StartedAt": started,
            },
            "LogPath": str(cdir / f"{cid}-json.log"),
            "MountPoints": {
                f"/v{i}": {"Type": "volume", "Name": v, "Driver": "local"} for i, v in enumerate(volumes)
            },
        }
        (cdir / "config.v2.json").write_text(json.dumps(config))
        (cdir / "hostconfig.json").write_text(json.dumps({"LogConfig": {"Type": "json-file", "Config": {}}}))
        (cdir / "hostname").write_text(name + "\n")
        (cdir / f"{cid}-json.log").write_bytes(log)
        return Container(cid, mount_id, name)

    def add_volume(self, name: str, files: Files) -> None:
        """A local volume holding `files`."""
        data = self.root / "volumes" / name / "_data"
        data.mkdir(parents=True)
        for rel, content in files.items():
            p = data / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
