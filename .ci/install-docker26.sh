#!/usr/bin/env bash
# Unpack Docker 26.1 (Debian trixie's docker.io, containerd, runc, docker-buildx)
# into a private prefix, for the integration tests' second daemon. Installs
# nothing system-wide: the packages are downloaded with a throwaway apt state.
set -euo pipefail
prefix=${1:-/opt/dockerdu-docker26}
if [ -x "$prefix/usr/sbin/dockerd" ] && [ -x "$prefix/usr/bin/containerd" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's/bookworm/trixie/g' /etc/apt/sources.list.d/debian.sources > "$work/trixie.sources"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
opts=(-o "Dir::Etc::SourceList=$work/trixie.sources" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download docker.io containerd runc docker-buildx)
mkdir -p "$prefix"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$prefix"; done
mkdir -p "$prefix/cli-plugins"
ln -sf "$prefix/usr/libexec/docker/cli-plugins/docker-buildx" "$prefix/cli-plugins/docker-buildx"
"$prefix/usr/sbin/dockerd" --version
