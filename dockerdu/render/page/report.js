/* dockerdu HTML report: the page, built from the JSON embedded above it.
 * Every name from the root is inserted as text (textContent, setAttribute), never as markup. */
(function () {
  "use strict";
  var doc = JSON.parse(document.getElementById("dockerdu-report").textContent);
  var view = JSON.parse(document.getElementById("dockerdu-view").textContent);
  var UNITS = view.units || {};
  var ROW_LIMIT = 200;
  var CAT_NAMES = {
    images: "images", image_content: "image content", containers: "containers", logs: "logs",
    volumes: "volumes", build_cache: "build cache", orphans: "orphans", metadata: "metadata",
    other: "other", root: "root"
  };

  /* Sizes exactly as the terminal table prints them (dockerdu.units, precomputed). */
  function fmt(n) {
    if (n === null || n === undefined) return "-";
    var s = UNITS[String(Math.abs(n))];
    if (s === undefined) s = String(Math.abs(n)) + " bytes";
    return n < 0 ? "-" + s : s;
  }
  function signed(n) { return n > 0 ? "+" + fmt(n) : fmt(n); }
  function bytesTitle(n) {
    return n === null || n === undefined ? "not known" : Number(n).toLocaleString("en-US") + " bytes";
  }

  /* A name as one printable line, as the terminal table shows it (dockerdu.text.display): control
   * and format characters (newlines, bidi overrides, zero-width) escaped, so no name can hide or
   * reorder what is around it. */
  var UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu;
  function shown(s) {
    return String(s).replace(UNPRINTABLE, function (ch) {
      var c = ch.codePointAt(0);
      return c < 0x100 ? "\\x" + ("0" + c.toString(16)).slice(-2) : "\\u" + ("000" + c.toString(16)).slice(-4);
    });
  }

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(parent, c); }); return; }
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(shown(child)));
  }
  function ptr(p) {
    if (!p) return null;
    var v = doc;
    p.split("/").slice(1).forEach(function (k) { v = v === null || v === undefined ? v : v[k]; });
    return v === undefined ? null : v;
  }
  function shortId(id) { id = String(id || ""); return id.indexOf(":") >= 0 ? id.split(":")[1].slice(0, 12) : id.slice(0, 12); }

  var app = document.getElementById("app");
  var roots = Array.isArray(doc.roots) && doc.roots.length ? doc.roots
    : [{ path: doc.root, role: "docker", disk: (doc.totals || {}).root_disk }];
  document.title = "dockerdu: " + roots.map(function (r) { return r.path; }).join(" + ");

  /* ---- headline ---- */
  function headline() {
    var t = doc.totals || {}, d = doc.docker || {}, fs = doc.filesystem;
    var items = [];
    function item(label, value, extra) { items.push(el("div", null, el("dt", null, label), el("dd", null, value, extra))); }
    roots.forEach(function (r) {
      item((r.role === "containerd" ? "containerd root" : "Docker root"), r.path,
        r.disk !== undefined && roots.length > 1 ? el("span", { title: bytesTitle(r.disk) }, " (" + fmt(r.disk) + ")") : null);
    });
    item("found by", doc.root_source);
    item("store / driver", String(doc.store) + " / " + String(doc.driver));
    if (fs) {
      var bar = el("div", { "class": "fsbar" + (fs.percent >= 90 ? " full" : ""), role: "img",
        "aria-label": fs.percent.toFixed(1) + "% used" }, el("span"));
      bar.firstChild.style.width = Math.max(0, Math.min(100, fs.percent)) + "%";
      item("file system", el("span", { title: bytesTitle(fs.used) + " used of " + bytesTitle(fs.total) },
        fmt(fs.used) + " used of " + fmt(fs.total) + " (" + fs.percent.toFixed(1) + "%), " + fmt(fs.free) + " free"), bar);
    } else {
      item("file system", "not known");
    }
    item("total (du -sx)", el("span", { title: bytesTitle(t.root_disk), id: "total" }, fmt(t.root_disk)));
    item("reclaimable", el("span", { title: bytesTitle(t.reclaimable), id: "reclaimable" }, fmt(t.reclaimable)));
    item("dockerd", d.daemon_running ? "running (pid " + d.daemon_pid + ")" : "not running");
    item("generated at", doc.generated_at);
    item("dockerdu", doc.version);
    var out = [el("h1", null, "dockerdu report")];
    if (d.daemon_running) {
      out.push(el("p", { "class": "warn", role: "alert" }, "dockerd was running (pid " + d.daemon_pid +
        ") during the scan: the root was changing under it; in-flight bytes are counted under other."));
    }
    out.push(el("dl", { "class": "headline" }, items));
    return out;
  }

  /* ---- treemap ---- */
  var tip = el("div", { id: "tip", role: "tooltip", hidden: "" });
  var tm = el("div", { id: "treemap", role: "group", tabindex: "0",
    "aria-label": "Treemap of the disk: arrow keys move, Enter opens, Escape goes back" });
  var crumbs = el("nav", { "class": "crumbs", "aria-label": "Treemap path" });
  var path = view.treemap ? [{ node: view.treemap, index: "" }] : [];
  var tiles = [];
  var focusIndex = 0;

  function tipLines(node) {
    var lines = [];
    var obj = ptr(node.r);
    var cat = CAT_NAMES[node.c] || node.c;
    var what = {
      image: "image", layer: node.u > 1 ? "layer shared by " + node.u + " images" : "layer",
      shared: "layers of several images (each appears once, here)", smaller: "smaller entries taken together", container: "container",
      rw: "writable and init layers", logs: "container logs", volume: "volume", orphan: "orphan",
      kind: "orphans of one kind", other: "other", rest: "not in a listed entry", category: "category", root: "root"
    }[node.t] || cat;
    lines.push(what + (node.t !== "category" && node.t !== "root" ? " · " + cat : ""));
    if (node.t === "image" && obj) {
      lines.push("image " + shortId(obj.id) + (obj.tags && obj.tags.length > 1 ? " · tags: " + obj.tags.join(", ") : ""));
      lines.push("size " + fmt(obj.size) + " · disk " + fmt(obj.disk) + " · unique disk " + fmt(obj.unique_disk));
      lines.push("here: the layers only it uses, " + fmt(node.d));
      lines.push(obj.containers + " container(s)");
    } else {
      lines.push("disk " + fmt(node.d) + " (" + bytesTitle(node.d) + ")");
      if (node.s !== undefined) lines.push("size " + fmt(node.s) + (node.s !== null ? " (" + bytesTitle(node.s) + ")" : ""));
    }
    if ((node.t === "rw" || node.t === "logs") && obj) lines.push("of container " + obj.name);
    if (node.t === "container" && obj) lines.push("state " + obj.state + " · image " + (obj.image || shortId(obj.image_id)));
    if (node.t === "layer" && obj) lines.push("diff " + obj.diff_id);
    if (node.t === "volume" && obj) lines.push(obj.containers && obj.containers.length ? "used by " + obj.containers.join(", ") : "used by no container");
    if (node.t === "orphan" && obj) {
      lines.push("kind " + obj.kind);
      lines.push("reason " + obj.reason);
      if (obj.cleaned_by !== undefined && obj.cleaned_by !== null) lines.push("cleaned by " + obj.cleaned_by);
    }
    if (node.r === "/build_cache" && obj) lines.push((obj.records || []).length + " records (in the table below)");
    if (node.m) lines.push(node.m + " smaller entries" + (node.k ? ": Enter or click opens them" : ", each in the tables below"));
    if (node.x) lines.push("reclaimable");
    return lines;
  }
  function showTip(node, x, y) {
    tip.replaceChildren();
    var lines = tipLines(node);
    add(tip, el("b", null, node.n));
    lines.forEach(function (line) { add(tip, el("div", null, line)); });
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(window.innerWidth - w - 4, x + 14)) + "px";
    tip.style.top = Math.max(4, (y + 16 + h > window.innerHeight ? y - h - 10 : y + 16)) + "px";
  }
  function hideTip() { tip.hidden = true; }
  function label(node) { return shown(node.n) + ", " + fmt(node.d) + (node.x ? ", reclaimable" : ""); }

  function zoom(index) {
    var parts = index === "" ? [] : index.split("/");
    var node = view.treemap, stack = [{ node: node, index: "" }];
    for (var i = 0; i < parts.length; i++) {
      node = node.k[Number(parts[i])];
      stack.push({ node: node, index: parts.slice(0, i + 1).join("/") });
    }
    if (!node.k) return false;
    path = stack;
    draw();
    return true;
  }

  function drawCrumbs() {
    var items = path.map(function (p, i) {
      if (i === path.length - 1) return el("li", null, el("span", { "aria-current": "location" }, p.node.n + " (" + fmt(p.node.d) + ")"));
      var b = el("button", { type: "button", "data-index": p.index }, i === 0 ? "all: " + p.node.n : p.node.n);
      b.addEventListener("click", function () { zoom(p.index); tm.focus(); });
      return el("li", null, b);
    });
    crumbs.replaceChildren(el("ol", null, items));
  }

  function place(e, n) {
    e.style.left = n.x0 + "px"; e.style.top = n.y0 + "px";
    e.style.width = (n.x1 - n.x0) + "px"; e.style.height = (n.y1 - n.y0) + "px";
  }

  function draw() {
    hideTip();
    drawCrumbs();
    tm.replaceChildren();
    tiles = [];
    if (!path.length) return;
    var top = path[path.length - 1];
    var W = tm.clientWidth, H = tm.clientHeight;
    var h = d3.hierarchy(top.node, function (d) { return d.k; })
      .sum(function (d) { return d.k ? 0 : d.d; });
    /* Keep the report's order (largest first) as the tree holds it: the index path names each node. */
    d3.treemap().size([W, H]).tile(d3.treemapSquarify).round(false)(h);
    var groups = [];
    (h.children || []).forEach(function (g, gi) {
      var gIndex = (top.index === "" ? "" : top.index + "/") + gi;
      if (g.children) {
        g.children.forEach(function (t, ti) { tiles.push(tile(t, gIndex + "/" + ti, gIndex, g)); });
        groups.push(groupBox(g, gIndex));
      } else {
        tiles.push(tile(g, gIndex, null, null));
      }
    });
    tiles.forEach(function (t) { tm.appendChild(t); });
    groups.forEach(function (g) { tm.appendChild(g); });
    focusIndex = 0;
    if (tiles.length) tiles[0].tabIndex = 0;
  }

  function tile(n, index, groupIndex, g) {
    var d = n.data;
    var w = n.x1 - n.x0, hh = n.y1 - n.y0;
    var cls = "tile c-" + d.c + (d.x ? " x" : "") + (d.t === "smaller" ? " smaller" : "") +
      (g && n.y0 - g.y0 < 1 && bigLabel(g) ? " top" : "") + (w < 40 || hh < 16 ? " tiny" : "") + (w < 6 || hh < 6 ? " dust" : "");
    var e = el("div", { "class": cls, tabindex: "-1", role: "button", "data-index": index,
      "data-disk": d.d, "data-ref": d.r, "data-leaf": d.k ? null : "1", "aria-label": label(d) },
      d.n, el("span", { "class": "sz" }, fmt(d.d)));
    place(e, n);
    e._target = groupIndex !== null && g && g.data.k ? groupIndex : (d.k ? index : null);
    e._data = d;
    return e;
  }

  function bigLabel(g) { return g.x1 - g.x0 >= 40 && g.y1 - g.y0 >= 34; }
  function groupBox(g, index) {
    var box = el("div", { "class": "group" + (g.data.t === "smaller" ? " smaller" : ""), "data-index": index,
      "data-disk": g.data.d });
    place(box, g);
    if (!bigLabel(g)) return box;
    var b = el("button", { type: "button", "class": "glabel", tabindex: "-1", "data-index": index },
      g.data.n + "  " + fmt(g.data.d));
    b._target = index;
    b._data = g.data;
    box.appendChild(b);
    return box;
  }

  /* One listener of each kind for the whole map (thousands of tiles). */
  function hit(ev) { return ev.target && ev.target.closest ? ev.target.closest(".tile, .glabel") : null; }
  tm.addEventListener("click", function (ev) { var t = hit(ev); if (t && t._target !== null) zoom(t._target); });
  tm.addEventListener("mousemove", function (ev) { var t = hit(ev); if (t) showTip(t._data, ev.clientX, ev.clientY); else hideTip(); });
  tm.addEventListener("mouseleave", hideTip);
  tm.addEventListener("focusin", function (ev) {
    var t = hit(ev);
    if (!t) return;
    var r = t.getBoundingClientRect();
    showTip(t._data, r.left + Math.min(r.width, 60), r.top + Math.min(r.height, 20));
  });
  tm.addEventListener("focusout", hideTip);

  function moveFocus(i) {
    if (!tiles.length) return;
    i = Math.max(0, Math.min(tiles.length - 1, i));
    tiles[focusIndex].tabIndex = -1;
    focusIndex = i;
    tiles[i].tabIndex = 0;
    tiles[i].focus();
  }
  tm.addEventListener("keydown", function (ev) {
    var k = ev.key;
    if (k === "ArrowRight" || k === "ArrowDown") moveFocus(document.activeElement === tm ? 0 : focusIndex + 1);
    else if (k === "ArrowLeft" || k === "ArrowUp") moveFocus(focusIndex - 1);
    else if (k === "Home") moveFocus(0);
    else if (k === "End") moveFocus(tiles.length - 1);
    else if (k === "Enter" || k === " ") {
      var t = document.activeElement === tm ? tiles[0] : tiles[focusIndex];
      if (t && t._target !== null && zoom(t._target)) moveFocus(0);
    } else if ((k === "Escape" || k === "Backspace") && path.length > 1) {
      zoom(path[path.length - 2].index); moveFocus(0);
    } else return;
    ev.preventDefault();
  });

  function legend() {
    var present = {};
    (function walk(n) { present[n.c] = true; (n.k || []).forEach(walk); })(view.treemap || { c: "root" });
    var items = Object.keys(CAT_NAMES).filter(function (c) { return present[c] && c !== "root"; }).map(function (c) {
      return el("span", null, el("span", { "class": "sw c-" + c }), CAT_NAMES[c]);
    });
    items.push(el("span", null, el("span", { "class": "sw x" }), "hatched: reclaimable"));
    return el("div", { "class": "legend", "aria-label": "Legend" }, items);
  }

  function treemapSection() {
    if (!view.treemap) {
      return [el("h2", null, "Disk map"), el("p", { "class": "none" }, "Not measured (--quick): no disk figures to draw.")];
    }
    return [
      el("h2", { "class": "map" }, "Disk map"),
      legend(),
      crumbs, tm,
      el("p", { "class": "hint" }, "Area is disk (allocated bytes); each box is named, its colour and the legend " +
        "say its category. A layer several images share appears once, under images › shared layers; an image " +
        "holds the layers only it uses. Click or Enter opens a box; the path above the map, Escape or Backspace " +
        "go back; the arrow keys move between tiles, focus or hover shows the figures.")
    ];
  }

  /* ---- tables ---- */
  function num(v) { return v === null || v === undefined ? -Infinity : v; }
  function table(id, title, columns, rows, note) {
    var sec = el("section", { id: id, "aria-labelledby": id + "-h" });
    sec.appendChild(el("h2", { id: id + "-h" }, title));
    if (note) sec.appendChild(el("p", { "class": "hint" }, note));
    if (!rows.length) { sec.appendChild(el("p", { "class": "none" }, "none")); return sec; }
    var order = rows.map(function (_, i) { return i; });
    var shown = Math.min(rows.length, ROW_LIMIT);
    var tbody = el("tbody");
    var ths = columns.map(function (c, ci) {
      var b = el("button", { type: "button" }, c.h);
      var th = el("th", { scope: "col", "class": c.bytes || c.num ? "num" : null, "aria-sort": "none" }, b);
      b.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") !== "descending";
        if (!(c.bytes || c.num)) desc = th.getAttribute("aria-sort") === "ascending";
        ths.forEach(function (o) { o.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        order.sort(function (a, z) {
          var va = c.get(rows[a]), vz = c.get(rows[z]), r;
          if (c.bytes || c.num) r = num(va) - num(vz);
          else r = String(va === null || va === undefined ? "" : va).localeCompare(String(vz === null || vz === undefined ? "" : vz));
          return (desc ? -r : r) || a - z;
        });
        fill();
      });
      return th;
    });
    function fill() {
      tbody.replaceChildren();
      for (var i = 0; i < shown; i++) {
        var row = rows[order[i]];
        tbody.appendChild(el("tr", { "data-row": order[i] }, columns.map(function (c) {
          var v = c.get(row);
          if (c.bytes) return el("td", { "class": "num", title: bytesTitle(v), "data-bytes": v === null ? "null" : v }, fmt(v));
          return el("td", { "class": (c.num ? "num" : "") + (c.mono ? " mono" : "") || null,
            title: c.title ? c.title(row) : null }, c.text ? c.text(row) : (v === null || v === undefined ? "-" : v));
        })));
      }
    }
    fill();
    sec.appendChild(el("table", { "data-table": id }, el("thead", null, el("tr", null, ths)), tbody));
    if (shown < rows.length) {
      var more = el("button", { type: "button", "class": "more" }, "Show all " + rows.length + " rows");
      more.addEventListener("click", function () { shown = rows.length; fill(); more.remove(); });
      sec.appendChild(more);
    }
    return sec;
  }
  function B(h, get) { return { h: h, get: get, bytes: true }; }
  function T(h, get, extra) { var c = { h: h, get: get }; for (var k in extra || {}) c[k] = extra[k]; return c; }

  function tables() {
    var t = doc.totals || {};
    var out = [];
    var cats = [["images", t.images]];
    if (t.image_content) cats.push(["image content", t.image_content]);
    cats = cats.concat([["containers", t.containers], ["logs", t.logs], ["volumes", t.volumes],
      ["build cache", t.build_cache], ["orphans", t.orphans], ["metadata", t.metadata], ["other", t.other]]);
    var catRows = cats.map(function (c) { return { name: c[0], disk: c[1] }; });
    (doc.other || []).forEach(function (o) { catRows.push({ name: "  " + o.name, disk: o.disk }); });
    catRows.push({ name: "total (du -sx)", disk: t.root_disk });
    roots.length > 1 && roots.forEach(function (r) { catRows.push({ name: "  " + r.role + " root " + r.path, disk: r.disk }); });
    var recl = Object.keys(doc.reclaimable || {}).map(function (k) {
      return { name: k.replace(/_/g, " "), size: doc.reclaimable[k].size, disk: doc.reclaimable[k].disk };
    });
    out.push(el("div", { "class": "cols" },
      table("categories", "Disk by category", [T("CATEGORY", function (r) { return r.name; }), B("DISK", function (r) { return r.disk; })], catRows),
      table("reclaimable-table", "Reclaimable", [T("WHAT", function (r) { return r.name; }),
        B("DOCKER SIZE", function (r) { return r.size; }), B("DISK", function (r) { return r.disk; })], recl)));
    var images = doc.images || [];
    out.push(table("images", "Images (" + images.length + ")", [
      T("IMAGE", function (i) { return (i.tags || []).join(", ") || "<none>"; }),
      T("ID", function (i) { return shortId(i.id); }, { mono: true, title: function (i) { return i.id; } }),
      B("SIZE", function (i) { return i.size; }), B("SHARED", function (i) { return i.shared_size; }),
      B("UNIQUE", function (i) { return i.unique_size; }), B("DISK", function (i) { return i.disk; }),
      T("CONTAINERS", function (i) { return i.containers; }, { num: true })], images));
    var cs = doc.containers || [];
    out.push(table("containers", "Containers (" + cs.length + ")", [
      T("CONTAINER", function (c) { return c.name; }),
      T("ID", function (c) { return String(c.id).slice(0, 12); }, { mono: true, title: function (c) { return c.id; } }),
      T("IMAGE", function (c) { return c.image || shortId(c.image_id); }),
      T("STATE", function (c) { return c.state; }),
      B("RW SIZE", function (c) { return c.rw_size; }), B("RW DISK", function (c) { return c.rw_disk; }),
      B("LOGS", function (c) { return c.log_disk; })], cs));
    var vs = doc.volumes || [];
    out.push(table("volumes", "Volumes (" + vs.length + ")", [
      T("VOLUME", function (v) { return v.name; }, { mono: true }),
      B("SIZE", function (v) { return v.size; }), B("DISK", function (v) { return v.disk; }),
      T("CONTAINERS", function (v) { return (v.containers || []).join(", ") || "-"; })], vs));
    var bc = doc.build_cache || {};
    var recs = bc.records || [];
    out.push(table("build-cache", "Build cache (" + recs.length + " records, size " + fmt(bc.size) + ", disk " + fmt(bc.disk) + ")", [
      T("ID", function (r) { return r.id; }, { mono: true }), T("TYPE", function (r) { return r.record_type; }),
      T("DESCRIPTION", function (r) { return r.description; }), B("SIZE", function (r) { return r.size; }),
      T("LAST USED", function (r) { return r.last_used; })], recs));
    var os = doc.orphans || [];
    var ocols = [T("KIND", function (o) { return o.kind; }), T("PATH", function (o) { return o.path; }, { mono: true }),
      B("DISK", function (o) { return o.disk; }), T("REASON", function (o) { return o.reason; })];
    if (os.some(function (o) { return o.cleaned_by !== undefined; })) ocols.push(T("CLEANED BY", function (o) { return o.cleaned_by; }));
    var odisk = os.reduce(function (s, o) { return s + (o.disk || 0); }, 0);
    out.push(table("orphans", "Orphans (" + os.length + ", " + fmt(t.orphans === null || t.orphans === undefined ? odisk : t.orphans) + ")", ocols, os));
    var ps = doc.problems || [];
    out.push(table("problems", "Problems (" + ps.length + ")", [T("KIND", function (p) { return p.kind; }),
      T("PATH", function (p) { return p.path; }, { mono: true }), T("REASON", function (p) { return p.reason; })], ps));
    if ((doc.incomplete || []).length) {
      out.push(el("h2", null, "Incomplete figures"), el("p", null, doc.incomplete.join(", ")));
    }
    (doc.notes || []).forEach(function (n) { out.push(el("p", { "class": "hint" }, "note: " + n)); });
    return out;
  }

  /* ---- growth and history ---- */
  var SERIES = [["images", "#0072B2", ""], ["image_content", "#56B4E9", "2 2"], ["containers", "#E69F00", "6 3"],
    ["logs", "#9a8c00", "2 4"], ["volumes", "#009E73", "8 3 2 3"], ["build_cache", "#CC79A7", "4 4"],
    ["orphans", "#D55E00", "1 3"], ["metadata", "#777777", "10 4"], ["other", "#aaaaaa", "3 6"]];
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function historySection() {
    var out = [];
    var g = doc.growth;
    if (g) {
      var rows = Object.keys(g.categories || {}).map(function (k) {
        var c = g.categories[k];
        return { name: k === "root_disk" ? "total (du -sx)" : k.replace(/_/g, " "), before: c.before, after: c.after, change: c.change };
      });
      out.push(table("growth", "Growth since the previous audit (" + g.since + ")", [
        T("CATEGORY", function (r) { return r.name; }), B("BEFORE", function (r) { return r.before; }),
        B("NOW", function (r) { return r.after; }),
        T("CHANGE", function (r) { return r.change; }, { num: true, text: function (r) { return signed(r.change); },
          title: function (r) { return bytesTitle(r.change); } })], rows));
      out.push(table("grew", "Grew most", [T("KIND", function (c) { return c.kind; }), T("NAME", function (c) { return c.name; }),
        T("NOW", function (c) { return c.after; }, { num: true, text: function (c) { return fmt(c.after); }, title: function (c) { return bytesTitle(c.after); } }),
        T("CHANGE", function (c) { return c.change; }, { num: true, title: function (c) { return bytesTitle(c.change); },
          text: function (c) { return c.new ? "new" : (c.at_least ? "≥ " : "") + signed(c.change); } })], g.grew || []));
    }
    var hist = view.history || [];
    if (hist.length >= 2) out.push(el("h2", null, "History (" + hist.length + " audits)"), chart(hist));
    return out;
  }
  function chart(hist) {
    var W = 1200, H = 300, L = 80, R = 150, TP = 14, BT = 30;
    var times = hist.map(function (h, i) { var t = Date.parse(h.at); return isNaN(t) ? i : t; });
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var series = SERIES.filter(function (s) { return hist.some(function (h) { return h.totals[s[0]]; }); });
    var max = 0;
    series.forEach(function (s) { hist.forEach(function (h) { max = Math.max(max, h.totals[s[0]] || 0); }); });
    var peak = max;
    max = max || 1;
    function X(t) { return L + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (W - L - R); }
    function Y(v) { return TP + (1 - v / max) * (H - TP - BT); }
    var root = svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "Disk of each category over the recorded audits" });
    root.appendChild(svg("line", { x1: L, y1: Y(0), x2: W - R, y2: Y(0), stroke: "#888" }));
    root.appendChild(svg("line", { x1: L, y1: TP, x2: L, y2: Y(0), stroke: "#888" }));
    root.appendChild(svg("text", { x: L - 6, y: Y(0), "text-anchor": "end" }, "0"));
    root.appendChild(svg("text", { x: L - 6, y: Y(peak) + 4, "text-anchor": "end" }, fmt(peak)));
    root.appendChild(svg("text", { x: L, y: H - 8 }, hist[0].at));
    root.appendChild(svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, hist[hist.length - 1].at));
    series.forEach(function (s, si) {
      var pts = hist.map(function (h, i) { return X(times[i]) + "," + Y(h.totals[s[0]] || 0); }).join(" ");
      root.appendChild(svg("polyline", { points: pts, fill: "none", stroke: s[1], "stroke-width": 2,
        "stroke-dasharray": s[2] || "none", "data-series": s[0] }));
      hist.forEach(function (h, i) {
        root.appendChild(svg("circle", { cx: X(times[i]), cy: Y(h.totals[s[0]] || 0), r: 3, fill: s[1] },
          svg("title", {}, h.at + " · " + CAT_NAMES[s[0]] + " " + fmt(h.totals[s[0]]))));
      });
      var ly = TP + 10 + si * 18;
      root.appendChild(svg("line", { x1: W - R + 12, y1: ly - 4, x2: W - R + 40, y2: ly - 4, stroke: s[1],
        "stroke-width": 2, "stroke-dasharray": s[2] || "none" }));
      root.appendChild(svg("text", { x: W - R + 46, y: ly }, CAT_NAMES[s[0]]));
    });
    return root;
  }

  add(app, headline());
  add(app, treemapSection());
  document.body.appendChild(tip);
  /* The map fills the first screen below the headline, within bounds; measured and drawn
   * before the tables exist, so that only the top of the page is laid out for it. */
  drawCrumbs();
  tm.style.height = Math.round(Math.max(360, Math.min(720, window.innerHeight - tm.offsetTop - 12))) + "px";
  draw();
  add(app, historySection());
  add(app, tables());
  var pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () { if (path.length) draw(); });
  });
  document.documentElement.setAttribute("data-ready", "1");
})();
