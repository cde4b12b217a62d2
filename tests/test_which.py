"""`dockerdu which`: a right answer or "nothing matches" (exit 1), never a wrong one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockerdu.cli import ExitCode, app
from tests.rootbuilder import Container, Layer, RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 1000}
APP = {"app/run": b"a" * 100}
VOLUME = "d" * 64


@dataclass
class Planted:
    root: Path
    base: str
    app: str
    base_layer: Layer
    app_layer: Layer
    web: Container
    gone: str
    stray: str


@pytest.fixture
def planted(builder: RootBuilder) -> Planted:
    base = builder.add_image([BASE], ["base:1"])
    app_id = builder.add_image([BASE, APP], ["app:2", "app:latest"], parent=base)
    base_layer, app_layer = builder.image_chain([BASE, APP])
    builder.add_volume("data", {"f": b"v" * 10})
    builder.add_volume(VOLUME, {"g": b"w" * 10})
    web = builder.add_container(app_id, app_layer, "web", {"f": b"f"}, volumes=("data", VOLUME))
    gone = builder.add_container(app_id, app_layer, "gone")
    shutil.rmtree(builder.store / "layerdb" / "mounts" / gone.id)  # container dir left: an orphan
    stray, _ = builder.layer_dir({"left": b"l" * 50}, [])
    return Planted(builder.root, base, app_id, base_layer, app_layer, web, gone.id, stray)


def _which(p: Planted, query: str, cwd: Path | None = None) -> tuple[int, list[str], str]:
    old = Path.cwd()
    os.chdir(cwd or old)
    try:
        result = runner.invoke(app, ["which", query, "--root", str(p.root)], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout.splitlines(), result.stderr


def _layer_line(p: Planted, layer: Layer, images: str) -> str:
    return f"layer {layer.chain_id} (cache ID {layer.cache_id}) of image(s) {images}"


@pytest.mark.parametrize(
    "query",
    ["overlay2/nonexistent", "containers/deadbeef", "volumes/nope/_data", "../../etc", "/etc", "nope",
     "overlay2/l/NOSUCHLINK", "ffffffffffff"],
)  # fmt: skip
def test_what_does_not_exist_matches_nothing(planted: Planted, query: str) -> None:
    code, out, err = _which(planted, query)
    assert (code, out) == (ExitCode.THRESHOLD_EXCEEDED, [])
    assert err == f"dockerdu: nothing under {planted.root} matches {query!r}\n"


@pytest.mark.parametrize("query", ["", "  "])
def test_an_empty_query_is_a_usage_error(planted: Planted, query: str) -> None:
    code, out, err = _which(planted, query)
    assert (code, out) == (ExitCode.USAGE, [])
    assert err == "dockerdu: which: an empty query names nothing; give a name, an ID or a path\n"


def test_paths_relative_to_the_current_dir_under_the_root(planted: Planted) -> None:
    p = planted
    overlay2 = p.root / "overlay2"
    line = f"overlay2/{p.base_layer.cache_id}: {_layer_line(p, p.base_layer, 'app:2, app:latest, base:1')}"
    for query in (p.base_layer.cache_id, f"{p.base_layer.cache_id}/", f"./{p.base_layer.cache_id}"):
        assert _which(p, query, overlay2)[:2] == (0, [line])
    diff = (
        f"overlay2/{p.base_layer.cache_id}/diff: {_layer_line(p, p.base_layer, 'app:2, app:latest, base:1')}"
    )
    assert _which(p, f"{p.base_layer.cache_id}/diff", overlay2)[:2] == (0, [diff])
    link = f"overlay2/l/{p.app_layer.link}: {_layer_line(p, p.app_layer, 'app:2, app:latest')}"
    assert _which(p, f"l/{p.app_layer.link}", overlay2)[:2] == (0, [link])
    assert _which(p, f"l/{p.app_layer.link}")[:2] == (0, [link])  # from outside: the layer dir's l/
    assert _which(p, f"overlay2/l/{p.app_layer.link}")[:2] == (0, [link])
    busybox = f"overlay2/{p.base_layer.cache_id}/diff/bin/busybox: "
    assert _which(p, f"l/{p.base_layer.link}/bin/busybox", overlay2)[1] == [
        busybox + _layer_line(p, p.base_layer, "app:2, app:latest, base:1")
    ]
    assert _which(p, "nonexistent", overlay2)[0] == ExitCode.THRESHOLD_EXCEEDED
    assert _which(p, str(p.root / "overlay2" / p.stray))[1] == [
        f"overlay2/{p.stray}: orphan layer_dir_unreferenced: overlay2/{p.stray} "
        "(overlay2 dir named by no layer, container mount or build-cache record)"
    ]


def test_names_tags_and_volumes(planted: Planted) -> None:
    p = planted
    mount = p.web.mount_id
    web = (
        f"container {p.web.id}: writable layer of container web ({p.web.id}) in overlay2/{mount}, "
        f"init layer overlay2/{mount}-init"
    )
    assert _which(p, "web")[:2] == (0, [web])
    assert _which(p, "/web")[:2] == (0, [web])
    assert _which(p, p.web.id[:5])[:2] == (0, [web])
    app_line = f"image {p.app} (app:2, app:latest, 1 container)"
    for query in ("app:2", "app", "docker.io/library/app:2", p.app[7:19], p.app):
        assert _which(p, query)[:2] == (0, [app_line]), query
    assert _which(p, "data")[:2] == (0, ["volume data, mounted by web"])
    assert _which(p, VOLUME[:12])[:2] == (0, [f"volume {VOLUME}, mounted by web"])


def test_init_and_writable_layers(planted: Planted) -> None:
    p = planted
    mount = p.web.mount_id
    assert _which(p, f"overlay2/{mount}-init/diff")[1] == [
        f"overlay2/{mount}-init/diff: init layer of container web ({p.web.id})"
    ]
    assert _which(p, f"overlay2/{mount}/diff/f")[1] == [
        f"overlay2/{mount}/diff/f: writable layer of container web ({p.web.id})"
    ]
    assert _which(p, f"{mount}-init")[1] == [
        f"overlay2/{mount}-init: init layer of container web ({p.web.id})"
    ]
    assert _which(p, mount[:12])[1] == [  # the init dir's name starts with the mount ID: both match
        f"mount ID {mount}: writable layer of container web ({p.web.id})",
        f"init ID {mount}-init: init layer of container web ({p.web.id})",
    ]


def test_what_the_orphans_table_prints(planted: Planted) -> None:
    p = planted
    gone = (
        f"orphan container_dir_orphaned: containers/{p.gone} (container with no layer (layerdb mount gone))"
    )
    assert _which(p, p.gone[:12])[:2] == (0, [gone])
    assert _which(p, p.gone[:12] + "…")[:2] == (0, [gone])  # as the table prints it
    assert _which(p, f"containers/{p.gone}")[1] == [f"containers/{p.gone}: {gone}"]
    stray = (
        f"overlay2/{p.stray}: orphan layer_dir_unreferenced: overlay2/{p.stray} "
        "(overlay2 dir named by no layer, container mount or build-cache record)"
    )
    assert _which(p, p.stray[:12])[:2] == (0, [stray])


def test_metadata_names_its_object(planted: Planted) -> None:
    p = planted
    assert _which(p, f"containers/{p.web.id}/config.v2.json")[1] == [
        f"containers/{p.web.id}/config.v2.json: Docker's own metadata (container web, {p.web.id})"
    ]
    assert _which(p, f"image/overlay2/imagedb/content/sha256/{p.base[7:]}")[1] == [
        f"image/overlay2/imagedb/content/sha256/{p.base[7:]}: Docker's own metadata (config of image base:1)"
    ]
    assert _which(p, "overlay2")[1] == [
        "overlay2: a dir whose entries have owners of their own (the dir itself is Docker's metadata)"
    ]


def test_hidden_intermediates_are_counted_not_named(builder: RootBuilder) -> None:
    base = builder.add_image([BASE])  # untagged, with a child: a build's intermediate
    builder.add_image([BASE, APP], ["app:2"], parent=base)
    layer = builder.image_chain([BASE])[0]
    result = runner.invoke(app, ["which", layer.cache_id, "--root", str(builder.root)])
    assert result.stdout.splitlines() == [
        f"cache ID {layer.cache_id}: layer {layer.chain_id} (cache ID {layer.cache_id}) of image(s) app:2, "
        "1 intermediate image (docker images -a)"
    ]


def test_an_ambiguous_prefix_lists_every_match(builder: RootBuilder) -> None:
    ids = [builder.add_image([{f"f{i}": bytes([i])}], [f"i:{i}"]) for i in range(40)]
    first = {i[7] for i in ids}
    c = next(ch for ch in sorted(first) if sum(i[7] == ch for i in ids) > 1)
    result = runner.invoke(app, ["which", c, "--root", str(builder.root)])
    images = [line for line in result.stdout.splitlines() if line.startswith("image ")]
    assert sorted(images) == sorted(f"image {i} (i:{ids.index(i)})" for i in ids if i[7] == c)
