"""`--format html`: the page's data and layout in Python, then the page itself in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dockerdu.cli import app
from dockerdu.render.html import (
    MAX_CHILDREN,
    MIN_SHARE,
    NODE_BUDGET,
    SMALLER_LEVELS,
    embed_json,
    page,
    treemap,
)
from dockerdu.text import display
from dockerdu.units import human
from tests.browser import HEIGHT, WIDTH, chromium, require_chromium
from tests.rootbuilder import RootBuilder

runner = CliRunner()

HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"]
ODD = "quo\"te's\nnew<!--line\u202egnp.exe\u00a0"
"""A name with a newline, a right-to-left override and a no-break space: shown escaped, as the table does."""
BASE = {"bin/busybox": b"x" * 200_000}


def _report_json(html: str, element: str = "dockerdu-report") -> Any:
    found = re.search(f'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images sharing a base layer, containers with hostile names, odd volume names, an orphan."""
    b = RootBuilder(tmp_path_factory.mktemp("html") / "docker")
    app1 = [BASE, {"app/a": b"a" * 60_000}]
    web = [BASE, {"web/w": b"w" * 120_000}]
    a = b.add_image(app1, ["app:1", "app:latest"])
    w = b.add_image(web, ["web:2"])
    b.add_image([{"solo": b"s" * 30_000}], [])
    b.add_container(
        a, b.image_chain(app1)[-1], HOSTILE[0], {"f": b"f" * 50_000}, state="running", log=b"l" * 9000
    )
    b.add_container(a, b.image_chain(app1)[-1], HOSTILE[1], {"g": b"g" * 20_000}, volumes=("data",))
    b.add_container(w, b.image_chain(web)[-1], ODD, {}, log=b"x" * 70_000)
    b.add_volume("data", {"db": b"d" * 40_000})
    b.add_volume('vol"<b>&amp;', {"v": b"v" * 10_000})
    b.add_volume(os.fsdecode(b"bad\xff\xfe<i>"), {"v": b"v" * 5_000})
    b.layer_dir({"pulled": b"p" * 90_000}, [])
    return b.root


@pytest.fixture(scope="module")
def html_file(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.html"
    result = runner.invoke(
        app, ["report", "--root", str(root), "-f", "html", "-o", str(out), "-q", "--no-cache"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def doc(html_file: Path) -> Any:
    return _report_json(html_file.read_text())


@pytest.fixture(scope="module")
def tree(html_file: Path) -> Any:
    return _report_json(html_file.read_text(), "dockerdu-view")["treemap"]


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in node.get("k", ()):
        yield from _nodes(child)


def _at(doc: Any, pointer: str) -> Any:
    value = doc
    for key in pointer.split("/")[1:]:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


# --- the page's data, in Python ----------------------------------------------------------------


def test_embedded_json_is_the_json_report(root: Path, doc: Any) -> None:
    result = runner.invoke(app, ["report", "--root", str(root), "-f", "json", "-q", "--no-cache"])
    expected = json.loads(result.stdout)
    moving = {"generated_at": None, "filesystem": None}  # the clock and the shared disk's free space
    assert {**doc, **moving} == {**expected, **moving}
    assert {c["name"] for c in doc["containers"]} == {*HOSTILE, ODD}


def test_html_to_stdout_and_orphans_does_not_offer_it(root: Path) -> None:
    result = runner.invoke(app, ["report", "--root", str(root), "-f", "html", "-q", "--no-cache"])
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.endswith("</html>\n")
    result = runner.invoke(app, ["orphans", "--root", str(root), "-f", "html", "-q", "--no-cache"])
    assert result.exit_code == 2 and "html" in result.stderr and result.stderr.count("\n") == 1


def test_embed_json_cannot_end_its_element() -> None:
    value = {"name": "</script><!--<script>&amp;\u2028\u2029'\"\udc80", "</SCRIPT>": [1]}
    text = embed_json(value)
    assert not set(text) & set("<>&\u2028\u2029")
    assert text.isascii()
    assert json.loads(text) == value


def test_page_is_locked_down_by_its_csp(html_file: Path) -> None:
    html = html_file.read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp is not None
    script = re.findall(r"<script>(.*?)</script>", html, re.S)
    style = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(script) == 1 and len(style) == 1
    policy = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";"))

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == sha(script[0])
    assert policy["style-src"] == sha(style[0])
    assert "unsafe" not in csp.group(1)
    assert "d3-hierarchy 3.1.3, ISC licence" in script[0] and "Mike Bostock" in script[0]
    # No name from the root in the markup: they are only in the escaped JSON.
    assert "<img" not in html and html.count("<script") == 3


def test_treemap_nodes_add_up_and_name_the_report(doc: Any, tree: Any) -> None:
    assert tree["d"] == doc["totals"]["root_disk"]
    for node in _nodes(tree):
        if "k" in node:
            assert node["d"] == sum(c["d"] for c in node["k"]), node["n"]
            shown = [c for c in node["k"] if c.get("t") != "smaller"]
            assert shown == sorted(shown, key=lambda c: -c["d"]) and node["k"][: len(shown)] == shown
        assert node["d"] > 0
    cats = {n["c"]: n["d"] for n in tree["k"]}
    t = doc["totals"]
    assert cats["images"] == t["images"] and cats["orphans"] == t["orphans"]
    assert cats["containers"] == t["containers"] + t["logs"]
    field = {"layer": "disk", "volume": "disk", "orphan": "disk", "rw": "rw_disk", "logs": "log_disk"}
    leaves = [n for n in _nodes(tree) if n.get("t") in field]
    for leaf in leaves:
        assert leaf["d"] == _at(doc, leaf["r"])[field[leaf["t"]]]
    # A layer of several images appears once, under "shared layers".
    layers = [_at(doc, n["r"])["chain_id"] for n in leaves if n["t"] == "layer"]
    assert (
        len(layers) == len(set(layers)) == len({la["chain_id"] for i in doc["images"] for la in i["layers"]})
    )
    images = next(n for n in tree["k"] if n["c"] == "images")
    shared = next(n for n in images["k"] if n.get("t") == "shared")
    assert [n["u"] for n in shared["k"]] == [2]
    assert {n["n"] for n in _nodes(tree) if n.get("t") == "container"} == {*HOSTILE, ODD}


def _volumes_tree(disks: list[int]) -> Any:
    volumes = [{"name": f"v{i}", "size": d, "disk": d, "containers": ["c"]} for i, d in enumerate(disks)]
    total = sum(disks)
    tree = treemap({"root": "/r", "volumes": volumes, "totals": {"volumes": total, "root_disk": total}})
    assert tree is not None
    return tree


def test_many_entries_become_n_smaller_nodes() -> None:
    left = SMALLER_LEVELS * MAX_CHILDREN + 100
    node = _volumes_tree([4096] * left)["k"][0]
    for _ in range(SMALLER_LEVELS):
        assert len(node["k"]) == MAX_CHILDREN + 1
        left -= MAX_CHILDREN
        smaller = node["k"][-1]
        assert (smaller["n"], smaller["m"], smaller["d"], smaller["t"]) == (
            f"{left} smaller",
            left,
            4096 * left,
            "smaller",
        )
        assert "x" not in smaller  # the volumes are in use: not reclaimable
        node = smaller
    assert "k" not in node  # the last one is a leaf: the tables list every entry


def test_entries_too_small_to_see_become_one_node() -> None:
    big = 4096 * MIN_SHARE * 10
    node = _volumes_tree([big, 4096, 4096, 8192])["k"][0]
    assert [(c["n"], c["d"]) for c in node["k"]] == [("v0", big), ("3 smaller", 16384)]
    node = _volumes_tree([big, 4096])["k"][0]
    assert [c["n"] for c in node["k"]] == ["v0", "v1"]  # never "1 smaller"


def test_treemap_holds_at_most_its_budget_largest_first() -> None:
    images: list[dict[str, Any]] = [
        {"id": f"sha256:{i:064x}", "tags": [f"app{i}"], "containers": 1, "disk": 4096 * 300,
         "layers": [{"chain_id": f"sha256:{i:032x}{j:032x}", "diff_id": "sha256:" + "d" * 64,
                     "size": 4096, "disk": 4096 * (1 + (i + j) % 3)} for j in range(200)]}
        for i in range(250)
    ]  # fmt: skip
    total = sum(la["disk"] for i in images for la in i["layers"])
    volumes = [{"name": f"v{i}", "size": 1, "disk": 4096, "containers": []} for i in range(300)]
    totals = {"images": total, "volumes": 4096 * 300, "root_disk": total + 4096 * 300}
    tree = treemap({"root": "/r", "images": images, "volumes": volumes, "totals": totals})
    assert tree is not None
    # Each category shows its entries, however small beside the others: levels open in turn.
    assert [len(c["k"]) for c in tree["k"]] == [250, 300]
    nodes = list(_nodes(tree))
    assert NODE_BUDGET - MAX_CHILDREN <= len(nodes) <= NODE_BUDGET
    for node in nodes:
        if "k" in node:
            assert node["d"] == sum(c["d"] for c in node["k"])
    category = tree["k"][0]
    opened = [n for n in category["k"] if "k" in n]
    closed = [n for n in category["k"] if "k" not in n]
    assert opened and closed and min(n["d"] for n in opened) >= max(n["d"] for n in closed)


def test_quick_report_has_no_images_in_the_map(doc: Any) -> None:
    quick = {**doc, "totals": {**doc["totals"], "images": None, "root_disk": None}}
    tree = treemap(quick)
    assert tree is not None and "images" not in {n["c"] for n in tree["k"]}
    page(quick)


# --- the page in a real browser ----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    with chromium() as driver:
        yield driver


def _open(driver: Any, path: Path) -> None:
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(path.as_uri())
    assert driver.execute_script("return document.documentElement.getAttribute('data-ready')") == "1"


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        text = driver.switch_to.alert.text
        pytest.fail(f"an alert opened: {text!r}")


@pytest.mark.browser
def test_loads_offline_without_error_or_request(browser: Any, html_file: Path) -> None:
    _open(browser, html_file)
    assert browser.get_log("browser") == []  # no console message: no error, no CSP violation
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    urls = [
        m["params"]["request"]["url"]
        for e in browser.get_log("performance")
        if (m := json.loads(e["message"])["message"])["method"] == "Network.requestWillBeSent"
    ]
    assert urls == [html_file.as_uri()]


TILES = """
const m = document.getElementById('treemap');
const tiles = [...m.querySelectorAll('.tile')].map(e => {
  const r = e.getBoundingClientRect();
  return [e.dataset.index, r.width, r.height, Number(e.dataset.disk)]; });
const groups = [...m.querySelectorAll('.group')].map(e => {
  const r = e.getBoundingClientRect(); return [e.dataset.index, r.width, r.height]; });
return [m.clientWidth, m.clientHeight, tiles, groups];
"""


def _node(tree: Any, index: str) -> Any:
    node = tree
    for i in index.split("/") if index else ():
        node = node["k"][int(i)]
    return node


def _check_areas(driver: Any, tree: Any, view: str) -> None:
    """Each tile's area is its disk's share of the view, within a pixel's rounding; a box's tiles fill it."""
    width, height, tiles, groups = driver.execute_script(TILES)
    top = _node(tree, view)
    scale = width * height / top["d"]
    assert tiles
    assert sum(w * h for _, w, h, _ in tiles) == pytest.approx(
        width * height, rel=1e-3
    )  # layout units: 1/64 px
    for index, w, h, disk in tiles:
        node = _node(tree, index)
        assert disk == node["d"]
        assert abs(w * h - disk * scale) <= w + h + 1, (node["n"], w, h, disk)
    for index, w, h in groups:
        inside = [t for t in tiles if t[0].startswith(index + "/")]
        assert sum(t[3] for t in inside) == _node(tree, index)["d"]
        assert abs(sum(t[1] * t[2] for t in inside) - w * h) <= w + h + 1


OPEN_BOX = """
[...document.querySelectorAll('#treemap .glabel')].find(e => e.textContent.startsWith(arguments[0])).click()
"""


def _crumbs(driver: Any) -> list[str]:
    return [str(t) for t in driver.execute_script(
        "return [...document.querySelectorAll('nav.crumbs li')].map(e => e.textContent)")]  # fmt: skip


@pytest.mark.browser
def test_treemap_areas_zoom_and_breadcrumb(browser: Any, html_file: Path, tree: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, html_file)
    _check_areas(browser, tree, "")
    images = next(str(i) for i, n in enumerate(tree["k"]) if n["c"] == "images")
    browser.find_element(By.CSS_SELECTOR, f'#treemap .glabel[data-index="{images}"]').click()
    assert len(_crumbs(browser)) == 2 and _crumbs(browser)[1].startswith("images")
    _check_areas(browser, tree, images)
    # One level further, into the largest image; then the breadcrumb back to the top.
    first = browser.find_element(By.CSS_SELECTOR, "#treemap .tile")
    index = first.get_attribute("data-index")
    first.click()
    assert len(_crumbs(browser)) == 3
    _check_areas(browser, tree, index.rsplit("/", 1)[0])
    browser.find_element(By.CSS_SELECTOR, 'nav.crumbs button[data-index=""]').click()
    assert len(_crumbs(browser)) == 1
    _check_areas(browser, tree, "")
    # The keyboard: arrows move, Enter opens the focused tile's box, Escape goes back.
    m = browser.find_element(By.ID, "treemap")
    m.send_keys(Keys.ARROW_RIGHT)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-index") == browser.find_element(
        By.CSS_SELECTOR, "#treemap .tile"
    ).get_attribute("data-index")
    assert browser.find_element(By.ID, "tip").is_displayed()  # focus shows the figures
    focused.send_keys(Keys.ENTER)
    assert len(_crumbs(browser)) == 2
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert len(_crumbs(browser)) == 1


TABLE = """
const t = document.querySelector('table[data-table="' + arguments[0] + '"]');
if (!t) return null;
return [[...t.querySelectorAll('thead th')].map(e => e.textContent),
  [...t.querySelectorAll('tbody tr')].map(r => [Number(r.dataset.row),
    [...r.children].map(c => [c.textContent, c.dataset.bytes === undefined ? null : c.dataset.bytes,
                              c.getAttribute('title')])])];
"""
BYTE_COLUMNS = {
    "images": ("images", {"SIZE": "size", "SHARED": "shared_size", "UNIQUE": "unique_size", "DISK": "disk"}),
    "containers": ("containers", {"RW SIZE": "rw_size", "RW DISK": "rw_disk", "LOGS": "log_disk"}),
    "volumes": ("volumes", {"SIZE": "size", "DISK": "disk"}),
    "orphans": ("orphans", {"DISK": "disk"}),
}


def _cell(value: int | None) -> tuple[str, str]:
    return human(value), "null" if value is None else str(value)


@pytest.mark.browser
def test_every_table_figure_is_the_jsons(browser: Any, html_file: Path, doc: Any) -> None:
    _open(browser, html_file)
    for table, (key, columns) in BYTE_COLUMNS.items():
        headers, rows = browser.execute_script(TABLE, table)
        assert len(rows) == len(doc[key])
        for index, cells in rows:
            entry = doc[key][index]
            for header, field in columns.items():
                text, raw, title = cells[headers.index(header)]
                assert (text, raw) == _cell(entry[field]), (table, header)
                assert title == ("not known" if entry[field] is None else f"{entry[field]:,} bytes")
    _, rows = browser.execute_script(TABLE, "containers")
    assert sorted(cells[0][0] for _, cells in rows) == sorted([*HOSTILE, display(ODD)])
    assert display(ODD) == "quo\"te's\\x0anew<!--line\\u202egnp.exe\\xa0"
    _, rows = browser.execute_script(TABLE, "volumes")
    assert {cells[0][0] for _, cells in rows} == {v["name"] for v in doc["volumes"]}
    assert "bad\\xff\\xfe<i>" in {cells[0][0] for _, cells in rows}
    t = doc["totals"]
    _, rows = browser.execute_script(TABLE, "categories")
    names = [
        "images",
        "containers",
        "logs",
        "volumes",
        "build_cache",
        "orphans",
        "metadata",
        "other",
        "root_disk",
    ]
    assert [(c[0][0], c[1][0], c[1][1]) for _, c in rows] == [
        ("total (du -sx)" if n == "root_disk" else n.replace("_", " "), *_cell(t[n])) for n in names
    ]
    _, rows = browser.execute_script(TABLE, "reclaimable-table")
    assert [tuple(c[i][j] for i in (1, 2) for j in (0, 1)) for _, c in rows] == [
        (*_cell(r["size"]), *_cell(r["disk"])) for r in doc["reclaimable"].values()
    ]
    assert browser.execute_script("return document.getElementById('total').textContent") == human(
        t["root_disk"]
    )
    assert browser.execute_script("return document.getElementById('reclaimable').textContent") == human(
        t["reclaimable"]
    )


@pytest.mark.browser
def test_tables_sort_by_their_figures(browser: Any, html_file: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, html_file)
    button = browser.find_element(By.XPATH, '//table[@data-table="containers"]//th[.="RW DISK"]/button')
    for order in (-1, 1):
        button.click()
        headers, rows = browser.execute_script(TABLE, "containers")
        figures = [int(cells[headers.index("RW DISK")][1]) for _, cells in rows]
        assert figures == sorted(figures, key=lambda v: order * v)


@pytest.mark.browser
def test_hostile_names_are_text_and_run_nothing(browser: Any, html_file: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    # Once as written, once with its Content-Security-Policy removed: the escaping alone holds.
    html = html_file.read_text()
    bare = tmp_path / "no-csp.html"
    bare.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html))
    for path in (html_file, bare):
        _open(browser, path)
        _no_alert(browser)
        assert (
            browser.execute_script("return document.querySelectorAll('img, iframe, object, embed').length")
            == 0
        )
        assert browser.execute_script("return document.scripts.length") == 3
        assert browser.get_log("browser") == []
        text = browser.execute_script("return document.body.innerText")
        assert all(name in text for name in HOSTILE)
        # The tooltip of a hostile container shows its name as text.
        browser.execute_script(OPEN_BOX, "containers")
        hostile = browser.execute_script(
            "return [...document.querySelectorAll('#treemap .glabel')].find(e => e.textContent.startsWith("
            "arguments[0]))",
            HOSTILE[0],
        )
        assert hostile is not None
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_to_element(hostile).perform()
        tip = browser.find_element(By.ID, "tip")
        assert tip.is_displayed() and tip.find_element(By.TAG_NAME, "b").text == HOSTILE[0]
        tags = browser.execute_script("return [...document.querySelectorAll('#tip *')].map(e => e.tagName)")
        assert set(tags) == {"B", "DIV"}  # its own lines only
        _no_alert(browser)


@pytest.mark.browser
def test_screenshot_at_1280x800_is_not_blank(browser: Any, html_file: Path, tmp_path: Path) -> None:
    from PIL import Image

    _open(browser, html_file)
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    colours = image.getcolors(maxcolors=WIDTH * HEIGHT)
    assert colours is not None
    background = max(colours)[0]
    assert len(colours) > 50  # text, tiles of several categories, hatching
    assert background < 0.7 * WIDTH * HEIGHT  # most of the screen is drawn on
    # The map takes the first screen: it ends inside the viewport.
    bottom = browser.execute_script(
        "return document.getElementById('treemap').getBoundingClientRect().bottom"
    )
    assert 400 < bottom <= HEIGHT


@pytest.mark.browser
def test_cleaned_by_two_roots_and_a_running_daemon(browser: Any, doc: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    total = doc["totals"]["root_disk"]
    extended = {
        **doc,
        "roots": [{"path": doc["root"], "role": "docker", "disk": 1000},
                  {"path": "/var/lib/containerd", "role": "containerd", "disk": total - 1000}],
        "orphans": [{**o, "cleaned_by": "never"} for o in doc["orphans"]],
        "docker": {**doc["docker"], "daemon_running": True, "daemon_pid": 4242},
    }  # fmt: skip
    path = tmp_path / "extended.html"
    path.write_text(page(extended))
    _open(browser, path)
    assert browser.get_log("browser") == []
    headers, rows = browser.execute_script(TABLE, "orphans")
    assert headers[-1] == "CLEANED BY" and {cells[-1][0] for _, cells in rows} == {"never"}
    headline = browser.find_element(By.CSS_SELECTOR, "dl.headline").text
    assert "containerd root\n/var/lib/containerd" in headline
    warning = browser.find_element(By.CSS_SELECTOR, "p.warn[role=alert]").text
    assert warning.startswith("dockerd was running (pid 4242) during the scan")
    browser.execute_script(OPEN_BOX, "orphans")
    leaf = browser.find_element(By.CSS_SELECTOR, '#treemap .tile[data-ref^="/orphans/"]')
    browser.execute_script("arguments[0].focus()", leaf)
    assert "cleaned by never" in browser.find_element(By.ID, "tip").text


@pytest.mark.browser
def test_audit_history_chart(browser: Any, root: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    out = tmp_path / "audit.html"
    for _ in range(3):
        result = runner.invoke(app, ["audit", "--root", str(root), "--history", str(history), "--no-cache",
                                     "-f", "html", "-o", str(out)])  # fmt: skip
        assert result.exit_code == 0, result.output
    html = out.read_text()
    assert len(_report_json(html, "dockerdu-view")["history"]) == 3
    assert "growth" in _report_json(html)
    _open(browser, out)
    assert browser.get_log("browser") == []
    points = browser.execute_script(
        "return [...document.querySelectorAll('svg.chart polyline')]"
        ".map(p => p.getAttribute('points').split(' ').length)"
    )
    assert points and set(points) == {3}
    assert browser.execute_script("return document.querySelector('table[data-table=\"growth\"]') !== null")
    since = tmp_path / "since.html"
    result = runner.invoke(app, ["report", "--root", str(root), "--history", str(history), "--since", "-q",
                                 "--no-cache", "-f", "html", "-o", str(since)])  # fmt: skip
    assert result.exit_code == 0, result.output
    # This report last, unrecorded (unless made within the second of the last audit, with its figures).
    shown = _report_json(since.read_text(), "dockerdu-view")["history"]
    assert len(shown) in (3, 4) and shown[-1]["at"] == _report_json(since.read_text())["generated_at"]


@pytest.mark.browser
def test_long_tables_show_the_rest_on_request(browser: Any, doc: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    volumes = [{"name": f"v{i}", "size": i, "disk": 4096 * i, "containers": [], "anonymous": False}
               for i in range(250)]  # fmt: skip
    path = tmp_path / "long.html"
    path.write_text(page({**doc, "volumes": volumes}))
    _open(browser, path)
    assert len(browser.execute_script(TABLE, "volumes")[1]) == 200
    browser.find_element(By.XPATH, '//section[@id="volumes"]//button[.="Show all 250 rows"]').click()
    _, rows = browser.execute_script(TABLE, "volumes")
    assert [r for r, _ in rows] == list(range(250))
