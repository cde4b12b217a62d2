"""The report's tables: one row per image, costliest containers first, Docker's units, fitted widths."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu.cli import app
from dockerdu.units import docker_size, human
from tests.rootbuilder import Container, RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 100_000}
LONG_REPO = "registry.example.com/platform-team/very-long-application-name-for-the-billing-service"
TAGS = [f"{LONG_REPO}:2026.01.{n:02d}-build-{n}" for n in range(5)]
ANONYMOUS = "a1b2c3d4e5f6" + "0" * 52


def long_root(b: RootBuilder) -> dict[str, Any]:
    """A root with long names, one image with five tags, containers of every cost, an anonymous volume."""
    base = b.add_image([BASE], ["busybox:latest"])
    app_id = b.add_image([BASE, {"srv/app": b"a" * 50_000}], TAGS, parent=base)
    top = b.image_chain([BASE, {"srv/app": b"a" * 50_000}])[-1]
    b.add_volume(ANONYMOUS, {"data": b"d" * 3000})
    b.add_volume("shared-configuration-volume-with-a-long-name", {"c": b"c" * 10})
    made: dict[str, Container] = {}
    for name, files, log in [
        ("web", {"f": b"f" * 10}, b""),
        ("chatty-logger-with-a-really-long-container-name-that-never-ends", {}, b"l" * 400_000),
        ("writer", {"big": b"w" * 200_000}, b"x" * 10),
    ]:
        made[name] = b.add_container(app_id, top, name, files, log=log, volumes=(ANONYMOUS,))
    b.layer_dir({"left": b"l" * 5000}, [])
    return {"root": b.root, "app": app_id, "base": base, "containers": made}


def _run(args: list[str], columns: int | None = 80) -> str:
    env = {"COLUMNS": str(columns)} if columns else {}
    result = runner.invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _json(root: Path) -> dict[str, Any]:
    return json.loads(_run(["report", "--root", str(root), "-q", "-f", "json"]))  # type: ignore[no-any-return]


def _summary(text: str) -> str:
    """The last line, its wrapped continuations joined."""
    lines = text.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("Total "))
    return " ".join(line.strip() for line in lines[start:])


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start + 1 : end]


@pytest.mark.parametrize("columns", [40, 80, 100, 120, 200])
def test_every_line_fits_the_width(builder: RootBuilder, columns: int) -> None:
    root = long_root(builder)["root"]
    for command in (["report"], ["orphans"]):
        text = _run([*command, "--root", str(root), "-q"], columns)
        widest = max(text.splitlines(), key=len)
        assert len(widest) <= columns, widest
        assert "\x1b" not in text


def test_not_a_terminal_is_80_columns_unless_no_trunc(builder: RootBuilder) -> None:
    root = long_root(builder)["root"]
    text = _run(["report", "--root", str(root), "-q"], None)
    assert max(len(line) for line in text.splitlines()) <= 80
    full = _run(["report", "--root", str(root), "-q", "--no-trunc"], 80)
    assert max(len(line) for line in full.splitlines()) > 120
    assert ", ".join(TAGS) in full and ANONYMOUS in full


def test_one_row_per_image_first_tag_and_count(builder: RootBuilder) -> None:
    p = long_root(builder)
    doc = _json(p["root"])
    image = next(i for i in doc["images"] if i["id"] == p["app"])
    rows = _section(_run(["report", "--root", str(p["root"]), "-q"], 120), "Images (2)")
    assert rows[0].split() == ["IMAGE", "ID", "SIZE", "SHARED", "UNIQUE", "DISK", "CONTAINERS"]
    row = next(r for r in rows if p["app"][7:19] in r)
    cells = row.split("  ")
    assert (
        cells[0] == "registry.example.com/platfor…g-service:2026.01.00-build-0 (+4)"
    )  # the name cut, its count kept
    assert row.split()[-5:] == [
        docker_size(image["size"]), docker_size(image["shared_size"]), docker_size(image["unique_size"]),
        docker_size(image["disk"]), "3",
    ]  # fmt: skip
    narrow = _section(_run(["report", "--root", str(p["root"]), "-q"], 80), "Images (2)")
    cut = next(r for r in narrow if p["app"][7:19] in r).split(f"  {p['app'][7:19]}")[0].rstrip()
    assert cut.endswith("-build-0 (+4)") and cut.startswith("registry…")


def test_containers_by_cost_with_docker_units(builder: RootBuilder) -> None:
    p = long_root(builder)
    doc = _json(p["root"])
    by_cost = sorted(doc["containers"], key=lambda c: -(c["rw_disk"] + c["log_disk"]))
    rows = _section(_run(["report", "--root", str(p["root"]), "-q", "--no-trunc"]), "Containers (3)")
    assert rows[0].split() == ["CONTAINER", "ID", "IMAGE", "STATE", "RW", "SIZE", "RW", "DISK", "LOGS"]
    assert [r.split()[0] for r in rows[1:]] == [c["name"] for c in by_cost]
    chatty = next(c for c in doc["containers"] if c["name"].startswith("chatty"))
    assert rows[1].split() == [
        chatty["name"], chatty["id"], p["app"], "exited", docker_size(chatty["rw_size"]),
        docker_size(chatty["rw_disk"]), docker_size(chatty["log_disk"]),
    ]  # fmt: skip


def test_units_docker_binary_and_bytes(builder: RootBuilder) -> None:
    assert [docker_size(n) for n in (0, 999, 1000, 80_700_000, 2_388_338, 49_152, 1_500_000_000_000)] == [
        "0B", "999B", "1kB", "80.7MB", "2.388MB", "49.15kB", "1.5TB",
    ]  # fmt: skip
    p = long_root(builder)
    doc = _json(p["root"])
    total = doc["totals"]["root_disk"]
    for flag, text in (([], docker_size(total)), (["--binary"], human(total)), (["--bytes"], str(total))):
        out = _run(["report", "--root", str(p["root"]), "-q", *flag], 120)
        assert _summary(out).startswith(f"Total {text}: images "), (flag, _summary(out))
    both = runner.invoke(app, ["report", "--root", str(p["root"]), "--binary", "--bytes"])
    assert (both.exit_code, both.stderr) == (2, "dockerdu: --binary and --bytes: choose one\n")


def test_quick_says_not_measured(builder: RootBuilder) -> None:
    root = long_root(builder)["root"]
    text = _run(["report", "--root", str(root), "-q", "--quick"], 120)
    assert "images          not measured (--quick)" in _section(text, "Disk by category")
    assert "total (du -sx)  not measured (--quick)" in _section(text, "Disk by category")
    assert _summary(text).startswith("Total not measured (--quick): images not measured, containers ")
    assert any(line.startswith("Images (2); DISK not measured (--quick)") for line in text.splitlines())


def test_ids_in_paths_are_12_characters_and_an_ellipsis(builder: RootBuilder) -> None:
    root = long_root(builder)["root"]
    doc = _json(root)
    stray = next(o for o in doc["orphans"] if o["kind"] == "layer_dir_unreferenced")
    rows = _section(_run(["orphans", "--root", str(root), "-q"], 120), "Orphans (1")
    assert rows[1].split()[:3] == [
        "layer_dir_unreferenced",
        f"{stray['path'][:21]}…",
        docker_size(stray["disk"]),
    ]
    volumes = _section(_run(["report", "--root", str(root), "-q"], 120), "Volumes (2)")
    assert any(r.startswith(f"{ANONYMOUS[:12]}…  ") for r in volumes)


def test_empty_sections_say_none_found(tmp_path: Path) -> None:
    b = RootBuilder(tmp_path / "docker")
    text = _run(["report", "--root", str(b.root), "-q"])
    for title in ("Images (0)", "Containers (0)", "Volumes (0)", "Orphans (0, 0B)", "Problems (0)"):
        assert _section(text, title) == ["none found"], title


def test_a_moved_tag_shows_the_image_id_in_every_format(builder: RootBuilder) -> None:
    old = builder.add_image([BASE], ["tools:dev"])
    top = builder.image_chain([BASE])[-1]
    c = builder.add_container(old, top, "tool")
    config = builder.root / "containers" / c.id / "config.v2.json"
    doc = json.loads(config.read_text())
    doc["Config"]["Image"] = "tools:dev"
    config.write_text(json.dumps(doc))
    assert (
        json.loads(_run(["report", "--root", str(builder.root), "-q", "-f", "json"]))["containers"][0][
            "image"
        ]
        == "tools:dev"
    )
    new = builder.add_image([BASE, {"new": b"n"}], ["tools:dev"], created="2026-02-01T00:00:00Z")  # rebuilt
    assert new != old
    report = json.loads(_run(["report", "--root", str(builder.root), "-q", "-f", "json"]))
    assert report["containers"][0]["image"] == old
    rows = list(csv.DictReader(io.StringIO(_run(["report", "--root", str(builder.root), "-f", "csv"]))))
    assert next(r for r in rows if r["kind"] == "container")["image"] == old
    table = _section(_run(["report", "--root", str(builder.root), "-q"]), "Containers (1)")
    assert table[1].split()[:3] == ["tool", c.id[:12], old[7:19]]


def test_image_top_descends_past_chains_of_parents(builder: RootBuilder) -> None:
    files = {
        "srv/node_modules/typescript/lib/tsc.js": b"t" * 60_000,
        "srv/node_modules/lodash/lodash.js": b"l" * 30_000,
        "srv/node_modules/left-pad/index.js": b"p" * 10_000,
    }
    builder.add_image([BASE, files], ["node:app"])
    text = _run(["image", "node:app", "--root", str(builder.root), "--top", "2", "--bytes"], 120)
    block = text.split("largest paths in layer 2:\n", 1)[1].splitlines()
    assert [line.split()[::2] for line in block[:3]] == [
        ["SIZE", "PATH"],
        ["100000", "/srv/node_modules/"],  # not /srv/: it is only the way to node_modules
        ["60000", "/srv/node_modules/typescript/lib/tsc.js"],
    ]
