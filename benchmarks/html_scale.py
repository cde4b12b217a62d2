"""Benchmark the HTML report at scale: file size, render time, and load time in headless Chromium.

The report is the shape of a large host — 5,000 containers, 2,000 images, about
100,000 treemap leaves (image layers, container parts, volumes, orphans) — made as a
Report in memory, since the renderer is a function of the Report alone (how fast a root
that size is scanned is benchmarks/bench.py's subject); `--root PATH` renders a real
root instead, and `--build DIR` first builds one of that shape file by file with
tests/rootbuilder.py (no daemon; 4 layers of its own per image, so about 8,000 layers)
and times its scan too. Prints figures, asserts nothing.

    python benchmarks/html_scale.py [--containers N] [--images N] [--layers N] [--no-browser]
    python benchmarks/html_scale.py --build DIR [--containers N] [--images N]
    python benchmarks/html_scale.py --root PATH
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dockerdu.model import Cleaner, OrphanKind  # noqa: E402
from dockerdu.render.html import render_html  # noqa: E402
from dockerdu.report import (  # noqa: E402
    BuildCacheReport,
    ContainerReport,
    DockerInfo,
    FileSystem,
    ImageReport,
    LayerReport,
    OrphanReport,
    Reclaimable,
    Report,
    Totals,
    VolumeReport,
)


def _hex(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _layer(*parts: object) -> LayerReport:
    n = int(_hex(*parts)[:6], 16)
    return LayerReport(
        "sha256:" + _hex("chain", *parts), "sha256:" + _hex("diff", *parts), _hex("cache", *parts),
        size=4096 + n * 37, disk=8192 + n * 40, files=1 + n % 500,
    )  # fmt: skip


def synthetic(containers: int, images: int, layers: int) -> Report:
    """A report of that shape: images on 50 shared base chains of 4 layers, each with its own layers."""
    bases = [[_layer("base", b, i) for i in range(4)] for b in range(50)]
    own = max(0, layers - 200) // max(1, images)
    image_list = []
    for i in range(images):
        chain = (*bases[i % 50], *(_layer("image", i, j) for j in range(own)))
        disk = sum(la.disk or 0 for la in chain)
        size = sum(la.size or 0 for la in chain)
        unique = sum(la.size or 0 for la in chain[4:])
        image_list.append(
            ImageReport(
                "sha256:" + _hex("image", i),
                (f"registry.example/team{i % 40}/app{i}:v{i % 7}",),
                (),
                "2026-01-01T00:00:00Z",
                size,
                size - unique,
                unique,
                0,
                disk,
                sum(la.disk or 0 for la in chain[4:]),
                chain,
            )  # fmt: skip
        )
    states = ("running", "exited", "created")
    container_list = [
        ContainerReport(
            _hex("c", c),
            f"svc-{c % 300}-{c}",
            image_list[c % images].id,
            image_list[c % images].tags[0],
            states[c % 3],
            1000 + c * 13,
            8192 + c * 16,
            100 + c * 7,
            4096 * (1 + c % 50),
            "json-file",
            (),
        )  # fmt: skip
        for c in range(containers)
    ]
    volume_list = [VolumeReport(_hex("v", v), 5000 + v, 8192 + 4096 * v, (), True) for v in range(2000)]
    orphan_list = [
        OrphanReport(
            OrphanKind.layer_dir_unreferenced,
            f"overlay2/{_hex('o', o)}",
            4096 * (1 + o),
            "no layer names it",
            (f"overlay2/{_hex('o', o)}",),
            Cleaner.never,
        )  # fmt: skip
        for o in range(500)
    ]
    seen: dict[str, int] = {}
    for image in image_list:
        for la in image.layers:
            seen[la.chain_id] = la.disk or 0
    t_images = sum(seen.values())
    t_cont = sum(c.rw_disk for c in container_list)
    t_logs = sum(c.log_disk for c in container_list)
    t_vol = sum(v.disk for v in volume_list)
    t_orph = sum(o.disk for o in orphan_list)
    meta = 50 * 1024 * 1024
    root_disk = t_images + t_cont + t_logs + t_vol + t_orph + meta
    return Report(
        root="/var/lib/docker", root_source="default", store="overlay2", driver="overlay2",
        generated_at="2026-12-01T00:00:00+00:00", version="bench",
        docker=DockerInfo(False, None, "5b3c0b5e-0000-4000-8000-000000000000", "images", t_images),
        images=tuple(image_list), containers=tuple(container_list), volumes=tuple(volume_list),
        build_cache=BuildCacheReport(0, 0, ()), orphans=tuple(orphan_list), problems=(), other=(),
        totals=Totals(t_images, t_cont, t_logs, t_vol, 0, t_orph, meta, 0, root_disk, t_orph + t_vol),
        reclaimable={"volumes": Reclaimable(None, t_vol), "orphans": Reclaimable(None, t_orph)},
        filesystem=FileSystem(10 * root_disk, 2 * root_disk, 8 * root_disk, 20.0),
    )  # fmt: skip


def build(root: Path, containers: int, images: int) -> None:
    """A real root of that shape, file by file: images on 50 base chains, containers, volumes, orphans."""
    from tests.rootbuilder import RootBuilder

    b = RootBuilder(root)
    bases = [[{f"base{i}/f": bytes([65 + i]) * (2000 + 97 * c)} for i in range(4)] for c in range(50)]
    chains = []
    for i in range(images):
        files = [*bases[i % 50], *({f"app{i}/l{j}": b"x" * (500 + 37 * i + j)} for j in range(4))]
        chains.append((b.add_image(files, [f"registry.example/team{i % 40}/app{i}:v{i % 7}"]), files))
    # One write of the tags at the end would be faster; add_image writes repositories.json each time.
    for c in range(containers):
        image, files = chains[c % images]
        b.add_container(image, b.image_chain(files)[-1], f"svc-{c % 300}-{c}", {"rw": b"w" * (100 + c)},
                        log=b"l" * (c % 5000), volumes=(f"vol{c % 2000}",) if c < 2000 else ())  # fmt: skip
    for v in range(2000):
        b.add_volume(f"vol{v}", {"data": b"v" * (1000 + v)})
    for o in range(500):
        b.layer_dir({"left": b"o" * (1000 + o)}, [])


def _leaves(report: Report) -> int:
    layers = {la.chain_id for i in report.images for la in i.layers}
    return len(layers) + 2 * len(report.containers) + len(report.volumes) + len(report.orphans)


def _load_ms(path: Path, runs: int = 3) -> tuple[list[float], int, int]:
    """Load event (ms after navigation start) of each of `runs` loads in one Chromium, the
    first one cold; the tiles drawn, the console messages."""
    from tests.browser import chromium

    loads = []
    with chromium() as driver:
        for _ in range(runs):
            driver.get(path.as_uri())
            assert driver.execute_script("return document.documentElement.getAttribute('data-ready')") == "1"
            loads.append(
                float(
                    driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
                )
            )
        tiles = int(driver.execute_script("return document.querySelectorAll('#treemap .tile').length"))
        return loads, tiles, len(driver.get_log("browser"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--containers", type=int, default=5000)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=88_000, help="image layers in all (default 88,000)")
    ap.add_argument("--root", type=Path, help="render this Docker root instead of the synthetic report")
    ap.add_argument(
        "--build", type=Path, metavar="DIR", help="build a root of that shape in DIR (kept), render it"
    )
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium load")
    args = ap.parse_args()
    if args.build and not args.build.exists():
        start = time.perf_counter()
        build(args.build, args.containers, args.images)
        print(f"built {args.build} in {time.perf_counter() - start:.0f} s")
    if args.root or args.build:
        from dockerdu.locate import Location
        from dockerdu.scan import build_report

        start = time.perf_counter()
        report = build_report(Location(args.root or args.build, "--root", None))
        print(f"scan: {time.perf_counter() - start:.1f} s")
    else:
        report = synthetic(args.containers, args.images, args.layers)
    print(f"report: {len(report.containers)} containers, {len(report.images)} images, "
          f"{_leaves(report)} treemap leaves")  # fmt: skip
    start = time.perf_counter()
    html = render_html(report)
    seconds = time.perf_counter() - start
    parts = {
        name: len(m.group(1)) if (m := re.search(f'id="{name}">(.*?)</script>', html, re.S)) else 0
        for name in ("dockerdu-report", "dockerdu-view")
    }
    view = json.loads(re.search('id="dockerdu-view">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    nodes = 0
    stack = [view["treemap"]]
    while stack:
        node = stack.pop()
        nodes += 1
        stack.extend(node.get("k", ()))
    mb = {name: size / 1e6 for name, size in parts.items()}
    print(f"render_html: {seconds:.2f} s; file {len(html.encode()) / 1e6:.2f} MB "
          f"(report JSON {mb['dockerdu-report']:.2f} MB, view JSON {mb['dockerdu-view']:.2f} MB "
          f"with {nodes} treemap nodes and {len(view['units'])} unit strings)")  # fmt: skip
    if args.no_browser:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(html)
        loads, tiles, errors = _load_ms(path)
    print(f"chromium: load event at {', '.join(f'{t:.0f}' for t in loads)} ms after navigation start "
          f"(first load cold); {tiles} tiles drawn; {errors} console messages")  # fmt: skip


if __name__ == "__main__":
    main()
