"""Prometheus and CSV output: parsed by the official parser and the csv module, equal to the JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dockerdu.cli import ExitCode, app
from dockerdu.render.csv_ import COLUMNS, render_csv
from dockerdu.render.json_ import render_json
from dockerdu.render.prometheus import render_prometheus
from tests.conftest import scan
from tests.rootbuilder import RootBuilder

runner = CliRunner()
BASE = {"bin/busybox": b"x" * 100_000}
APP = {"app/main.py": b"print()\n" * 3000}
# Names as hostile as Docker lets them be: quotes, backslashes, newlines, commas, bytes
# that are not UTF-8 (a volume is a dir: its name is any bytes but / and NUL).
CONTAINER = 'we"ird\\name\nwith,comma'
VOLUMES = ['q"uote', "back\\slash", "new\nline", "comma,vol", os.fsdecode(b"bad\xffutf8"), "plain"]


def _root(builder: RootBuilder) -> Path:
    base = builder.add_image([BASE], ["base:1"])
    app_image = builder.add_image([BASE, APP], ["app:1", "app:latest"])
    builder.add_image([{"tmp/x": b"y" * 5000}])  # untagged, no children: listed as <none>
    top = builder.image_chain([BASE, APP])[-1]
    builder.add_container(
        app_image, top, CONTAINER, {"f": b"f" * 3000}, volumes=(VOLUMES[0],), log=b"l" * 7000
    )
    builder.add_container(base, builder.image_chain([BASE])[-1], "plain", state="running", log=b"x" * 100)
    for i, name in enumerate(VOLUMES):
        builder.add_volume(name, {"data": b"v" * (1000 * (i + 1))})
    builder.layer_dir({"left": b"l" * 5000}, [])
    builder.layer_dir({"left2": b"l" * 9000}, [])
    (builder.root / "stray-file").write_bytes(b"s" * 3000)
    return builder.root


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _expected(doc: dict[str, Any], name: str, labels: dict[str, str]) -> int | None:
    """The JSON report's figure for one Prometheus sample."""
    t = doc["totals"]
    images = {i["id"]: i for i in doc["images"]}
    containers = {c["id"]: c for c in doc["containers"]}
    volumes = {v["name"]: v for v in doc["volumes"]}
    simple: dict[str, Any] = {
        "dockerdu_root_disk_bytes": t["root_disk"],
        "dockerdu_reclaimable_bytes": t["reclaimable"],
        "dockerdu_layers_size_bytes": doc["docker"]["layers_size"],
        "dockerdu_build_cache_disk_bytes": doc["build_cache"]["disk"],
        "dockerdu_build_cache_size_bytes": doc["build_cache"]["size"],
    }
    if name in simple:
        return int(simple[name])
    if name == "dockerdu_disk_bytes":
        return int(t[labels["category"]])
    if name.startswith("dockerdu_reclaimable_"):
        return doc["reclaimable"][labels["category"]][name.split("_")[2]]  # type: ignore[no-any-return]
    if name.startswith("dockerdu_filesystem_"):
        key = {"size": "total", "used": "used", "free": "free"}[name.split("_")[2]]
        return int(doc["filesystem"][key])
    if name.startswith("dockerdu_image_"):
        return images[labels["image_id"]][name[len("dockerdu_image_") : -len("_bytes")]]  # type: ignore[no-any-return]
    if name.startswith("dockerdu_container_"):
        return containers[labels["container_id"]][name[len("dockerdu_container_") : -len("_bytes")]]  # type: ignore[no-any-return]
    if name.startswith("dockerdu_volume_"):
        return volumes[labels["volume"]][name[len("dockerdu_volume_") : -len("_bytes")]]  # type: ignore[no-any-return]
    if name == "dockerdu_orphans_disk_bytes":
        return sum(int(o["disk"]) for o in doc["orphans"] if o["kind"] == labels["kind"])
    if name == "dockerdu_other_disk_bytes":
        return next(int(o["disk"]) for o in doc["other"] if o["name"] == labels["name"])
    if name == "dockerdu_root_path_disk_bytes":
        role = (labels["path"], labels["role"])
        return next(int(r["disk"]) for r in doc["roots"] if (r["path"], r["role"]) == role)
    if name == "dockerdu_growth_bytes":
        return doc["growth"]["categories"][labels["category"]]["change"]  # type: ignore[no-any-return]
    raise AssertionError(f"no JSON figure known for {name}")


def _check_against_json(text: str, doc: dict[str, Any], skip: tuple[str, ...] = ()) -> int:
    """Every byte sample of `text` equals the JSON figure; returns how many were compared."""
    compared = 0
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("dockerdu_")
        assert family.type == "gauge"
        assert family.documentation
        seen = set()
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            assert key not in seen, f"duplicate series {sample.name}{sample.labels}"
            seen.add(key)
            if not sample.name.endswith("_bytes") or sample.name.startswith(skip):
                continue
            want = _expected(doc, sample.name, sample.labels)
            assert want is not None, sample
            assert sample.value == want and float(want) == sample.value, (sample, want)
            compared += 1
    return compared


def test_prometheus_parses_and_equals_json(builder: RootBuilder) -> None:
    report = scan(_root(builder))
    text = render_prometheus(report)
    doc = json.loads(render_json(report))
    assert _check_against_json(text, doc) > 40
    families = _families(text)
    # One series per object, named as the JSON names it (hostile names included).
    volumes = {s.labels["volume"] for s in families["dockerdu_volume_disk_bytes"].samples}
    assert volumes == {v["name"] for v in doc["volumes"]}
    assert "bad\\xffutf8" in {s.labels["volume"] for s in families["dockerdu_volume_disk_bytes"].samples}
    names = {s.labels["container"] for s in families["dockerdu_container_rw_disk_bytes"].samples}
    assert names == {CONTAINER, "plain"}
    images = families["dockerdu_image_disk_bytes"].samples
    assert {s.labels["image_id"] for s in images} == {i["id"] for i in doc["images"]}
    assert {s.labels["image"] for s in images} == {"base:1", "app:1", "<none>"}
    kinds = {s.labels["kind"]: s.value for s in families["dockerdu_orphans"].samples}
    assert kinds == {"layer_dir_unreferenced": 2}
    assert families["dockerdu_root_disk_bytes"].samples[0].value == doc["totals"]["root_disk"]
    categories = {s.labels["category"]: s.value for s in families["dockerdu_disk_bytes"].samples}
    assert sum(categories.values()) == doc["totals"]["root_disk"]
    assert families["dockerdu_info"].samples[0].labels["root"] == doc["root"]


def test_prometheus_text_rules(builder: RootBuilder) -> None:
    text = render_prometheus(scan(_root(builder)))
    text.encode("utf-8")  # valid UTF-8 throughout
    assert text.endswith("\n")
    lines = text.splitlines()
    helps = [line.split()[2] for line in lines if line.startswith("# HELP ")]
    types = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert helps == types and len(helps) == len(set(helps))
    for line in lines:
        if line.startswith("#"):
            continue
        name = line.split("{")[0].split(" ")[0]
        assert name.startswith("dockerdu_") and name in helps
        assert len(line.rsplit(" ", 1)) == 2  # value, and no timestamp (textfile collector refuses them)
    assert '\\"' in text and "\\\\" in text and "\\n" in text  # escaped, not raw


def test_label_values_escaped_exactly() -> None:
    from dockerdu.render.prometheus import escape_label

    assert escape_label('a"b') == 'a\\"b'
    assert escape_label("a\\b") == "a\\\\b"
    assert escape_label("a\nb") == "a\\nb"
    assert escape_label(os.fsdecode(b"a\xffb")) == "a\\\\xffb"  # the JSON's `\xff` text, escaped
    assert escape_label("\ud800") == "\\\\ud800"  # a lone surrogate from a JSON config: valid UTF-8 out


def test_prometheus_cli_output_file_atomic(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    out_dir = tmp_path / "textfile"
    out_dir.mkdir()
    prom = out_dir / "dockerdu.prom"
    prom.write_text("old\n")
    prom.chmod(0o640)
    result = runner.invoke(
        app, ["report", "--root", str(root), "-f", "prometheus", "--no-cache", "-o", str(prom)]
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout == ""
    assert os.listdir(out_dir) == ["dockerdu.prom"]  # no temp file left behind
    assert stat.S_IMODE(prom.stat().st_mode) == 0o640  # an existing file keeps its mode
    doc = json.loads(runner.invoke(app, ["report", "--root", str(root), "-f", "json", "--no-cache"]).stdout)
    # Two runs: the file system's used/free figures may move in between; the root's may not.
    assert _check_against_json(prom.read_text(), doc, skip=("dockerdu_filesystem_",)) > 40
    fresh = out_dir / "new.prom"
    runner.invoke(app, ["report", "--root", str(root), "-f", "prometheus", "--no-cache", "-o", str(fresh)])
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # readable by node_exporter


def test_output_to_a_missing_directory_is_a_usage_error(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(
        app, ["report", "--root", str(root), "-f", "prometheus", "--no-cache", "-o", str(blocker / "x.prom")]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "cannot" in result.stderr and "x.prom" not in os.listdir(tmp_path)


def test_output_to_a_fifo_or_device_writes_into_it(builder: RootBuilder, tmp_path: Path) -> None:
    """`-o /dev/null` or `-o FIFO` writes into the file; a rename would replace the device."""
    root = _root(builder)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    args = ["report", "--root", str(root), "-f", "json", "--no-cache", "-o"]
    result = runner.invoke(app, [*args, str(fifo)])
    reader.join(timeout=60)
    assert result.exit_code == ExitCode.OK, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and json.loads(got[0])["tool"] == "dockerdu"
    if os.geteuid() == 0:  # a null device of its own, as /dev/null is
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert runner.invoke(app, [*args, str(null)]).exit_code == ExitCode.OK
        assert stat.S_ISCHR(null.lstat().st_mode)
        assert set(os.listdir(tmp_path)) == {"fifo", "null", "docker"}  # no temp file beside them


def _csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def _num(cell: str) -> int | None:
    return None if cell == "" else int(cell)


def test_csv_parses_and_equals_json(builder: RootBuilder) -> None:
    report = scan(_root(builder))
    doc = json.loads(render_json(report))
    rows = _csv_rows(render_csv(report))
    by_kind: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    assert len(by_kind["image"]) == len(doc["images"])
    for row, image in zip(by_kind["image"], doc["images"], strict=True):
        assert row["id"] == image["id"] and row["name"] == " ".join(image["tags"])
        for col in ("size", "disk", "shared_size", "unique_size", "unique_disk", "containers"):
            assert _num(row[col]) == image[col], col
    for row, c in zip(by_kind["container"], doc["containers"], strict=True):
        assert (row["id"], row["name"], row["state"]) == (c["id"], c["name"], c["state"])
        assert (_num(row["size"]), _num(row["disk"])) == (c["rw_size"], c["rw_disk"])
        assert (_num(row["log_size"]), _num(row["log_disk"])) == (c["log_size"], c["log_disk"])
    assert CONTAINER in {r["name"] for r in by_kind["container"]}  # quotes, backslash, newline, comma
    for row, v in zip(by_kind["volume"], doc["volumes"], strict=True):
        assert row["name"] == v["name"]
        assert (_num(row["size"]), _num(row["disk"])) == (v["size"], v["disk"])
    assert {r["name"] for r in by_kind["volume"]} == {v["name"] for v in doc["volumes"]}
    assert "bad\\xffutf8" in {r["name"] for r in by_kind["volume"]}
    for row, o in zip(by_kind["orphan"], doc["orphans"], strict=True):
        assert (row["id"], row["type"], _num(row["disk"]), row["detail"]) == (
            o["path"],
            o["kind"],
            o["disk"],
            o["reason"],
        )
    assert {r["id"]: _num(r["disk"]) for r in by_kind["total"]} == doc["totals"]
    assert {r["id"]: (_num(r["size"]), _num(r["disk"])) for r in by_kind["reclaimable"]} == {
        k: (v["size"], v["disk"]) for k, v in doc["reclaimable"].items()
    }
    assert {r["id"]: _num(r["disk"]) for r in by_kind.get("other", [])} == {
        o["name"]: o["disk"] for o in doc["other"]
    }
    assert len(by_kind.get("build_cache", [])) == len(doc["build_cache"]["records"])
    assert len(by_kind.get("problem", [])) == len(doc["problems"])


def test_csv_cli(builder: RootBuilder) -> None:
    root = _root(builder)
    result = runner.invoke(app, ["report", "--root", str(root), "--format", "csv", "--no-cache"])
    assert result.exit_code == ExitCode.OK and result.stderr == ""
    rows = _csv_rows(result.stdout)
    assert {r["kind"] for r in rows} >= {"image", "container", "volume", "orphan", "total", "reclaimable"}
    since = runner.invoke(app, ["report", "--root", str(root), "--format", "csv", "--since"])
    assert since.exit_code == ExitCode.USAGE
    assert "--since has no CSV form" in since.stderr


@pytest.mark.parametrize("fmt", ["prometheus", "csv"])
def test_orphans_command_accepts_the_new_formats(builder: RootBuilder, fmt: str) -> None:
    result = runner.invoke(app, ["orphans", "--root", str(_root(builder)), "-f", fmt, "--no-cache"])
    assert result.exit_code == ExitCode.OK
    assert "layer_dir_unreferenced" in result.stdout
