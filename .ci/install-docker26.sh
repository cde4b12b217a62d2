#!/usr/bin/env bash
# Unpack Docker 26.1 (Debian trixie's docker.io, containerd, docker-buildx)
# into a private prefix, for the integration tests' second daemon. Installs
# nothing system-wide: the packages are downloaded with a throwaway apt state.
#
# runc is deliberately not taken from trixie: its build needs glibc 2.38 and
# fails to start on bookworm ("GLIBC_2.38 not found"), which makes every RUN
# step and container of the 26.1 daemon fail. The bookworm runc that
# `apt-get install docker.io` brings in (/usr/sbin/runc, 1.1.x) works with
# this dockerd and containerd, so the prefix holds no runc and PATH finds it.
set -euo pipefail
prefix=${1:-/opt/dockerdu-docker26}

# Drop a runc in the prefix that cannot run here (left by an older version of
# this script), so that the system runc is found instead.
drop_broken_runc() {
  local r
  for r in "$prefix/usr/sbin/runc" "$prefix/usr/bin/runc"; do
    if [ -e "$r" ] || [ -L "$r" ]; then
      if ! "$r" --version >/dev/null 2>&1; then rm -f "$r"; fi
    fi
  done
}

if [ -x "$prefix/usr/sbin/dockerd" ] && [ -x "$prefix/usr/bin/containerd" ] \
   && [ -x "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" ]; then
  drop_broken_runc
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's/bookworm/trixie/g' /etc/apt/sources.list.d/debian.sources > "$work/trixie.sources"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
opts=(-o "Dir::Etc::SourceList=$work/trixie.sources" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download docker.io containerd docker-buildx)
mkdir -p "$prefix"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix"; done
drop_broken_runc
mkdir -p "$prefix/cli-plugins"
ln -sf "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" "$prefix/cli-plugins/docker-buildx"
if ! command -v runc >/dev/null 2>&1; then
  echo "install-docker26: no runc on PATH; install Debian's runc (apt-get install docker.io)" >&2
  exit 1
fi
"$prefix/usr/sbin/dockerd" --version
