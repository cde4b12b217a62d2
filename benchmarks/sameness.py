"""Before/after sameness harness: dockerdu's output on real roots, to compare two checkouts.

Builds, with private daemons as the tests do (tests/realdocker.py), a set of real roots
kept outside the repo, then records what a given dockerdu prints on each of them, so a
refactoring can show that `report`, `orphans`, `which` and `image` are unchanged:

- `d20-overlay2`: Docker 20.10 on overlay2, the tests' scenario (imported base, classic
  builds sharing layers, tags, a dangling image, running/exited/created containers with
  writes and logs, named, anonymous and unused volumes), plus `dd-deep:1` whose first
  layer holds a 3,000-level-deep tree (planted offline: Docker cannot tar a path longer
  than PATH_MAX) that the next layer partly overwrites; the daemon killed with SIGKILL
  while a container runs, then every leftover `plant_leftovers` makes but
  `metadata_unreadable` (which holds back `layer_unreferenced`);
- `d26-overlay2`: Docker 26.1 on overlay2, the same scenario plus a BuildKit build (build
  cache), SIGKILLed, every leftover kind planted (`metadata_unreadable` included);
- `d26-containerd`: Docker 26.1 on the containerd image store (a root that switched from
  overlay2: `store_unused`), two classic builds and a BuildKit one with a cache mount, a
  dangling image, an image of the `k8s.io` namespace, leases (one named after no
  container, one expiring in ten years), a kept and a stray snapshot, SIGKILLed, then a
  stray snapshot dir, blob and ingest planted;
- `d20-vfs`: Docker 20.10 on vfs: an imported base, two builds sharing a layer, a
  running, an exited and a created container, a named volume; stopped cleanly.

Each root is built once (`build` skips a root whose `manifest.json` exists; the manifest
lists what the daemon had: tags, image IDs, containers, volumes, planted paths) and is
then only read. `run` executes `PY -m dockerdu` (the dockerdu installed in that
interpreter's venv; run from `/` in a fixed environment, so no checkout on the current
directory shadows it) on every root: `report` and `orphans` (`-f json --no-cache`);
`which` for each tag, container name and ID prefix, volume, image ID prefix, planted path,
orphan and problem path, sampled paths of every shape under the root (two per shape), ID
prefixes (also as the tables print them, and two-character ones that match several), a
short link, `ID/diff`, a missing path and a path outside the root; `image REF -f json
--top 5` for every tag and image ID, an unknown ref, ID prefixes and two refs at once.
Each invocation's exit code, stdout and stderr go to one file, with the fields that
change from run to run replaced by `<varies>` (`generated_at`; `filesystem`, the free
space of the file system holding the root). Hash randomisation is left on: output that
depends on it is a difference worth seeing. `compare A B` prints every difference and
exits 1 if there is one. `check` verifies the 3,000-deep and vfs acceptance items of
`dockerdu image`.

    python benchmarks/sameness.py build --workdir DIR
    python benchmarks/sameness.py run --workdir DIR --python PY --out OUTDIR
    python benchmarks/sameness.py compare OUTDIR_A OUTDIR_B
    python benchmarks/sameness.py check --workdir DIR --python PY
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import realdocker as rd  # noqa: E402

ROOTS = ("d20-overlay2", "d26-overlay2", "d26-containerd", "d20-vfs")
DEEP_IMAGE = "dd-deep:1"
DEEP_DEPTH = 3_000
DEEP_FILES = {"bottom-a.bin": 8192, "bottom-b.bin": 5000}
"""Files at the bottom of the deep tree in the deep layer; the next layer overwrites bottom-a.bin."""
DEEP_OVERWRITE = 100
WASTE_FILE = 50_000
"""/deep/waste.bin, written by one RUN and overwritten by the next (smaller) one."""
MANIFEST = "manifest.json"
INVOCATION_TIMEOUT = 600
VARIES = "<varies>"


# --------------------------------------------------------------------------- build


def _crash(d: rd.PrivateDaemon) -> None:
    """SIGKILL dockerd (no clean-up of its own) while containers run, then clear what it left."""
    os.kill(d.pid, signal.SIGKILL)
    d._terminate(force=True)


def _inventory(d: rd.PrivateDaemon) -> dict[str, Any]:
    """What the daemon lists: tags, image IDs, container names and IDs, volume names."""
    images = d.api("/images/json")
    containers = d.api("/containers/json?all=1")
    volumes = d.api("/volumes")["Volumes"] or []
    return {
        "tags": sorted({t for i in images for t in i.get("RepoTags") or [] if t != "<none>:<none>"}),
        "image_ids": sorted(i["Id"] for i in images),
        "containers": sorted((c["Names"][0].lstrip("/"), c["Id"]) for c in containers),
        "volumes": sorted(v["Name"] for v in volumes),
    }


def _deep_tree(top: Path, depth: int, files: dict[str, int], fill: int) -> None:
    """`depth` nested dirs `d` below `top` (made or entered, fd-relative: the path is far past
    PATH_MAX), then `files` (name -> size, bytes `fill`) in the deepest, all 0:0."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for _ in range(depth):
            try:
                os.mkdir("d", 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        for name, size in files.items():
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
            try:
                os.write(f, bytes([fill]) * size)
            finally:
                os.close(f)
    finally:
        os.close(fd)


def _build_deep_image(d: rd.PrivateDaemon) -> tuple[str, str]:
    """dd-deep:1 (classic builder): layer 1 writes /deep/waste.bin, layer 2 overwrites it.

    Returns the two layers' cache IDs, into which `_plant_deep` puts the deep tree."""
    image_id = rd.build_image(
        d,
        DEEP_IMAGE,
        f"FROM {rd.BASE}\n"
        f"RUN mkdir -p /deep/t && head -c {WASTE_FILE} /dev/zero > /deep/waste.bin\n"
        "RUN echo overwritten > /deep/waste.bin && echo kept > /deep/t/kept.txt\n",
    )
    diff_ids = d.api(f"/images/{image_id}/json")["RootFS"]["Layers"]
    chains = rd.chain_ids(diff_ids)
    lower, upper = (d.root / "image/overlay2/layerdb" / c.replace(":", "/") / "cache-id" for c in chains[-2:])
    return lower.read_text().strip(), upper.read_text().strip()


def _plant_deep(root: Path, lower_cache: str, upper_cache: str) -> None:
    """The 3,000-deep tree under /deep/t in the lower layer; the upper one overwrites a file at its bottom."""
    _deep_tree(root / "overlay2" / lower_cache / "diff/deep/t", DEEP_DEPTH, DEEP_FILES, 0)
    overwrite = {"bottom-a.bin": DEEP_OVERWRITE}
    _deep_tree(root / "overlay2" / upper_cache / "diff/deep/t", DEEP_DEPTH, overwrite, 1)


def _build_graphdriver(version: rd.Version, base: Path) -> dict[str, Any]:
    deep: tuple[str, str] | None = None
    with rd.PrivateDaemon(version, base) as d:
        scenario = rd.build_scenario(d)
        if version == "20.10":
            deep = _build_deep_image(d)
        inventory = _inventory(d)
        _crash(d)
    kinds = [k for k in rd.PLANT_KINDS if version != "20.10" or k != "metadata_unreadable"]
    planted = rd.plant_leftovers(d.root, scenario, kinds=kinds, rng=random.Random(11))
    if deep is not None:
        _plant_deep(d.root, *deep)
        inventory["deep_image"] = DEEP_IMAGE
    inventory["planted"] = sorted(p.path for p in planted)
    return inventory


def _build_containerd(base: Path) -> dict[str, Any]:
    tar = rd.busybox_rootfs_tar(base / "rootfs")
    with rd.PrivateDaemon("26.1", base) as old:
        old.docker("import", "--change", 'CMD ["sh"]', str(tar), "dd-old:1")
    with rd.PrivateDaemon("26.1", base, config=rd.CONTAINERD_STORE_CONFIG) as d:
        rd.containerd_scenario(d, tar)
        rd.build_image(d, rd.APP3, f"FROM {rd.BASE}\nRUN echo v1 > /version.txt\n")
        rd.build_image(d, rd.APP3, f"FROM {rd.BASE}\nRUN echo v2 > /version.txt\n")  # v1 dangles
        rd.import_into_namespace(d, "k8s.io", "dd-k8s:1", 1_000_000)
        base_chain = json.loads(d.docker("image", "inspect", rd.BASE))[0]["RootFS"]["Layers"][0]
        d.ctr("moby", "leases", "create", "--id", "f" * 64, "--expires", "0")  # no such container
        d.ctr("moby", "leases", "create", "--id", "dd-expiring", "--expires", "87600h")
        d.ctr("moby", "snapshots", "prepare", "dd-kept", base_chain)  # ctr labels it gc.root
        d.ctr("moby", "snapshots", "prepare", "dd-stray", base_chain)
        d.ctr("moby", "snapshots", "label", "dd-stray", "containerd.io/gc.root=")
        rd.wait_for_ingests(d)
        inventory = _inventory(d)
        _crash(d)
    snapshots = "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots"
    content = "containerd/daemon/io.containerd.content.v1.content"
    snap = d.root / snapshots / "9999"
    (snap / "fs").mkdir(parents=True)
    (snap / "work").mkdir()
    (snap / "fs/garbage.bin").write_bytes(b"\0" * 50000)
    data = b"dockerdu planted blob\n" * 1000
    digest = hashlib.sha256(data).hexdigest()
    (d.root / content / "blobs/sha256" / digest).write_bytes(data)
    ingest = d.root / content / "ingest" / ("ab" * 32)
    ingest.mkdir(parents=True)
    (ingest / "data").write_bytes(b"\1" * 9000)
    inventory["planted"] = [
        f"{snapshots}/9999",
        f"{content}/blobs/sha256/{digest}",
        f"{content}/ingest/{'ab' * 32}",
    ]
    return inventory


def _build_vfs(base: Path) -> dict[str, Any]:
    with rd.PrivateDaemon("20.10", base, config={"storage-driver": "vfs"}) as d:
        tar = rd.busybox_rootfs_tar(base / "rootfs")
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        common = f"FROM {rd.BASE}\nRUN head -c {rd.SHARED_FILE} /dev/zero > /shared.bin && echo m > /m.txt\n"
        rd.build_image(d, rd.APP1, common + f"RUN head -c {rd.APP1_FILE} /dev/zero > /app1.bin\n")
        rd.build_image(d, rd.APP2, common + f"RUN rm /shared.bin && head -c {rd.APP2_FILE} /dev/zero > /a2\n")
        d.docker("volume", "create", rd.NAMED_VOLUME)
        d.docker(
            "run", "-d", "--name", rd.RUNNING, "--network", "none", "--stop-timeout", "1",
            "-v", f"{rd.NAMED_VOLUME}:/named", rd.APP1, "sleep", "3600",
        )  # fmt: skip
        d.docker(
            "exec", rd.RUNNING, "sh", "-c",
            f"head -c {rd.RUNNING_RW_FILE} /dev/zero > /rw.bin && ln /rw.bin /rw.ln && rm /m.txt"
            f" && head -c {rd.NAMED_VOLUME_FILE} /dev/zero > /named/n.bin",
        )  # fmt: skip
        d.docker(
            "run", "--name", rd.EXITED, "--network", "none", rd.APP2,
            "sh", "-c", f"head -c {rd.EXITED_RW_FILE} /dev/zero > /out.bin; seq 1 50",
        )  # fmt: skip
        d.docker("create", "--name", rd.CREATED, "--network", "none", rd.APP1, "true")
        inventory = _inventory(d)
    inventory["planted"] = []
    return inventory


BUILDERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "d20-overlay2": lambda base: _build_graphdriver("20.10", base),
    "d26-overlay2": lambda base: _build_graphdriver("26.1", base),
    "d26-containerd": _build_containerd,
    "d20-vfs": _build_vfs,
}


def build(workdir: Path, only: list[str]) -> None:
    """Build each root not built yet; a half-built one (no manifest) is removed and built again."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in only or ROOTS:
        base = workdir / name
        if (base / MANIFEST).is_file():
            print(f"{name}: built already", flush=True)
            continue
        if base.exists():
            if rd.mounts_under(base):
                rd.unmount_under(base)
            shutil.rmtree(base)
        print(f"{name}: building", flush=True)
        inventory = BUILDERS[name](base)
        if rd.mounts_under(base):
            raise SystemExit(f"{name}: still mounted under {base}")
        inventory["root"] = str(base / "root")
        (base / MANIFEST).write_text(json.dumps(inventory, indent=2) + "\n")
        print(f"{name}: done", flush=True)


# --------------------------------------------------------------------------- run


_SHAPES = (
    (re.compile(r"[0-9a-f]{64}(-init)?"), "<id>"),
    (re.compile(r"[0-9]+"), "<n>"),
    (re.compile(r"[A-Z2-7]{26}"), "<link>"),
    (re.compile(r"[a-z0-9]{25}"), "<bk>"),
    (re.compile(r"write-set-[0-9]+"), "<write-set>"),
)


def _shape(name: str) -> str:
    for pattern, placeholder in _SHAPES:
        if pattern.fullmatch(name):
            return placeholder
    return name


def _sample_paths(root: Path, depth: int = 8, per_shape: int = 2) -> list[str]:
    """Root-relative paths of every kind: all paths down to `depth` (sorted, never following a
    symlink), grouped by shape (their first four components with IDs and numbers generalised,
    and their depth), the first `per_shape` of each group."""
    picked: dict[tuple[tuple[str, ...], int], list[str]] = {}

    def visit(rel: str, parts: tuple[str, ...]) -> None:
        try:
            names = sorted(os.listdir(root / rel if rel else root))
        except OSError:
            return
        for name in names:
            sub = f"{rel}/{name}" if rel else name
            here = (*parts, name)
            group = picked.setdefault((tuple(_shape(p) for p in here[:4]), len(here)), [])
            if len(group) < per_shape:
                group.append(sub)
            if len(here) < depth and stat.S_ISDIR(os.lstat(root / sub).st_mode):
                visit(sub, here)

    visit("", ())
    return [p for group in picked.values() for p in group]


def _queries(manifest: dict[str, Any], orphans_json: str) -> list[str]:
    """The `which` queries of a root, in a fixed order, each once."""
    root = Path(manifest["root"])
    qs: list[str] = [".", root.as_posix(), "does/not/exist", "/etc/passwd", "no-such-name:1", "0" * 12]
    qs += manifest["tags"]
    qs += [name for name, _ in manifest["containers"]]
    qs += [cid[:12] for _, cid in manifest["containers"]]
    qs += manifest["volumes"]
    for image_id in manifest["image_ids"]:
        qs += [image_id.split(":", 1)[1][:12], image_id[:19]]
    qs += manifest["planted"]
    try:
        doc = json.loads(orphans_json)
        qs += [o["path"] for o in doc.get("orphans", [])]
        qs += [p["path"] for p in doc.get("problems", [])]
    except (ValueError, TypeError, KeyError):
        pass
    sampled = _sample_paths(root)
    qs += sampled
    ids = sorted({n for p in sampled for n in p.split("/") if re.fullmatch(r"[0-9a-f]{64}", n)})
    qs += [i[:12] for i in ids]
    qs += [f"{i[:12]}\u2026" for i in ids[:1]]  # as the tables print it
    qs += [i[:2] for i in ids[:3]]  # prefixes that likely match several
    cache_ids = sorted(p.split("/")[1] for p in sampled if re.fullmatch(r"overlay2/[0-9a-f]{64}", p))
    qs += [f"{c}/diff" for c in cache_ids[:1]]  # relative to the driver's dir
    for driver in ("overlay2", "vfs"):
        links = root / driver / "l"
        if links.is_dir():
            qs += [f"l/{n}" for n in sorted(os.listdir(links))[:3]]
    return [q for q in dict.fromkeys(qs) if q]


_GENERATED_AT = re.compile(r'("generated_at": ?)"[^"]*"')
_FILESYSTEM = re.compile(r'("filesystem": ?)\{[^{}]*\}')


def strip_varying(text: str) -> str:
    """Replace what changes between two runs on the same root: the time of the run and the
    free space of the file system holding the root (other processes write to it)."""
    text = _GENERATED_AT.sub(rf'\1"{VARIES}"', text)
    return _FILESYSTEM.sub(rf'\1"{VARIES}"', text)


def _file_name(args: list[str]) -> str:
    """`report.txt`, `orphans.txt`, `which-<query>-<hash>.txt`, `image-<refs>-<hash>.txt`."""
    command = args[0]
    if command in ("report", "orphans"):
        return f"{command}.txt"
    at = 3 if command == "which" else 7  # after `--root R` (and `-f json --top 5`)
    arg = " ".join(args[at:])
    safe = re.sub(r"[^A-Za-z0-9.:_-]+", "_", arg).strip("_")[-60:]
    return f"{command}-{safe}-{hashlib.sha256(arg.encode()).hexdigest()[:8]}.txt"


def _invoke(python: str, args: list[str]) -> tuple[int, str, str]:
    """`python -m dockerdu ARGS` from `/` (no checkout on sys.path), in a fixed environment."""
    env = {"PATH": rd.SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TZ": "UTC", "COLUMNS": "200"}
    try:
        r = subprocess.run(
            [python, "-m", "dockerdu", *args],
            capture_output=True,
            text=True,
            cwd="/",
            env=env,
            check=False,
            timeout=INVOCATION_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return -1, "", f"(sameness: no answer in {INVOCATION_TIMEOUT} s)\n"
    return r.returncode, r.stdout, r.stderr


def _record(args: list[str], result: tuple[int, str, str]) -> str:
    rc, out, err = result
    return (
        f"argv: dockerdu {' '.join(args)}\nexit: {rc}\n"
        f"--- stdout\n{strip_varying(out)}\n--- stderr\n{strip_varying(err)}"
    )


def run(workdir: Path, python: str, out: Path, jobs: int) -> int:
    """Every invocation on every built root; one file each under `out/<root>/`. Returns the count."""
    count = 0
    for name in ROOTS:
        mpath = workdir / name / MANIFEST
        if not mpath.is_file():
            print(f"{name}: not built, skipped", file=sys.stderr)
            continue
        manifest = json.loads(mpath.read_text())
        root = manifest["root"]
        dest = out / name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        fixed = [
            ["report", "--root", root, "-f", "json", "--no-cache"],
            ["orphans", "--root", root, "-f", "json", "--no-cache"],
        ]
        results = {tuple(a): _invoke(python, a) for a in fixed}
        orphans_out = results[tuple(fixed[1])][1]
        calls = [["which", "--root", root, q] for q in _queries(manifest, orphans_out)]
        refs = [[r] for r in manifest["tags"] + manifest["image_ids"]]
        first = manifest["image_ids"][0].split(":", 1)[1]
        refs += [["no-such-image:1"], [first[:12]], [first[:1]], manifest["tags"][:2]]
        calls += [["image", "--root", root, "-f", "json", "--top", "5", *r] for r in refs]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for args, result in zip(calls, pool.map(lambda a: _invoke(python, a), calls), strict=True):
                results[tuple(args)] = result
        names = {argv: _file_name(list(argv)) for argv in results}
        if len(set(names.values())) != len(names):
            raise AssertionError(f"{name}: two invocations would share a file")
        for argv, result in results.items():
            (dest / names[argv]).write_text(_record(list(argv), result))
            count += 1
        print(f"{name}: {len(results)} invocations", flush=True)
    return count


# --------------------------------------------------------------------------- compare


def _files(d: Path) -> dict[str, Path]:
    return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob("*.txt"))}


def _lines(text: str) -> list[str]:
    """Lines for the diff, each ending in a newline (a last line without one gets it)."""
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def compare(a: Path, b: Path) -> int:
    """Print each file only one side has and the unified diff of each that differs; 1 if any."""
    fa, fb = _files(a), _files(b)
    differ = 0
    for rel in sorted(fa.keys() | fb.keys()):
        if rel not in fb or rel not in fa:
            print(f"only in {a if rel in fa else b}: {rel}")
            differ += 1
            continue
        ta, tb = fa[rel].read_text(), fb[rel].read_text()
        if ta == tb:
            continue
        differ += 1
        print(f"differs: {rel}")
        sys.stdout.writelines(difflib.unified_diff(_lines(ta), _lines(tb), f"{a}/{rel}", f"{b}/{rel}"))
    total = len(fa.keys() | fb.keys())
    print(f"{total} files, {differ} differ" if differ else f"{total} files, identical")
    return 1 if differ else 0


# --------------------------------------------------------------------------- check


def _image_json(python: str, root: str, ref: str) -> dict[str, Any]:
    rc, out, err = _invoke(python, ["image", "--root", root, "-f", "json", ref])
    if rc != 0:
        raise AssertionError(f"image {ref} exited {rc}: {err.strip()}")
    doc: dict[str, Any] = json.loads(out)
    return doc


def _check_deep(python: str, workdir: Path) -> list[str]:
    manifest = json.loads((workdir / "d20-overlay2" / MANIFEST).read_text())
    doc = _image_json(python, manifest["root"], DEEP_IMAGE)
    (image,) = doc["images"]
    failures: list[str] = []
    deep_layer = image["layers"][-2]
    # Non-directories: /deep/waste.bin and the files at the bottom of the tree.
    want_files = 1 + len(DEEP_FILES)
    if deep_layer["files"] != want_files:
        failures.append(f"deep layer files = {deep_layer['files']}, want {want_files}")
    wasted = image["wasted"]
    want_wasted = WASTE_FILE + DEEP_FILES["bottom-a.bin"]
    if wasted is None or wasted["size"] is None or wasted["size"] < want_wasted:
        failures.append(f"wasted = {wasted and wasted['size']}, want >= {want_wasted}")
    elif not any(o["path"].endswith("/d/bottom-a.bin") for o in wasted["offenders"]):
        failures.append("the deep overwritten file is not among the offenders")
    unreadable = [p for p in image["problems"] if p["kind"] == "path_unreadable"]
    if unreadable:
        failures.append(f"path_unreadable: {unreadable[0]['reason']} ({len(unreadable)} problems)")
    status = "; ".join(failures) or "ok"
    print(
        f"3,000-deep: files {deep_layer['files']}, wasted {wasted and wasted['size']} bytes, "
        f"{len(unreadable)} path_unreadable: {status}"
    )
    return failures


def _check_vfs(python: str, workdir: Path) -> list[str]:
    manifest = json.loads((workdir / "d20-vfs" / MANIFEST).read_text())
    failures: list[str] = []
    layers = 0
    for image_id in manifest["image_ids"]:
        doc = _image_json(python, manifest["root"], image_id)
        for image in doc["images"]:
            for layer in image["layers"]:
                layers += 1
                if layer["disk"] is None:
                    failures.append(f"{image_id[:19]} layer {layer['index']}: disk null")
    print(f"vfs: {layers} layers in {len(manifest['image_ids'])} images: {'; '.join(failures) or 'ok'}")
    return failures


def check(workdir: Path, python: str) -> int:
    """The two acceptance items of `dockerdu image`: 0 when both hold."""
    failures = _check_deep(python, workdir) + _check_vfs(python, workdir)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the roots (as root, with private daemons)")
    b.add_argument("--workdir", type=Path, required=True)
    b.add_argument("--only", nargs="*", default=[], choices=ROOTS)
    r = sub.add_parser("run", help="record every invocation of PY -m dockerdu on every root")
    r.add_argument("--workdir", type=Path, required=True)
    r.add_argument("--python", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare", help="diff two run outputs; exit 1 on any difference")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    k = sub.add_parser("check", help="dockerdu image on the 3,000-deep layer and on vfs")
    k.add_argument("--workdir", type=Path, required=True)
    k.add_argument("--python", required=True)
    args = p.parse_args(argv)
    if args.cmd == "build":
        build(args.workdir.resolve(), args.only)
        return 0
    if args.cmd == "run":
        n = run(args.workdir.resolve(), args.python, args.out.resolve(), args.jobs)
        print(f"{n} invocations written under {args.out}")
        return 0
    if args.cmd == "compare":
        try:
            return compare(args.a, args.b)
        except BrokenPipeError:  # `compare A B | head`: the differences were there
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    return check(args.workdir.resolve(), args.python)


if __name__ == "__main__":
    sys.exit(main())
