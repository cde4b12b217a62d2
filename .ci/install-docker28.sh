#!/usr/bin/env bash
# Unpack Docker 28.5 (Debian sid's docker.io, containerd 2.1, docker-buildx)
# into a private prefix, for the integration tests' third daemon: the recipe of
# install-docker26.sh with the suite sid. sid has no security suite, so the
# sources name the main archive only. Installs nothing system-wide: the
# packages are downloaded with a throwaway apt state.
#
# runc is not taken from sid (its glibc is newer than bookworm's): the
# bookworm runc that `apt-get install docker.io` brings in is found on PATH.
set -euo pipefail
prefix=${1:-/opt/dockerdu-docker28}

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
cat > "$work/sid.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
opts=(-o "Dir::Etc::SourceList=$work/sid.sources" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download docker.io containerd docker-buildx)
mkdir -p "$prefix"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix"; done
drop_broken_runc
mkdir -p "$prefix/cli-plugins"
ln -sf "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" "$prefix/cli-plugins/docker-buildx"
if ! command -v runc >/dev/null 2>&1; then
  echo "install-docker28: no runc on PATH; install Debian's runc (apt-get install docker.io)" >&2
  exit 1
fi
"$prefix/usr/sbin/dockerd" --version
