"""`dockerdu image`: layers with their instructions, sharing, what removal frees, hidden bytes.

Unit tests build roots file by file (whiteouts as 0:0 character devices, opaque
dirs with the `trusted.overlay.opaque` xattr, as overlay2 stores them); the
`docker`-marked tests build images with private Docker 20.10 (classic builder)
and 26.1 (BuildKit) daemons and hold every figure against `docker history`,
layerdb and what `docker rmi` really deletes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu.cli import ExitCode, app
from dockerdu.imageinfo import (
    ImageInfo,
    LayerPlace,
    RefError,
    analyze_images,
    match_history,
    resolve_refs,
    walk_layers,
)
from dockerdu.index import Index
from dockerdu.locate import Daemon, Location
from dockerdu.render.image import instruction
from dockerdu.scan import Options, index_root
from tests.conftest import du, scan
from tests.rootbuilder import Files, Layer, RootBuilder

runner = CliRunner()

BASE: Files = {"bin/busybox": b"b" * 100_000, "etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}
IMPORTED = {"created": "2026-01-01T00:00:00Z", "comment": "Imported from -"}


def _h(created_by: str, empty: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": "2026-01-01T00:00:01Z", "created_by": created_by}
    if empty:
        entry["empty_layer"] = True
    return entry


def add_image(
    b: RootBuilder,
    layers: list[Files],
    tags: list[str] | tuple[str, ...] = (),
    history: list[dict[str, Any]] | None = None,
    parent: str | None = None,
) -> str:
    """Like RootBuilder.add_image, with a `history` in the config."""
    recs = b.add_layers(layers)
    config: dict[str, Any] = {
        "architecture": "amd64",
        "created": "2026-01-01T00:00:02Z",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [r.diff_id for r in recs]},
    }
    if history is not None:
        config["history"] = history
    data = json.dumps(config).encode()
    image_id = "sha256:" + hashlib.sha256(data).hexdigest()
    (b.store / "imagedb" / "content" / "sha256" / image_id[7:]).write_bytes(data)
    if parent:
        meta = b.store / "imagedb" / "metadata" / "sha256" / image_id[7:]
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "parent").write_text(parent)
    for tag in tags:
        b.repositories.setdefault(tag.rsplit(":", 1)[0], {})[tag] = image_id
    b._write_repositories()
    return image_id


def diff(b: RootBuilder, layer: Layer) -> Path:
    return b.root / "overlay2" / layer.cache_id / "diff"


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def index_of(root: Path) -> Index:
    return index_root(Location(root, "--root", None), Options(), 0.0)


def analyze(root: Path, *refs: str, top: int = 0, offenders: int = 10) -> list[ImageInfo]:
    index = index_of(root)
    return analyze_images(index, root, resolve_refs(index, refs), top=top, offenders=offenders)


def link_of(b: RootBuilder, layer: Layer) -> Path:
    return b.root / "overlay2" / "l" / layer.link


# --------------------------------------------------------------------------- history


def test_history_matches_layers_skipping_empty_steps() -> None:
    raw = [
        (None, "", "Imported from -", False),
        (None, "/bin/sh -c #(nop)  LABEL a=b", "", True),
        (None, "/bin/sh -c #(nop)  ENV X=1", "", True),
        (None, "/bin/sh -c #(nop) COPY file:abc in /f ", "", False),
        (None, "/bin/sh -c echo hi > /x", "", False),
        (None, '/bin/sh -c #(nop)  CMD ["sh"]', "", True),
    ]
    entries, per_layer, note = match_history(raw, 3)
    assert per_layer == [0, 3, 4]
    assert note is None
    assert [e.layer for e in entries] == [0, None, None, 1, 2, None]
    # Fewer layer-making entries than layers: the top layers are not known.
    _, per_layer, note = match_history(raw, 5)
    assert per_layer == [0, 3, 4, None, None]
    assert note is not None
    # More: Docker refuses to match any.
    _, per_layer, note = match_history(raw, 2)
    assert per_layer == [None, None]
    assert note is not None


def test_instructions_in_layers(builder: RootBuilder) -> None:
    history = [
        IMPORTED,
        _h("/bin/sh -c #(nop)  LABEL a=b", empty=True),
        _h("/bin/sh -c #(nop)  ENV X=1", empty=True),
        _h("COPY f.txt /f.txt # buildkit"),
        _h("/bin/sh -c echo hi > /x"),
        _h('/bin/sh -c #(nop)  CMD ["sh"]', empty=True),
    ]
    add_image(builder, [BASE, {"f.txt": b"hello\n"}, {"x": b"hi\n"}], ["app:1"], history)
    (info,) = analyze(builder.root, "app:1")
    assert [layer.created_by for layer in info.layers] == [
        "",
        "COPY f.txt /f.txt # buildkit",
        "/bin/sh -c echo hi > /x",
    ]
    assert [instruction(layer) for layer in info.layers] == [
        "(Imported from -)",
        "COPY f.txt /f.txt",
        "RUN echo hi > /x",
    ]
    assert [h.empty_layer for h in info.history] == [False, True, True, False, False, True]
    assert [h.layer for h in info.history] == [0, None, None, 1, 2, None]
    assert info.problems == ()


def test_no_history_is_missing(builder: RootBuilder) -> None:
    add_image(builder, [BASE, {"x": b"x"}], ["app:1"])
    (info,) = analyze(builder.root, "app:1")
    assert [layer.created_by for layer in info.layers] == [None, None]
    assert [instruction(layer) for layer in info.layers] == ["<missing>", "<missing>"]
    assert "<missing>" in render_image_table_of(builder.root, "app:1")


def render_image_table_of(root: Path, *refs: str) -> str:
    result = runner.invoke(app, ["image", "--root", str(root), *refs], catch_exceptions=False)
    assert result.exit_code == ExitCode.OK, result.output
    return result.stdout


# --------------------------------------------------------------------------- resolving REFs


def test_refs_resolve_like_docker(builder: RootBuilder) -> None:
    a = add_image(builder, [BASE], ["base:1", "base:latest"])
    b = add_image(builder, [BASE, {"x": b"x"}], ["ghcr.io/acme/app:2"])
    index = index_of(builder.root)
    assert resolve_refs(index, ["base:1"]) == [("base:1", a)]
    assert resolve_refs(index, ["base"]) == [("base", a)]
    assert resolve_refs(index, ["docker.io/library/base:1"]) == [("docker.io/library/base:1", a)]
    assert resolve_refs(index, ["ghcr.io/acme/app:2"]) == [("ghcr.io/acme/app:2", b)]
    assert resolve_refs(index, [a]) == [(a, a)]
    assert resolve_refs(index, [a[7:]]) == [(a[7:], a)]
    assert resolve_refs(index, [b[7:19]]) == [(b[7:19], b)]
    # Several REFs, one image once.
    assert resolve_refs(index, ["base:1", a[7:15], "ghcr.io/acme/app:2"]) == [
        ("base:1", a),
        ("ghcr.io/acme/app:2", b),
    ]
    with pytest.raises(RefError, match="no image matches 'nope:1'"):
        resolve_refs(index, ["nope:1"])
    prefix = _ambiguous_prefix(builder)
    with pytest.raises(RefError, match=f"'{prefix}' is ambiguous: it matches 2 images"):
        resolve_refs(index_of(builder.root), [prefix])


def _ambiguous_prefix(b: RootBuilder) -> str:
    """Add images until two IDs share their first hex digit (17 at most); return that digit."""
    firsts: set[str] = set()
    for n in range(17):
        image_id = add_image(b, [BASE, {"n": str(n).encode()}], [f"many:{n}"])
        if image_id[7] in firsts:
            return image_id[7]
        firsts.add(image_id[7])
    raise AssertionError("unreachable: 17 IDs over 16 hex digits")


def test_unknown_or_ambiguous_ref_exits_1(builder: RootBuilder) -> None:
    add_image(builder, [BASE], ["base:1"])
    add_image(builder, [BASE, {"x": b"x"}], ["app:1"])
    result = runner.invoke(app, ["image", "--root", str(builder.root), "base:1", "nope:1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "dockerdu: no image matches 'nope:1'"
    assert len(result.stderr.splitlines()) == 1
    result = runner.invoke(app, ["image", "--root", str(builder.root), _ambiguous_prefix(builder)])
    assert result.exit_code == 1
    assert "ambiguous" in result.stderr and len(result.stderr.splitlines()) == 1


def test_image_with_incomplete_chain_is_not_found(builder: RootBuilder) -> None:
    add_image(builder, [BASE, {"x": b"x"}], ["broken:1"])
    top = builder.image_chain([BASE, {"x": b"x"}])[-1]
    layer_dir = builder.store / "layerdb" / "sha256" / top.chain_id[7:]
    for f in layer_dir.iterdir():
        f.unlink()
    layer_dir.rmdir()
    with pytest.raises(RefError, match="incomplete"):
        resolve_refs(index_of(builder.root), ["broken:1"])


# --------------------------------------------------------------------------- sizes, sharing, freeing


def test_layers_and_totals_equal_the_report(builder: RootBuilder) -> None:
    base = add_image(builder, [BASE], ["base:1"])
    app1 = add_image(builder, [BASE, {"app/one": b"1" * 30_000}], ["app:1"])
    app2 = add_image(builder, [BASE, {"app/one": b"1" * 30_000}, {"two": b"2" * 7000}], ["app:2"])
    chain = builder.image_chain([BASE, {"app/one": b"1" * 30_000}, {"two": b"2" * 7000}])
    builder.add_container(app1, chain[1], "web", {"tmp/out": b"o" * 100})
    report = {i.id: i for i in scan(builder.root).images}
    infos = {i.id: i for i in analyze(builder.root, "base:1", "app:1", "app:2")}
    assert set(infos) == {base, app1, app2}
    for image_id, info in infos.items():
        r = report[image_id]
        assert (info.size, info.shared_size, info.unique_size, info.disk, info.unique_disk) == (
            r.size,
            r.shared_size,
            r.unique_size,
            r.disk,
            r.unique_disk,
        )
        assert info.containers == r.containers
        for mine, theirs in zip(info.layers, r.layers, strict=True):
            assert (mine.chain_id, mine.size, mine.disk, mine.files) == (
                theirs.chain_id,
                theirs.size,
                theirs.disk,
                theirs.files,
            )
    for n, layer in enumerate(chain):
        got = infos[app2].layers[n]
        assert got.disk == du(builder.root / "overlay2" / layer.cache_id, link_of(builder, layer))
        assert got.size == layer.size
    a2 = infos[app2].layers
    assert a2[0].shared_with == ("app:1", "base:1")
    assert a2[1].shared_with == ("app:1",)
    assert a2[2].shared_with == ()
    assert a2[1].containers == ("web",) and a2[2].containers == ()
    # app:2 alone: only its top layer goes. app:1 is held by its container: nothing goes.
    assert [layer.freed for layer in a2] == [False, False, True]
    assert infos[app2].free_size == 7000
    assert infos[app2].free_disk == a2[2].disk
    assert infos[app1].free_size == 0 and infos[app1].free_disk == 0
    assert infos[base].free_size == 0


def test_removing_an_image_prunes_its_untagged_parents(builder: RootBuilder) -> None:
    # The classic builder leaves one untagged parent image per step.
    base = add_image(builder, [BASE], ["base:1"])
    l1 = {"one": b"1" * 5000}
    l2 = {"two": b"2" * 3000}
    step1 = add_image(builder, [BASE, l1], history=[IMPORTED, _h("one")], parent=base)
    step2 = add_image(builder, [BASE, l1, l2], history=[IMPORTED, _h("one"), _h("two")], parent=step1)
    # An ENV step: no new layer, a new image.
    history = [IMPORTED, _h("one"), _h("two"), _h("ENV x=1", empty=True)]
    app = add_image(builder, [BASE, l1, l2], ["app:1"], history, parent=step2)
    # A second child of step1 keeps step1 (and layer 1) in place.
    other = add_image(builder, [BASE, l1, {"three": b"3" * 100}], ["other:1"], parent=step1)
    (info,) = analyze(builder.root, "app:1")
    assert info.removed_with == (step2,)
    assert [layer.freed for layer in info.layers] == [False, False, True]
    assert info.free_size == 3000
    # `docker rmi other:1`: its image and its own layer go; step1 is now pruned with app:1.
    builder.repositories.pop("other")
    builder._write_repositories()
    (builder.store / "imagedb" / "content" / "sha256" / other[7:]).unlink()
    three = builder.image_chain([BASE, l1, {"three": b"3" * 100}])[-1]
    shutil.rmtree(builder.store / "layerdb" / "sha256" / three.chain_id[7:])
    (info,) = analyze(builder.root, "app:1")
    assert info.removed_with == (step2, step1)
    assert info.free_size == 8000
    assert app not in info.removed_with


def test_a_layer_of_a_layer_no_image_uses_holds_its_parents(builder: RootBuilder) -> None:
    add_image(builder, [BASE, {"a": b"a" * 10}], ["app:1"])
    builder.add_layers([BASE, {"a": b"a" * 10}, {"left": b"l" * 10}])  # a layer kept by no image
    (info,) = analyze(builder.root, "app:1")
    assert info.free_size == 0


# --------------------------------------------------------------------------- hidden bytes


def _waste_root(b: RootBuilder) -> tuple[str, list[Layer]]:
    l0: Files = {
        **BASE,
        "gone.bin": b"g" * 1000,  # deleted by l1 (whiteout)
        "d/old.bin": b"o" * 500,  # /d replaced by an opaque dir in l1
        "d/keep.bin": b"k" * 300,
        "x.bin": b"x" * 200,  # overwritten in l1
        "e/f1": b"1" * 40,  # dir /e deleted by l2 (whiteout of a dir)
        "e/sub/f2": b"2" * 60,
        "h1": b"h" * 4000,  # hard link pair: l2 deletes h1 only, h2 stays visible
        "k1": b"k" * 800,  # hard link pair: l2 deletes both names
    }
    l1: Files = {"d/new.bin": b"n" * 10, "x.bin": b"X" * 50}
    l2: Files = {"marker": b"m"}
    layers = b.add_layers([l0, l1, l2])
    d0, d1, d2 = (diff(b, layer) for layer in layers)
    os.link(d0 / "h1", d0 / "h2")
    os.link(d0 / "k1", d0 / "k2")
    whiteout(d1 / "gone.bin")
    opaque(d1 / "d")
    whiteout(d2 / "e")
    whiteout(d2 / "h1")
    whiteout(d2 / "k1")
    whiteout(d2 / "k2")
    image = add_image(b, [l0, l1, l2], ["waste:1"])
    return image, layers


def test_whiteouts_opaque_dirs_and_overwrites(builder: RootBuilder) -> None:
    _, layers = _waste_root(builder)
    (info,) = analyze(builder.root, "waste:1")
    w = info.wasted
    assert w.size == 1000 + 500 + 300 + 200 + 40 + 60 + 800
    assert w.files == 7
    stored = sum(layer.size or 0 for layer in info.layers) + 0  # hard links counted once by Docker
    assert w.stored == stored == info.size
    assert w.efficiency == pytest.approx((stored - w.size) / stored)
    got = {(o.path, o.written_by, o.hidden_by, o.how): (o.files, o.size) for o in w.offenders}
    assert got == {
        ("/gone.bin", 0, 1, "deleted"): (1, 1000),
        ("/d", 0, 1, "opaque"): (2, 800),
        ("/x.bin", 0, 1, "overwritten"): (1, 200),
        ("/e", 0, 2, "deleted"): (2, 100),
        ("/k1", 0, 2, "deleted"): (1, 800),
    }
    kinds = {o.path: o.kind for o in w.offenders}
    assert kinds["/d"] == "dir" and kinds["/gone.bin"] == "file"
    # Largest first.
    assert [o.size for o in w.offenders] == sorted((o.size for o in w.offenders), reverse=True)
    # Hidden allocated bytes: every hidden inode's blocks, the hidden dirs' own included.
    d0 = diff(builder, layers[0])
    hidden_paths = ["gone.bin", "d", "x.bin", "e", "k1"]
    assert w.disk == du(*(d0 / p for p in hidden_paths))
    # Only the largest offenders are kept.
    (info,) = analyze(builder.root, "waste:1", offenders=2)
    assert [o.path for o in info.wasted.offenders] == ["/gone.bin", "/d"]
    assert info.wasted.size == w.size


def test_whiteout_in_a_lower_dir_merged_with_a_later_one(builder: RootBuilder) -> None:
    # /usr/lib exists in two layers (merged, nothing hidden), then a third deletes one file in it.
    l0: Files = {**BASE, "usr/lib/a.so": b"a" * 700, "usr/lib/b.so": b"b" * 900}
    l1: Files = {"usr/lib/c.so": b"c" * 100}
    l2: Files = {"usr/lib/keep": b"k"}
    layers = builder.add_layers([l0, l1, l2])
    whiteout(diff(builder, layers[2]) / "usr" / "lib" / "b.so")
    whiteout(diff(builder, layers[2]) / "usr" / "lib" / "c.so")
    add_image(builder, [l0, l1, l2], ["merge:1"])
    (info,) = analyze(builder.root, "merge:1")
    got = {(o.path, o.written_by, o.hidden_by, o.how): o.size for o in info.wasted.offenders}
    assert got == {("/usr/lib/b.so", 0, 2, "deleted"): 900, ("/usr/lib/c.so", 1, 2, "deleted"): 100}
    assert info.wasted.size == 1000


def test_a_file_where_a_dir_was_and_a_dir_where_a_file_was(builder: RootBuilder) -> None:
    l0: Files = {**BASE, "p/in.bin": b"i" * 123, "q": b"q" * 45}
    l1: Files = {"p": b"now a file", "q/in": b"dir now"}
    add_image(builder, [l0, l1], ["swap:1"])
    (info,) = analyze(builder.root, "swap:1")
    got = {(o.path, o.kind, o.how): o.size for o in info.wasted.offenders}
    assert got == {("/p", "dir", "overwritten"): 123, ("/q", "file", "overwritten"): 45}


def test_nothing_hidden_means_full_efficiency(builder: RootBuilder) -> None:
    add_image(builder, [BASE, {"a": b"a" * 10}], ["clean:1"])
    (info,) = analyze(builder.root, "clean:1")
    assert info.wasted.size == 0 and info.wasted.offenders == ()
    assert info.wasted.efficiency == 1.0


def test_walk_never_follows_links_nor_enters_mounts(builder: RootBuilder, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"s" * 50_000)
    l0: Files = {**BASE, "etc/x.conf": b"x" * 300}
    l1: Files = {"m/.keep": b""}
    layers = builder.add_layers([l0, l1])
    d1 = diff(builder, layers[1])
    os.symlink(str(outside), d1 / "etc")  # a symlink where a dir was: hides it, is not followed
    os.mkfifo(d1 / "fifo")
    add_image(builder, [l0, l1], ["hostile:1"])
    mounted = subprocess.run(["mount", "--bind", str(outside), str(d1 / "m")], check=False).returncode == 0
    try:
        (info,) = analyze(builder.root, "hostile:1", top=20)
    finally:
        if mounted:
            subprocess.run(["umount", str(d1 / "m")], check=True)
    got = {(o.path, o.kind, o.how): o.size for o in info.wasted.offenders}
    assert got == {("/etc", "dir", "overwritten"): 300 + len(BASE["etc/passwd"])}
    top = {t.path: t for t in info.layers[1].top}
    assert (top["/etc"].kind, top["/etc"].size) == ("symlink", len(str(outside)))  # its target's length
    assert top["/fifo"].kind == "other"
    assert not any("secret" in path for path in top)
    if mounted:
        assert "/m" not in top  # a mount point: neither entered nor counted
        # Unmounted now: du sees the mount point dir (and what it hid), the walk did not.
        whole = du(builder.root / "overlay2" / layers[1].cache_id, link_of(builder, layers[1]))
        assert info.layers[1].disk == whole - du(d1 / "m")


def test_a_layer_dir_replaced_by_a_symlink_is_missing(builder: RootBuilder, tmp_path: Path) -> None:
    layers = builder.add_layers([BASE, {"a": b"a" * 10}])
    add_image(builder, [BASE, {"a": b"a" * 10}], ["moved:1"])
    layer_dir = builder.root / "overlay2" / layers[1].cache_id
    layer_dir.rename(tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", layer_dir)
    (info,) = analyze(builder.root, "moved:1")
    assert info.layers[1].disk is None and info.layers[1].files is None
    assert info.disk is None
    assert info.wasted.size is None and info.wasted.efficiency is None
    assert info.layers[0].disk is not None


# --------------------------------------------------------------------------- --top


def _all_paths(d: Path) -> list[tuple[int, int, str]]:
    """Every file and dir below `d` with its apparent and allocated bytes (no hard links here)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(d):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            rel = "/" + os.path.relpath(os.path.join(dirpath, name), d)
            out.append((st.st_size, st.st_blocks * 512, rel))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            size = disk = 0
            for dp, _, fn in os.walk(p):
                disk += os.lstat(dp).st_blocks * 512
                for f in fn:
                    st = os.lstat(os.path.join(dp, f))
                    size += st.st_size
                    disk += st.st_blocks * 512
            out.append((size, disk, "/" + os.path.relpath(p, d)))
    return sorted(out, key=lambda t: (-t[0], -t[1], t[2]))


def _past_chains(paths: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Without the dirs one child of which holds 90% or more of their bytes."""
    return [
        (size, disk, p)
        for size, disk, p in paths
        if not any(q.startswith(p + "/") and q.count("/") == p.count("/") + 1 and s >= 0.9 * size
                   for s, _, q in paths)  # fmt: skip
    ]


def test_top_paths_per_layer(builder: RootBuilder) -> None:
    files: Files = {f"data/{i % 7}/f{i}": bytes(i * 37 % 5000) for i in range(300)}
    files["big/one.bin"] = b"z" * 1_000_000
    add_image(builder, [BASE, files], ["many:1"])
    (info,) = analyze(builder.root, "many:1", top=8)
    top_layer = builder.image_chain([BASE, files])[-1]
    expected = _past_chains(_all_paths(diff(builder, top_layer)))[:8]
    got = [(t.size, t.disk, t.path) for t in info.layers[1].top]
    assert got == expected
    assert [(t.path, t.kind) for t in info.layers[1].top[:3]] == [
        ("/big/one.bin", "file"),  # not /big: it is only the way to one.bin
        ("/data", "dir"),
        ("/data/2", "dir"),
    ]
    assert [t.path for t in info.layers[0].top] == ["/bin/busybox", "/etc/passwd"]
    (info,) = analyze(builder.root, "many:1")
    assert all(layer.top == () for layer in info.layers)


def _tree(top: Path, depth: int, fanout: int = 6, files: int = 8) -> int:
    """A tree `depth` levels deep, `fanout` subdirs and `files` small files in each leaf; the file count."""
    if depth == 0:
        top.mkdir(parents=True)
        for i in range(files):
            (top / f"f{i}").write_bytes(b"x" * (i + 1))
        return files
    return sum(_tree(top / f"d{i}", depth - 1, fanout, files) for i in range(fanout))


def _peak(places: list[LayerPlace]) -> int:
    tracemalloc.start()
    try:
        walk_layers(places, top=5, offenders=5)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_walk_memory_does_not_grow_with_files(tmp_path: Path) -> None:
    places = []
    counts = []
    for depth in (2, 4):
        layer_dir = tmp_path / f"layer{depth}"
        counts.append(_tree(layer_dir / "diff", depth))
        # A lower layer with the same tree under another name: a merged walk of two layers.
        places.append([LayerPlace(str(layer_dir)), LayerPlace(str(layer_dir))])
    assert counts[1] == 36 * counts[0]
    small, large = (_peak(p) for p in places)
    assert large < 2 * small + 64 * 1024, (small, large)


def test_an_image_with_no_layer(builder: RootBuilder) -> None:
    add_image(builder, [], ["empty:1"], [_h("/bin/sh -c #(nop)  ENV A=1", empty=True)])
    (info,) = analyze(builder.root, "empty:1")
    assert info.layers == () and info.size == 0 and info.disk == 0
    assert info.wasted.efficiency == 1.0
    assert info.history[0].layer is None


def test_walk_layers_on_missing_dirs(tmp_path: Path) -> None:
    walks, waste, problems = walk_layers([None, LayerPlace(str(tmp_path / "nope"))])
    assert walks == [None, None]
    assert not waste.complete
    assert problems == []


# --------------------------------------------------------------------------- the command


def test_image_command_table_and_json(builder: RootBuilder) -> None:
    image, _ = _waste_root(builder)
    add_image(builder, [BASE], ["base:1"], [IMPORTED])
    root = str(builder.root)
    text = render_image_table_of(builder.root, "waste:1", "--top", "2")
    assert "waste:1" in text and "efficiency" in text and "/gone.bin" in text
    assert "largest paths in layer 1" in text
    result = runner.invoke(
        app,
        ["image", "--root", root, "-f", "json", "waste:1", "base:1", "--top", "1"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dockerdu.image/1" and doc["tool"] == "dockerdu"
    assert [i["ref"] for i in doc["images"]] == ["waste:1", "base:1"]
    first = doc["images"][0]
    assert first["id"] == image
    assert set(first) >= {
        "ref", "id", "tags", "size", "shared_size", "unique_size", "disk", "unique_disk",
        "containers", "free_size", "free_disk", "removed_with", "layers", "history", "wasted",
    }  # fmt: skip
    assert set(first["layers"][0]) >= {
        "index", "chain_id", "diff_id", "cache_id", "created_by", "size", "disk", "files",
        "shared_with", "containers", "build_cache", "freed", "top",
    }  # fmt: skip
    assert set(first["wasted"]) == {"size", "disk", "files", "stored", "efficiency", "offenders"}
    assert set(first["wasted"]["offenders"][0]) == {
        "path", "kind", "files", "size", "disk", "written_by", "hidden_by", "how",
    }  # fmt: skip
    assert len(first["layers"][0]["top"]) == 1
    assert doc["images"][1]["layers"][0]["created_by"] == ""
    assert doc["images"][1]["history"][0]["comment"] == "Imported from -"


def test_table_escapes_instructions(builder: RootBuilder) -> None:
    add_image(builder, [BASE], ["esc:1"], [_h("/bin/sh -c echo \x1b[31mred\nline2")])
    text = render_image_table_of(builder.root, "esc:1", "--no-trunc")
    assert "\x1b" not in text
    assert "RUN echo \\x1b[31mred\\x0aline2" in text


# --------------------------------------------------------------------------- real Docker

VERSIONS = ("20.10", "26.1")

GONE = 30_000  # written, then `RUN rm`
OVER_OLD, OVER_NEW = 5_000, 6_000  # written, then written again by a later RUN
OPQ_OLD, OPQ_KEEP = 7_000, 3_000  # in /d, which a later RUN replaces (rm -rf /d && mkdir /d)
PAYLOAD = 40_000  # COPY from the context
SHARED_STEP = 12_345  # the first RUN of ddi-a:1 and ddi-b:1 (one layer, shared)

WASTE_DOCKERFILE = f"""\
FROM ddi-base:1
LABEL org.dockerdu.test="image"
ENV DDI_STAGE=one
COPY payload.bin /payload.bin
RUN head -c {GONE} /dev/zero > /gone.bin && head -c {OVER_OLD} /dev/zero > /over.bin \\
 && mkdir -p /d && head -c {OPQ_OLD} /dev/zero > /d/old.bin && head -c {OPQ_KEEP} /dev/zero > /d/keep.bin
ENV DDI_STAGE=two
RUN rm /gone.bin
RUN head -c {OVER_NEW} /dev/zero > /over.bin
RUN rm -rf /d && mkdir /d && echo x > /d/new
CMD ["sh"]
"""

SHARED_DOCKERFILE = """\
FROM ddi-base:1
RUN head -c {shared} /dev/zero > /shared.bin
LABEL org.dockerdu.variant="{name}"
RUN head -c {own} /dev/zero > /{name}.bin
"""


@dataclass
class Built:
    daemon: Any
    version: str
    images: dict[str, str]


def _require(version: str) -> None:
    from tests import realdocker as rd

    rd.require_docker(version)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=VERSIONS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    from tests import realdocker as rd

    version = request.param
    _require(version)
    buildkit = version == "26.1"
    base = tmp_path_factory.mktemp(f"dockerdu-image-{version}")
    with rd.PrivateDaemon(version, base) as d:
        tar = rd.busybox_rootfs_tar(d.base / "rootfs")
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), "ddi-base:1")
        images = {"ddi-base:1": d.image_id("ddi-base:1")}
        images["ddi-waste:1"] = rd.build_image(
            d, "ddi-waste:1", WASTE_DOCKERFILE, buildkit=buildkit, files={"payload.bin": b"p" * PAYLOAD}
        )
        for name, own in (("a", 2_000), ("b", 3_000)):
            tag = f"ddi-{name}:1"
            images[tag] = rd.build_image(
                d, tag, SHARED_DOCKERFILE.format(shared=SHARED_STEP, name=name, own=own), buildkit=buildkit
            )
        d.docker("create", "--name", "ddi-c", "--network", "none", "ddi-b:1", "true")
        yield Built(d, version, images)


def _live(b: Built, *refs: str) -> list[ImageInfo]:
    location = Location(b.daemon.root, "--root", Daemon(b.daemon.pid, b.daemon.root))
    index = index_root(location, Options(), 0.0)
    return analyze_images(index, b.daemon.root, resolve_refs(index, refs), top=5)


def _layerdb(b: Built) -> set[str]:
    return {"sha256:" + n for n in os.listdir(b.daemon.root / "image" / "overlay2" / "layerdb" / "sha256")}


@pytest.mark.docker
def test_instructions_and_sizes_equal_docker_history(built: Built) -> None:
    infos = _live(built, *built.images)
    assert {i.id for i in infos} == set(built.images.values())
    for info in infos:
        ref = info.tags[0]
        shown = built.daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref)
        api = built.daemon.api(f"/images/{ref}/history")
        # `docker history` lists every step, newest first, empty ones included.
        assert shown.splitlines() == [row["CreatedBy"] for row in api]
        steps = list(reversed(api))
        assert [h.created_by for h in info.history] == [row["CreatedBy"] for row in steps]
        for layer in info.layers:
            (pos,) = [n for n, h in enumerate(info.history) if h.layer == layer.index]
            assert layer.created_by == steps[pos]["CreatedBy"], (ref, layer.index)
            assert layer.size == steps[pos]["Size"], (ref, layer.index)
            layerdb = built.daemon.root / "image" / "overlay2" / "layerdb" / "sha256" / layer.chain_id[7:]
            assert layer.size == int((layerdb / "size").read_text())
            o2 = built.daemon.root / "overlay2"
            link = o2 / "l" / (o2 / layer.cache_id / "link").read_text()
            assert layer.disk == du(o2 / layer.cache_id, link)
        # Steps that make no layer (ENV, LABEL, CMD) have Size 0 and no layer.
        for h, row in zip(info.history, steps, strict=True):
            if h.empty_layer:
                assert h.layer is None and row["Size"] == 0
    waste = next(i for i in infos if "ddi-waste:1" in i.tags)
    made = [instruction(layer) for layer in waste.layers]
    assert made[0] == "(Imported from -)"
    assert made[1].startswith("COPY ") and "/payload.bin" in made[1]
    assert [m.split()[0] for m in made[2:]] == ["RUN"] * 4
    assert waste.layers[1].size == PAYLOAD
    assert not any("ENV" in m or "LABEL" in m or "CMD" in m for m in made)


@pytest.mark.docker
def test_wasted_bytes_equal_the_planted_files(built: Built) -> None:
    (info,) = _live(built, "ddi-waste:1")
    w = info.wasted
    assert w.size == GONE + OVER_OLD + OPQ_OLD + OPQ_KEEP
    assert w.stored == info.size
    assert w.efficiency == pytest.approx((info.size - w.size) / info.size)
    run1 = 2  # layer index of the RUN that wrote the files: base, COPY, RUN
    by_path = {o.path: o for o in w.offenders}
    gone = by_path["/gone.bin"]
    assert (gone.size, gone.written_by, gone.hidden_by, gone.how) == (GONE, run1, run1 + 1, "deleted")
    over = by_path["/over.bin"]
    assert (over.size, over.written_by, over.hidden_by, over.how) == (OVER_OLD, run1, run1 + 2, "overwritten")
    # /d replaced (rm -rf /d && mkdir /d): both builders commit an opaque dir hiding both files.
    d = by_path["/d"]
    assert (d.kind, d.size, d.files, d.written_by, d.hidden_by, d.how) == (
        "dir",
        OPQ_OLD + OPQ_KEEP,
        2,
        run1,
        run1 + 3,
        "opaque",
    )
    assert len(w.offenders) == 3
    top = {t.path: t for t in info.layers[run1].top}
    assert top["/gone.bin"].size == GONE
    # The command itself, as a user runs it, on the same root.
    result = runner.invoke(
        app, ["image", "--root", str(built.daemon.root), "-f", "json", "ddi-waste:1"], catch_exceptions=False
    )
    assert result.exit_code == 0
    (doc,) = json.loads(result.stdout)["images"]
    assert doc["wasted"]["size"] == w.size and doc["id"] == info.id
    result = runner.invoke(app, ["image", "--root", str(built.daemon.root), "ddi-nope:1"])
    assert result.exit_code == 1 and result.stderr == "dockerdu: no image matches 'ddi-nope:1'\n"


@pytest.mark.docker
def test_sharing_totals_and_what_rmi_frees(built: Built) -> None:
    infos = {i.tags[0]: i for i in _live(built, "ddi-a:1", "ddi-b:1", "ddi-base:1", "ddi-waste:1")}
    report = {i.id: i for i in scan_live(built).images}
    for info in infos.values():
        r = report[info.id]
        assert (info.size, info.shared_size, info.unique_size, info.disk, info.unique_disk) == (
            r.size,
            r.shared_size,
            r.unique_size,
            r.disk,
            r.unique_disk,
        )
    a, b = infos["ddi-a:1"], infos["ddi-b:1"]
    assert a.layers[1].chain_id == b.layers[1].chain_id  # the shared RUN
    assert a.layers[1].size == SHARED_STEP
    assert a.layers[1].shared_with == ("ddi-b:1",)
    assert a.layers[0].shared_with == ("ddi-b:1", "ddi-base:1", "ddi-waste:1")
    assert a.layers[2].shared_with == () and a.layers[2].size == 2_000
    assert all(layer.containers == ("ddi-c",) for layer in b.layers)
    assert b.free_size == 0  # its container holds every layer
    # Remove ddi-a:1 for real: the layers that go are exactly the ones predicted.
    before = _layerdb(built)
    built.daemon.docker("rmi", "ddi-a:1")
    gone = before - _layerdb(built)
    assert gone == {layer.chain_id for layer in a.layers if layer.freed}
    assert a.free_size == sum(layer.size or 0 for layer in a.layers if layer.freed)
    if built.version == "20.10":
        assert [layer.freed for layer in a.layers] == [False, False, True]
        assert a.free_size == 2_000
        assert a.removed_with  # the classic builder's intermediate images go with it
    else:
        # BuildKit's build cache holds what it built: nothing goes before `docker builder prune`.
        assert a.free_size == 0 and a.layers[2].build_cache


def scan_live(b: Built) -> Any:
    from dockerdu.scan import build_report

    return build_report(Location(b.daemon.root, "--root", Daemon(b.daemon.pid, b.daemon.root)))
