#!/usr/bin/env python3
"""Build sample_root/: a small real Docker 20.10 data root with planted leftovers.

    python scripts/make_sample_root.py [--out sample_root] [--kinds K1,K2|orphans|all] [--seed N]

Starts a private Docker 20.10 daemon in a temp dir (root needed), builds the
scenario of tests/realdocker.py with small sparse files, stops the daemon, and
copies its data root into `--out` (replacing it). The copy keeps symlinks as
symlinks (never following them) and hard links as hard links, and drops what
git cannot hold: device files (overlay whiteouts, volumes/backingFsBlockDev),
sockets and fifos. Then it plants the chosen leftovers into the copy and
prints a summary. Nothing is added that a Docker root would not have.

Git keeps neither empty dirs (an unmounted layer's work/, a container's
checkpoints/ and mounts/), nor hard links, nor xattrs (an opaque dir's
trusted.overlay.opaque), nor modes beyond 644/755; the summary lists what a
checkout will lack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import stat
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.realdocker import (  # noqa: E402
    ORPHAN_KINDS,
    PLANT_KINDS,
    PrivateDaemon,
    Scenario,
    build_scenario,
    docker_unavailable,
    du_bytes,
    mounts_under,
    plant_leftovers,
    system_df,
)

KIB = 1024


class CopyStats:
    """What `copy_root` did, for the summary."""

    def __init__(self) -> None:
        self.files = 0
        self.symlinks = 0
        self.hardlinks = 0
        self.dirs = 0
        self.dropped: list[tuple[str, str]] = []


def _special_kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "char device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "special file"


def _copy_xattrs(src: Path, dst: Path) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)


def copy_root(src: Path, dst: Path) -> CopyStats:
    """Copy a stopped daemon's data root for git: symlinks as symlinks, no special files."""
    stats = CopyStats()
    seen: dict[tuple[int, int], Path] = {}
    dir_modes: list[tuple[Path, int]] = []

    def walk(s: Path, d: Path) -> None:
        st = s.lstat()
        d.mkdir(mode=0o700)
        _copy_xattrs(s, d)  # e.g. trusted.overlay.opaque on an opaque dir
        stats.dirs += 1
        dir_modes.append((d, stat.S_IMODE(st.st_mode)))
        with os.scandir(s) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            sp, dp = Path(e.path), d / e.name
            est = e.stat(follow_symlinks=False)
            if stat.S_ISLNK(est.st_mode):
                os.symlink(os.readlink(sp), dp)
                stats.symlinks += 1
            elif stat.S_ISDIR(est.st_mode):
                walk(sp, dp)
            elif stat.S_ISREG(est.st_mode):
                key = (est.st_dev, est.st_ino)
                if est.st_nlink > 1 and key in seen:
                    os.link(seen[key], dp)
                    stats.hardlinks += 1
                    continue
                shutil.copy2(sp, dp, follow_symlinks=False)
                seen[key] = dp
                stats.files += 1
            else:
                stats.dropped.append((sp.relative_to(src).as_posix(), _special_kind(est.st_mode)))

    walk(src, dst)
    for d, mode in reversed(dir_modes):
        d.chmod(mode)
    return stats


def empty_dirs(root: Path) -> list[str]:
    """Dirs with nothing in them: git will not keep them."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if not dirnames and not filenames:
            found.append(Path(dirpath).relative_to(root).as_posix())
    return sorted(found)


def summarize(out: Path, scenario: Scenario, stats: CopyStats, planted_kinds: list[tuple[str, str]]) -> None:
    print(f"sample root: {out}")
    print(f"  du: {du_bytes(out) / KIB:.0f} KiB; {stats.files} files, {stats.symlinks} symlinks, "
          f"{stats.hardlinks} extra hard links, {stats.dirs} dirs")  # fmt: skip
    print("  top level (du KiB):")
    for child in sorted(out.iterdir()):
        print(f"    {du_bytes(child) / KIB:9.0f}  {child.name}")
    print(f"  engine {scenario.engine_version}, build {scenario.seconds:.1f}s")
    print("  images: " + ", ".join(sorted(scenario.images)))
    print(f"  dangling image: {scenario.dangling_image}")
    print("  containers: " + ", ".join(sorted(scenario.containers)))
    print("  volumes: " + ", ".join(f"{k}={v}" for k, v in scenario.volumes.items()))
    print("  planted:")
    for kind, path in planted_kinds:
        print(f"    {kind:26} {path}")
    kinds = Counter(k for _, k in stats.dropped)
    print("  dropped (git cannot hold them): " + (", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"))
    for path, kind in stats.dropped:
        print(f"    {kind:12} {path}")
    empties = empty_dirs(out)
    print(f"  empty dirs (lost in git): {len(empties)}")
    for path in empties:
        print(f"    {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("sample_root"), help="where to write the root")
    ap.add_argument(
        "--kinds",
        default="orphans",
        help="comma-separated plant kinds, or 'orphans' (default) or 'all'",
    )
    ap.add_argument("--seed", type=int, default=20, help="seed for the planted random IDs")
    args = ap.parse_args(argv)
    kinds: list[str]
    if args.kinds == "orphans":
        kinds = list(ORPHAN_KINDS)
    elif args.kinds == "all":
        kinds = list(PLANT_KINDS)
    else:
        kinds = [k for k in args.kinds.split(",") if k]
        unknown = set(kinds) - set(PLANT_KINDS)
        if unknown:
            ap.error(f"unknown kinds {sorted(unknown)}; known: {', '.join(PLANT_KINDS)}")
    reason = docker_unavailable("20.10")
    if reason is not None:
        print(f"make_sample_root: Docker 20.10 unavailable: {reason}", file=sys.stderr)
        return 2

    out: Path = args.out.resolve()
    work = Path(tempfile.mkdtemp(prefix="dd-sample-", dir="/tmp"))
    try:
        with PrivateDaemon("20.10", work) as d:
            # git stores no holes, so keep the "sparse" files small.
            scenario = build_scenario(d, layer_sparse_size=64 * KIB, rw_sparse_size=64 * KIB, plants=kinds)
            system_df(d)
        if out.exists() or out.is_symlink():
            shutil.rmtree(out)
        stats = copy_root(d.root, out)
        planted = plant_leftovers(out, scenario, kinds=kinds, rng=random.Random(args.seed))
        summarize(out, scenario, stats, [(p.kind, p.path) for p in planted])
    finally:
        if not mounts_under(work):  # never delete through a mount the daemon left
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
