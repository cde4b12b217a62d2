"""The report as one self-contained HTML page: a treemap, the headline and sortable tables.

The page holds two JSON documents and one script, and fetches nothing:

- `dockerdu-report`: the report's JSON, exactly as `--format json` prints it (compact);
  every figure on the page is read from it;
- `dockerdu-view`: what the page draws that the report does not spell out: the treemap
  (categories → objects → parts, sized by `disk`, each node naming the report entry it
  stands for), the history of the root's audits, and each byte figure as the terminal
  table prints it (`units.human`, so both always agree);
- the script: d3-hierarchy's squarified layout (vendored, ISC) and the page's own code,
  allowed by its sha256 in the page's Content-Security-Policy, which allows nothing else
  (no request of any kind, no other script, the one style sheet by its hash).

Names from the root are only ever inserted as text (`textContent`); the JSON is embedded
with `<`, `>`, `&`, U+2028 and U+2029 escaped, so no name can end its script element.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from typing import Any

from ..growth import Growth, growth_dict
from ..history import Snapshot
from ..report import Report
from ..units import human
from .json_ import to_dict

MAX_CHILDREN = 1000
"""Children a treemap node shows at most; the rest go into one "N smaller" node."""
MIN_SHARE = 20_000
"""A child under 1/MIN_SHARE of its node (a few pixels with the node on the whole map) goes there too."""
SMALLER_LEVELS = 3
"""How many "N smaller" nodes open one inside the other; the last is a leaf."""
NODE_BUDGET = 10_000
"""Nodes the treemap holds at most: the largest nodes are opened first, the rest stay leaves."""

CATEGORIES = (
    ("images", "images"),
    ("image_content", "image content"),
    ("containers", "containers and logs"),
    ("volumes", "volumes"),
    ("build_cache", "build cache"),
    ("orphans", "orphans"),
    ("metadata", "metadata"),
    ("other", "other"),
)
"""Top-level treemap nodes, in the order of the report's `totals` (logs go with containers)."""

Node = dict[str, Any]
"""A treemap node: n name, d disk, c category, r JSON pointer into the report, s Docker's
size, x reclaimable, k children, m how many entries an "N smaller" node stands for, t kind."""


def _leaf(name: str, disk: int, cat: str, **extra: Any) -> Node:
    node: Node = {"n": name, "d": disk, "c": cat}
    node.update({k: v for k, v in extra.items() if v is not None and v is not False})
    return node


def _group(name: str, cat: str, children: list[Node], **extra: Any) -> Node | None:
    """A node holding `children` (those with disk), its disk their sum; None when empty."""
    kept = [c for c in children if c["d"] > 0]
    if not kept:
        return None
    node = _leaf(name, sum(c["d"] for c in kept), cat, **extra)
    node["k"] = kept
    return node


def _shown(children: list[Node], disk: int) -> tuple[list[Node], list[Node]]:
    """The children a node of `disk` shows, largest first, and the rest."""
    children = sorted(children, key=lambda c: -c["d"])
    n = 0
    while n < min(len(children), MAX_CHILDREN) and children[n]["d"] * MIN_SHARE >= disk:
        n += 1
    if len(children) - n == 1:  # no "1 smaller" box: the one itself
        n += 1
    return children[:n], children[n:]


def _shape(root: Node) -> Node:
    """Bound the tree: each node its largest children and one "N smaller" node, NODE_BUDGET nodes in all.

    Nodes are opened level by level (every category shows its entries), each level
    largest first, so the detail goes where the bytes are; a node the budget does not
    reach keeps its disk and loses its children (the tables list them).
    """
    budget = NODE_BUDGET - 1
    heap: list[tuple[int, int, int, Node, int]] = [(0, -root["d"], 0, root, 0)]
    count = 1
    while heap:
        depth, _, _, node, level = heapq.heappop(heap)
        shown, rest = _shown(node["k"], node["d"])
        if len(shown) + bool(rest) > budget:
            del node["k"]
            continue
        budget -= len(shown) + bool(rest)
        opened = [(c, 0) for c in shown if "k" in c]
        if rest:
            smaller: Node = {"n": f"{len(rest)} smaller", "d": sum(c["d"] for c in rest), "c": node["c"],
                             "m": len(rest), "t": "smaller"}  # fmt: skip
            if all(c.get("x") for c in rest):
                smaller["x"] = 1
            if level + 1 < SMALLER_LEVELS:
                smaller["k"] = rest
                opened.append((smaller, level + 1))
            shown = [*shown, smaller]
        node["k"] = shown
        for child, child_level in opened:
            heapq.heappush(heap, (depth + 1, -child["d"], count, child, child_level))
            count += 1
    return root


def _with_rest(name: str, cat: str, children: list[Node], total: int | None, rest: str) -> Node | None:
    """A category node of disk `total`: its children, and what they leave of it as one leaf."""
    if total is None:
        return None
    known = sum(c["d"] for c in children if c["d"] > 0)
    if total > known:
        children = [*children, _leaf(rest, total - known, cat, t="rest")]
    return _group(name, cat, children)


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _image_name(image: dict[str, Any]) -> str:
    tags = image.get("tags") or []
    if not tags:
        return f"<none> {_short(str(image.get('id', '')))}"
    return str(tags[0]) + (f" (+{len(tags) - 1})" if len(tags) > 1 else "")


def _images(doc: dict[str, Any], total: int | None) -> Node | None:
    """Images holding the layers only they use; a layer of several images once, under "shared layers"."""
    images = doc.get("images") or []
    users: dict[str, list[int]] = {}
    where: dict[str, str] = {}
    for i, image in enumerate(images):
        for j, layer in enumerate(image.get("layers") or []):
            key = layer.get("chain_id") or f"{i}/{j}"
            if i not in users.setdefault(key, []):
                users[key].append(i)
            where.setdefault(key, f"/images/{i}/layers/{j}")
    in_use = {i for i, image in enumerate(images) if image.get("containers")}
    nodes: list[Node] = []
    shared: list[Node] = []
    placed: set[str] = set()
    for i, image in enumerate(images):
        parts: list[Node] = []
        for j, layer in enumerate(image.get("layers") or []):
            key = layer.get("chain_id") or f"{i}/{j}"
            if layer.get("disk") is None or key in placed:
                continue
            placed.add(key)
            leaf = _leaf(
                f"layer {j + 1} {_short(str(layer.get('diff_id') or key))}",
                layer["disk"],
                "images",
                r=where[key],
                s=layer.get("size"),
                x=not any(u in in_use for u in users[key]),
                t="layer",
                u=len(users[key]),
            )
            (parts if len(users[key]) == 1 else shared).append(leaf)
        node = _group(_image_name(image), "images", parts, r=f"/images/{i}", t="image", x=i not in in_use)
        if node is not None:
            nodes.append(node)
    shared_node = _group("shared layers", "images", shared, t="shared")
    if shared_node is not None:
        nodes.append(shared_node)
    return _with_rest("images", "images", nodes, total, "layers of no listed image")


STOPPED = ("running", "paused", "restarting")


def _containers(doc: dict[str, Any], totals: dict[str, Any]) -> Node | None:
    """Each container with its writable and init layers and its logs; logs coloured as logs."""
    nodes: list[Node] = []
    for i, c in enumerate(doc.get("containers") or []):
        gone = c.get("state") not in STOPPED
        ref = f"/containers/{i}"
        parts = [
            _leaf("writable + init layers", c.get("rw_disk") or 0, "containers", r=ref, s=c.get("rw_size"),
                  x=gone, t="rw"),
            _leaf("logs", c.get("log_disk") or 0, "logs", r=ref, s=c.get("log_size"), x=gone, t="logs"),
        ]  # fmt: skip
        node = _group(str(c.get("name") or _short(str(c.get("id", "")))), "containers", parts, r=ref,
                      t="container", x=gone)  # fmt: skip
        if node is not None:
            nodes.append(node)
    rw, logs = totals.get("containers"), totals.get("logs")
    if rw is None or logs is None:
        return None
    rest_rw = rw - sum(c.get("rw_disk") or 0 for c in doc.get("containers") or [])
    rest_logs = logs - sum(c.get("log_disk") or 0 for c in doc.get("containers") or [])
    if rest_rw > 0:
        nodes.append(_leaf("writable layers of no listed container", rest_rw, "containers", t="rest"))
    if rest_logs > 0:
        nodes.append(_leaf("logs of no listed container", rest_logs, "logs", t="rest"))
    return _group("containers and logs", "containers", nodes)


def _volumes(doc: dict[str, Any], total: int | None) -> Node | None:
    nodes = [
        _leaf(str(v.get("name", "")), v.get("disk") or 0, "volumes", r=f"/volumes/{i}", s=v.get("size"),
              x=not v.get("containers"), t="volume")
        for i, v in enumerate(doc.get("volumes") or [])
    ]  # fmt: skip
    return _with_rest("volumes", "volumes", nodes, total, "volumes not listed")


def _orphans(doc: dict[str, Any], total: int | None) -> Node | None:
    kinds: dict[str, list[Node]] = {}
    for i, o in enumerate(doc.get("orphans") or []):
        kind = str(o.get("kind", ""))
        name = str(o.get("path", ""))
        kinds.setdefault(kind, []).append(
            _leaf(name, o.get("disk") or 0, "orphans", r=f"/orphans/{i}", x=True, t="orphan")
        )
    nodes = [n for kind, items in kinds.items() if (n := _group(kind, "orphans", items, x=True, t="kind"))]
    return _with_rest("orphans", "orphans", nodes, total, "orphans not listed")


def _other(doc: dict[str, Any], total: int | None) -> Node | None:
    nodes = [
        _leaf(str(o.get("name", "")), o.get("disk") or 0, "other", r=f"/other/{i}", t="other")
        for i, o in enumerate(doc.get("other") or [])
    ]
    return _with_rest("other", "other", nodes, total, "other")


def roots_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The roots scanned: the report's `roots[]` where it has one, else its one `root`."""
    roots = doc.get("roots")
    if isinstance(roots, list) and roots:
        return [r for r in roots if isinstance(r, dict)]
    disk = (doc.get("totals") or {}).get("root_disk")
    return [{"path": doc.get("root", ""), "role": "docker", "disk": disk}]


def treemap(doc: dict[str, Any]) -> Node | None:
    """The treemap of a report's JSON: categories → objects → parts; each node's disk its children's sum.

    A figure not measured (`--quick`) leaves its category out; None when nothing is measured.
    """
    totals: dict[str, Any] = doc.get("totals") or {}
    reclaimable = doc.get("reclaimable") or {}
    bc = doc.get("build_cache") or {}
    made: dict[str, Node | None] = {
        "images": _images(doc, totals.get("images")),
        "containers": _containers(doc, totals),
        "volumes": _volumes(doc, totals.get("volumes")),
        "orphans": _orphans(doc, totals.get("orphans")),
        "other": _other(doc, totals.get("other")),
    }
    for key, name in (("image_content", "image content"), ("build_cache", "build cache"),
                      ("metadata", "metadata")):  # fmt: skip
        disk = totals.get(key)
        extra: dict[str, Any] = {"t": "category"}
        if key == "build_cache":
            extra.update(r="/build_cache", s=bc.get("size"), x=bool((reclaimable.get(key) or {}).get("disk")))
        made[key] = _leaf(name, disk, key, **extra) if disk else None
    categories = [n for key, _ in CATEGORIES if (n := made.get(key)) is not None and n["d"] > 0]
    for node in categories:
        node.setdefault("t", "category")
    name = " + ".join(str(r.get("path", "")) for r in roots_of(doc))
    root = _group(name, "root", categories, t="root")
    return None if root is None else _shape(root)


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.get("k", ()):
        yield from _nodes(child)


BYTE_KEYS = frozenset(
    "size shared_size unique_size disk unique_disk rw_size rw_disk log_size log_disk layers_size "
    "images containers logs volumes build_cache orphans metadata other root_disk reclaimable "
    "image_content total used free before after change".split()
)
"""Keys of byte figures in the report, its growth and its history."""


def _figures(value: Any, key: str = "") -> Iterator[int]:
    """Every byte figure in `value`: integers under the keys of BYTE_KEYS.

    Not those of image layers: the page shows a layer only in the treemap, whose nodes
    bring their own figures (and a large root has far more layers than anything else).
    """
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "layers":
                yield from _figures(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _figures(v, key)
    elif isinstance(value, int) and not isinstance(value, bool) and key in BYTE_KEYS:
        yield abs(value)


def units(figures: Iterable[int]) -> dict[str, str]:
    """Each figure as the terminal table prints it, by its decimal digits."""
    return {str(n): human(n) for n in sorted(set(figures))}


def embed_json(value: Any) -> str:
    """JSON that is safe inside a `<script>` element: no `<`, `>` or `&`, nothing but ASCII."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _script() -> str:
    d3 = _asset("vendor/d3-hierarchy.min.js")
    notice = _asset("vendor/d3-hierarchy.LICENSE").strip().replace("*/", "* /")
    script = f"\n/* d3-hierarchy 3.1.3, ISC licence:\n{notice}\n*/\n{d3}\n{_asset('page/report.js')}\n"
    # Whatever the page's own code holds, it must not end its element early.
    if "</script" in script.lower() or "<!--" in script:
        raise ValueError("the page script holds </script or <!--")
    return script


def render_html(report: Report, growth: Growth | None = None, history: Sequence[Snapshot] = ()) -> str:
    """The report as the page, with its growth and the audits of its root (`history`, oldest first)."""
    doc = to_dict(report)
    if growth is not None:
        doc["growth"] = growth_dict(growth)
    return page(doc, [json.loads(s.to_line()) for s in history])


def page(doc: dict[str, Any], history: Sequence[dict[str, Any]] = ()) -> str:
    """The page for a report's JSON (`doc`, as `--format json` makes it), with the root's `history`.

    `history`: the lines of the audit history about this root (schema dockerdu.history/1),
    oldest first; the page draws each category over them when there are two or more.
    """
    tree = treemap(doc)
    hist = [{"at": h.get("at"), "totals": h.get("totals") or {}} for h in history]
    figures = [*_figures(doc), *_figures(hist)]
    if tree is not None:
        figures += [n[k] for n in _nodes(tree) for k in ("d", "s") if isinstance(n.get(k), int)]
    view = {"treemap": tree, "history": hist, "units": units(figures)}
    css = "\n" + _asset("page/report.css")
    script = _script()
    csp = (
        f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(css)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        "<title>dockerdu report</title>\n"
        f"<style>{css}</style>\n</head>\n<body>\n"
        "<noscript><p>This dockerdu report is drawn by its script; the figures are in the JSON "
        "of this file (element dockerdu-report).</p></noscript>\n"
        '<main id="app"></main>\n'
        f'<script type="application/json" id="dockerdu-report">{embed_json(doc)}</script>\n'
        f'<script type="application/json" id="dockerdu-view">{embed_json(view)}</script>\n'
        f"<script>{script}</script>\n"
        "</body>\n</html>\n"
    )
